"""The header follower: from a trusted checkpoint, verify every new header (hash recomputed, parent
link, number), take the followed contracts' events only from receipts that rebuild the header's
receiptsRoot, and index them. Reorgs roll the index back to the common ancestor and replay; an
unreachable RPC is retried with backoff ("retrying in N s"); an RPC caught lying is named in the
log and the status, and nothing it said is indexed.

    f = Follower(store, FollowerConfig(rpc_url=..., chain_id=..., contracts={...}))
    f.sync()                  # catch up once (tests, benchmarks)
    f.run(stop_event)         # follow until stop_event is set (the node's thread): by
                              # `eth_subscribe newHeads` where the RPC offers a websocket,
                              # polling otherwise (status()["mode"] says which)
    f.status()                # a snapshot for the GUI, /health and /metrics
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from studio.core.errors import ChainError

from .heads import follow_subscription, ws_url_for
from .index import ChainIndex, EventDecoder, bloom_may_contain
from .rpc import RawRpc, RpcRefused, RpcUnavailable
from .verify import Header, VerificationError, hb, hi, verify_header, verify_receipts

log = logging.getLogger("studio.node.follower")


@dataclass
class FollowerConfig:
    rpc_url: str
    chain_id: int
    contracts: dict[str, str]  # name → address
    checkpoint_number: int = 0
    checkpoint_hash: str | None = None  # None: the chain's genesis as first seen (devnet)
    poll_s: float = 1.0
    batch: int = 64
    max_backoff_s: float = 30.0
    subscribe: bool = True  # new heads by websocket subscription where offered
    ws_url: str | None = None  # None: the RPC's address with a ws:// scheme
    ws_retry_s: float = 5.0  # first wait before subscribing again after a failure (doubles)
    heartbeat_s: float = 30.0  # a quiet subscription is checked with one polled step this often
    abis: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class Follower:
    def __init__(
        self,
        store: Any,
        config: FollowerConfig,
        *,
        on_blocks: Callable[[list[Header]], None] | None = None,
    ) -> None:
        self.config = config
        self.rpc = RawRpc(config.rpc_url)
        self.index = ChainIndex(store, config.chain_id)
        abis = config.abis or _default_abis(config.contracts)
        self.decoder = EventDecoder(config.contracts, abis)
        self._addresses = [hb(a) for a in self.decoder.addresses]
        self.on_blocks = on_blocks
        self._lock = threading.Lock()
        self._status: dict[str, Any] = {
            "state": "starting",
            "head": None,
            "verified_to": None,
            "verified_hash": None,
            "blocks_verified": 0,
            "events_indexed": 0,
            "receipts_checked": 0,
            "reorgs": 0,
            "last_reorg": None,
            "lies": 0,
            "last_lie": None,
            "last_error": None,
            "retry_in_s": None,
            "mode": "polling",
            "heads_received": 0,
            "subscription": None,
        }
        self._failures = 0
        self._last_n = 0
        self._ws_url = ws_url_for(config.rpc_url, config.ws_url) if config.subscribe else None
        self._ws_failures = 0
        self._ws_retry_at = 0.0
        # The node's thread runs `run` while a caller (a test, the GUI) may call `sync`: one step
        # at a time, or both would index the same block.
        self._step_lock = threading.Lock()

    # -- status --------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            s = dict(self._status)
        last = self.index.last_block()
        if last is not None:
            s["verified_to"], s["verified_hash"] = last["number"], last["hash"]
        if s["head"] is not None and s["verified_to"] is not None:
            s["lag"] = max(0, int(s["head"]) - int(s["verified_to"]))
        return s

    def _set(self, **kw: Any) -> None:
        with self._lock:
            self._status.update(kw)

    def _bump(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._status[key] = int(self._status[key]) + n

    # -- one step --------------------------------------------------------------------------------
    def _start(self) -> dict[str, Any]:
        """The last verified block, establishing the checkpoint on first run."""
        last = self.index.last_block()
        if last is not None:
            return last
        cfg = self.config
        chain = self.rpc.chain_id()
        if chain != cfg.chain_id:
            raise ChainError(
                f"The RPC at {cfg.rpc_url} is chain {chain}, not {cfg.chain_id}.",
                hint="Check the node's rpc_url and network.",
            )
        raw = self.rpc.header(cfg.checkpoint_number)
        h = verify_header(raw, number=cfg.checkpoint_number, expected_hash=cfg.checkpoint_hash)
        self._index([(h, raw)])
        log.info("checkpoint block %s %s", h.number, h.hash)
        last = self.index.last_block()
        assert last is not None
        return last

    def step(self) -> int:
        """Verify and index the next batch of blocks; returns how many were added (0: at the head)."""
        with self._step_lock:
            return self._step()

    def handle_head(self, raw: dict[str, Any]) -> int:
        """One header the subscription pushed: verified like a polled one. The next block on our
        tip is indexed directly; a gap or another branch is caught up by polled steps (which
        find the common ancestor)."""
        with self._step_lock:
            self._bump("heads_received")
            last = self._start()
            n = hi(raw["number"])
            self._set(head=n)
            if n == last["number"] + 1 and hb(raw["parentHash"]) == hb(last["hash"]):
                h = verify_header(raw, number=n, parent_hash=last["hash"])
                self._index([(h, raw)])
                return 1
            verify_header(raw, number=n)  # a header that lies is named even when not used
        return self.catch_up()

    def catch_up(self, *, max_steps: int = 100_000) -> int:
        """Steps until the index reaches the RPC's head (a rollback step adds nothing but is not
        the end); stops when a step makes no progress (an RPC missing blocks it announced)."""
        added, stuck_at = 0, None
        for _ in range(max_steps):
            n = self.step()
            added += n
            if n:
                continue
            st = self.status()
            if st["head"] is None or st["verified_to"] is None or st["verified_to"] >= st["head"]:
                break
            if st["verified_to"] == stuck_at:
                break
            stuck_at = st["verified_to"]
        return added

    def _step(self) -> int:
        last = self._start()
        head = self.rpc.block_number()
        self._set(head=head)
        if head < last["number"]:
            # The chain got shorter (a reorg to a shorter branch, or a rollback): find the ancestor.
            self._reorg(last, head)
            return 0
        start, end = last["number"] + 1, min(head, last["number"] + self.config.batch)
        if start > end:
            # At the head: is our tip still the chain's? (a same-height reorg changes no number)
            raw = self.rpc.header(last["number"])
            if raw is not None and verify_header(raw, number=last["number"]).hash != last["hash"]:
                self._reorg(last, last["number"] - 1)
            return 0
        raws = self.rpc.batch(
            [("eth_getBlockByNumber", [hex(n), False]) for n in range(start, end + 1)]
        )
        parent = last["hash"]
        verified: list[tuple[Header, dict[str, Any]]] = []
        for n, raw in zip(range(start, end + 1), raws, strict=True):
            if raw is None:
                break  # a block the RPC does not have yet (another backend behind a balancer)
            try:
                h = verify_header(raw, number=n, parent_hash=parent)
            except VerificationError as e:
                if e.field == "parentHash":
                    verify_header(raw, number=n)  # itself well-formed: the chain moved under us
                    if not verified:
                        self._reorg(last, n - 1)
                    break
                raise
            verified.append((h, raw))
            parent = h.hash
        if verified:
            self._index(verified)
        return len(verified)

    def _index(self, verified: list[tuple[Header, dict[str, Any]]]) -> None:
        want = [
            h
            for h, raw in verified
            if any(bloom_may_contain(hb(raw["logsBloom"]), a) for a in self._addresses)
        ]
        receipts = self.rpc.batch([("eth_getBlockReceipts", [hex(h.number)]) for h in want])
        events: dict[int, list[Any]] = {}
        for h, rc in zip(want, receipts, strict=True):
            if rc is None:
                raise RpcUnavailable(f"The RPC has no receipts for block {h.number} yet.")
            checked = verify_receipts(h, rc)
            self._bump("receipts_checked", len(checked))
            found = []
            for r in checked:
                for lg in r.get("logs", []):
                    dec = self.decoder.decode(lg)
                    if dec is not None:
                        found.append((lg, *dec))
            events[h.number] = found
        n = self.index.add_blocks((h, events.get(h.number, [])) for h, _ in verified)
        self._bump("blocks_verified", len(verified))
        self._bump("events_indexed", n)
        if self.on_blocks is not None:
            self.on_blocks([h for h, _ in verified])

    def _reorg(self, last: dict[str, Any], below: int) -> None:
        """Walk back from min(last, below) until the RPC's header matches ours; roll back to it."""
        k = min(int(last["number"]), int(below))
        floor = int(self.config.checkpoint_number)
        while k >= floor:
            ours = self.index.block(k)
            raw = self.rpc.header(k)
            theirs = verify_header(raw, number=k) if raw is not None else None
            if ours is not None and theirs is not None and theirs.hash == ours["hash"]:
                gone = self.index.rollback(k)
                self._bump("reorgs")
                info = {
                    "ancestor": k,
                    "dropped": gone,
                    "from": int(last["number"]),
                    "at": time.time(),
                }
                self._set(last_reorg=info)
                log.warning("reorg: rolled back %s block(s) to common ancestor %s", gone, k)
                return
            k -= 1
        raise VerificationError(
            f"The chain no longer contains the trusted checkpoint block {floor}.",
            field="checkpoint",
            block=floor,
        )

    # -- loops ---------------------------------------------------------------------------------
    def sync(self, *, max_steps: int = 100_000) -> dict[str, Any]:
        """Catch up to the RPC's head (raises what a step raises)."""
        self.catch_up(max_steps=max_steps)
        self._set(state="following", last_error=None, retry_in_s=None)
        return self.status()

    def run(self, stop: threading.Event) -> None:
        """Follow until `stop` is set: by subscription where the RPC offers one, else by polling
        (trying the subscription again with backoff), backing off on errors."""
        while not stop.is_set():
            if self._ws_url and time.monotonic() >= self._ws_retry_at:
                try:
                    follow_subscription(self, self._ws_url, stop)
                except Exception as e:  # noqa: BLE001 - no websocket, or it dropped: poll
                    self._subscription_failed(e)
                continue
            wait = self.attempt(self.step)
            if not wait:
                wait = 0.0 if self._last_n >= self.config.batch else self.config.poll_s
            stop.wait(wait)
        self._set(state="stopped", retry_in_s=None)

    def attempt(self, fn: Callable[[], int]) -> float:
        """Run one step (or one pushed head); 0.0 when it went well, else how long to back off
        (the status says "retrying in N s"; a lie is counted and named)."""
        try:
            n = fn()
        except VerificationError as e:
            self._bump("lies")
            info = {
                "block": e.block,
                "field": e.field,
                "message": str(e),
                "rpc": self.config.rpc_url,
            }
            self._set(last_lie=info)
            log.error("RPC %s lied: %s", self.config.rpc_url, e)
            return self._backoff(f"the RPC lied about block {e.block} ({e.field})")
        except (RpcUnavailable, RpcRefused, ChainError) as e:
            log.warning("RPC problem: %s", e)
            return self._backoff(str(e))
        except Exception as e:  # noqa: BLE001 - the follower thread must not die silently
            log.exception("follower error")
            return self._backoff(f"{type(e).__name__}: {e}")
        self._failures = 0
        self._last_n = n
        # A full batch from one polled step means more are waiting; a catch-up or a pushed head
        # ends at the head.
        behind = fn == self.step and n >= self.config.batch
        self._set(
            state="syncing" if behind else "following",
            retry_in_s=None,
            last_error=None,
        )
        return 0.0

    def subscribed(self, url: str) -> None:
        self._ws_failures = 0
        self._set(mode="subscription", subscription={"url": url, "error": None, "retry_in_s": None})
        log.info("following new heads by subscription at %s", url)

    def _subscription_failed(self, e: Exception) -> None:
        self._ws_failures += 1
        delay = min(
            self.config.max_backoff_s, self.config.ws_retry_s * 2 ** (self._ws_failures - 1)
        )
        self._ws_retry_at = time.monotonic() + delay
        why = str(e) or type(e).__name__
        was = self.status()["mode"]
        self._set(
            mode="polling",
            subscription={
                "url": self._ws_url,
                "error": why,
                "retry_in_s": delay,
                "state": f"{'dropped' if was == 'subscription' else 'unavailable'}: {why}; "
                f"polling, retrying the subscription in {delay:.0f} s",
            },
        )
        log.warning(
            "new-head subscription at %s %s (%s); polling, retrying in %.0f s",
            self._ws_url,
            "dropped" if was == "subscription" else "unavailable",
            why,
            delay,
        )

    def _backoff(self, why: str) -> float:
        self._failures += 1
        delay = min(self.config.max_backoff_s, self.config.poll_s * 2 ** (self._failures - 1))
        self._set(state=f"retrying in {delay:.0f} s", retry_in_s=delay, last_error=why)
        return delay


def _default_abis(contracts: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    from studio.chain.contracts import abi

    return {name: abi(name) for name in contracts}
