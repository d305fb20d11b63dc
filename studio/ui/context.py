"""What every page holds: the Studio facade, the event bridge, jobs, connection, and a few shared
GUI steps (unlock with a password dialog, confirm a transaction). One object passed down, never a
global reached from everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QInputDialog, QLineEdit, QMessageBox, QWidget

from studio.ui.ops import op

if TYPE_CHECKING:
    from studio.ui.bridge import EventBridge
    from studio.ui.connection import ConnectionMonitor
    from studio.ui.jobs import JobsTracker


class UiContext(QObject):
    # "what changed": pages listen and refresh only what concerns them
    changed = Signal(str)  # "datanets", "models", "wallet", "chain", "settings"
    navigate = Signal(str)  # page name

    def __init__(
        self,
        studio: Any,
        settings: QSettings,
        bridge: EventBridge,
        jobs: JobsTracker,
        conn: ConnectionMonitor,
    ) -> None:
        super().__init__()
        self.studio = studio
        self.settings = settings
        self.bridge = bridge
        self.jobs = jobs
        self.conn = conn
        # Tests and --screenshots answer dialogs without a user: (title, text) -> answer.
        self.answer: Callable[[str, str], Any] | None = None
        self.node: Any = None  # the in-process light node, when started on the Node page
        self.node_verified: int | None = None  # its "verified up to block N"
        self.last_report: Any = None  # the Playground's last (report, path), kept across rebuilds

    # -- asking the user -------------------------------------------------------------------------
    def ask_password(self, parent: QWidget | None, address: str) -> str | None:
        if self.answer is not None:
            return self.answer("password", address)
        pw, ok = QInputDialog.getText(
            parent,
            "Unlock account",
            f"Password for {address[:10]}…{address[-6:]}:",
            QLineEdit.EchoMode.Password,
        )
        return pw if ok else None

    def confirm(self, parent: QWidget | None, title: str, text: str) -> bool:
        if self.answer is not None:
            return bool(self.answer(title, text))
        box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=parent)
        box.setStandardButtons(QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Ok

    def confirm_tx(
        self, parent: QWidget | None, what: str, value_wei: int, gas: int = 300_000
    ) -> bool:
        """Chain, fee and total before anything is signed."""
        from studio.chain.networks import format_open

        conn = self.conn
        fee_wei = gas * 2 * 10**9  # shown as the maximum fee; the pipeline estimates the exact gas
        text = (
            f"{what}\n\nChain: {self.studio.network_name} (chain id {self.chain_id()})\n"
            f"RPC: {conn.rpc_url or 'not connected'}\n"
            f"Amount: {format_open(value_wei)}\nMaximum network fee: {format_open(fee_wei)}\n"
            f"Total at most: {format_open(value_wei + fee_wei)}"
        )
        return self.confirm(parent, "Confirm transaction", text)

    def chain_id(self) -> int:
        from studio.chain.networks import get_network

        return get_network(self.studio.network_name, self.studio.config).chain_id

    def with_account(
        self, parent: QWidget | None, address: str | None, then: Callable[[Any], Any]
    ) -> None:
        """Unlock `address` (the active account when None): ask once, decrypt off the GUI thread."""
        wallet = self.studio.wallet
        addr = address or wallet.active_address()
        if addr is None:
            from studio.core.errors import NotFound
            from studio.ui.errors import show_error

            show_error(parent, NotFound("No account yet.", hint="Create one on the Wallet page."))
            return
        current = wallet._unlocked.get(addr)
        if current is not None and not current.locked:
            then(current)
            return
        pw = self.ask_password(parent, addr)
        if pw is None:
            return
        op(parent, lambda: wallet.unlock(addr, password=pw)).success(then).run_in_background()
