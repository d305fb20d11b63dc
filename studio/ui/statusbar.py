"""Status bar: network, RPC endpoint, head block, connection state (green/amber/red with "retry in
N s"), active account and OPEN balance, running jobs."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QPushButton, QStatusBar, QWidget

from studio.ui import theme
from studio.ui.context import UiContext


class Dot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = "warn"
        self.setFixedSize(12, 12)

    def set_kind(self, kind: str) -> None:
        self.kind = kind
        self.update()

    def paintEvent(self, _e: QPaintEvent) -> None:  # noqa: N802 - Qt name
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(theme.accent(self.kind))
        p.drawEllipse(1, 1, 10, 10)


def short(address: str | None) -> str:
    return f"{address[:6]}…{address[-4:]}" if address else "no account"


class StatusBar(QStatusBar):
    def __init__(self, ui: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ui = ui
        self.setSizeGripEnabled(False)
        self.setContentsMargins(6, 0, 10, 0)
        self.dot = Dot()
        self.dot.setAccessibleName("Connection state")
        self.conn = QLabel()
        self.conn.setAccessibleName("Connection")
        self.retry = QPushButton("Retry now")
        self.retry.setToolTip("Try to reach the RPC endpoint again now")
        self.retry.setFlat(True)
        self.retry.clicked.connect(ui.conn.retry_now)
        ui.status_note.connect(lambda text: self.showMessage(text, 15_000))
        self.retry.hide()
        self.account = QLabel()
        self.account.setAccessibleName("Active account and balance")
        self.account.setToolTip("The active account: contributions, payments and rewards use it")
        self.jobs = QLabel()
        self.jobs.setAccessibleName("Running jobs")
        self.jobs.setToolTip("Training jobs running in the background")
        self.addWidget(self.dot)
        self.addWidget(self.conn, 1)
        self.addWidget(self.retry)
        self.addPermanentWidget(self.jobs)
        self.addPermanentWidget(self.account)
        ui.conn.changed.connect(self.refresh)
        ui.jobs.changed.connect(self.refresh_jobs)
        ui.jobs.finished.connect(self.refresh_jobs)
        ui.changed.connect(lambda _what: self.refresh())
        self.refresh()
        self.refresh_jobs()

    def refresh(self) -> None:
        from studio.ui.format import open_amount

        c = self.ui.conn
        net = self.ui.studio.network_name
        kind = {"green": "ok", "amber": "warn", "red": "bad"}[c.state]
        self.dot.set_kind(kind)
        self.dot.setToolTip(c.detail)
        parts = [net, c.rpc_url or "RPC not known yet"]
        if c.head is not None:
            parts.append(f"block {c.head:,}")
        if self.ui.node_verified is not None:
            parts.append(f"verified up to block {self.ui.node_verified:,}")
        if c.state == "red":
            wait = c.retry_in
            parts.append(
                f"disconnected — retry in {wait} s" if wait is not None else "disconnected"
            )
        else:
            parts.append(c.detail)
        self.conn.setText(" · ".join(parts))
        self.conn.setToolTip(c.detail)
        self.retry.setVisible(c.state == "red")
        account = c.account or self.ui.studio.config.active_account
        bal = f" · {open_amount(c.balance_wei)}" if c.balance_wei is not None else ""
        self.account.setText(f"{short(account)}{bal}")

    def refresh_jobs(self, *_a: object) -> None:
        running = self.ui.jobs.running()
        if not running:
            self.jobs.setText("no jobs running")
            return
        parts = []
        for j in running:
            pct = f"{j.step}/{j.total}" if j.total else "starting"
            parts.append(f"{j.model_id}: {'stalled' if j.stalled else pct}")
        self.jobs.setText("jobs: " + ", ".join(parts))


__all__ = ["StatusBar", "QColor"]
