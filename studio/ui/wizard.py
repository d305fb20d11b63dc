"""First run: create or import a wallet (the recovery phrase is shown once; confirm the backup or
be reminded later), network, keyring opt-in, hardware check, and test OPEN on the devnet."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QRadioButton,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from studio.ui.ops import write_op


class FirstRunWizard(QWizard):
    def __init__(self, ui: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ui = ui
        self.studio = ui.studio
        self.setWindowTitle("Welcome to OpenLedger Studio")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage)
        self.address: str | None = None
        self.phrase: str | None = None
        self._making: Any = None  # the background op making the account, while it runs
        self.addPage(self._wallet_page())
        self.addPage(self._phrase_page())
        self.addPage(self._network_page())
        self.addPage(self._hardware_page())
        self.resize(620, 460)
        self.finished.connect(self._done)

    # -- pages --------------------------------------------------------------------------------
    def _wallet_page(self) -> QWizardPage:
        p = QWizardPage()
        p.setTitle("Your wallet")
        p.setSubTitle(
            "An account signs your contributions and receives your rewards. Its key is encrypted with your password (scrypt) and never leaves this computer."
        )
        lay = QVBoxLayout(p)
        self.create = QRadioButton("Create a new account (with a recovery phrase)")
        self.create.setChecked(True)
        self.imp = QRadioButton("Import a recovery phrase or private key")
        self.secret = QPlainTextEdit()
        self.secret.setPlaceholderText("recovery phrase (12–24 words) or 0x private key")
        self.secret.setAccessibleName("Recovery phrase or key")
        self.secret.setMaximumHeight(70)
        self.secret.setEnabled(False)
        self.imp.toggled.connect(self.secret.setEnabled)
        self.pw = QLineEdit()
        self.pw.setEchoMode(QLineEdit.EchoMode.Password)
        self.pw.setPlaceholderText("password (at least 8 characters)")
        self.pw.setAccessibleName("Password")
        self.pw2 = QLineEdit()
        self.pw2.setEchoMode(QLineEdit.EchoMode.Password)
        self.pw2.setPlaceholderText("the same password again")
        self.pw2.setAccessibleName("Repeat password")
        self.remember = QCheckBox("Remember the password in the OS keyring")
        self.remember.setToolTip(
            "Only the password, never the key; only where a real keyring exists"
        )
        from studio.ui.password import keyring_usable

        usable, detail = keyring_usable()
        if not usable:  # no daemon, or a plaintext backend: say so instead of failing later
            self.remember.setEnabled(False)
            self.remember.setText("Remember the password in the OS keyring (none usable here)")
            self.remember.setToolTip(f"{detail}: the password will be asked each time")
        self.pw_problem = QLabel()
        for w in (
            self.create,
            self.imp,
            self.secret,
            self.pw,
            self.pw2,
            self.remember,
            self.pw_problem,
        ):
            lay.addWidget(w)
        p.validatePage = self._make_account  # type: ignore[method-assign]
        return p

    def _phrase_page(self) -> QWizardPage:
        p = QWizardPage()
        p.setTitle("Write down your recovery phrase")
        p.setSubTitle(
            "It is shown this once. Anyone with it controls your account; without it a lost password cannot be recovered."
        )
        lay = QVBoxLayout(p)
        self.phrase_box = QPlainTextEdit()
        self.phrase_box.setReadOnly(True)
        self.phrase_box.setAccessibleName("Recovery phrase")
        lay.addWidget(self.phrase_box)
        self.backed_up = QCheckBox("I wrote it down (otherwise the Home page reminds me later)")
        lay.addWidget(self.backed_up)
        return p

    def _network_page(self) -> QWizardPage:
        p = QWizardPage()
        p.setTitle("Network")
        p.setSubTitle(
            "The devnet is a local chain the studio runs for you: everything works offline. You can switch later in Settings."
        )
        lay = QVBoxLayout(p)
        self.network = QComboBox()
        self.network.addItems(["devnet", "openledger-testnet", "openledger", "custom"])
        self.network.setAccessibleName("Network")
        self.network.setCurrentText(self.studio.network_name)
        lay.addWidget(self.network)
        self.faucet = QCheckBox("Send 100 test OPEN from the devnet faucet to the new account")
        self.faucet.setChecked(True)
        lay.addWidget(self.faucet)
        self.network.currentTextChanged.connect(lambda n: self.faucet.setEnabled(n == "devnet"))
        lay.addStretch(1)
        return p

    def _hardware_page(self) -> QWizardPage:
        p = QWizardPage()
        p.setTitle("Hardware check")
        p.setSubTitle("What training will run on.")
        lay = QVBoxLayout(p)
        self.hw = QLabel("checking…")
        self.hw.setWordWrap(True)
        self.hw.setAccessibleName("Hardware")
        lay.addWidget(self.hw)
        lay.addStretch(1)
        p.initializePage = self._check_hardware  # type: ignore[method-assign]
        return p

    # -- steps --------------------------------------------------------------------------------
    def _make_account(self) -> bool:
        """The page's validatePage. Making a keystore (scrypt, about a second) and the keyring run
        off the GUI thread: the first Next starts it and stays; the op's success moves on."""
        if self.address is not None:
            return True
        if self._making is not None:
            return False
        pw, pw2 = self.pw.text(), self.pw2.text()
        if len(pw) < 8:
            self.pw_problem.setText("The password needs at least 8 characters.")
            return False
        if pw != pw2:
            self.pw_problem.setText("The two passwords differ.")
            return False
        text = self.secret.toPlainText().strip() if self.imp.isChecked() else None
        if text == "":
            self.pw_problem.setText("Paste the recovery phrase or private key.")
            return False
        remember = self.remember.isChecked() and self.remember.isEnabled()
        w = self.studio.wallet

        def make() -> tuple[str, str | None, str]:
            if text is not None:
                addr = (
                    w.import_mnemonic(text, pw) if " " in text else w.import_private_key(text, pw)
                )
                phrase = None
            else:
                addr, phrase = w.create(pw, mnemonic=True, label="studio")
            note = ""
            if remember:
                from studio.ui.password import unlock

                note = unlock(w, addr, pw, True)[1]
            return addr, phrase, note

        def made(res: tuple[str, str | None, str]) -> None:
            self._making = None
            self.address, self.phrase, note = res
            if note.startswith("Unlocked, but"):
                self.ui.status_note.emit(note)
            self.pw.clear()
            self.pw2.clear()
            self.pw_problem.setText("")
            self.phrase_box.setPlainText(
                self.phrase or "(imported: you already hold the phrase or key)"
            )
            self.next()

        def failed(e: BaseException) -> None:
            self._making = None
            self.pw_problem.setText(str(e))

        self.pw_problem.setText("Creating the account…")
        self._making = write_op(self, make).success(made).failure(failed).run_in_background()
        return False

    def _check_hardware(self) -> None:
        from studio.ui import hardware

        hardware.probe(lambda info: self.hw.setText(hardware.describe(info)), self)

    def _done(self, result: int) -> None:
        self.ui.settings.setValue("wizard/done", "true")
        self.ui.settings.setValue(
            "wallet/backup_confirmed", "true" if self.backed_up.isChecked() else "false"
        )
        net = self.network.currentText()
        if net != self.studio.config.network:
            self.studio.config.network = net
            self.studio.save_config()
        self.phrase_box.clear()
        self.phrase = None
        self.ui.changed.emit("wallet")
        if result and self.address and net == "devnet" and self.faucet.isChecked():
            addr = self.address

            def faucet() -> Any:
                chain = self.studio.chain
                return chain.devnet.faucet(addr, 100 * 10**18, pipeline=chain.tx)

            write_op(self.parent(), faucet).success(
                lambda _r: self.ui.changed.emit("chain")
            ).run_in_background()
