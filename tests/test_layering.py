"""The arrows in DESIGN.md: nothing below ui/ imports Qt, core imports neither web3 nor torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BLOCK_QT = """
import importlib.abc, sys
class BlockQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "PySide6" or name.startswith("PySide6."):
            raise ImportError("Qt is blocked outside studio.ui")
        return None
sys.meta_path.insert(0, BlockQt())
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_non_ui_module_imports_without_qt() -> None:
    r = _run(
        BLOCK_QT
        + """
import pkgutil, importlib, studio
failed = []
for m in pkgutil.walk_packages(studio.__path__, "studio."):
    if m.name.startswith("studio.ui") or m.name == "studio.__main__":
        continue
    try:
        importlib.import_module(m.name)
    except Exception as e:
        failed.append(f"{m.name}: {type(e).__name__}: {e}")
assert not failed, failed
assert "PySide6" not in sys.modules
print("ok")
"""
    )
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


def test_core_imports_neither_web3_nor_torch() -> None:
    r = _run("""
import pkgutil, importlib, sys, studio.core
for m in pkgutil.walk_packages(studio.core.__path__, "studio.core."):
    importlib.import_module(m.name)
import studio.cli, studio.commands
heavy = sorted(n for n in ("web3", "torch", "PySide6", "transformers") if n in sys.modules)
assert not heavy, heavy
print("ok")
""")
    assert r.returncode == 0, r.stderr


def test_nothing_imports_ui() -> None:
    offenders = []
    for path in (REPO / "studio").rglob("*.py"):
        if "ui" in path.relative_to(REPO / "studio").parts[:1]:
            continue
        if path.name == "launch.py" and path.parent.name == "studio":
            continue  # the launcher sits above ui: it shows the cannot-start dialog
        if path.relative_to(REPO / "studio").as_posix() == "commands/gui.py":
            continue  # `studio gui` loads the ui package lazily, by name: the one way in
        text = path.read_text("utf-8")
        if "studio.ui" in text or "from PySide6" in text or "import PySide6" in text:
            offenders.append(str(path.relative_to(REPO)))
    assert not offenders, offenders
