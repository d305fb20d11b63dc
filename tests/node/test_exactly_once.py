"""Exactly once across kill -9: `studio node run` as a real process, killed (SIGKILL) right after
the answer is journaled and again right after the record transaction is mined; each restart
finishes the job and the attribution is on chain once. SIGTERM then stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import httpx

from studio.chain import contracts, ledger
from studio.chain.devnet import dev_account


def _start(studio: Any, crash_at: str | None) -> subprocess.Popen[str]:
    env = {**os.environ, "STUDIO_HOME": str(studio.paths.home)}
    env.pop("STUDIO_NODE_CRASH_AT", None)
    if crash_at:
        env["STUDIO_NODE_CRASH_AT"] = crash_at
    cmd = [
        sys.executable,
        "-m",
        "studio",
        "node",
        "run",
        "--api",
        "127.0.0.1:0",
        "--password-file",
        studio.node_password_file,
    ]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _ready_url(p: subprocess.Popen[str]) -> str:
    assert p.stderr is not None
    for line in p.stderr:
        if line.startswith("ready "):
            return line.split()[1]
    raise AssertionError(f"the node exited early (rc {p.wait()})")


def _row(studio: Any, iid: int) -> dict[str, Any] | None:
    return studio.store.one("SELECT * FROM node_served WHERE inference_id = ?", (iid,))


def test_recorded_exactly_once_across_kill_9(paid_studio: Any) -> None:
    s = paid_studio
    mid = int(
        s.store.one("SELECT onchain_id FROM onchain_models WHERE model_id = 'notes-a'")[
            "onchain_id"
        ]
    )
    iid = ledger.pay_for_inference(s, dev_account(6), mid, node=dev_account(5).address)[
        "inference_id"
    ]

    # 1. Killed right after the answer and its report are journaled, before anything is recorded.
    p = _start(s, "after_served")
    url = _ready_url(p)
    try:
        httpx.post(
            f"{url}/v1/completions",
            json={
                "model": "notes-a",
                "prompt": "x",
                "max_tokens": 4,
                "temperature": 0.8,
                "seed": 3,
                "inference_id": iid,
            },
            timeout=120,
        )
    except httpx.HTTPError:
        pass  # the process died under the request
    assert p.wait(120) == -signal.SIGKILL
    assert _row(s, iid)["status"] == "served"
    assert ledger.inference(s, iid)["status"] == "paid"

    # 2. The restart records it, and is killed right after the transaction is mined.
    p = _start(s, "before_record_mark")
    assert p.wait(180) == -signal.SIGKILL
    assert ledger.inference(s, iid)["status"] == "recorded"
    assert _row(s, iid)["status"] == "served"

    # 3. The next restart sees the mined transaction under its key and only marks it done.
    p = _start(s, None)
    _ready_url(p)
    deadline = time.monotonic() + 120
    while _row(s, iid)["status"] != "recorded":
        assert time.monotonic() < deadline, "never marked recorded"
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    assert p.wait(120) == 0, "SIGTERM is a clean shutdown"

    led = contracts.contract(s.chain, "AttributionLedger")
    logs = led.events.AttributionRecorded().get_logs(
        from_block=0, argument_filters={"inferenceId": iid}
    )
    assert len(logs) == 1
    assert "0x" + bytes(logs[0]["args"]["reportHash"]).hex() == _row(s, iid)["report_hash"]
    key = f"attribution-record:{s.chain.chain_id}:{led.address}:{iid}"
    assert s.store.one("SELECT COUNT(*) AS n FROM chain_tx WHERE idem_key = ?", (key,))["n"] == 1
