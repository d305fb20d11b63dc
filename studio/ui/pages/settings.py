"""Settings: network profile, data home, device, keyring, theme."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit

from studio.ui import theme
from studio.ui.ops import op
from studio.ui.pages import BasePage, button, muted

NETWORKS = ("devnet", "openledger-testnet", "openledger", "custom")


class Page(BasePage):
    title = "Settings"
    subtitle = "Saved in the data home (config.json for the studio, gui.ini for the window)."

    def __init__(self, ui: Any) -> None:
        super().__init__(ui)
        form = QFormLayout()
        self.network = QComboBox()
        self.network.addItems(NETWORKS)
        self.network.setToolTip("devnet runs a local chain for you; the others need their RPC")
        self.rpc = QLineEdit()
        self.rpc.setPlaceholderText("https://… (custom network only)")
        self.rpc.setToolTip("The JSON-RPC URL of a custom network")
        self.chain_id = QLineEdit()
        self.chain_id.setPlaceholderText("chain id (custom network only)")
        self.chain_id.setToolTip(
            "The custom network's chain id: the studio never signs for another"
        )
        self.theme = QComboBox()
        self.theme.addItems(["System", "Light", "Dark"])
        self.theme.setToolTip("Colours of the window")
        self.home = QLabel(str(self.studio.paths.home))
        self.home.setToolTip("Everything this studio keeps: store, blobs, keystores, models, logs")
        self.device = QLabel("checking…")
        self.keyring = QLabel("checking…")
        for lab in (self.device, self.keyring, self.home):
            lab.setWordWrap(True)
        for label, w in (
            ("Network", self.network),
            ("Custom RPC URL", self.rpc),
            ("Custom chain id", self.chain_id),
            ("Theme", self.theme),
            ("Data home", self.home),
            ("Training device", self.device),
            ("OS keyring", self.keyring),
        ):
            w.setAccessibleName(label)
            form.addRow(label, w)
        self.outer.addLayout(form)
        self.save_btn = button("Save", "Save and apply these settings", self.save, primary=True)
        row = QHBoxLayout()
        row.addWidget(self.save_btn)
        row.addStretch(1)
        self.outer.addLayout(row)
        self.note = muted("")
        self.outer.addWidget(self.note)
        self.outer.addStretch(1)
        self._checked = False

    def refresh(self) -> None:
        cfg = self.studio.config
        self.network.setCurrentText(self.studio.network_name)
        self.rpc.setText(str(cfg.extra.get("custom_rpc_url", "")))
        self.chain_id.setText(str(cfg.extra.get("custom_chain_id", "")))
        self.theme.setCurrentText(str(self.ui.settings.value("theme", "system")).capitalize())
        if not self._checked:
            self._checked = True
            from studio.ui import hardware

            hardware.probe(lambda info: self.device.setText(hardware.describe(info)), self)
            op(self, _keyring).success(self.keyring.setText).run_in_background()

    def screenshot_ready(self) -> bool:
        return "checking" not in self.device.text() and "checking" not in self.keyring.text()

    def save(self) -> None:
        cfg = self.studio.config
        net = self.network.currentText()
        if net == "custom":
            if (
                not self.rpc.text().strip().startswith(("http://", "https://"))
                or not self.chain_id.text().strip().isdigit()
            ):
                self.note.setText(
                    "A custom network needs an http(s) RPC URL and a numeric chain id."
                )
                return
            cfg.extra["custom_rpc_url"] = self.rpc.text().strip()
            cfg.extra["custom_chain_id"] = int(self.chain_id.text().strip())
        changed_net = net != cfg.network
        cfg.network = net
        self.studio.save_config()
        name = self.theme.currentText().lower()
        self.ui.settings.setValue("theme", name)
        from PySide6.QtWidgets import QApplication

        theme.apply(QApplication.instance(), name)  # type: ignore[arg-type]
        note = "Saved." + (" Restart the studio to switch networks." if changed_net else "")
        self.ui.changed.emit("settings")
        win = self.window()
        if hasattr(win, "retheme"):
            win.retheme()  # rebuilds the pages, this one included
            page = getattr(win, "pages", {}).get("settings")
            if page is not None:
                page.note.setText(note)
        else:
            self.note.setText(note)


def _keyring() -> str:
    from studio.chain import keyring_store

    ok, detail = keyring_store.keyring_status()
    return (
        ("usable: " if ok else "not usable: ")
        + str(detail)
        + ("" if ok else " — the studio asks for the password instead (never a plaintext fallback)")
    )
