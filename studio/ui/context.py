"""What every page holds: the Studio facade, the event bridge, jobs, connection, and a few shared
GUI steps (unlock with a password dialog, confirm a transaction). One object passed down, never a
global reached from everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from studio.ui.ops import op

if TYPE_CHECKING:
    from studio.app import Studio
    from studio.ui.bridge import EventBridge
    from studio.ui.connection import ConnectionMonitor
    from studio.ui.jobs import JobsTracker


class UiContext(QObject):
    # "what changed": pages listen and refresh only what concerns them
    changed = Signal(str)  # "datanets", "models", "wallet", "chain", "settings"
    navigate = Signal(str)  # page name
    status_note = Signal(str)  # a short message for the status bar (keyring fell back, …)

    def __init__(
        self,
        studio: Studio,
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
    def ask_password(self, parent: QWidget | None, address: str) -> tuple[str, bool] | None:
        """(password, remember in the OS keyring) or None when cancelled."""
        from studio.ui import password

        if self.answer is not None:  # tests: "password" is asked with the address
            a = self.answer("password", address)
            if a is None:
                return None
            return (a, False) if isinstance(a, str) else (str(a[0]), bool(a[1]))
        return password.ask(
            self, parent, "Unlock account", f"Password for {address[:10]}…{address[-6:]}:"
        )

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

        def from_keyring() -> Any:
            """The account, when the OS keyring remembers a password that opens it."""
            if addr not in wallet._remembered():
                return None
            from studio.chain.keyring_store import get_password

            pw = get_password(addr)
            if pw is None:
                return None
            try:
                return wallet.unlock(addr, password=pw)
            except Exception:  # noqa: BLE001 - a stale keyring entry: ask the user instead
                return None

        def asked(acct: Any) -> None:
            if acct is not None:
                then(acct)
                return
            got = self.ask_password(parent, addr)
            if got is None:
                return
            pw, remember = got
            from studio.ui import password

            def unlocked(r: tuple[Any, str]) -> None:
                acct, note = r
                if note:
                    self.status_note.emit(note)
                    if note.startswith("Unlocked, but") and self.answer is None:
                        box = QMessageBox(
                            QMessageBox.Icon.Information, "OS keyring", note, parent=parent
                        )
                        box.setInformativeText("The password will be asked again next time.")
                        box.open()  # not modal: the action goes on
                then(acct)

            op(parent, lambda: password.unlock(wallet, addr, pw, remember)).success(
                unlocked
            ).run_in_background()

        op(parent, from_keyring).success(asked).run_in_background()
