"""The password prompt every wallet action uses, with the keyring opt-in: "remember the password
in the OS keyring". Where no usable keyring exists (no Secret Service daemon, a plaintext or
prompting backend), the box is off and greyed with the reason, and the password is simply asked
each time; if the keyring refuses later, the account is still unlocked and the user told why."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

_status: tuple[bool, str] | None = None


def keyring_usable() -> tuple[bool, str]:
    """(usable, detail), asked once per process: detecting the backend can take a moment."""
    global _status
    if _status is None:
        from studio.chain.keyring_store import keyring_status

        _status = keyring_status()
    return _status


def forget_keyring_status() -> None:
    """Ask again next time (Settings changed the backend; tests swap it)."""
    global _status
    _status = None


class PasswordDialog(QDialog):
    def __init__(
        self,
        parent: QWidget | None,
        title: str,
        prompt: str,
        *,
        repeat: bool = False,
        offer_keyring: bool = True,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(prompt))
        self.pw = QLineEdit()
        self.pw.setEchoMode(QLineEdit.EchoMode.Password)
        self.pw.setAccessibleName("Password")
        self.pw.setToolTip("The keystore password (never stored on disk)")
        lay.addWidget(self.pw)
        self.pw2: QLineEdit | None = None
        if repeat:
            self.pw2 = QLineEdit()
            self.pw2.setEchoMode(QLineEdit.EchoMode.Password)
            self.pw2.setAccessibleName("Repeat password")
            self.pw2.setPlaceholderText("the same password again")
            self.pw2.setToolTip("Type the password again to catch typos")
            lay.addWidget(self.pw2)
        self.remember = QCheckBox("Remember the password in the OS keyring")
        self.remember.setAccessibleName("Remember in keyring")
        self.keyring_note = QLabel()
        self.keyring_note.setWordWrap(True)
        self.keyring_note.setAccessibleName("Keyring state")
        if offer_keyring:
            ok, detail = keyring_usable()
            self.remember.setEnabled(ok)
            if ok:
                self.remember.setToolTip(
                    f"Only the password, never the key, goes to the OS keyring ({detail}); "
                    "later unlocks of this account need no typing."
                )
            else:
                self.remember.setToolTip(f"Not available here: {detail}")
                self.keyring_note.setText(
                    f"No usable OS keyring ({detail}): the password will be asked each time."
                )
            lay.addWidget(self.remember)
            lay.addWidget(self.keyring_note)
        self.problem = QLabel()
        self.problem.setAccessibleName("Problem")
        lay.addWidget(self.problem)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.min_length = 8 if repeat else 1

    def _accept(self) -> None:
        pw = self.pw.text()
        if len(pw) < self.min_length:
            self.problem.setText(f"At least {self.min_length} characters.")
            return
        if self.pw2 is not None and self.pw2.text() != pw:
            self.problem.setText("The two passwords differ.")
            return
        self.accept()

    def result_value(self) -> tuple[str, bool]:
        return self.pw.text(), self.remember.isChecked() and self.remember.isEnabled()


def ask(
    ui: Any,
    parent: QWidget | None,
    title: str,
    prompt: str,
    *,
    repeat: bool = False,
    offer_keyring: bool = True,
) -> tuple[str, bool] | None:
    """(password, remember) or None when cancelled. Tests and screenshots answer through
    `ui.answer("password", prompt)`: a plain string (remember off) or a (password, remember)."""
    if ui.answer is not None:
        a = ui.answer("password", prompt)
        if a is None:
            return None
        return (a, False) if isinstance(a, str) else (str(a[0]), bool(a[1]))
    d = PasswordDialog(parent, title, prompt, repeat=repeat, offer_keyring=offer_keyring)
    if d.exec() != QDialog.DialogCode.Accepted:
        return None
    return d.result_value()


def unlock(wallet: Any, address: str, password: str, remember: bool) -> tuple[Any, str]:
    """Decrypt (off the GUI thread); with `remember`, also keep the password in the keyring. A
    keyring that is missing or refuses never blocks the unlock: (account, what happened)."""
    if remember:
        from studio.core.errors import WalletError

        try:
            return wallet.unlock(
                address, password=password, remember_in_keyring=True
            ), "Password remembered in the OS keyring."
        except WalletError as e:
            if "keyring" not in str(e).lower():
                raise  # a wrong password is still a wrong password
            forget_keyring_status()
            acct = wallet.unlock(address, password=password)
            return acct, f"Unlocked, but the password was not remembered: {e}"
    return wallet.unlock(address, password=password), ""
