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

    again = _demo(home)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already published" in again.stdout
    assert "already trained" in again.stdout
    assert "already registered" in again.stdout
    assert again.stdout.count(" claimed ") == 0  # the fee was split once and claimed once
