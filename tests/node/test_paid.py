"""Paid inference end to end on a real anvil: pay on chain, call the node with the official client
and the inference id, the node verifies the payment, serves, signs and records the attribution
exactly once; bad inference ids are refused with the right status and change nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from studio.chain import ledger
from studio.chain.devnet import dev_account
from studio.node.config import NodeConfig
from studio.node.service import Node

SAMPLE = {"temperature": 0.8, "seed": 3}


def _onchain_id(studio: Any, mid: str) -> int:
    row = studio.store.one("SELECT onchain_id FROM onchain_models WHERE model_id = ?", (mid,))
    return int(row["onchain_id"])


def _wait_recorded(studio: Any, iid: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = studio.store.one("SELECT * FROM node_served WHERE inference_id = ?", (iid,))
        if row and row["status"] in ("recorded", "failed"):
            return dict(row)
        time.sleep(0.1)
    raise AssertionError("the attribution was never recorded")


@pytest.fixture
def node(paid_studio: Any) -> Iterator[Node]:
    cfg = NodeConfig(
        api="127.0.0.1:0",
        password_file=paid_studio.node_password_file,
        poll_s=0.1,
        payment_wait_s=1.0,
    )
    n = Node(paid_studio, cfg).start()
    try:
        yield n
    finally:
        n.stop()


def test_paid_request_served_signed_and_recorded_once(node: Node, paid_studio: Any) -> None:
    s = paid_studio
    payer = dev_account(6)
    paid = ledger.pay_for_inference(s, payer, _onchain_id(s, "notes-a"), node=node.address)
    iid = paid["inference_id"]
    c = openai.OpenAI(base_url=node.url + "/v1", api_key="x", max_retries=0)
    chat = c.chat.completions.create(
        model="notes-a",
        messages=[{"role": "user", "content": "The lighthouse keeper"}],
        max_tokens=8,
        extra_body={"inference_id": iid, **SAMPLE},
    )
    att = chat.model_extra["attribution"]
    assert att["inference_id"] == iid and att["signer"] == node.address
    row = _wait_recorded(s, iid)
    assert row["status"] == "recorded" and row["report_hash"] == att["report_hash"]
    onchain = ledger.inference(s, iid)
    assert onchain["status"] == "recorded" and onchain["node"] == node.address
    assert onchain["report_hash"] == att["report_hash"]
    from studio.chain import contracts

    led = contracts.contract(s.chain, "AttributionLedger")
    cs, bps = led.functions.getAttribution(iid).call()
    assert sorted(zip(cs, bps, strict=True)) == sorted(
        (w["contributor"], w["bps"]) for w in att["weights"]
    )
    # A replay of the same inference id is refused, and nothing is recorded twice.
    with pytest.raises(openai.ConflictError) as ei:
        c.completions.create(
            model="notes-a", prompt="again", max_tokens=4, extra_body={"inference_id": iid}
        )
    assert ei.value.code == "already_served"
    key = f"attribution-record:{s.chain.chain_id}:{led.address}:{iid}"
    assert s.store.one("SELECT COUNT(*) AS n FROM chain_tx WHERE idem_key = ?", (key,))["n"] == 1
    # Another staked node (its own process and journal) trying to record it is refused on chain.
    from chain_kit import expect_revert

    w3 = s.chain.w3
    other = dev_account(7).address
    st_c = contracts.contract(s.chain, "Staking")
    h = st_c.functions.stake(1).transact({"from": other, "value": 1_000 * 10**18})
    w3.eth.wait_for_transaction_receipt(h)
    expect_revert(
        led,
        led.functions.recordAttribution(iid, b"\x99" * 32, [other], [10_000]),
        "WrongStatus",
        sender=other,
    )
    st = node.status()
    assert st["paid_inferences"] == {"recorded": 1} and st["sync"]["verified_to"] > 0


def test_unpaid_foreign_and_malformed_inference_ids(node: Node, paid_studio: Any) -> None:
    s = paid_studio
    c = openai.OpenAI(base_url=node.url + "/v1", api_key="x", max_retries=0)

    def ask(**extra: Any) -> Any:
        return c.completions.create(model="notes-a", prompt="x", max_tokens=4, extra_body=extra)

    with pytest.raises(openai.APIStatusError) as ei:
        ask()  # no inference id on a paid node
    assert ei.value.status_code == 402
    with pytest.raises(openai.APIStatusError) as ei:
        ask(inference_id=999)  # never paid
    assert ei.value.status_code == 402 and ei.value.code == "payment_required"
    other_model = ledger.pay_for_inference(
        s, dev_account(6), _onchain_id(s, "notes-b"), node=node.address
    )
    with pytest.raises(openai.PermissionDeniedError) as ei:
        ask(inference_id=other_model["inference_id"])
    assert ei.value.code == "wrong_model"
    with pytest.raises(openai.BadRequestError):
        ask(inference_id="abc")
    assert s.store.one("SELECT COUNT(*) AS n FROM node_served")["n"] == 0
    assert s.store.one("SELECT COUNT(*) AS n FROM node_reports")["n"] == 0
    # The refused payment is still servable by the right model.
    ok = c.completions.create(
        model="notes-b",
        prompt="x",
        max_tokens=4,
        extra_body={"inference_id": other_model["inference_id"], **SAMPLE},
    )
    assert ok.model_extra["attribution"]["inference_id"] == other_model["inference_id"]
