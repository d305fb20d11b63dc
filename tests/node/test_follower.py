"""The follower on a real anvil: verified sync into the store, resume without duplicates, reorgs
rolled back and replayed, outages retried with backoff, and a lying RPC caught and named."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from node_kit import LyingProxy, follower_for, traffic

from studio.node.rpc import RpcUnavailable
from studio.node.verify import VerificationError


def _counts(studio: Any) -> dict[str, int]:
    return {
        t: int(studio.store.one(f"SELECT COUNT(*) AS n FROM {t}")["n"])
        for t in ("node_blocks", "node_events", "node_inferences", "node_models", "node_stakes")
    }


def test_sync_indexes_verified_events_and_resumes(chain_studio: Any, anvil: Any) -> None:
    dep = chain_studio.chain.deployment()
    t = traffic(anvil, dep)
    f = follower_for(chain_studio, batch=7)
    st = f.sync()
    head = anvil.w3.eth.block_number
    assert st["verified_to"] == head and st["lag"] == 0
    assert st["verified_hash"] == anvil.w3.eth.get_block(head)["hash"].to_0x_hex()
    inf = f.index.inference(t["inference"])
    assert inf["status"] == "recorded" and inf["node"] == anvil.accounts[5]
    assert inf["fee_wei"] == str(10**18) and inf["report_hash"] == "0x" + "44" * 32
    names = {e["event"] for e in f.index.events()}
    assert {"DatanetCreated", "SnapshotPublished", "ModelRegistered", "Staked"} <= names
    assert {"InferencePaid", "AttributionRecorded"} <= names
    before = _counts(chain_studio)
    # A restart (a new follower on the same store) resumes after the last verified block.
    t2 = traffic(anvil, dep)
    f2 = follower_for(chain_studio)
    f2.sync()
    after = _counts(chain_studio)
    assert after["node_blocks"] == anvil.w3.eth.block_number + 1
    assert after["node_inferences"] == before["node_inferences"] + 1
    assert f2.status()["blocks_verified"] == anvil.w3.eth.block_number - head
    assert f2.index.inference(t2["inference"])["status"] == "recorded"
    # Nothing indexed twice: one row per (block, log index).
    dup = chain_studio.store.one(
        "SELECT COUNT(*) AS n FROM (SELECT block_number, log_index FROM node_events"
        " GROUP BY block_number, log_index HAVING COUNT(*) > 1)"
    )
    assert dup["n"] == 0


def test_reorg_rolls_back_to_the_common_ancestor(chain_studio: Any, anvil: Any) -> None:
    dep = chain_studio.chain.deployment()
    f = follower_for(chain_studio)
    traffic(anvil, dep)
    f.sync()
    t = traffic(anvil, dep)  # inference #2, in the last few blocks
    f.sync()
    assert f.index.inference(t["inference"])["status"] == "recorded"
    head = anvil.w3.eth.block_number
    depth = head - t["pay_block"] + 1
    anvil.rpc("anvil_reorg", depth, [])  # replaces the blocks holding the second payment
    f.sync()
    st = f.status()
    assert st["reorgs"] == 1 and st["last_reorg"]["ancestor"] == t["pay_block"] - 1
    assert f.index.inference(t["inference"]) is None, "the orphaned payment is gone"
    assert f.index.inference(1)["status"] == "recorded", "the one below the fork is kept"
    assert st["verified_hash"] == anvil.w3.eth.get_block("latest")["hash"].to_0x_hex()


def test_snapshot_revert_then_a_different_branch(chain_studio: Any, anvil: Any) -> None:
    dep = chain_studio.chain.deployment()
    f = follower_for(chain_studio)
    f.sync()
    snap = anvil.rpc("evm_snapshot")
    base = anvil.w3.eth.block_number
    traffic(anvil, dep)
    f.sync()
    assert f.index.inference(1) is not None
    anvil.rpc("evm_revert", snap)
    for _ in range(12):  # a longer branch without the payment
        anvil.rpc("evm_mine")
    f.sync()
    assert f.index.inference(1) is None
    assert f.status()["last_reorg"]["ancestor"] == base
    assert _counts(chain_studio)["node_blocks"] == anvil.w3.eth.block_number + 1


def test_outage_backs_off_and_recovers(chain_studio: Any, anvil: Any) -> None:
    proxy = LyingProxy(anvil.url)
    try:
        f = follower_for(chain_studio, url=proxy.url, poll_s=0.05, max_backoff_s=0.2)
        f.sync()
        proxy.down = True
        with pytest.raises(RpcUnavailable):
            f.step()
        stop = threading.Event()
        seen: list[str] = []

        def watch() -> None:
            while not stop.is_set():
                seen.append(str(f.status()["state"]))
                stop.wait(0.02)

        th = threading.Thread(target=f.run, args=(stop,))
        w = threading.Thread(target=watch)
        th.start()
        w.start()
        while not any(s.startswith("retrying in") for s in seen):
            stop.wait(0.02)
        assert f.status()["last_error"]
        proxy.down = False
        anvil.rpc("evm_mine")
        want = anvil.w3.eth.block_number
        while f.status()["verified_to"] != want:
            stop.wait(0.02)
        stop.set()
        th.join()
        w.join()
        assert f.status()["state"] == "stopped"
    finally:
        proxy.close()


def test_a_lying_rpc_is_caught_and_named(chain_studio: Any, anvil: Any) -> None:
    dep = chain_studio.chain.deployment()
    proxy = LyingProxy(anvil.url)
    try:
        f = follower_for(chain_studio, url=proxy.url, poll_s=0.05, max_backoff_s=0.1)
        f.sync()
        good_to = f.status()["verified_to"]
        t = traffic(anvil, dep)

        def lie_about_fee(method: str, params: list[Any], result: Any) -> Any:
            if method == "eth_getBlockReceipts" and int(params[0], 16) == t["pay_block"]:
                for r in result:
                    for lg in r["logs"]:
                        lg["data"] = "0x" + f"{10**21:064x}"  # claims a 1000 OPEN fee
            return result

        proxy.tamper = lie_about_fee
        with pytest.raises(VerificationError, match="receiptsRoot") as ei:
            f.sync()
        assert ei.value.block == t["pay_block"]
        assert f.status()["verified_to"] == good_to, "nothing from the lying batch is indexed"
        assert f.index.inference(t["inference"]) is None

        def lie_about_header(method: str, params: list[Any], result: Any) -> Any:
            if method == "eth_getBlockByNumber" and result:
                result["stateRoot"] = "0x" + "66" * 32
            return result

        proxy.tamper = lie_about_header
        stop = threading.Event()
        th = threading.Thread(target=f.run, args=(stop,))
        th.start()
        while not f.status()["lies"]:
            stop.wait(0.02)
        stop.set()
        th.join()
        st = f.status()
        assert st["last_lie"]["rpc"] == proxy.url and st["last_lie"]["field"] == "hash"
        assert "lied" in st["last_error"]
        proxy.tamper = None
        f.sync()
        assert f.index.inference(t["inference"])["fee_wei"] == str(10**18)
    finally:
        proxy.close()
