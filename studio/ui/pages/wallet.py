"""Wallet: accounts, balances, receive (address + QR), send with a confirm dialog (chain, fee,
total), lock/unlock, export keystore, sign message, history with status, speed-up/cancel."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.ui import theme
from studio.ui.format import open_amount, short_hash
from studio.ui.ops import op, write_op
from studio.ui.pages import BasePage, button, muted
from studio.ui.pages.qr import QrCode
from studio.ui.validate import address_problem, amount_problem


class Page(BasePage):
    title = "Wallet"
    subtitle = "Keystores are encrypted with scrypt and never leave this data home. Passwords are asked once per unlock, or kept in the OS keyring if you ask."

    def __init__(self, ui: Any) -> None:
        super().__init__(ui)
        self.accounts = QTableWidget(0, 4)
        self.accounts.setHorizontalHeaderLabels(["Account", "Label", "Balance", "State"])
        self.accounts.setAccessibleName("Accounts")
        self.accounts.verticalHeader().hide()
        self.accounts.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.accounts.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.accounts.horizontalHeader().setStretchLastSection(True)
        self.accounts.setColumnWidth(0, 370)
        self.accounts.setColumnWidth(1, 200)
        self.accounts.setColumnWidth(2, 160)
        self.accounts.setMaximumHeight(170)
        self.accounts.itemSelectionChanged.connect(self._picked)
        self.outer.addWidget(self.accounts)
        acts = QHBoxLayout()
        for b in (
            button("New account…", "Create an account (keystore v3, scrypt)", self.new_account),
            button("Import…", "Import a private key or recovery phrase", self.import_account),
            button(
                "Make active",
                "Use this account for contributions, payments and rewards",
                self.make_active,
            ),
            button("Unlock…", "Decrypt this account for the unlock timeout", self.unlock),
            button("Lock all", "Forget every decrypted key now", self.lock_all),
            button(
                "Export keystore…", "Save the encrypted keystore file (a safe backup)", self.export
            ),
            button("Sign message…", "Sign a text with this account (EIP-191)", self.sign),
        ):
            acts.addWidget(b)
        acts.addStretch(1)
        self.outer.addLayout(acts)
        mid = QHBoxLayout()
        recv = QGroupBox("Receive")
        rl = QHBoxLayout(recv)
        self.qr = QrCode()
        rl.addWidget(self.qr)
        rcol = QVBoxLayout()
        self.addr = QLabel("—")
        self.addr.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.addr.setWordWrap(True)
        self.addr.setAccessibleName("Address")
        rcol.addWidget(self.addr)
        rcol.addWidget(
            button("Copy address", "Copy the address to the clipboard", self.copy_address)
        )
        rcol.addStretch(1)
        rl.addLayout(rcol, 1)
        mid.addWidget(recv, 1)
        send = QGroupBox("Send OPEN")
        form = QFormLayout(send)
        self.to = QLineEdit()
        self.to.setPlaceholderText("0x… recipient")
        self.to.setToolTip("The recipient's address (EIP-55 checksum checked)")
        self.to.setAccessibleName("Recipient")
        self.amount = QLineEdit()
        self.amount.setPlaceholderText("1.5")
        self.amount.setToolTip("Amount in OPEN (18 decimals)")
        self.amount.setAccessibleName("Amount")
        self.send_problem = QLabel()
        self.send_problem.setWordWrap(True)
        pal = self.send_problem.palette()
        pal.setColor(self.send_problem.foregroundRole(), theme.accent("bad"))
        self.send_problem.setPalette(pal)
        self.send_btn = button(
            "Send…", "Review chain, fee and total, then send", self.send, primary=True
        )
        form.addRow("To", self.to)
        form.addRow("Amount", self.amount)
        form.addRow(self.send_problem)
        form.addRow(self.send_btn)
        self.to.textChanged.connect(self._validate)
        self.amount.textChanged.connect(self._validate)
        mid.addWidget(send, 1)
        self.outer.addLayout(mid)
        self.outer.addWidget(QLabel("History"))
        self.history = QTableWidget(0, 5)
        self.history.setHorizontalHeaderLabels(["Status", "Nonce", "Transaction", "Block", "What"])
        self.history.setAccessibleName("History")
        self.history.verticalHeader().hide()
        self.history.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.history.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.history.horizontalHeader().setStretchLastSection(True)
        self.history.setColumnWidth(2, 200)
        self.outer.addWidget(self.history, 1)
        hrow = QHBoxLayout()
        self.status_line = muted("")
        hrow.addWidget(self.status_line, 1)
        hrow.addWidget(
            button(
                "Speed up",
                "Re-send the selected pending transaction with higher fees",
                lambda: self.speed_up(False),
            )
        )
        hrow.addWidget(
            button(
                "Cancel tx",
                "Replace the selected pending transaction with a 0-OPEN transfer to yourself",
                lambda: self.speed_up(True),
            )
        )
        self.outer.addLayout(hrow)
        self._rows: list[dict[str, Any]] = []
        self._validate()
        ui.conn.connected.connect(self.refresh)
        ui.changed.connect(lambda w: self.refresh() if w in ("wallet", "chain") else None)

    # -- data ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        def load() -> dict[str, Any]:
            w = self.studio.wallet
            accts = [a.__dict__ if hasattr(a, "__dict__") else dict(a) for a in w.list()]
            for a in accts:
                u = w._unlocked.get(a["address"])
                a["unlocked"] = u is not None and not u.locked
            return {"accounts": accts, "active": w.active_address()}

        op(self, load).success(self._show).run_in_background()
        if self.ui.conn.state == "green":
            op(self, self._chain_data).success(self._show_chain).failure(
                lambda e: self.status_line.setText(f"Balances and history need the chain: {e}")
            ).run_in_background()

    def screenshot_ready(self) -> bool:
        return self.history.rowCount() > 0

    def _chain_data(self) -> dict[str, Any]:
        chain = self.studio.chain
        bal = {a.address: chain.balance(a.address) for a in self.studio.wallet.list()}
        return {"balances": bal, "history": chain.tx.history(None, limit=50)}

    def _show(self, d: dict[str, Any]) -> None:
        self._accounts = d["accounts"]
        self._active = d["active"]
        self.accounts.setRowCount(len(d["accounts"]))
        for i, a in enumerate(d["accounts"]):
            state = ("active · " if a["address"] == d["active"] else "") + (
                "unlocked" if a["unlocked"] else "locked"
            )
            for j, v in enumerate((a["address"], a.get("label") or "", "…", state)):
                self.accounts.setItem(i, j, QTableWidgetItem(v))
            if a["address"] == d["active"]:
                self.accounts.selectRow(i)
        if d["accounts"] and not self.accounts.selectedItems():
            self.accounts.selectRow(0)
        if not d["accounts"]:
            self.addr.setText("No account yet: create or import one.")

    def _show_chain(self, d: dict[str, Any]) -> None:
        for i in range(self.accounts.rowCount()):
            item = self.accounts.item(i, 0)
            if item is not None and item.text() in d["balances"]:
                self.accounts.setItem(
                    i, 2, QTableWidgetItem(open_amount(d["balances"][item.text()]))
                )
        self._rows = d["history"]
        self.history.setRowCount(len(self._rows))
        for i, r in enumerate(self._rows):
            for j, v in enumerate(
                (
                    r["status"],
                    str(r["nonce"]),
                    short_hash(r["tx_hash"], 18),
                    str(r.get("block_number") or "—"),
                    r["purpose"],
                )
            ):
                item = QTableWidgetItem(v)
                item.setToolTip(r["tx_hash"] if j == 2 else v)
                if j == 0:
                    item.setForeground(
                        theme.accent(
                            {"mined": "ok", "failed": "bad", "reverted": "bad"}.get(
                                r["status"], "warn"
                            )
                        )
                    )
                self.history.setItem(i, j, item)

    def selected(self) -> str | None:
        rows = self.accounts.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.accounts.item(rows[0].row(), 0)
        return item.text() if item else None

    def _picked(self) -> None:
        a = self.selected()
        if a:
            self.addr.setText(a)
            self.qr.set_text(f"ethereum:{a}@{self.ui.chain_id()}")

    def _validate(self) -> bool:
        problem = None
        if self.to.text().strip():
            problem = address_problem(self.to.text().strip())
        if problem is None and self.amount.text().strip():
            problem = amount_problem(self.amount.text().strip())
        self.send_problem.setText(problem or "")
        ok = problem is None and bool(self.to.text().strip()) and bool(self.amount.text().strip())
        self.send_btn.setEnabled(ok)
        return ok

    # -- actions ------------------------------------------------------------------------------
    def new_account(self, password: str | None = None, remember: bool = False) -> Any:
        if password is None:
            from studio.ui.password import ask

            got = ask(
                self.ui,
                self,
                "New account",
                "Password for the new keystore (at least 8 characters):",
                repeat=True,
            )
            if got is None:
                return None
            password, remember = got
        w, pw = self.studio.wallet, password

        def work() -> tuple[str, str]:
            from studio.ui.password import unlock

            address, _phrase = w.create(pw, label="studio")
            note = unlock(w, address, pw, True)[1] if remember else ""
            return address, note

        return write_op(self, work).success(self._created).run_in_background()

    def _created(self, r: tuple[str, str]) -> None:
        address, note = r
        self.status_line.setText(f"Created {address}. {note}".strip())
        if note:
            self.ui.status_note.emit(note)
        self.ui.changed.emit("wallet")

    def import_account(self) -> Any:
        key, ok = QInputDialog.getText(
            self, "Import", "Private key (0x…) or recovery phrase:", QLineEdit.EchoMode.Password
        )
        if not ok or not key.strip():
            return None
        from studio.ui.password import ask

        got = ask(
            self.ui,
            self,
            "Import",
            "New keystore password (at least 8 characters):",
            repeat=True,
        )
        if got is None:
            return None
        pw, remember = got
        w = self.studio.wallet
        text = key.strip()

        def work() -> tuple[str, str]:
            from studio.ui.password import unlock

            address = w.import_mnemonic(text, pw) if " " in text else w.import_private_key(text, pw)
            note = unlock(w, address, pw, True)[1] if remember else ""
            return address, note

        return write_op(self, work).success(self._created).run_in_background()

    def make_active(self) -> None:
        a = self.selected()
        if a:
            self.studio.wallet.set_active(a)
            self.ui.changed.emit("wallet")

    def unlock(self) -> None:
        a = self.selected()
        if a:
            self.ui.with_account(self, a, lambda _acct: self.ui.changed.emit("wallet"))

    def lock_all(self) -> None:
        self.studio.wallet.lock_all()
        self.ui.changed.emit("wallet")

    def export(self) -> None:
        a = self.selected()
        if not a:
            return
        out, _ = QFileDialog.getSaveFileName(
            self, "Export keystore", f"{a}.json", "Keystore (*.json)"
        )
        if out:
            from studio.core import atomic

            atomic.write_text(out, self.studio.wallet.export(a), mode=0o600)
            self.status_line.setText(f"Keystore saved to {out} (encrypted; mode 0600).")

    def sign(self) -> None:
        a = self.selected()
        if not a:
            return
        msg, ok = QInputDialog.getMultiLineText(self, "Sign message", "Message:")
        if not ok:
            return

        def signed(acct: Any) -> None:
            sig = acct.sign_message(msg)
            text = "0x" + bytes(sig.signature).hex()
            QGuiApplication.clipboard().setText(text)
            self.status_line.setText(f"Signature (copied): {short_hash(text, 20)}")

        self.ui.with_account(self, a, signed)

    def copy_address(self) -> None:
        a = self.selected()
        if a:
            QGuiApplication.clipboard().setText(a)

    def send(self) -> None:
        if not self._validate():
            return
        from studio.chain.networks import parse_address, parse_open

        to, wei = parse_address(self.to.text().strip()), parse_open(self.amount.text().strip())
        if not self.ui.confirm_tx(self, f"Send {open_amount(wei)} to {to}.", wei, gas=21_000):
            return

        def go(acct: Any) -> None:
            write_op(
                self,
                lambda: self.studio.chain.tx.send(
                    acct, to=to, value=wei, purpose=f"send {open_amount(wei)}"
                ),
            ).with_progress("Sending").success(
                lambda r: (
                    self.status_line.setText(
                        f"Sent: tx {short_hash(r.hash, 18)} in block {r.block}"
                    ),
                    self.ui.changed.emit("chain"),
                )
            ).run_in_background()

        self.ui.with_account(self, None, go)

    def speed_up(self, cancel: bool) -> None:
        rows = self.history.selectionModel().selectedRows()
        if not rows:
            return
        r = self._rows[rows[0].row()]
        if r["status"] not in ("signed", "sent"):
            self.status_line.setText("Only a pending transaction can be sped up or cancelled.")
            return
        tx = self.studio.chain.tx

        def go(acct: Any) -> None:
            write_op(
                self, lambda: tx.speed_up(r["tx_hash"], account=acct, cancel=cancel)
            ).with_progress("Replacing the transaction").success(
                lambda _r: self.ui.changed.emit("chain")
            ).run_in_background()

        self.ui.with_account(self, r["sender"], go)


__all__ = ["Page", "QWidget"]
