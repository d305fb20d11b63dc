"""Exact attribution for a model version: the replay record beside its adapter, what a run
costs (shown before it starts, to the CLI and the GUI), the refusal when it cannot run, and the
per-record scores that go into the usual report. The mathematics is in exact.py."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studio.attribution import exact as X
from studio.core.errors import AttributionError
from studio.train.replay_record import REPLAY_DIR, ReplayRecord

JOB = "attribution.exact"
DTYPE = "float64"


def replay_dir(info: Any) -> Path:
    return Path(info.dir) / REPLAY_DIR


def _base_dir(attributor: Any, info: Any) -> Path:
    base = info.base_dir or info.card.get("base_dir")
    if not base or not Path(base).exists():
        raise AttributionError(
            f"The base model of {info.id} is not on this machine; the exact replay needs it.",
            hint="Install the base model the version was trained on (studio model list).",
        )
    return Path(base)


def load_record(info: Any) -> ReplayRecord:
    path = replay_dir(info)
    if not (path / "replay.json").exists():
        raise AttributionError(
            f"{info.id} has no replay record, so it cannot be attributed exactly.",
            hint="Use the gradient method, or retrain the model with this studio version "
            "(new versions record their replay).",
        )
    rec = ReplayRecord.load(path)
    if not rec.exact:
        raise AttributionError(
            f"{info.id} cannot be attributed exactly: {rec.why_not}.",
            hint="Use the gradient method.",
        )
    return rec


def estimate(attributor: Any, model_id: str, queries: int = 1) -> dict[str, Any]:
    """Memory and time of an exact attribution of `queries` queries on this machine; raises
    AttributionError when the version lacks its replay record. `fits` says whether it can run."""
    info = attributor.model_info(model_id)
    return _estimate(attributor, info, queries)


def _estimate(attributor: Any, info: Any, queries: int) -> dict[str, Any]:
    from transformers import AutoConfig

    rec = load_record(info)
    cfg = AutoConfig.from_pretrained(_base_dir(attributor, info))
    tps = (info.card.get("metrics") or {}).get("tokens_per_s")
    est = X.estimate(rec, cfg, queries=queries, dtype=DTYPE, tokens_per_s=tps)
    est["model"] = info.id
    est["summary"] = X.describe(est)
    return est


def check_exact(attributor: Any, info: Any, queries: int = 1) -> dict[str, Any]:
    """The estimate, or a clear refusal when the run would not fit in this machine's memory."""
    est = _estimate(attributor, info, queries)
    if not est["fits"]:
        raise AttributionError(
            f"Exact attribution of {info.id} needs about {est['memory_bytes'] / 2**30:.1f} GiB of "
            f"memory; this machine has {est['memory_limit_bytes'] / 2**30:.1f} GiB free.",
            hint="Use the gradient method, or run it on a machine with more memory.",
        )
    attributor.events.progress(JOB, 0, 2 * est["steps"], est["summary"])
    return est


def available(attributor: Any, model_id: str) -> tuple[bool, str]:
    """(whether `model_id` can be attributed exactly here, why not)."""
    try:
        info = attributor.model_info(model_id)
        est = _estimate(attributor, info, 1)
    except AttributionError as e:
        return False, str(e)
    if not est["fits"]:
        return False, "the exact replay would not fit in this machine's memory"
    return True, ""


def choose_method(attributor: Any, model_id: str, fallback: str = "gradient") -> str:
    """The method a validator re-runs to decide a challenge: exact when the version allows it
    on this machine, else `fallback`."""
    ok, _ = available(attributor, model_id)
    return "exact" if ok else fallback


def record_hash(info: Any) -> str:
    h = hashlib.sha256()
    for name in ("replay.json", "init.safetensors", "rows.safetensors", "rng.pt"):
        p = replay_dir(info) / name
        if p.exists():
            h.update(name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    return "0x" + h.hexdigest()


def exact_scores(
    attributor: Any,
    info: Any,
    queries: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    block: int | None = None,
    cancel: Any = None,
) -> tuple[list[dict[str, Any]], np.ndarray, dict[str, Any]]:
    """(records, scores Q x N, params): a record's score is minus d loss(query) / d weight, so a
    record that lowers the query's loss when weighted up scores positive."""
    est = check_exact(attributor, info, len(queries))
    rec = load_record(info)
    leaves = {
        (r.datanet, int(r.version), int(r.record_id)): getattr(r, "leaf", None)
        for r in attributor.training_records(info)
    }
    records = [
        {**r, "leaf": leaves.get((r["datanet"], int(r["version"]), int(r["record_id"])))}
        for r in rec.records
    ]
    events = attributor.events
    rep = X.load_replay(rec, _base_dir(attributor, info), dtype=DTYPE)
    blk = int(block or est["block"])
    rhash = record_hash(info)
    # A cancelled or killed run resumes from its work folder (same query, same settings).
    key = hashlib.sha256(
        json.dumps([rhash, DTYPE, blk, [[list(i), list(y)] for i, y in queries]]).encode()
    ).hexdigest()[:16]
    work = Path(info.attribution_dir) / "exact-work" / key
    grads, _ = X.metagradients(
        rep,
        queries,
        block=blk,
        progress=lambda d, t, m: events.progress(JOB, d, t, m),
        cancel=cancel,
        batched=bool(est["batched"]),
        workdir=work,
    )
    shutil.rmtree(work, ignore_errors=True)
    params = {
        "dtype": DTYPE,
        "steps": rec.total_steps,
        "block": blk,
        "replay_hash": rhash,
        "score": "-d loss(query) / d record weight, through every training step (AdamW)",
    }
    return records, -grads, params
