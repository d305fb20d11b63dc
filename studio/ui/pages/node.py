"""Node: start/stop the light node, sync height, verification, served requests, validator activity,
log tail — once the node package provides `studio.node`; until then the page says so."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QPlainTextEdit

from studio.ui.pages import BasePage, Card, button


class Page(BasePage):
    title = "Node"
    subtitle = "The light node follows the chain's headers, verifies proofs, serves the OpenAI-compatible API and can validate."

    def __init__(self, ui: Any) -> None:
        super().__init__(ui)
        self.card = Card("Light node")
        self.outer.addWidget(self.card)
        self.toggle = button("Start node", "Start the in-process light node", self.start_stop)
        self.outer.addWidget(self.toggle)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setAccessibleName("Node log")
        self.log.setPlaceholderText("The node's log appears here when it runs.")
        self.outer.addWidget(self.log, 1)
        self.outer.addStretch(1)

    def node(self) -> Any:
        return getattr(self.studio, "node", None)

    def refresh(self) -> None:
        node = self.node()
        if node is None:
            self.card.set_text(
                "The light node is <b>not available yet</b> in this build. Until it lands, the studio talks "
                "to the chain through its RPC endpoint directly (see the status bar); "
                "`studio node run` will start it headless."
            )
            self.toggle.setEnabled(False)
            self.toggle.setToolTip("Not available in this build yet")
            self.log.hide()
            return
        self.log.show()
        status = node.status() if hasattr(node, "status") else {}
        self.card.set_text("<br>".join(f"{k}: {v}" for k, v in dict(status).items()) or "Stopped.")
        self.toggle.setText("Stop node" if status.get("running") else "Start node")

    def start_stop(self) -> None:
        node = self.node()
        if node is None:
            return
        status = node.status() if hasattr(node, "status") else {}
        (node.stop if status.get("running") else node.start)()
        self.refresh()
