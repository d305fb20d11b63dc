"""Talking to a JSON-RPC node: web3 over HTTP with bounded retries whose last failure is a
ChainError a user can act on, and one plain JSON-RPC call without web3 (to probe the devnet)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import requests
from web3 import HTTPProvider, Web3
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from studio.core.errors import ChainError

RPC_RETRIES = 4
RPC_BACKOFF_S = 0.25  # 0.25, 0.5, 1.0 s between the attempts
RPC_TIMEOUT_S = 30.0


class StudioHTTPProvider(HTTPProvider):
    """HTTPProvider with bounded retries + backoff whose final failure is a ChainError a user can act on."""

    def __init__(
        self,
        url: str,
        *,
        network_name: str,
        retries: int = RPC_RETRIES,
        backoff_s: float = RPC_BACKOFF_S,
        timeout_s: float = RPC_TIMEOUT_S,
    ) -> None:
        super().__init__(
            url,
            request_kwargs={"timeout": timeout_s},
            exception_retry_configuration=ExceptionRetryConfiguration(
                errors=(requests.ConnectionError, requests.Timeout, requests.HTTPError),
                retries=retries,
                backoff_factor=backoff_s,
            ),
        )
        self.network_name = network_name
        self.retries = retries

    def make_request(self, method: Any, params: Any) -> Any:
        try:
            return super().make_request(method, params)
        except (requests.ConnectionError, requests.Timeout, requests.HTTPError) as e:
            hint = (
                "Start it with `studio devnet up`."
                if self.network_name == "devnet"
                else "Check your connection, the network chosen and its RPC URL (STUDIO_RPC_URL)."
            )
            raise ChainError(
                f"Cannot reach the {self.network_name} RPC at {self.endpoint_uri} "
                f"after {self.retries} attempts ({type(e).__name__}).",
                hint=hint,
            ) from e


def make_web3(
    url: str,
    *,
    network_name: str = "custom",
    retries: int | None = None,
    backoff_s: float | None = None,
) -> Web3:
    return Web3(
        StudioHTTPProvider(
            url,
            network_name=network_name,
            retries=RPC_RETRIES if retries is None else retries,
            backoff_s=RPC_BACKOFF_S if backoff_s is None else backoff_s,
        )
    )


def rpc_call(
    url: str, method: str, params: list[Any] | None = None, *, timeout: float = 3.0
) -> Any:
    """One JSON-RPC call without web3 (used to probe the devnet). Raises OSError/ValueError."""
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}
    ).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback URL we built
        doc = json.loads(resp.read())
    if "error" in doc:
        raise ValueError(f"{method}: {doc['error']}")
    return doc.get("result")
