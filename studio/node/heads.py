"""New heads by subscription: `eth_subscribe newHeads` over a websocket (web3's `AsyncWeb3` with
`WebSocketProvider`, a persistent connection), each header handed to the follower, which verifies
it exactly like a polled one (hash recomputed, parent link, number) before indexing anything.

The subscription only says *when* to look and *what* the RPC claims; it is never trusted. When the
endpoint has no websocket, or the subscription drops, `follow_subscription` raises and the
follower polls until it tries the subscription again (with backoff). A quiet subscription is
checked now and then with one polled step (a same-height reorg announces no new number)."""

from __future__ import annotations

import asyncio
import threading
import time
from functools import partial
from typing import Any

from studio.core.errors import ChainError

TICK_S = 0.2  # how often the loop looks at the stop flag while no head arrives


class SubscriptionDropped(ChainError):
    """The websocket closed or the subscription stopped sending (the follower polls instead)."""


def ws_url_for(rpc_url: str, ws_url: str | None) -> str | None:
    """The websocket to subscribe on: the configured one, else the RPC's own address with a ws
    scheme (anvil, geth and op-geth serve both on one port when ws is enabled)."""
    if ws_url:
        return ws_url
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if rpc_url.startswith(http):
            return ws + rpc_url[len(http) :]
    return None


def raw_header(formatted: Any) -> dict[str, Any]:
    """web3 formats subscription payloads (HexBytes, ints); the verifier takes the JSON-RPC
    form (hex strings), so turn every value back into it, losslessly."""
    out: dict[str, Any] = {}
    for k, v in dict(formatted).items():
        if isinstance(v, bytes | bytearray):
            out[k] = "0x" + bytes(v).hex()
        elif isinstance(v, bool):
            out[k] = v
        elif isinstance(v, int):
            out[k] = hex(v)
        else:
            out[k] = v
    return out


def follow_subscription(follower: Any, url: str, stop: threading.Event) -> None:
    """Follow by subscription until `stop` is set; raises when the subscription is unavailable or
    drops (the caller falls back to polling)."""
    asyncio.run(_follow(follower, url, stop))


async def _follow(follower: Any, url: str, stop: threading.Event) -> None:
    from web3 import AsyncWeb3, WebSocketProvider

    cfg = follower.config
    provider = WebSocketProvider(url, max_connection_retries=1, request_timeout=15)
    async with AsyncWeb3(provider) as w3:
        await w3.eth.subscribe("newHeads")
        follower.subscribed(url)
        stream = w3.socket.process_subscriptions()
        # Blocks mined before the subscription started: catch up once by polling.
        pending_check = True
        last_seen = time.monotonic()
        while not stop.is_set():
            if pending_check or time.monotonic() - last_seen >= cfg.heartbeat_s:
                delay = await asyncio.to_thread(follower.attempt, follower.catch_up)
                pending_check = delay > 0
                last_seen = time.monotonic()
                if delay:
                    await _sleep(stop, delay)
                    continue
            try:
                msg = await asyncio.wait_for(stream.__anext__(), timeout=TICK_S)
            except TimeoutError:
                if not provider.is_open():
                    raise SubscriptionDropped(f"The websocket at {url} closed.") from None
                continue
            except StopAsyncIteration:
                raise SubscriptionDropped(f"The subscription at {url} stopped.") from None
            last_seen = time.monotonic()
            raw = raw_header(msg["result"])
            delay = await asyncio.to_thread(follower.attempt, partial(follower.handle_head, raw))
            if delay:
                pending_check = True
                await _sleep(stop, delay)


async def _sleep(stop: threading.Event, seconds: float) -> None:
    end = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < end:
        await asyncio.sleep(min(TICK_S, max(0.0, end - time.monotonic())))
