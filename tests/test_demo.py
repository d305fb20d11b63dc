"""`studio demo` end to end, as `make demo` runs it, on the tiny model so it takes seconds:
Datanet → devnet + publish → fine-tune → attribution → settle on chain → rewards claimed.
Then the same demo again on the same home: everything is reused, nothing is paid twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _demo(home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "STUDIO_HOME": str(home),
        "STUDIO_DEMO_BASE": "tiny",
        "STUDIO_DEMO_TRAIN_STEPS": "8",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "studio", "demo", *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _chain_state(home: Path, addresses: list[str]) -> tuple[int, dict[str, int], int]:
    """(transactions in the journal, balances of `addresses`, block height) of the demo's devnet,
    read from its database and from the devnet itself (started for the look, then stopped)."""
    import sqlite3

    from studio.chain.devnet import Devnet, rpc_call
    from studio.core.paths import Paths

    paths = Paths.resolve(home)
    con = sqlite3.connect(paths.db)
    try:
        journal = con.execute("SELECT COUNT(*) FROM chain_tx").fetchone()[0]
    finally:
        con.close()
    devnet = Devnet(paths)
    url = devnet.up()["url"]
    try:
        balances = {a: int(rpc_call(url, "eth_getBalance", [a, "latest"]), 16) for a in addresses}
        block = int(rpc_call(url, "eth_blockNumber"), 16)
    finally:
        devnet.down()
    return journal, balances, block


@pytest.mark.slow
def test_demo_runs_end_to_end_and_is_safe_to_rerun(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    first = _demo(home, "--fresh")
    assert first.returncode == 0, first.stderr[-3000:]
    out = first.stdout
    for stage in ("datanets", "chain", "train", "attribution", "settle"):
        assert f"=== {stage} ===" in out
    assert "Snapshot v1: 42 records" in out
    assert "contributions bound by their EIP-712 signature" in out
    assert "   match: 0x" in out  # the report re-ran to the same hash
    assert "Demo finished." in out
    # Nothing left running behind the demo.
    assert not (home / "devnet" / "anvil.json").exists()

    report = json.loads((home / "reports" / "demo-attribution.json").read_text())
    assert sum(w["bps"] for w in report["weights"]) == 10_000
    keeper = (
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # wrote the tide log the question is about
    )
    assert report["weights"][0]["contributor"] == keeper
    # Every payee of the report (contributors, and the Datanet owner for the pooled tail) claimed.
    assert out.count(" claimed ") == len(report["weights"])

    payees = sorted({w["contributor"] for w in report["weights"]} | {keeper})
    journal, balances, _ = _chain_state(home, payees)
    assert journal > 0 and all(balances.values())

    again = _demo(home)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already published" in again.stdout
    assert "already trained" in again.stdout
    assert "already registered" in again.stdout
    # The re-run sent no transaction and moved no OPEN: the fee was split once and claimed once.
    journal2, balances2, _ = _chain_state(home, payees)
    assert (journal2, balances2) == (journal, balances)
