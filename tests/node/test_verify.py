"""The light client's checks on real anvil data: header hashes, receipt tries, state proofs, and
each one failing when a single field is altered."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import rlp
from eth_hash.auto import keccak
from node_kit import contract, traffic

from studio.node import verify as V
from studio.node.rpc import RawRpc


def _rpc(anvil: Any) -> RawRpc:
    return RawRpc(anvil.url)


def test_header_hash_recomputed_for_every_block(chain_studio: Any, anvil: Any) -> None:
    traffic(anvil, chain_studio.chain.deployment())
    rpc = _rpc(anvil)
    parent = None
    for n in range(rpc.block_number() + 1):
        h = V.verify_header(rpc.header(n), number=n, parent_hash=parent)
        parent = h.hash
    assert parent == rpc.header("latest")["hash"]


@pytest.mark.parametrize(
    "field", ["stateRoot", "receiptsRoot", "timestamp", "gasUsed", "requestsHash", "parentHash"]
)
def test_an_altered_header_field_is_caught(chain_studio: Any, anvil: Any, field: str) -> None:
    rpc = _rpc(anvil)
    raw = rpc.header("latest")
    bad = copy.deepcopy(raw)
    if field in ("timestamp", "gasUsed"):
        bad[field] = hex(int(bad[field], 16) + 1)
    else:
        bad[field] = "0x" + "ee" * 32
    with pytest.raises(V.VerificationError, match="altered") as ei:
        V.verify_header(bad)
    assert ei.value.field == "hash"
    # Dropping a trailing fork field changes the hash too; dropping a middle one is refused.
    short = {k: v for k, v in raw.items() if k != "requestsHash"}
    with pytest.raises(V.VerificationError):
        V.verify_header(short)
    gap = {k: v for k, v in raw.items() if k != "withdrawalsRoot"}
    with pytest.raises(V.VerificationError, match="not a header of any known fork"):
        V.verify_header(gap)


def test_checkpoint_and_parent_link(chain_studio: Any, anvil: Any) -> None:
    rpc = _rpc(anvil)
    g = rpc.header(0)
    V.verify_header(g, number=0, expected_hash=g["hash"])
    with pytest.raises(V.VerificationError, match="checkpoint"):
        V.verify_header(g, number=0, expected_hash="0x" + "00" * 32)
    with pytest.raises(V.VerificationError, match="names parent"):
        V.verify_header(rpc.header(1), number=1, parent_hash="0x" + "12" * 32)
    with pytest.raises(V.VerificationError, match="Asked for block 2"):
        V.verify_header(rpc.header(1), number=2)


def test_receipts_rebuild_the_receipts_root(chain_studio: Any, anvil: Any) -> None:
    t = traffic(anvil, chain_studio.chain.deployment())
    rpc = _rpc(anvil)
    n = t["pay_block"]
    h = V.verify_header(rpc.header(n), number=n)
    rc = rpc.receipts(n)
    assert rc and rc[0]["logs"], "the payment block has the InferencePaid log"
    V.verify_receipts(h, rc)
    bad = copy.deepcopy(rc)
    bad[0]["logs"][0]["data"] = "0x" + "00" * 31 + "01"  # a smaller fee
    with pytest.raises(V.VerificationError, match="receiptsRoot"):
        V.verify_receipts(h, bad)
    with pytest.raises(V.VerificationError):
        V.verify_receipts(h, [])  # a dropped receipt


def test_deposit_receipt_type_0x7e() -> None:
    """OP-Stack deposit receipts: type byte 0x7e, then depositNonce and depositReceiptVersion."""
    bloom = "0x" + "00" * 256
    log = {"address": "0x" + "42" * 20, "topics": ["0x" + "01" * 32], "data": "0x"}
    deposit = {
        "type": "0x7e",
        "status": "0x1",
        "cumulativeGasUsed": "0xb6d7",
        "logsBloom": bloom,
        "logs": [log],
        "transactionIndex": "0x0",
        "depositNonce": "0x2a",
        "depositReceiptVersion": "0x1",
    }
    user = {
        "type": "0x2",
        "status": "0x1",
        "cumulativeGasUsed": "0x10000",
        "logsBloom": bloom,
        "logs": [],
        "transactionIndex": "0x1",
    }
    enc = V.encode_receipt(deposit)
    items = [
        1,
        0xB6D7,
        bytes(256),
        [[bytes.fromhex("42" * 20), [bytes.fromhex("01" * 32)], b""]],
        42,
        1,
    ]
    assert enc == b"\x7e" + rlp.encode(items)
    root = V.receipts_root([deposit, user])
    header = V.Header(1, "0x" + "aa" * 32, "0x" + "bb" * 32, "0x", "0x" + root.hex(), 0)
    V.verify_receipts(header, [deposit, user])
    # Pre-Canyon deposit receipts carry the nonce only; a changed nonce breaks the root.
    pre = {k: v for k, v in deposit.items() if k != "depositReceiptVersion"}
    assert V.encode_receipt(pre) == b"\x7e" + rlp.encode(items[:5])
    lied = {**deposit, "depositNonce": "0x2b"}
    with pytest.raises(V.VerificationError, match="receiptsRoot"):
        V.verify_receipts(header, [lied, user])


def test_state_proofs_for_stake_and_absence(chain_studio: Any, anvil: Any) -> None:
    from studio.node import chainstate

    dep = chain_studio.chain.deployment()
    t = traffic(anvil, dep)
    rpc = _rpc(anvil)
    n = rpc.block_number()
    h = V.verify_header(rpc.header(n), number=n)
    node = anvil.accounts[5]
    st = contract(anvil, dep, "Staking")
    active = chainstate.proven_stake(rpc, h, dep["contracts"]["Staking"], node, role=1)
    assert active == st.functions.positionOf(node, 1).call()[0] == 1_000 * 10**18
    # Absent: an account never staked, and an address with no account at all.
    assert (
        chainstate.proven_stake(rpc, h, dep["contracts"]["Staking"], anvil.accounts[9], role=1) == 0
    )
    nobody = "0x" + "12" * 20
    acct = V.verify_account_proof(h, nobody, rpc.proof(nobody, [V.slot_key(0)], n), [0])
    assert not acct.exists and acct.storage == {V.slot_key(0): 0}
    inf = chainstate.proven_inference(rpc, h, dep["contracts"]["AttributionLedger"], t["inference"])
    led = contract(anvil, dep, "AttributionLedger")
    onchain = led.functions.getInference(t["inference"]).call()
    assert inf["payer"] == onchain[0] and inf["fee_wei"] == onchain[5]
    assert inf["status"] == "recorded" and inf["node"] == node
    # A proof against another state root, and a claimed value the proof does not back, are caught.
    slot = V.slot_key(chainstate.stake_slot(node, 1))
    proof = rpc.proof(dep["contracts"]["Staking"], [slot], n)
    other = V.Header(n, h.hash, h.parent_hash, "0x" + keccak(b"x").hex(), h.receipts_root, 0)
    with pytest.raises(V.VerificationError, match="proof"):
        V.verify_account_proof(other, dep["contracts"]["Staking"], proof, [slot])
    proof["storageProof"][0]["value"] = hex(5)
    with pytest.raises(V.VerificationError, match="the proof says"):
        V.verify_account_proof(h, dep["contracts"]["Staking"], proof, [slot])
