"""Home: what matters now at a glance, and the next step a new user should take."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel

from studio.ui.format import open_amount, short_hash
from studio.ui.ops import op
from studio.ui.pages import BasePage, Card, button

if TYPE_CHECKING:
    from studio.app import Studio


def local_summary(studio: Studio) -> dict[str, Any]:
    """Everything Home shows that needs no chain (fast, from the store)."""
    datanets = studio.datanets.list()
    models = [m for m in studio.models.list() if m.get("kind") == "fine-tune"]
    keystores = studio.paths.keystores
    accounts = len(list(keystores.glob("*.json"))) if keystores.exists() else 0
    return {"datanets": datanets, "models": models, "accounts": accounts}


def chain_summary(studio: Studio) -> dict[str, Any]:
    from studio.chain import staking

    me = studio.wallet.active_address()
    if not me:
        return {}
    st = staking.status(studio, me)
    return {
        "claimable": staking.claimable(studio, me),
        "stake": st,
        "history": studio.chain.tx.history(None, limit=8),
    }


def next_step(s: dict[str, Any]) -> tuple[str, str, str]:
    """(text, button label, page) for a new user, in the order the flow goes."""
    if not s["accounts"]:
        return (
            "Create a wallet: it signs your contributions and receives rewards.",
            "Open Wallet",
            "wallet",
        )
    if not s["datanets"]:
        return ("Create a Datanet and add your first files.", "Open Datanets", "datanets")
    if not any(d["latest_snapshot"] for d in s["datanets"]):
        return ("Curate your records and take a snapshot.", "Open Datanets", "datanets")
    if not s["models"]:
        return ("Fine-tune a model on your snapshot.", "Open ModelFactory", "factory")
    return (
        "Ask your model a question and see who shaped the answer.",
        "Open Playground",
        "playground",
    )


class Page(BasePage):
    title = "Home"
    subtitle = "Your Datanets, models, rewards and node at a glance."

    def __init__(self, ui: Any) -> None:
        super().__init__(ui)
        g = QGridLayout()
        g.setSpacing(12)
        self.cards = {
            "datanets": Card("Datanets"),
            "models": Card("Models and jobs"),
            "rewards": Card("Rewards and stake"),
            "node": Card("Node"),
        }
        for i, c in enumerate(self.cards.values()):
            g.addWidget(c, i // 2, i % 2)
        self.activity = Card("Recent transactions")
        g.addWidget(self.activity, 2, 0, 1, 2)
        self.next = Card("Next step")
        row = QHBoxLayout()
        self.next_text = QLabel()
        self.next_text.setWordWrap(True)
        self.next_btn = button("Go", "Take the next step", self._go, primary=True)
        row.addWidget(self.next_text, 1)
        row.addWidget(self.next_btn)
        self.next.lay.removeWidget(self.next.body)
        self.next.body.hide()
        self.next.lay.addLayout(row)
        self.outer.addWidget(self.next)
        self.outer.addLayout(g)
        self.outer.addStretch(1)
        self._target = "wallet"
        ui.conn.connected.connect(self.refresh)
        ui.changed.connect(lambda _w: self.refresh())
        ui.jobs.changed.connect(lambda _m: self._show_models())
        self._local: dict[str, Any] = {}

    def screenshot_ready(self) -> bool:
        return self.cards["rewards"].body.text() not in ("…", "Waiting for the chain connection…")

    def _go(self) -> None:
        self.ui.navigate.emit(self._target)

    def refresh(self) -> None:
        op(self, lambda: local_summary(self.studio)).success(self._show_local).run_in_background()
        if self.ui.conn.state == "green":
            op(self, lambda: chain_summary(self.studio)).success(self._show_chain).failure(
                lambda e: self.cards["rewards"].set_text(html.escape(f"Not available: {e}"))
            ).run_in_background()
        else:
            self.cards["rewards"].set_text("Waiting for the chain connection…")
        node = self.ui.node
        self.cards["node"].set_text(
            "Stopped: start it on the Node page to serve your models and record attributions."
            if node is None
            else f"Running at {node.url}/v1"
            + (
                f" · verified up to block {self.ui.node_verified:,}"
                if self.ui.node_verified
                else ""
            )
        )

    def _show_local(self, s: dict[str, Any]) -> None:
        self._local = s
        dns = s["datanets"]
        if dns:
            lines = []
            for d in dns[:6]:
                c = d["records"]
                snap = d["latest_snapshot"]
                snap_txt = (
                    f"v{snap['version']} {short_hash(snap['root'])}" if snap else "no snapshot"
                )
                lines.append(
                    f"<b>{html.escape(d['name'])}</b> — {c['accepted']} accepted, {c['pending']} pending, "
                    f"{c['rejected']} rejected · {snap_txt}"
                )
            self.cards["datanets"].set_text("<br>".join(lines))
        else:
            self.cards["datanets"].set_text("No Datanets yet.")
        self._show_models()
        text, label, page = next_step(s)
        self.next_text.setText(text)
        self.next_btn.setText(label)
        self._target = page

    def _show_models(self) -> None:
        models = self._local.get("models", [])
        running = {j.model_id: j for j in self.ui.jobs.running()}
        lines = []
        for m in models[-6:]:
            j = running.get(m["id"])
            if j is not None:
                state = "stalled" if j.stalled else f"training {j.step}/{j.total or '?'}"
            else:
                state = m["status"]
            lines.append(
                f"<b>{html.escape(m['id'])}</b> — {html.escape(state)} · base {html.escape(m['base'])}"
            )
        self.cards["models"].set_text("<br>".join(lines) if lines else "No fine-tuned models yet.")

    def _show_chain(self, c: dict[str, Any]) -> None:
        if not c:
            self.cards["rewards"].set_text("No active account.")
            return
        st = c["stake"]
        stake = (
            ", ".join(
                f"{role}: {open_amount(p.get('active_wei'))}"
                for role, p in st.get("roles", {}).items()
            )
            if isinstance(st, dict) and "roles" in st
            else html.escape(str(st)[:200])
        )
        self.cards["rewards"].set_text(
            f"Claimable: <b>{open_amount(c['claimable'])}</b><br>Stake: {stake}"
        )
        rows = [
            f"{html.escape(r['status'])} · block {r.get('block_number') or '—'} · {html.escape(r['purpose'])}"
            for r in c.get("history", [])
        ]
        self.activity.set_text("<br>".join(rows) if rows else "No transactions yet.")
