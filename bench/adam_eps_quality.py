"""Validation loss of the studio trainer with AdamW's epsilon at its default and raised (what a
"smooth" optimizer for exact attribution costs the model; docs/attribution.md).

The sample Datanet's sentences (resources/sample-datanet, 117 records, 20% held out) train the
starter model (or the tiny one) with the studio's defaults plus each variant's settings, and
each run prints its validation loss before and after and the spread of AdamW's gradient RMS
(sqrt of the second moment) at the end: epsilon only matters where it exceeds that.

Usage:
  nice -n 15 .venv/bin/python bench/adam_eps_quality.py starter 'usual={}' 'eps1e-3={"adam_eps":1e-3}'
  nice -n 15 .venv/bin/python bench/adam_eps_quality.py tiny \
      'u={"learning_rate":4e-3,"epochs":2}' 'e={"learning_rate":4e-3,"epochs":2,"adam_eps":1e-3}'
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def records() -> list[dict]:
    sample = ROOT / "resources" / "sample-datanet"
    out: list[dict] = []
    for f in json.loads((sample / "manifest.json").read_text())["files"]:
        raw = (sample / f["file"]).read_text()
        if f["file"].endswith(".jsonl"):
            rows = (json.loads(x) for x in raw.splitlines() if x.strip())
            raw = "\n".join(f"{d['prompt']} {d['response']}" for d in rows)
        raw = re.sub(r"[#*`>|]", " ", raw)
        for p in re.split(r"(?<=[.!?])\s+|\n+", raw):
            p = " ".join(p.split())
            if len(p.split()) >= 5:
                out.append(
                    dict(
                        record_id=len(out) + 1,
                        datanet="sample",
                        version=1,
                        contributor=f["contributor"],
                        kind="text",
                        text=p,
                        prompt=None,
                        response=None,
                        messages=None,
                    )
                )
    return out


def main(argv: list[str]) -> int:
    import torch

    from studio.core.events import EventBus
    from studio.train.catalog import ensure_bundled
    from studio.train.config import TrainConfig
    from studio.train.tiny import build_tiny_model
    from studio.train.trainer import TrainingRun

    torch.set_num_threads(1)
    which, variants = argv[0], [v.split("=", 1) for v in argv[1:]]
    work = Path(tempfile.mkdtemp(prefix="adam-eps-"))
    base = (
        ensure_bundled("smollm2-135m", work / "models")
        if which == "starter"
        else build_tiny_model(work / "tiny")
    )
    recs = records()
    print(f"{len(recs)} records, base {which}", flush=True)
    for tag, extra_json in variants:
        extra = json.loads(extra_json)
        cfg = TrainConfig(
            base=str(base),
            max_length=128,
            device="cpu",
            checkpoint_every=10**9,
            val_split=0.2,
            **extra,
        )
        t0 = time.process_time()
        run = TrainingRun(
            cfg,
            base_dir=base,
            job_dir=work / f"job-{tag}",
            out_dir=work / f"out-{tag}",
            records=recs,
            events=EventBus(),
        )
        m = run.run()
        v = torch.cat([s["exp_avg_sq"].flatten() for s in run.optimizer.state.values()]).sqrt()
        q = torch.quantile(v[torch.randperm(len(v))[:100_000]], torch.tensor([0.1, 0.5, 0.9]))
        print(
            f"{tag} {json.dumps(extra)}: validation loss {m['eval_loss_before']:.4f} -> "
            f"{m['eval_loss_after']:.4f}, {m['steps']} steps, {time.process_time() - t0:.0f} "
            f"CPU-s; gradient RMS 10/50/90%: {', '.join(f'{x:.1e}' for x in q.tolist())}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
