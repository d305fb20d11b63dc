"""Recovery from the journal: settle a sender's rows against the chain (record receipts, mark
replaced rows, re-send unsent ones, restore rows a rollback lost), abandon a signed-but-unsent
row, and replace a pending transaction with higher fees (speed up / cancel). Every re-send uses
the journaled bytes (same hash, same nonce), so none of this can pay twice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address
from web3.exceptions import Web3RPCError

from studio.core.errors import ChainError, Suggestion
from studio.core.events import Event

from .journal import OPEN_STATUSES
from .reverts import TxResult, TxReverted, decode_raw
from .reverts import to_hex as _hex

if TYPE_CHECKING:
    from .tx import TxPipeline

FEE_BUMP = 1.25  # a replacement must pay ≥ 10–12.5 % more; 25 % clears every client's rule


def rebroadcast(pipe: TxPipeline, row: dict[str, Any]) -> bool:
    """Send the journaled bytes again; True when the node took them (or already had them)."""
    try:
        pipe._broadcast(row["raw_tx"])
    except Web3RPCError as e:
        msg = str(getattr(e, "message", e)).lower()
        if "already" in msg or "known" in msg or "underpriced" in msg:
            pass  # the node has it (or a faster sibling): fine
        elif "nonce too low" in msg or "nonce" in msg:
            return False  # its nonce is taken; settle() decides mined vs replaced
        else:
            pipe._set(row["id"], status="abandoned", error=str(getattr(e, "message", e))[:500])
            return False
    if row["status"] != "sent":
        pipe._set(row["id"], status="sent")
    return True


def _report(
    pipe: TxPipeline, report: list[dict[str, Any]], row: dict[str, Any], action: str
) -> None:
    words = {
        "rebroadcast": "sent again (it was signed earlier but may never have reached the chain)",
        "restored": "sent again (the chain lost it in a rollback)",
        "mined": "found mined",
        "failed": "found mined but reverted",
        "replaced": "its nonce went to another transaction",
    }
    report.append(
        {
            "hash": row["tx_hash"],
            "nonce": row["nonce"],
            "purpose": row["purpose"],
            "action": action,
        }
    )
    pipe.events.emit(
        Event(
            "warning" if action in ("rebroadcast", "restored", "replaced") else "log",
            job="tx",
            message=f"journal: {row['purpose']} (tx {row['tx_hash']}, nonce {row['nonce']}): "
            f"{words[action]}",
            data={"hash": row["tx_hash"], "action": action},
        )
    )


def settle(pipe: TxPipeline, sender: str) -> list[dict[str, Any]]:
    """Bring the sender's journal up to date with the chain and report every row it touched:
    receipts recorded ('mined'/'failed'), rows whose nonce went elsewhere ('replaced'), open
    rows re-broadcast byte for byte ('rebroadcast'), and mined rows the chain no longer has
    (a rollback) re-broadcast ('restored'). Never a second payment: the same bytes, same nonce."""
    sender = to_checksum_address(sender)
    report: list[dict[str, Any]] = []
    chain_nonce = int(pipe.w3.eth.get_transaction_count(sender, "latest"))
    lost = [
        r
        for r in pipe.journal.pending(sender, statuses=("mined", "failed"))
        if int(r["nonce"]) >= chain_nonce and pipe._receipt(r["tx_hash"]) is None
    ]
    for row in lost:  # nonce order: the chain forgot them, so their nonces are free again
        pipe._set(row["id"], status="sent", block_number=None, gas_used=None)
        if rebroadcast(pipe, {**row, "status": "sent"}):
            _report(pipe, report, row, "restored")
    rows = pipe.pending(sender)
    if not rows:
        return report
    done_nonces: set[int] = set()
    for row in rows:
        if row["nonce"] in done_nonces:
            continue
        receipt = pipe._receipt(row["tx_hash"])
        if receipt is not None:
            try:
                pipe._finish(row, receipt)
                _report(pipe, report, row, "mined")
            except TxReverted:
                _report(pipe, report, row, "failed")
            done_nonces.add(row["nonce"])
    for row in pipe.pending(sender):
        if row["nonce"] < chain_nonce:
            if pipe._known_mined(row["tx_hash"]):
                continue  # mined, its receipt not served yet (a lagging node): wait() records it
            # Its nonce was used by a transaction that none of our rows for it produced.
            pipe._set(row["id"], status="replaced", error="nonce used by another transaction")
            _report(pipe, report, row, "replaced")
        elif row["status"] == "signed" or not pipe._known(row["tx_hash"]):
            if rebroadcast(pipe, row):
                _report(pipe, report, row, "rebroadcast")
        # else: 'sent' and in the node's pool: nothing to do
    return report


def abandon(pipe: TxPipeline, tx_hash: str) -> dict[str, Any]:
    """Drop a signed-but-unsent journal row so it is never sent. Only safe while no node has
    it: a row a node already knows must be cancelled instead (`speed_up(cancel=True)`)."""
    row = pipe._row(tx_hash)
    if row is None:
        raise ChainError(f"The transaction {tx_hash} is not in this studio's journal.")
    if row["status"] != "signed":
        raise ChainError(
            f"{tx_hash} is {row['status']}, not signed-but-unsent; only those can be abandoned.",
            hint="Replace a pending one with a 0-OPEN transfer to yourself instead.",
            suggest=Suggestion("wallet speed-up", {"tx_hash": tx_hash, "cancel_tx": True}),
        )
    with pipe._nonce_lock(row["sender"]):
        if pipe._known(row["tx_hash"]):
            pipe._set(row["id"], status="sent")
            raise ChainError(
                f"The node already has {tx_hash}; it can no longer be abandoned.",
                hint="Cancel it instead: replace it with a 0-OPEN transfer to yourself.",
                suggest=Suggestion("wallet speed-up", {"tx_hash": tx_hash, "cancel_tx": True}),
            )
        pipe._set(row["id"], status="abandoned", error="abandoned by the user before sending")
        # Later rows of this sender were signed with the nonces after it: they would wait for
        # it forever, so they go too (nothing of them reached a node either).
        later = [
            r
            for r in pipe.unsent(row["sender"])
            if int(r["nonce"]) > int(row["nonce"]) and not pipe._known(r["tx_hash"])
        ]
        for r in later:
            pipe._set(r["id"], status="abandoned", error=f"abandoned with {tx_hash}")
    return {"abandoned": [row["tx_hash"], *(r["tx_hash"] for r in later)]}


def speed_up(
    pipe: TxPipeline,
    tx_hash: str,
    *,
    account: Any,
    bump: float = FEE_BUMP,
    cancel: bool = False,
    timeout: float = 120,
) -> TxResult:
    """Re-sign a pending transaction with the same nonce and higher fees (or, with `cancel`, a
    0-value transfer to oneself) and wait for whichever of them is mined."""
    row = pipe._row(tx_hash)
    if row is None:
        raise ChainError(f"The transaction {tx_hash} is not in this studio's journal.")
    sender = row["sender"]
    if to_checksum_address(account.address) != sender:
        raise ChainError(f"{tx_hash} was sent by {sender}; unlock that account to replace it.")
    with pipe._nonce_lock(sender):
        pipe._check_chain()
        settle(pipe, sender)
        row = pipe._row(tx_hash)
        assert row is not None
        if row["status"] not in OPEN_STATUSES:
            return pipe.wait(tx_hash, timeout=0)
        latest = pipe.journal.latest_open(sender, int(row["nonce"]))
        assert latest is not None
        max_fee, prio = pipe._fees()
        new_prio = max(prio, int(int(latest["max_priority_fee_per_gas"]) * bump) + 1)
        new_max = max(max_fee, int(int(latest["max_fee_per_gas"]) * bump) + 1, new_prio)
        original = decode_raw(latest["raw_tx"])
        body: dict[str, Any] = {
            "type": 2,
            "chainId": pipe.chain_id,
            "nonce": int(row["nonce"]),
            "maxFeePerGas": new_max,
            "maxPriorityFeePerGas": new_prio,
        }
        if cancel:
            body.update(to=sender, value=0, data="0x", gas=21000)
            purpose = f"cancel: {row['purpose']}"
        else:
            body.update(
                value=int(latest["value"]),
                data=_hex(original["data"]),
                gas=int(latest["gas_limit"]),
            )
            if latest["to_address"]:
                body["to"] = latest["to_address"]
            purpose = row["purpose"]
        new_id = pipe._journal(account, body, sender, purpose, row["idem_key"], replaces=row["id"])
        new_row = pipe.journal.get(new_id)
        assert new_row is not None
        pipe._send_row(new_row, purpose)
    return pipe.wait(new_row["tx_hash"], timeout=timeout)
