"""New heads by subscription on a real anvil (`eth_subscribe newHeads` over its websocket): the
follower follows pushed heads (each verified like a polled one), falls back to polling when the
websocket is cut or absent and subscribes again later, and still rolls a reorg back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from node_kit import LyingProxy, SocketProxy, follower_for, traffic, wait_until


@contextmanager
def running(f: Any) -> Iterator[threading.Event]:
    stop = threading.Event()
    th = threading.Thread(target=f.run, args=(stop,), daemon=True)
    th.start()
    try:
        yield stop
    finally:
        stop.set()
        th.join(30)
        assert not th.is_alive(), "the follower stops when asked"


def _synced(f: Any, anvil: Any) -> bool:
    return bool(f.status()["verified_to"] == anvil.w3.eth.block_number)


def test_subscription_follows_new_blocks_and_rolls_back_a_reorg(
    chain_studio: Any, anvil: Any
) -> None:
    dep = chain_studio.chain.deployment()
    # Polling and the quiet-subscription check would take an hour: only pushed heads move it.
    f = follower_for(chain_studio, poll_s=3600, heartbeat_s=3600)
    with running(f):
        wait_until(lambda: f.status()["mode"] == "subscription", "the subscription")
        wait_until(lambda: _synced(f, anvil), "the first catch-up")
        t = traffic(anvil, dep)
        wait_until(lambda: _synced(f, anvil), "the new blocks, pushed")
        st = f.status()
        assert st["heads_received"] >= 5 and st["subscription"]["url"].startswith("ws://")
        assert st["verified_hash"] == anvil.w3.eth.get_block("latest")["hash"].to_0x_hex()
        assert f.index.inference(t["inference"])["status"] == "recorded"
        # A reorg replaces the blocks holding the payment; the next pushed head is on the new
        # branch, so its parent is not our tip: the follower finds the ancestor and rolls back.
        depth = anvil.w3.eth.block_number - t["pay_block"] + 1
        anvil.rpc("anvil_reorg", depth, [])
        anvil.rpc("evm_mine")
        wait_until(lambda: f.status()["reorgs"] == 1 and _synced(f, anvil), "the rollback")
        st = f.status()
        assert st["last_reorg"]["ancestor"] == t["pay_block"] - 1
        assert st["verified_hash"] == anvil.w3.eth.get_block("latest")["hash"].to_0x_hex()
        assert f.index.inference(t["inference"]) is None, "the orphaned payment is gone"
        assert st["mode"] == "subscription" and st["lies"] == 0


def test_a_cut_websocket_falls_back_to_polling_then_subscribes_again(
    chain_studio: Any, anvil: Any
) -> None:
    proxy = SocketProxy(anvil.port)
    try:
        f = follower_for(chain_studio, url=proxy.url, poll_s=0.05, ws_retry_s=0.3, max_backoff_s=1)
        with running(f):
            wait_until(lambda: f.status()["mode"] == "subscription", "the subscription")
            assert proxy.ws_upgrades == 1
            proxy.cut_ws()
            wait_until(lambda: f.status()["mode"] == "polling", "the fallback to polling")
            sub = f.status()["subscription"]
            assert sub["error"] and "retrying the subscription in" in sub["state"]
            for _ in range(3):
                anvil.rpc("evm_mine")
            wait_until(lambda: _synced(f, anvil), "new blocks, polled")
            proxy.allow_ws()
            wait_until(lambda: f.status()["mode"] == "subscription", "subscribing again")
            assert proxy.ws_upgrades >= 2
            anvil.rpc("evm_mine")
            wait_until(lambda: _synced(f, anvil), "new blocks, pushed again")
    finally:
        proxy.close()


def test_an_rpc_without_websocket_is_polled(chain_studio: Any, anvil: Any) -> None:
    proxy = LyingProxy(anvil.url)  # plain HTTP: the websocket handshake is refused
    try:
        f = follower_for(chain_studio, url=proxy.url, poll_s=0.05, ws_retry_s=60)
        with running(f):
            wait_until(lambda: f.status()["subscription"], "the subscription attempt")
            st = f.status()
            assert st["mode"] == "polling" and "unavailable" in st["subscription"]["state"]
            anvil.rpc("evm_mine")
            wait_until(lambda: _synced(f, anvil), "new blocks, polled")
    finally:
        proxy.close()


def test_a_pushed_header_that_lies_is_refused(chain_studio: Any, anvil: Any) -> None:
    from functools import partial

    f = follower_for(chain_studio)
    f.sync()
    anvil.rpc("evm_mine")
    raw = f.rpc.header(anvil.w3.eth.block_number)
    lie = {**raw, "stateRoot": "0x" + "66" * 32}  # the right parent and number, a forged state
    assert f.attempt(partial(f.handle_head, lie)) > 0
    st = f.status()
    assert st["lies"] == 1 and st["last_lie"]["field"] == "hash"
    assert st["verified_to"] == anvil.w3.eth.block_number - 1, "nothing it said is indexed"
    assert f.attempt(partial(f.handle_head, raw)) == 0
    assert f.status()["verified_hash"] == raw["hash"]
