#!/usr/bin/env python3
"""Binding 1,000 contributions on chain: the studio's way vs one transaction per contribution.

Both run in this invocation on one fresh anvil, through the same TxPipeline (journal, nonce lock,
gas estimate, receipt wait), so the ratios compare designs, not plumbing:
- studio: `datanet publish` — createDatanet + publishSnapshot carrying every contributor's signed
  batch (EIP-712, one ecrecover per contributor; more transactions only past 2,000 records);
- naive: NaiveContributions.contribute(datanetId, contentHash) sent by each contributor for each
  of their records (a storage slot + an event per record).
Prints gas per contribution, transactions and wall time for both, and the ratios.

    .venv/bin/python bench/chain.py [--records 1000] [--contributors 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

CHAIN_ID = 16120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_anvil() -> tuple[subprocess.Popen[bytes], str]:
    from studio.chain.devnet import anvil_command, rpc_call

    port = _free_port()
    proc = subprocess.Popen(
        anvil_command(port, CHAIN_ID),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            rpc_call(url, "eth_chainId")
            return proc, url
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("anvil did not start")


def make_datanet(studio: Any, folder: Path, n: int, contributors: list[str]) -> None:
    """n distinct records, round-robin over the contributors, accepted and snapshotted."""
    dn = studio.datanets
    dn.create("bench-notes", license="CC-BY-4.0")
    words = [
        "tide",
        "gauge",
        "rye",
        "starter",
        "hive",
        "brood",
        "mite",
        "lamp",
        "kelp",
        "crust",
        "comb",
        "gull",
    ]
    per: dict[str, list[str]] = {c: [] for c in contributors}
    for i in range(n):
        w = " ".join(words[(i * k + k) % len(words)] for k in range(1, 9))
        per[contributors[i % len(contributors)]].append(
            f"Observation {i}: the {w} note number {i * 7919 % 100003}."
        )
    for who, texts in per.items():
        f = folder / f"{who}.jsonl"
        f.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        dn.add_files("bench-notes", [f], contributor=who)
    dn.curate("bench-notes", accept_all=True, min_score=0.0)
    snap = dn.snapshot("bench-notes")
    if snap["records"] != n:
        raise SystemExit(f"expected {n} records in the snapshot, got {snap['records']}")


def gas_of(studio: Any, hashes: list[str]) -> int:
    marks = ",".join("?" * len(hashes))
    row = studio.store.one(
        f"SELECT SUM(gas_used) AS g FROM chain_tx WHERE tx_hash IN ({marks})",
        [h.lower() for h in hashes],
    )
    return int(row["g"] or 0)


def main() -> int:
    ap = argparse.ArgumentParser(
        description="studio vs naive contribution binding on a fresh anvil"
    )
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument("--contributors", type=int, default=8, help="1..9 (dev accounts 1..N)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    n, k = a.records, max(1, min(9, a.contributors))

    from studio.app import Studio
    from studio.chain import contracts, datanets_onchain
    from studio.chain.client import ChainClient
    from studio.chain.devnet import dev_account, rpc_call

    proc, url = start_anvil()
    try:
        with tempfile.TemporaryDirectory() as tmp, Studio(Path(tmp) / "home") as studio:
            client = ChainClient.for_url(studio, url, CHAIN_ID)
            studio.__dict__["chain"] = client
            contracts.ensure_deployed(client, allow_deploy=True)
            hardfork = (rpc_call(url, "anvil_nodeInfo") or {}).get("hardFork", "?")
            signers = {dev_account(i).address: dev_account(i) for i in range(1, k + 1)}
            make_datanet(studio, Path(tmp), n, list(signers))
            publisher = dev_account(0)

            # -- the studio's way ------------------------------------------------------------
            t0 = time.perf_counter()
            res = datanets_onchain.publish(studio, publisher, "bench-notes", signers=signers)
            studio_s = time.perf_counter() - t0
            assert sum(res["bound"].values()) == n and not res["unbound"], res
            studio_txs = len(res["transactions"])
            studio_gas = gas_of(studio, res["transactions"])
            marks = ",".join("?" * len(res["transactions"]))
            per_tx = [
                (r["purpose"], int(r["gas_used"]))
                for r in studio.store.query(
                    f"SELECT purpose, gas_used FROM chain_tx WHERE tx_hash IN ({marks}) ORDER BY id",
                    [h.lower() for h in res["transactions"]],
                )
            ]

            # -- the naive baseline: one transaction per contribution, each hash stored --------
            art = contracts.load_artifact("bench/NaiveContributions")
            data = (
                client.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
                .constructor()
                .data_in_transaction
            )
            naive_addr = client.tx.send(
                publisher, to=None, data=data, purpose="deploy NaiveContributions"
            ).contract_address
            naive = client.w3.eth.contract(address=naive_addr, abi=art["abi"])
            records = studio.store.query(
                "SELECT r.content_sha256, r.contributor FROM records r JOIN datanets d ON d.id = r.datanet_id"
                " WHERE d.name = 'bench-notes' AND r.status = 'accepted' ORDER BY r.id"
            )
            t0 = time.perf_counter()
            naive_hashes = []
            for i, r in enumerate(records):
                fn = naive.functions.contribute(
                    res["onchain_id"], bytes.fromhex(r["content_sha256"])
                )
                tx = client.tx.transact(
                    signers[r["contributor"]], fn, purpose=f"naive contribution {i}"
                )
                naive_hashes.append(tx.hash)
            naive_s = time.perf_counter() - t0
            naive_gas = gas_of(studio, naive_hashes)
    finally:
        proc.terminate()
        proc.wait(10)

    out = {
        "records": n,
        "contributors": k,
        "hardfork": hardfork,
        "studio": {
            "per_transaction": per_tx,
            "transactions": studio_txs,
            "gas_total": studio_gas,
            "gas_per_contribution": studio_gas / n,
            "wall_s": round(studio_s, 3),
        },
        "naive": {
            "transactions": len(naive_hashes),
            "gas_total": naive_gas,
            "gas_per_contribution": naive_gas / n,
            "wall_s": round(naive_s, 3),
        },
    }
    out["ratios"] = {
        "transactions": len(naive_hashes) / studio_txs,
        "gas": naive_gas / studio_gas,
        "wall_time": naive_s / studio_s,
    }
    if a.json:
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"{n} contributions from {k} contributors, fresh anvil (hardfork {hardfork}), same TxPipeline for both"
    )
    print(f"{'':10}{'txs':>8}{'gas total':>14}{'gas/contribution':>18}{'wall s':>10}")
    for name in ("studio", "naive"):
        r = out[name]
        print(
            f"{name:10}{r['transactions']:>8}{r['gas_total']:>14,}{r['gas_per_contribution']:>18,.0f}{r['wall_s']:>10.2f}"
        )
    for purpose, gas in per_tx:
        print(f"  studio tx: {purpose}: {gas:,} gas")
    q = out["ratios"]
    print(
        f"naive/studio: {q['transactions']:.0f}x transactions, {q['gas']:.1f}x gas, {q['wall_time']:.1f}x wall time"
    )
    ok = out["studio"]["gas_per_contribution"] <= 5000 and q["transactions"] >= 20
    print(
        f"targets (<= 5,000 gas/contribution, >= 20x fewer transactions): {'met' if ok else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
