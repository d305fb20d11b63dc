"""Helpers for node tests: a JSON-RPC proxy in front of anvil that can lie (alter a field of an
answer) or go down, and a Follower wired to a Studio's deployment."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

Tamper = Callable[[str, list[Any], Any], Any]


class LyingProxy:
    """Forwards JSON-RPC to `upstream`; `tamper(method, params, result)` may rewrite a result;
    `down = True` answers 503 (an outage)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.tamper: Tamper | None = None
        self.down = False
        self.calls: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if proxy.down:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                req = json.loads(body)
                resp = requests.post(proxy.upstream, json=req, timeout=30).json()
                reqs = req if isinstance(req, list) else [req]
                resps = resp if isinstance(resp, list) else [resp]
                by_id = {r.get("id"): r for r in resps}
                for q in reqs:
                    proxy.calls.append(q["method"])
                    r = by_id.get(q.get("id"))
                    if r is not None and "result" in r and proxy.tamper is not None:
                        r["result"] = proxy.tamper(q["method"], q.get("params", []), r["result"])
                out = json.dumps(resp).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def follower_for(studio: Any, url: str | None = None, **kw: Any) -> Any:
    from studio.node.follower import Follower, FollowerConfig

    dep = studio.chain.deployment()
    cfg = FollowerConfig(
        rpc_url=url or str(studio.chain.network.rpc_url),
        chain_id=int(studio.chain.chain_id),
        contracts=dict(dep["contracts"]),
        **kw,
    )
    return Follower(studio.store, cfg)


OPEN = 10**18


def contract(anvil: Any, dep: dict[str, Any], name: str) -> Any:
    from studio.chain.contracts import abi

    return anvil.w3.eth.contract(address=dep["contracts"][name], abi=abi(name))


def traffic(anvil: Any, dep: dict[str, Any], *, node: int = 5, payer: int = 6) -> dict[str, Any]:
    """Registry and ledger events by plain web3 with anvil's unlocked dev accounts: a Datanet with a
    snapshot, a model on it, a staked node, a paid inference and its recorded attribution."""
    dn = contract(anvil, dep, "DatanetRegistry")
    mr = contract(anvil, dep, "ModelRegistry")
    st = contract(anvil, dep, "Staking")
    led = contract(anvil, dep, "AttributionLedger")
    a = anvil.accounts
    did = (
        int(dn.functions.datanetCount().call()) + 1 if hasattr(dn.functions, "datanetCount") else 1
    )
    anvil.send(dn.functions.createDatanet(b"\x01" * 32, "ipfs://notes"), sender=1)
    # A real snapshot tree in which account 2 binds its record (only payees may be named).
    import hashlib

    from studio.chain.contributions import KeySigner, license_hash, sign_batch
    from studio.core import merkle

    rows = [(hashlib.sha256(f"rec {i}".encode()).hexdigest(), a[1 + i % 2]) for i in range(3)]
    leaves = [merkle.leaf_hash(c, w, "CC-BY-4.0") for c, w in rows]
    batch = sign_batch(
        KeySigner(anvil.keys[2]),
        chain_id=anvil.chain_id,
        registry=dn.address,
        datanet_id=did,
        version=1,
        license_hash=license_hash("CC-BY-4.0"),
        content_hashes=[bytes.fromhex(rows[1][0])],
        deadline=2**40,
    ).with_proof(leaves, [1])
    anvil.send(
        dn.functions.publishSnapshot(
            did, 1, merkle.merkle_root(leaves), 3, b"\x03" * 32, [batch.as_tuple()]
        ),
        sender=1,
        value=int(dn.functions.publishFee().call()),
    )
    anvil.send(
        mr.functions.registerModel(b"\x11" * 32, b"\x22" * 32, b"\x33" * 32, [(did, 1)], "m", OPEN),
        sender=4,
    )
    mid = int(mr.functions.modelCount().call())
    if not st.functions.isStaked(a[node], 1).call():
        anvil.send(st.functions.stake(1), sender=node, value=1_000 * OPEN)
    rc = anvil.send(led.functions.payForInference(mid, a[node]), sender=payer, value=OPEN)
    iid = int(led.functions.inferenceCount().call())
    contributors = sorted([a[1], a[2]], key=lambda x: int(x, 16))
    anvil.send(
        led.functions.recordAttribution(iid, b"\x44" * 32, contributors, [6_000, 4_000]),
        sender=node,
    )
    return {"datanet": did, "model": mid, "inference": iid, "pay_block": rc["blockNumber"]}
