"""Cancelling `datanet publish` on a real anvil. Before the first transaction is sent a cancel leaves
the store (the journal included) and the chain exactly as they were, at every check in turn; once
one is sent the publish stops at the next transaction boundary, says the transactions cannot be
undone, and publishing again finishes without sending anything twice."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from chain_kit import Anvil
from test_publish import _attach, _make_datanet, _write

from studio.chain import contracts, datanets_onchain
from studio.chain.devnet import dev_account
from studio.core.cancel import CancelToken
from studio.core.errors import Cancelled

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cancelkit import cancel_everywhere, store_picture  # noqa: E402

SIGNERS = {dev_account(i).address: dev_account(i) for i in (1, 2, 3)}


def _chain_picture(anvil: Anvil, client: Any) -> tuple[int, int, int]:
    """Block height, the publisher's nonce and the registry's Datanet count."""
    reg = contracts.contract(client, "DatanetRegistry")
    return (
        int(anvil.w3.eth.block_number),
        int(anvil.w3.eth.get_transaction_count(dev_account(0).address)),
        int(reg.functions.datanetCount().call()),
    )


def _journal(studio: Any) -> list[dict[str, Any]]:
    return studio.store.query("SELECT * FROM chain_tx ORDER BY id")


def test_cancel_before_the_first_send_changes_nothing(
    studio: Any, anvil: Anvil, tmp_path: Path
) -> None:
    client = _attach(studio, anvil)
    _make_datanet(studio, tmp_path)

    def pictures() -> Any:
        return store_picture(studio.paths.db), _chain_picture(anvil, client)

    def publish(token: CancelToken) -> Any:
        return datanets_onchain.publish(
            studio, dev_account(0), "field-notes", signers=SIGNERS, cancel=token
        )

    before_txs = len(_journal(studio))
    # A new Datanet: the create transaction is the first one; its checks come before signing.
    checks = cancel_everywhere(publish, pictures, at_least=2)
    assert checks >= 2
    assert len(_journal(studio)) == before_txs + 2  # the full run: create + publish, once each

    # A second version of a Datanet already on chain: the first send is the snapshot's, after
    # every contributor batch is signed and checked, so there are many more checks to cancel at.
    for i in (1, 2):
        studio.datanets.add_files(
            "field-notes", [_write(tmp_path, i, 3, tag="v2")], contributor=dev_account(i).address
        )
    studio.datanets.curate("field-notes", accept_all=True, min_score=0.0)
    studio.datanets.snapshot("field-notes")
    checks = cancel_everywhere(publish, pictures, at_least=5)
    assert checks >= 5
    reg = contracts.contract(client, "DatanetRegistry")
    did = datanets_onchain.onchain_id(studio, "field-notes")
    assert did is not None and reg.functions.getSnapshot(did, 2).call()[2] > 0


def test_cancel_after_the_first_send_stops_and_a_rerun_finishes_once(
    studio: Any, anvil: Anvil, tmp_path: Path
) -> None:
    client = _attach(studio, anvil)
    _make_datanet(studio, tmp_path)
    deployed = len(_journal(studio))  # the contracts' deployment, sent by this studio too
    token = CancelToken()

    def cancel_once_sent(ev: Any) -> None:
        if ev.kind == "tx.sent":  # the user presses cancel while the first one is in flight
            token.cancel()

    unsubscribe = studio.events.subscribe(cancel_once_sent)
    try:
        with pytest.raises(Cancelled) as info:
            datanets_onchain.publish(
                studio, dev_account(0), "field-notes", signers=SIGNERS, cancel=token
            )
    finally:
        unsubscribe()
    err = info.value
    assert "cannot be undone" in err.message and "stopped after 1 transaction" in err.message
    assert err.suggest is not None and err.suggest.path == "datanet publish"
    (create,) = _journal(studio)[deployed:]  # the create: sent, mined and journaled; nothing else
    assert create["status"] == "mined" and "create Datanet" in create["purpose"]
    reg = contracts.contract(client, "DatanetRegistry")
    did = datanets_onchain.onchain_id(studio, "field-notes")
    assert did is not None and int(reg.functions.getDatanet(did).call()[3]) == 0  # no snapshot yet
    assert studio.store.query("SELECT * FROM onchain_snapshots") == []

    res = datanets_onchain.publish(studio, dev_account(0), "field-notes", signers=SIGNERS)
    assert not res["created"] and res["published"] and res["onchain_id"] == did
    assert res["bound"] == {dev_account(i).address: 4 for i in (1, 2, 3)}
    rows = _journal(studio)[deployed:]
    assert len(rows) == 2 and rows[0]["tx_hash"] == create["tx_hash"]  # the create not sent again
    assert [r["nonce"] for r in rows] == [create["nonce"], create["nonce"] + 1]
    assert {r["status"] for r in rows} == {"mined"}
    again = datanets_onchain.publish(studio, dev_account(0), "field-notes", signers=SIGNERS)
    assert not again["changed"] and len(_journal(studio)) == deployed + 2
    assert studio.datanets.get("field-notes")["owner"] == dev_account(0).address
