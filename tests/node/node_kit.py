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


class SocketProxy:
    """A TCP forwarder in front of anvil that carries both its HTTP and its websocket traffic,
    and can cut the websockets alone: `cut_ws()` closes every upgraded connection and refuses new
    upgrades until `allow_ws()` (the HTTP side keeps working, as when a balancer drops ws)."""

    def __init__(self, upstream_port: int) -> None:
        import socket

        self.upstream_port = upstream_port
        self.ws_allowed = True
        self.ws_upgrades = 0
        self._ws: list[Any] = []
        self._lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Any) -> None:
        import socket

        first = conn.recv(65536)
        is_ws = b"upgrade: websocket" in first.lower()
        if is_ws and not self.ws_allowed:
            conn.close()
            return
        up = socket.create_connection(("127.0.0.1", self.upstream_port))
        up.sendall(first)
        if is_ws:
            with self._lock:
                self.ws_upgrades += 1
                self._ws.append((conn, up))

        def pump(a: Any, b: Any) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        t = threading.Thread(target=pump, args=(up, conn), daemon=True)
        t.start()
        pump(conn, up)
        t.join()
        conn.close()
        up.close()

    def cut_ws(self) -> None:
        import socket

        self.ws_allowed = False
        with self._lock:
            gone, self._ws = self._ws, []
        for pair in gone:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def allow_ws(self) -> None:
        self.ws_allowed = True

    def close(self) -> None:
        self._closed = True
        self.cut_ws()
        self.sock.close()


def wait_until(cond: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Wait on a condition (never a fixed sleep); fail with `what` if it never holds."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
