"""Node: start/stop the in-process light node (studio.node), sync height and verification status,
served requests, validator activity, log tail."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QPlainTextEdit

from studio.ui.ops import op, write_op
from studio.ui.pages import BasePage, Card, button, muted

REFRESH_MS = 2000


def node_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("studio.node.service") is not None


def describe(st: dict[str, Any]) -> str:
    sync = st.get("sync") or {}
    lines = [
        f"<b>running</b> at {html.escape(str(st.get('url')))}/v1 · account {html.escape(str(st.get('address') or '—'))}",
        "models: " + (", ".join(html.escape(m["id"]) for m in st.get("models", [])) or "none"),
    ]
    if sync:
        lines.append(
            f"chain: verified up to block <b>{sync.get('verified_to')}</b> ({html.escape(str(sync.get('state')))})"
        )
    req = st.get("requests") or {}
    lines.append("requests: " + ", ".join(f"{k} {v}" for k, v in req.items()))
    if st.get("paid_inferences"):
        lines.append(
            "paid inferences: " + ", ".join(f"{k} {v}" for k, v in st["paid_inferences"].items())
        )
    lines.append(f"queue: {st.get('queue', 0)}")
    if st.get("validator"):
        lines.append("validator: " + html.escape(str(st["validator"]))[:300])
    return "<br>".join(lines)


class Page(BasePage):
    title = "Node"
    subtitle = "The light node follows the chain's headers, verifies proofs, serves the OpenAI-compatible API and can validate."

    def __init__(self, ui: Any) -> None:
        super().__init__(ui)
        self.card = Card("Light node")
        self.outer.addWidget(self.card)
        row = QHBoxLayout()
        self.toggle = button(
            "Start node",
            "Start the light node inside the studio (loopback only)",
            self.start_stop,
            primary=True,
        )
        self.validator = QCheckBox("Also validate other nodes' attributions")
        self.validator.setToolTip("Re-check recorded attributions (needs a validator stake)")
        self.free = QCheckBox("Serve without payment (local testing)")
        self.free.setToolTip("Answer requests that paid nothing on chain")
        row.addWidget(self.toggle)
        row.addWidget(self.validator)
        row.addWidget(self.free)
        row.addStretch(1)
        self.outer.addLayout(row)
        self.note = muted("")
        self.outer.addWidget(self.note)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setAccessibleName("Node log")
        self.log.setPlaceholderText("The node's log appears here when it runs.")
        self.log.setMaximumBlockCount(400)
        self.outer.addWidget(self.log, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)

    @property
    def node(self) -> Any:
        return getattr(self.ui, "node", None)

    def refresh(self) -> None:
        if not node_available():
            self.card.set_text("The light node is <b>not available yet</b> in this build.")
            self.toggle.setEnabled(False)
            self.log.hide()
            return
        node = self.node
        if node is None:
            self.card.set_text(
                "Stopped. Start it to serve your models on an OpenAI-compatible API at 127.0.0.1, "
                "record paid attributions on chain, and follow the chain with verified headers. "
                "Headless: <code>studio node run</code>."
            )
            self.toggle.setText("Start node")
            self.timer.stop()
            return
        self.toggle.setText("Stop node")
        op(self, node.status).success(self._show).run_in_background()
        self._tail()

    def _show(self, st: dict[str, Any]) -> None:
        self.card.set_text(describe(st))
        sync = st.get("sync") or {}
        self.ui.node_verified = sync.get("verified_to")
        self.ui.conn.changed.emit()

    def _tail(self) -> None:
        path = self.studio.paths.logs / "studio.log"
        try:
            lines = path.read_text("utf-8", errors="replace").splitlines()[-400:]
        except OSError:
            return
        node_lines = [ln for ln in lines if " studio.node" in ln][-120:]
        self.log.setPlainText("\n".join(node_lines))
        self.log.verticalScrollBar().setValue(self.log.verticalScrollBar().maximum())

    def start_stop(self) -> None:
        if self.node is not None:
            node, self.ui.node = self.node, None
            self.ui.node_verified = None
            self.toggle.setEnabled(False)
            write_op(self, node.stop).after(
                lambda: (self.toggle.setEnabled(True), self.refresh())
            ).run_in_background()
            return
        validator, free = self.validator.isChecked(), self.free.isChecked()

        def go(_account: Any) -> None:
            def start() -> Any:
                from studio.node.config import NodeConfig
                from studio.node.service import Node

                path = self.studio.paths.home / "node.json"
                cfg = NodeConfig.load(
                    path,
                    api="127.0.0.1:0",
                    validator=validator or None,
                    require_payment=False if free else None,
                )
                return Node(self.studio, cfg).start()

            self.toggle.setEnabled(False)
            write_op(self, start).with_progress("Starting the node").success(self._started).after(
                lambda: self.toggle.setEnabled(True)
            ).run_in_background()

        if free and not validator:
            go(None)  # no payments to record, no chain to follow: no account needed
        else:
            self.ui.with_account(self, None, go)

    def _started(self, node: Any) -> None:
        self.ui.node = node
        self.note.setText(f"Serving at {node.url}/v1 (OpenAI-compatible).")
        self.timer.start()
        self.refresh()
