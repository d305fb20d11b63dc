"""Exact attribution as a job subprocess, end to end on a real data home: a real Datanet, a real
training job, the exact job killed in its reverse pass, resumed by the same command to the same
report as an uninterrupted in-process run, and `attribution verify` re-running it to its hash.
Plus the replay record's compact row format (and that format /1 records still load)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CONTRIBUTOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
PROMPT = "What did the keeper log on day 3?"
OUTPUT = "High water at 9:13, wind from the west, lamp lit at dusk."


@pytest.fixture
def trained_home(cli: Any, studio: Any, tmp_path: Path) -> Path:
    rows = [
        {
            "prompt": f"What did the keeper log on day {i}?",
            "response": f"High water at {6 + i % 5}:1{i % 10}, wind from the west, lamp lit at dusk.",
        }
        for i in range(8)
    ]
    f = tmp_path / "notes.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    studio.datanets.create("notes", summary="tide notes")
    studio.datanets.add_files("notes", [f], contributor=CONTRIBUTOR)
    studio.datanets.curate("notes", accept_all=True, min_score=0.0)
    studio.datanets.snapshot("notes")
    studio.close()
    argv = ["model", "train", "--base", "tiny", "--datanet", "notes", "--batch-size", "2"]
    argv += ["--max-length", "64", "--learning-rate", "1e-2", "--max-steps", "24"]
    rc, _, err = cli(*argv, "--val-split", "0", "--name", "ex", "--no-index", "--json")
    assert rc == 0, err
    return Path(studio.paths.home)


def test_killed_exact_job_resumes_to_the_same_report_and_verifies(
    cli: Any, trained_home: Path
) -> None:
    from studio.app import Studio
    from studio.attribution import exact_job

    s = Studio(trained_home)
    try:
        att = s.attribution
        job = att.exact_job("ex", PROMPT, OUTPUT, top_k=3)
        assert job.estimate["fits"] and job.estimate["steps"] == 24
        proc = att.start_exact_job(job)
        seen = []
        for ev in proc.events():
            seen.append(ev)
            if ev.kind == "progress" and "reverse through" in (ev.message or ""):
                proc.kill()  # SIGKILL in the reverse pass: no chance to clean up
                break
        assert proc.wait() != 0
        assert any("replay step" in (e.message or "") for e in seen)  # progress streamed
        work = trained_home / "models" / "ft" / "ex" / "attribution" / "exact-work"
        assert list(work.glob("*/reverse.pt")), "the reverse pass saved its place"
        assert not job.report_path.exists()
        # The same query run uninterrupted, in this process, for comparison.
        whole = json.loads(json.dumps(_fresh_exact(att, work)))
    finally:
        s.close()
    # The same command resumes the killed job (same job folder, same work folder).
    argv = ["attribute", "ex", "--prompt", PROMPT, "--output", OUTPUT, "--method", "exact"]
    rc, out, err = cli(*argv, "--top", "3", "--json")
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["method"]["name"] == "exact"
    assert rep["report_hash"] == whole["report_hash"]
    assert exact_job.status(job)["state"] == "done"
    path = next((trained_home / "reports").glob("*.json"))
    rc, out, err = cli("attribution", "verify", str(path), "--json")
    assert rc == 0, err
    assert json.loads(out)["match"] is True


def _fresh_exact(att: Any, work: Path) -> dict[str, Any]:
    """The report of an uninterrupted exact run (the killed job's saved place set aside)."""
    import shutil

    aside = work.with_name("exact-work-killed")
    work.rename(aside)
    try:
        return dict(att.attribute("ex", PROMPT, OUTPUT, method="exact", top_k=3))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        aside.rename(work)


def test_exact_job_refuses_before_starting(cli: Any, trained_home: Path) -> None:
    import shutil

    shutil.rmtree(trained_home / "models" / "ft" / "ex" / "replay")
    argv = ["attribute", "ex", "--prompt", PROMPT, "--output", OUTPUT, "--method", "exact"]
    rc, out, err = cli(*argv)
    assert rc == 1 and "no replay record" in err and err.strip().count("\n") == 0
    assert not (trained_home / "jobs" / "exact").exists()  # nothing was started or written


def test_replay_rows_are_stored_compactly_and_old_records_still_load(tmp_path: Path) -> None:
    import torch

    from studio.train import replay_record as RR

    rows = [
        {"input_ids": [5, 70000, 7], "labels": [-100, 70000, 7], "position_ids": [0, 1, 2]},
        {"input_ids": [9, 8], "labels": [9, 8], "position_ids": [0, 1]},
    ]
    rows[0]["records"], rows[1]["records"] = [0, 0, 1], [1, 1]
    rec = RR.ReplayRecord(
        lora={"r": 2, "alpha": 4, "dropout": 0.0, "targets": ["q_proj"]},
        optimizer={"betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "max_grad_norm": 1.0},
        lrs=[1e-3, 1e-3],
        steps=[[[0]], [[1]]],
        step_scale=[3.0, 2.0],
        rows=rows,
        records=[{"record_id": 1}, {"record_id": 2}],
        pad_id=0,
        init={"w": torch.arange(4.0)},
        row_coef=[[0.5, 0.5, 1.0], [1.0, 0.25]],
    )
    rec.save(tmp_path / "v2")
    meta = json.loads((tmp_path / "v2" / "replay.json").read_text())
    assert meta["format"] == "openledger-replay/2" and meta["rows"] == 2  # not the rows
    back = RR.ReplayRecord.load(tmp_path / "v2")
    assert back.rows == rows and back.row_coef == rec.row_coef  # 70000 needs int32: kept
    # A format /1 record (rows as JSON in replay.json) written by the previous studio.
    old = tmp_path / "v1"
    old.mkdir()
    (old / "init.safetensors").write_bytes((tmp_path / "v2" / "init.safetensors").read_bytes())
    v1 = {**meta, "format": "openledger-replay/1", "rows": rows, "row_coef": rec.row_coef}
    (old / "replay.json").write_text(json.dumps(v1))
    assert RR.ReplayRecord.load(old).rows == rows
    # A damaged rows file is a plain refusal, not a traceback.
    (tmp_path / "v2" / "rows.safetensors").write_bytes(b"not safetensors")
    from studio.core.errors import AttributionError

    with pytest.raises(AttributionError, match="rows"):
        RR.ReplayRecord.load(tmp_path / "v2")
