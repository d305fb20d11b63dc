"""Helpers for the cancel tests: a token that trips after N checks (deterministic, no sleeps) and
a picture of the store and the blobs folder to compare before and after a cancelled call."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from studio.core.cancel import CancelToken
from studio.core.errors import Cancelled


class TripAfter(CancelToken):
    """Lets `n` checks pass, then cancels. `checks` counts every check (set n huge to count)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.checks = 0

    def check(self) -> None:
        self.checks += 1
        if self.checks > self.n:
            self.cancel()
        super().check()


def store_picture(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (a separate connection: sees only what was committed)."""
    con = sqlite3.connect(db)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def folder_picture(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under root (temp files included)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def cancel_everywhere(
    call: Callable[[CancelToken], Any],
    pictures: Callable[[], Any],
    *,
    at_least: int = 1,
    points: Sequence[int] | None = None,
) -> int:
    """Cancel `call` at each of its checks in turn (1st, 2nd, …) and assert that every cancelled run
    raised Cancelled and left `pictures()` as it was; the first run that gets past all its checks
    completes the call. Returns how many checks that full run made. With `points` (0-based check
    numbers), only those are tried, then one full run (for calls too slow to try at every check)."""
    before = pictures()
    tries = list(points) if points is not None else range(10_000)
    for k in tries:
        token = TripAfter(k)
        try:
            call(token)
        except Cancelled:
            assert pictures() == before, f"cancelled at check {k + 1}: state changed"
            continue
        assert points is None, f"check {k + 1} was never reached"
        assert token.checks >= at_least, f"only {token.checks} cancel checks"
        return token.checks
    assert points is not None, "the call never finishes"
    token = TripAfter(10**9)
    call(token)
    assert token.checks >= max(at_least, *(p + 1 for p in points)), token.checks
    return token.checks
