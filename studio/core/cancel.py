"""Cancel tokens: the contract every long call (adding files, verify, export, snapshot, evaluate,
merged export, attribute, index build, devnet start, waiting for a transaction) keeps.

The caller (the GUI's background-op helper, a signal handler, a test) holds the token and calls
`cancel()` from any thread; the work calls `check()` at safe points, before anything is written or
inside the transaction that would write it, so a cancelled call raises `Cancelled` and leaves the
store and the blobs exactly as they were."""

from __future__ import annotations

import threading


class CancelToken:
    """Checked by long work at safe points; set from another thread (GUI) or a signal handler."""

    def __init__(self) -> None:
        self._ev = threading.Event()

    def cancel(self) -> None:
        self._ev.set()

    @property
    def cancelled(self) -> bool:
        return self._ev.is_set()

    def check(self) -> None:
        """Raise `Cancelled` if cancel() was called. Cheap: call it in every loop of long work."""
        if self._ev.is_set():
            from studio.core.errors import Cancelled

            raise Cancelled("Cancelled.", hint="Nothing was changed; run it again to finish it.")


def check(token: CancelToken | None) -> None:
    """`token.check()` for the optional token every long call takes."""
    if token is not None:
        token.check()
