"""Light node benchmark, each figure against a baseline measured in the same run.

1. Sync: N rounds of registry + ledger traffic on a fresh anvil, then (a) the node's verified sync
   (every header hashed and linked, receipts of matching blocks rebuilt into receiptsRoot, events
   decoded and indexed in SQLite) and (b) plain unverified web3 event reads (`get_logs` + decode
   for the same contracts). Prints blocks/s, events/s and the cost ratio.
2. API: completions on the tiny model through the official `openai` client against a real uvicorn,
   at 1 and 8 concurrent clients, with attribution (span method) vs without. Prints p50/p95
   latency, throughput and the ratio.

    .venv/bin/python bench/node.py [--rounds 60] [--requests 24]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OPEN = 10**18


def _anvil() -> tuple[subprocess.Popen[bytes], str]:
    import socket

    from web3 import HTTPProvider, Web3

    from studio.chain.devnet import anvil_command

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        anvil_command(port, 16120), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    w3 = Web3(HTTPProvider(url))
    for _ in range(400):
        try:
            _ = w3.eth.chain_id
            break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.05)
    return proc, url


def bench_sync(rounds: int) -> dict[str, float]:
    from web3 import HTTPProvider, Web3

    from studio.app import Studio
    from studio.chain import contracts
    from studio.chain.client import ChainClient
    from studio.node.follower import Follower, FollowerConfig

    proc, url = _anvil()
    try:
        with tempfile.TemporaryDirectory() as tmp, Studio(Path(tmp) / "home") as s:
            client = ChainClient.for_url(s, url, 16120)
            dep = contracts.ensure_deployed(client, allow_deploy=True)
            w3 = Web3(HTTPProvider(url))
            a = w3.eth.accounts
            c = {
                n: w3.eth.contract(address=dep["contracts"][n], abi=contracts.abi(n))
                for n in dep["contracts"]
            }

            def send(fn: object, sender: str, value: int = 0) -> None:
                h = fn.transact({"from": sender, "value": value})  # type: ignore[attr-defined]
                w3.eth.wait_for_transaction_receipt(h)

            send(c["DatanetRegistry"].functions.createDatanet(b"\1" * 32, "u"), a[1])
            send(
                c["DatanetRegistry"].functions.publishSnapshot(1, 1, b"\2" * 32, 3, b"\3" * 32, []),
                a[1],
                OPEN,
            )
            send(c["Staking"].functions.stake(1), a[5], 1_000 * OPEN)
            contributors = [a[1]]  # the Datanet's owner: a payee of every model on it
            for i in range(rounds):
                send(
                    c["ModelRegistry"].functions.registerModel(
                        b"\x11" * 32, (i + 1).to_bytes(32, "big"), b"\x33" * 32, [(1, 1)], "m", OPEN
                    ),
                    a[4],
                )
                send(c["AttributionLedger"].functions.payForInference(i + 1, a[5]), a[6], OPEN)
                send(
                    c["AttributionLedger"].functions.recordAttribution(
                        i + 1, b"\x44" * 32, contributors, [10_000]
                    ),
                    a[5],
                )
            for _ in range(rounds):  # blocks without our events (other users' traffic)
                w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            head = w3.eth.block_number

            t0 = time.perf_counter()
            f = Follower(
                s.store,
                FollowerConfig(
                    rpc_url=url, chain_id=16120, contracts=dict(dep["contracts"]), batch=128
                ),
            )
            f.sync()
            verified_s = time.perf_counter() - t0
            events = f.status()["events_indexed"]

            t0 = time.perf_counter()
            plain = 0
            from eth_utils import event_abi_to_log_topic

            for ct in c.values():
                by_topic = {
                    event_abi_to_log_topic(e): getattr(ct.events, e["name"])()
                    for e in ct.abi
                    if e.get("type") == "event"
                }
                for lg in w3.eth.get_logs({"address": ct.address, "fromBlock": 0, "toBlock": head}):
                    by_topic[bytes(lg["topics"][0])].process_log(lg)
                    plain += 1
            plain_s = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait()
    return {
        "blocks": head + 1,
        "events_verified": events,
        "events_plain": plain,
        "verified_s": verified_s,
        "plain_s": plain_s,
    }


def _served_home(root: Path) -> Path:
    from studio.app import Studio
    from studio.chain.devnet import dev_address

    home = root / "home"
    with Studio(home) as s:
        s.datanets.create("notes", summary="n", license="CC-BY-4.0")
        for who in (1, 2, 3):
            f = root / f"n{who}.jsonl"
            f.write_text(
                "".join(
                    json.dumps({"text": f"Note {who}-{i}: tide, starter and hive logs."}) + "\n"
                    for i in range(4)
                )
            )
            s.datanets.add_files("notes", [f], contributor=dev_address(who))
        s.datanets.curate("notes", accept_all=True, min_score=0.0)
        s.datanets.snapshot("notes")
        st = dict(
            max_steps=4,
            batch_size=2,
            max_length=64,
            checkpoint_every=4,
            learning_rate=1e-2,
            warmup_ratio=0.0,
            val_split=0.0,
        )
        s.models.run_job(
            s.models.prepare(base="tiny", datanets=["notes"], settings=st, name="notes-a")
        )
    return home


def bench_api(requests: int) -> dict[str, dict[str, float]]:
    import openai

    from studio.app import Studio
    from studio.node.config import NodeConfig
    from studio.node.service import Node

    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = _served_home(Path(tmp))
        for attribution in (False, True):
            with Studio(home) as s:
                cfg = NodeConfig(api="127.0.0.1:0", require_payment=False, attribution=attribution)
                node = Node(s, cfg, chain=False).start()
                try:
                    c = openai.OpenAI(base_url=node.url + "/v1", api_key="x", max_retries=0)

                    def one(i: int, c: openai.OpenAI = c) -> float:
                        t = time.perf_counter()
                        c.completions.create(
                            model="notes-a",
                            prompt=f"Tide log {i}",
                            max_tokens=16,
                            extra_body={"temperature": 0.8, "seed": i},
                        )
                        return time.perf_counter() - t

                    one(0)  # warm-up: loads the base, the adapter and the span index
                    for conc in (1, 8):
                        t0 = time.perf_counter()
                        with ThreadPoolExecutor(conc) as ex:
                            lat = sorted(ex.map(one, range(1, requests + 1)))
                        wall = time.perf_counter() - t0
                        out[f"{'attr' if attribution else 'plain'}@{conc}"] = {
                            "p50_ms": 1000 * statistics.median(lat),
                            "p95_ms": 1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))],
                            "req_per_s": requests / wall,
                        }
                finally:
                    node.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--requests", type=int, default=24)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    sy = bench_sync(args.rounds)
    print(f"sync of {sy['blocks']} blocks ({args.rounds} rounds of register + pay + record):")
    print(
        f"  verified (headers + receipt tries + index): {sy['verified_s']:.2f} s, "
        f"{sy['blocks'] / sy['verified_s']:.0f} blocks/s, {sy['events_verified'] / sy['verified_s']:.0f} events/s"
    )
    print(
        f"  plain web3 get_logs + decode (baseline):    {sy['plain_s']:.2f} s, "
        f"{sy['blocks'] / sy['plain_s']:.0f} blocks/s, {sy['events_plain'] / sy['plain_s']:.0f} events/s"
    )
    print(
        f"  verification cost: {sy['verified_s'] / sy['plain_s']:.2f}x the unverified reads (aim < 3x)"
    )
    api = bench_api(args.requests)
    print(f"API, {args.requests} completions of 16 tokens on the tiny model per setting:")
    for conc in (1, 8):
        p, a = api[f"plain@{conc}"], api[f"attr@{conc}"]
        for name, r in (("without attribution", p), ("with attribution   ", a)):
            print(
                f"  {conc} client(s) {name}: p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms, "
                f"{r['req_per_s']:.1f} req/s"
            )
        print(
            f"  {conc} client(s): attribution costs {a['p50_ms'] / p['p50_ms']:.2f}x p50, "
            f"throughput ratio {a['req_per_s'] / p['req_per_s']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
