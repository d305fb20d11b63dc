"""`studio model …` end to end: a real Datanet snapshot, the training job as a subprocess
streaming JSON lines, cancel → resume, list/generate/eval/export, and bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

CONTRIBUTOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TRAIN = [
    "--base",
    "tiny",
    "--datanet",
    "notes",
    "--batch-size",
    "2",
    "--max-length",
    "64",
    "--learning-rate",
    "1e-2",
]


@pytest.fixture
def notes(studio, tmp_path):
    rows = [
        {
            "prompt": f"What did the keeper log on day {i}?",
            "response": f"High water at {6 + i % 5}:1{i % 10}, wind from the west, lamp lit at dusk.",
        }
        for i in range(24)
    ]
    f = tmp_path / "notes.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    studio.datanets.create("notes", summary="tide notes")
    studio.datanets.add_files("notes", [f], contributor=CONTRIBUTOR)
    studio.datanets.curate("notes", accept_all=True, min_score=0.0)
    snap = studio.datanets.snapshot("notes")
    assert snap["records"] == 24
    studio.close()
    return snap


def test_train_list_generate_eval_export(cli, notes, tmp_path):
    rc, out, err = cli("model", "train", *TRAIN, "--max-steps", "4", "--name", "tides", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["id"] == "tides" and res["status"] == "ready"
    card = res["card"]
    assert card["datanets"][0]["root"] == notes["root"] and card["datanets"][0]["records"] == 24
    assert len(card["datanets"][0]["record_ids"]) == 24

    rc, out, _ = cli("model", "list", "--json")
    listed = json.loads(out)
    assert listed[-1]["id"] == "tides" and listed[-1]["base"] == "tiny"
    assert listed[-1]["datanets"][0] == {
        "name": "notes",
        "version": 1,
        "root": notes["root"],
        "records": 24,
    }

    rc, out, _ = cli(
        "model",
        "generate",
        "tides",
        "--prompt",
        "What did the keeper log?",
        "--max-new-tokens",
        "8",
        "--json",
    )
    assert rc == 0 and isinstance(json.loads(out)["output"], str)

    rc, out, err = cli("model", "eval", "tides", "--datanet", "notes@1", "--json")
    assert rc == 0, err
    ev = json.loads(out)
    assert ev["loss"] < ev["base_loss"]

    rc, out, err = cli(
        "model", "export", "tides", "--merged", "--out", str(tmp_path / "m"), "--json"
    )
    assert rc == 0, err
    assert (tmp_path / "m" / "config.json").exists()


def test_job_streams_json_lines_cancel_and_resume(cli, notes, studio_home):
    rc, out, err = cli(
        "model",
        "train",
        *TRAIN,
        "--max-steps",
        "300",
        "--checkpoint-every",
        "1000",
        "--name",
        "long",
        "--detach",
        "--json",
    )
    assert rc == 0, err
    events = studio_home / "jobs" / "long" / "events.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if events.exists() and '"train.step"' in events.read_text():
            break
        time.sleep(0.2)
    else:
        pytest.fail("no training step within 120 s")
    rc, out, err = cli("model", "cancel", "long", "--json")
    assert rc == 0, err
    st = json.loads(out)
    assert st["status"] == "cancelled" and 0 < st["step"] < 300
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    step = next(e for e in lines if e["kind"] == "train.step")
    assert {"loss", "lr", "tokens_per_s", "eta_s"} <= set(step["data"])
    assert not (studio_home / "models" / "ft" / "long").exists()
    ck = sorted((studio_home / "jobs" / "long" / "checkpoints").iterdir())
    assert ck[-1].name == f"step-{st['step']:07d}"

    before = len(lines)
    rc, out, err = cli("model", "resume", "long", "--json")
    assert rc == 0, err
    assert json.loads(out)["status"] == "ready"
    after = [json.loads(x) for x in events.read_text().splitlines()[before:]]
    # The resumed job went on from the cancel checkpoint: each remaining step once, none redone.
    assert [e["step"] for e in after if e["kind"] == "train.step"] == list(
        range(st["step"] + 1, 301)
    )
    assert f"resumed from step-{st['step']:07d} (step {st['step']}/300)" in [
        e["message"] for e in after if e["kind"] == "log"
    ]
    rc, _, err = cli("model", "resume", "long")
    assert rc == 1 and "already finished" in err


def test_killed_training_job_resumes_from_its_last_checkpoint(cli, notes, studio_home):
    """SIGKILL (no chance to save anything) of the real training subprocess: the resume loses at
    most the steps since the last checkpoint, and runs every later step exactly once."""
    import os
    import signal

    from studio.core.jobs import pid_alive

    every, total = 3, 80
    rc, out, err = cli(
        "model",
        "train",
        *TRAIN,
        "--max-steps",
        str(total),
        "--checkpoint-every",
        str(every),
        "--name",
        "killed",
        "--detach",
        "--json",
    )
    assert rc == 0, err
    pid = json.loads(out)["pid"]
    job = studio_home / "jobs" / "killed"
    deadline = time.monotonic() + 120
    while not any((job / "checkpoints").glob("step-*")):
        if time.monotonic() > deadline:
            pytest.fail("no checkpoint within 120 s")
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(0.05)
    lines = [json.loads(x) for x in (job / "events.jsonl").read_text().splitlines()]
    last_step = max(e["step"] for e in lines if e["kind"] == "train.step")
    last_ckpt = int(sorted((job / "checkpoints").glob("step-*"))[-1].name.split("-")[1])
    assert last_ckpt % every == 0 and 0 <= last_step - last_ckpt <= every
    rc, out, _ = cli("model", "list", "--json")
    assert next(m for m in json.loads(out) if m["id"] == "killed")["status"] == "interrupted"

    rc, out, err = cli("model", "resume", "killed", "--json")
    assert rc == 0, err
    assert json.loads(out)["status"] == "ready"
    after = [json.loads(x) for x in (job / "events.jsonl").read_text().splitlines()[len(lines) :]]
    assert [e["step"] for e in after if e["kind"] == "train.step"] == list(
        range(last_ckpt + 1, total + 1)
    )
    assert f"resumed from step-{last_ckpt:07d} (step {last_ckpt}/{total})" in [
        e["message"] for e in after
    ]


@pytest.mark.parametrize(
    "argv, match",
    [
        (["model", "train", *TRAIN, "--rank", "0"], "rank must be a positive"),
        (["model", "train", *TRAIN, "--max-length", "4096"], "above this model's context"),
        (["model", "train", "--base", "tiny", "--datanet", "nope"], "nope"),
        (["model", "train", "--base", "tiny", "--datanet", "notes@7"], "notes"),
        (["model", "train", "--base", "/no/such/folder", "--datanet", "notes"], "No base model"),
        (["model", "generate", "missing-model", "--prompt", "hi"], "No model"),
        (["model", "cancel", "missing-model"], "No training job"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(cli, notes, studio_home, argv, match):
    rc, out, err = cli(*argv)
    assert rc == 1, err
    assert match in err and err.count("\n") == 1 and "Traceback" not in err
    assert not any((studio_home / "jobs").iterdir())
    assert not (studio_home / "models" / "ft").exists() or not any(
        (studio_home / "models" / "ft").iterdir()
    )


def test_model_list_on_a_fresh_home(cli, studio_home):
    rc, out, _ = cli("model", "list", "--json")
    ids = [m["id"] for m in json.loads(out)]
    assert rc == 0 and ids[:2] == ["smollm2-135m", "tiny"]
    assert not (Path(studio_home) / "jobs").exists() or not any((studio_home / "jobs").iterdir())
