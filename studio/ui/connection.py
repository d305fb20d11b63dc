"""Connection state for the status bar: green (connected), amber (connecting / slow), red (down,
with "retry in N s"). Polls off the GUI thread; backs off 5 → 10 → 20 → 30 s while the RPC is down."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from studio.ui.ops import op

if TYPE_CHECKING:
    from studio.app import Studio

POLL_S = 5
BACKOFF_S = (5, 10, 20, 30)


class ConnectionMonitor(QObject):
    changed = Signal()
    connected = Signal()  # became reachable (first time, or again after being down)

    def __init__(self, studio: Studio, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.studio = studio
        self.state = "amber"  # green | amber | red
        self.detail = "connecting…"
        self.rpc_url: str | None = None
        self.head: int | None = None
        self.balance_wei: int | None = None
        self.account: str | None = None
        self.retry_at: float | None = None
        self._failures = 0
        self._busy = False
        self._stopped = False
        self._seen_green_now = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.poll)
        self._tick = QTimer(self)  # the "retry in N s" countdown
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self.changed.emit)

    @property
    def retry_in(self) -> int | None:
        if self.retry_at is None:
            return None
        return max(0, round(self.retry_at - time.monotonic()))

    def start(self, delay_ms: int = 0) -> None:
        self._stopped = False
        self._timer.start(delay_ms)

    def stop(self) -> None:
        """No more polls, including the re-arm of one still in flight (it would start the
        devnet again after the window closed)."""
        self._stopped = True
        self._timer.stop()
        self._tick.stop()

    def retry_now(self) -> None:
        self._timer.stop()
        self.poll()

    def poll(self) -> None:
        if self._busy or self._stopped:
            return
        self._busy = True
        if self.state != "green":
            self.state, self.detail = "amber", "connecting…"
            self.changed.emit()
        op(None, self._read).success(self._ok).failure(self._down).after(
            self._done
        ).run_in_background()

    def _read(self) -> dict[str, Any]:
        chain = self.studio.chain
        url = chain.network.rpc_url  # the devnet starts here if it is not running
        t0 = time.monotonic()
        head = int(chain.w3.eth.block_number)
        slow = time.monotonic() - t0 > 2.0
        account = self.studio.config.active_account
        balance = chain.balance(account) if account else None
        return {"url": url, "head": head, "slow": slow, "account": account, "balance": balance}

    def _ok(self, r: dict[str, Any]) -> None:
        self._failures = 0
        self.retry_at = None
        self._tick.stop()
        self.rpc_url, self.head = r["url"], r["head"]
        self.account, self.balance_wei = r["account"], r["balance"]
        was = self.state
        self.state = "amber" if r["slow"] else "green"
        self.detail = "slow RPC" if r["slow"] else "connected"
        if not self._stopped:
            self._timer.start(POLL_S * 1000)
        self.changed.emit()
        if was != "green" and self.state == "green" and not self._seen_green_now:
            self.connected.emit()
        self._seen_green_now = self.state == "green"

    def _down(self, exc: BaseException) -> None:
        self._seen_green_now = False
        wait = BACKOFF_S[min(self._failures, len(BACKOFF_S) - 1)]
        self._failures += 1
        self.state = "red"
        msg = str(exc).split("\n")[0]
        self.detail = msg[:160]
        self.retry_at = time.monotonic() + wait
        if not self._stopped:
            self._timer.start(wait * 1000)
            self._tick.start()
        self.changed.emit()

    def _done(self) -> None:
        self._busy = False
