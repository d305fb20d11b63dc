"""A raw JSON-RPC client for the light node: the RPC's answers as plain JSON (hex strings), so the
verifier sees exactly what the endpoint sent, with no formatter in between. Batches several calls
in one HTTP request where the endpoint allows it (fewer round trips while syncing)."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import requests

from studio.core.errors import ChainError


class RpcUnavailable(ChainError):
    """The endpoint could not be reached or answered garbage (retry later)."""


class RpcRefused(ChainError):
    """The endpoint answered with a JSON-RPC error for this call."""

    def __init__(self, method: str, error: Any) -> None:
        msg = error.get("message") if isinstance(error, dict) else str(error)
        super().__init__(f"The RPC refused {method}: {msg}.")
        self.method = method
        self.error = error


class RawRpc:
    def __init__(self, url: str, *, timeout_s: float = 15.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        s = getattr(self._local, "s", None)
        if s is None:
            s = requests.Session()
            self._local.s = s
        return s

    def _post(self, payload: Any) -> Any:
        try:
            r = self._session.post(self.url, json=payload, timeout=self.timeout_s)
            r.raise_for_status()
            return r.json()
        except (requests.RequestException, ValueError) as e:
            raise RpcUnavailable(
                f"Cannot reach the RPC at {self.url} ({type(e).__name__}).",
                hint="Check that the endpoint is up; the node retries with backoff.",
            ) from e

    def call(self, method: str, *params: Any) -> Any:
        resp = self._post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        )
        if not isinstance(resp, dict):
            raise RpcUnavailable(f"The RPC at {self.url} answered {method} with no JSON object.")
        if "error" in resp:
            raise RpcRefused(method, resp["error"])
        return resp.get("result")

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Several calls in one request; results in the order of `calls`."""
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": m, "params": p}
            for i, (m, p) in zip(ids, calls, strict=True)
        ]
        resp = self._post(payload)
        if not isinstance(resp, list):
            # An endpoint without batch support: one by one.
            return [self.call(m, *p) for m, p in calls]
        by_id = {r.get("id"): r for r in resp if isinstance(r, dict)}
        out = []
        for i, (m, _p) in zip(ids, calls, strict=True):
            r = by_id.get(i)
            if r is None:
                raise RpcUnavailable(f"The RPC at {self.url} left out the answer to {m}.")
            if "error" in r:
                raise RpcRefused(m, r["error"])
            out.append(r.get("result"))
        return out

    # -- the calls the follower makes --------------------------------------------------------
    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def header(self, number: int | str) -> Any:
        tag = hex(number) if isinstance(number, int) else number
        return self.call("eth_getBlockByNumber", tag, False)

    def receipts(self, number: int) -> Any:
        return self.call("eth_getBlockReceipts", hex(number))

    def proof(self, address: str, slots: list[str], block: int) -> Any:
        return self.call("eth_getProof", address, slots, hex(block))
