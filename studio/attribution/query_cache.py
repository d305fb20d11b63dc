"""What a fast (gradient) query needs besides its own backward pass, kept between calls.

Per query, the gradient method used to reopen the index, hash the adapter files (sha256) to
check the index's identity and regenerate every LoRA module's seeded projection matrices
(on SmolLM2-135M, 210 modules: 1.1 CPU-s, more than the query's backward pass itself). Those
depend only on the model version's files, so the Attributor keeps them per model and reuses
them while a cheap key (each file's size, mtime and inode, plus the model card) is unchanged:
a rewritten adapter, a rebuilt index or an edited card gives a new key, and the next query
reloads and re-checks everything as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def files_key(*paths: Path | None) -> tuple[Any, ...]:
    """Size, mtime and inode of every file in `paths` (folders: their files, recursively)."""
    out: list[Any] = []
    for root in paths:
        if root is None:
            out.append(None)
            continue
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for p in files:
            try:
                st = p.stat()
            except OSError:  # vanished meanwhile: a key that matches nothing cached
                out.append((str(p), None))
                continue
            out.append((str(p), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def card_key(card: dict[str, Any]) -> str:
    return json.dumps(card, sort_keys=True, default=str)


class QueryCache:
    """One entry per model id: (key, value); a different key replaces the entry."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[Any, Any]] = {}

    def get(self, kind: str, model_id: str, key: Any, make: Callable[[], Any]) -> Any:
        hit = self._entries.get((kind, model_id))
        if hit is not None and hit[0] == key:
            return hit[1]
        self._entries.pop((kind, model_id), None)  # free the old value before making the new
        value = make()
        self._entries[(kind, model_id)] = (key, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
