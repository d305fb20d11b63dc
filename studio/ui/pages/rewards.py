"""Rewards & staking: claimable rewards, claim, stake/unstake with the cooldown shown, inferences
to finalize once their challenge window has passed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from studio.ui.format import open_amount
from studio.ui.ops import op, write_op
from studio.ui.pages import BasePage, Card, button, muted
from studio.ui.validate import amount_problem

if TYPE_CHECKING:
    from studio.app import Studio


def load(studio: Studio) -> dict[str, Any]:
    from studio.chain import staking

    me = studio.wallet.active_address()
    if not me:
        return {"account": None}
    return {
        "account": me,
        "claimable": staking.claimable(studio, me),
        "status": staking.status(studio, me),
    }


class Page(BasePage):
    title = "Rewards & staking"
    subtitle = "Contributors and nodes are paid when attributed inferences settle. Nodes and validators stake OPEN to take part."

    def __init__(self, ui: Any) -> None:
        super().__init__(ui)
        row = QHBoxLayout()
        self.claim_card = Card("Claimable rewards")
        self.claim_btn = button(
            "Claim", "Send your claimable rewards to your account", self.claim, primary=True
        )
        self.claim_card.lay.addWidget(self.claim_btn)
        row.addWidget(self.claim_card, 1)
        self.stake_card = Card("Stake")
        row.addWidget(self.stake_card, 1)
        self.outer.addLayout(row)
        box = QGroupBox("Stake or unstake")
        bl = QHBoxLayout(box)
        self.role = QComboBox()
        self.role.addItems(["node", "validator"])
        self.role.setToolTip("The role the stake is for")
        self.role.setAccessibleName("Role")
        self.amount = QLineEdit()
        self.amount.setPlaceholderText("amount in OPEN")
        self.amount.setToolTip("How much OPEN to stake")
        self.amount.setAccessibleName("Stake amount")
        bl.addWidget(self.role)
        bl.addWidget(self.amount, 1)
        bl.addWidget(button("Stake…", "Lock this much OPEN for the role", self.deposit))
        bl.addWidget(
            button(
                "Unstake / withdraw…",
                "Start the cooldown; after it, a second click pays out",
                self.withdraw,
            )
        )
        self.outer.addWidget(box)
        fin = QGroupBox("Settle an attributed inference")
        fl = QVBoxLayout(fin)
        frow = QHBoxLayout()
        self.inference = QSpinBox()
        self.inference.setRange(0, 10**9)
        self.inference.setPrefix("inference #")
        self.inference.setToolTip("The inference whose fee to split (after its challenge window)")
        self.inference.setAccessibleName("Inference id")
        frow.addWidget(self.inference)
        frow.addWidget(button("Check", "Show this inference's status on chain", self.check))
        frow.addWidget(
            button("Finalize", "Split the fee once the challenge window has passed", self.finalize)
        )
        self.skip_btn = button(
            "Skip challenge window (devnet)",
            "Move the devnet clock past the challenge window",
            self.skip_window,
        )
        frow.addWidget(self.skip_btn)
        frow.addStretch(1)
        fl.addLayout(frow)
        self.inf_info = muted("")
        fl.addWidget(self.inf_info)
        self.outer.addWidget(fin)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Role", "Active", "Pending", "Unlocks", "Minimum"])
        self.table.setAccessibleName("Stake positions")
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMaximumHeight(110)
        for col, width in enumerate((110, 160, 160, 120)):
            self.table.setColumnWidth(col, width)
        self.outer.addWidget(self.table)
        self.result = muted("")
        self.result.setAccessibleName("Result")
        self.outer.addWidget(self.result)
        self.outer.addStretch(1)
        ui.conn.connected.connect(self.refresh)
        ui.changed.connect(lambda w: self.refresh() if w in ("chain", "wallet") else None)

    def refresh(self) -> None:
        self.skip_btn.setVisible(self.studio.network_name == "devnet")
        last = self.ui.settings.value("last_inference")
        if last is not None and self.inference.value() == 0:
            self.inference.setValue(int(last))
        if self.ui.conn.state != "green":
            self.claim_card.set_text("Waiting for the chain connection…")
            self.stake_card.set_text("Waiting for the chain connection…")
            return
        op(self, lambda: load(self.studio)).success(self._show).failure(
            lambda e: self.claim_card.set_text(f"Not available: {e}")
        ).run_in_background()

    def screenshot_ready(self) -> bool:
        return "Waiting" not in self.claim_card.body.text() and self.claim_card.body.text() != "…"

    def _show(self, d: dict[str, Any]) -> None:
        if not d["account"]:
            self.claim_card.set_text("No active account: create one on the Wallet page.")
            self.stake_card.set_text("—")
            return
        self.claim_card.set_text(f"<b>{open_amount(d['claimable'])}</b> for {d['account']}")
        self.claim_btn.setEnabled(d["claimable"] > 0)
        st = d["status"]
        cd = st["cooldown_s"]
        self.stake_card.set_text(
            "<br>".join(
                f"{role}: <b>{open_amount(p['active_wei'])}</b>{' (staked)' if p['staked'] else ''}"
                for role, p in st["roles"].items()
            )
            + f"<br>cooldown before withdrawal: {cd // 3600} h {cd % 3600 // 60} min"
        )
        roles = list(st["roles"].values())
        self.table.setRowCount(len(roles))
        for i, p in enumerate(roles):
            unlock = "—"
            if p["unlock_at"]:
                left = p["unlock_at"] - st["chain_time"]
                unlock = "now" if left <= 0 else f"in {left // 60} min"
            for j, v in enumerate(
                (
                    p["role"],
                    open_amount(p["active_wei"]),
                    open_amount(p["pending_wei"]),
                    unlock,
                    open_amount(p["minimum_wei"]),
                )
            ):
                self.table.setItem(i, j, QTableWidgetItem(v))

    def _account(self, then: Any) -> None:
        self.ui.with_account(self, None, then)

    def claim(self) -> None:
        from studio.chain import staking

        self._account(
            lambda acct: (
                write_op(self, lambda: staking.claim(self.studio, acct))
                .with_progress("Claiming")
                .success(
                    lambda r: (
                        self.result.setText(
                            f"Claimed {open_amount(r['claimed_wei'])} (tx {r['tx']})"
                        ),
                        self.ui.changed.emit("chain"),
                    )
                )
                .run_in_background()
            )
        )

    def deposit(self) -> None:
        from studio.chain import staking
        from studio.chain.networks import parse_open

        text = self.amount.text().strip()
        problem = amount_problem(text) if text else "Give an amount in OPEN."
        if problem:
            self.result.setText(problem)
            return
        wei, role = parse_open(text), self.role.currentText()
        if not self.ui.confirm_tx(self, f"Stake {open_amount(wei)} as {role}.", wei):
            return
        self._account(
            lambda acct: (
                write_op(self, lambda: staking.deposit(self.studio, acct, wei, role))
                .with_progress("Staking")
                .success(
                    lambda _r: (
                        self.result.setText(f"Staked {open_amount(wei)} as {role}."),
                        self.ui.changed.emit("chain"),
                    )
                )
                .run_in_background()
            )
        )

    def withdraw(self) -> None:
        from studio.chain import staking

        role = self.role.currentText()
        if not self.ui.confirm(
            self,
            "Unstake",
            f"Request unstaking (or withdraw after the cooldown) for the {role} role?",
        ):
            return
        self._account(
            lambda acct: (
                write_op(self, lambda: staking.withdraw_or_request(self.studio, acct, role))
                .success(
                    lambda r: (
                        self.result.setText(str(r.get("message") or r)),
                        self.ui.changed.emit("chain"),
                    )
                )
                .run_in_background()
            )
        )

    def check(self) -> Any:
        from studio.chain import ledger

        iid = self.inference.value()
        return (
            op(self, lambda: ledger.inference(self.studio, iid))
            .success(self._show_inference)
            .run_in_background()
        )

    def _show_inference(self, i: dict[str, Any]) -> None:
        closes = i.get("challenge_closes_at")
        when = ""
        if closes:
            when = f"; challenge window closes {time.strftime('%Y-%m-%d %H:%M', time.localtime(closes))}"
        self.inf_info.setText(
            f"#{i['inference_id']}: {i['status']} · fee {open_amount(i['fee_wei'])} · model #{i['model_id']} · node {i['node'][:10]}…{when}"
        )

    def finalize(self) -> None:
        from studio.chain import ledger

        iid = self.inference.value()
        self._account(
            lambda acct: (
                write_op(self, lambda: ledger.finalize(self.studio, acct, iid))
                .with_progress("Finalizing")
                .success(
                    lambda r: (
                        self.result.setText(
                            f"Fee split: contributors {open_amount(r['contributors_wei'])}, node {open_amount(r['node_wei'])}, "
                            f"model owner {open_amount(r['model_owner_wei'])}, treasury {open_amount(r['treasury_wei'])}"
                        ),
                        self.ui.changed.emit("chain"),
                    )
                )
                .run_in_background()
            )
        )

    def skip_window(self) -> Any:
        def work() -> int:
            from studio.chain import contracts

            chain = self.studio.chain
            # terms() = (protocolBps, modelOwnerBps, nodeBps, challengeWindow, ...): today's
            # window; every inference keeps the terms it was paid under (the same on the devnet).
            window = int(contracts.contract(chain, "AttributionLedger").functions.terms().call()[3])
            chain.w3.provider.make_request("evm_increaseTime", [window + 1])
            chain.w3.provider.make_request("evm_mine", [])
            return window

        return (
            write_op(self, work)
            .success(lambda w: self.result.setText(f"Devnet clock moved {w + 1} s forward."))
            .run_in_background()
        )
