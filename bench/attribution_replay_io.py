"""Replay record storage: the training rows as JSON lists (format /1) against flat safetensors
arrays (format /2, what the trainer writes now). Prints size and save/load time of each, and the
ratios (JSON / safetensors).

Usage: .venv/bin/python bench/attribution_replay_io.py [--rows 2000] [--tokens 256]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--tokens", type=int, default=256)
    args = ap.parse_args(argv)
    import torch

    from studio.train import replay_record as RR

    rng = random.Random(0)
    rows = []
    for i in range(args.rows):
        n = rng.randint(args.tokens // 2, args.tokens)
        ids = [rng.randrange(32000) for _ in range(n)]
        rows.append(
            {
                "input_ids": ids,
                "labels": [-100] * 8 + ids[8:],
                "position_ids": list(range(n)),
                "records": [i] * n,
            }
        )
    rec = RR.ReplayRecord(
        lora={"r": 8, "alpha": 16, "dropout": 0.0, "targets": ["q_proj"]},
        optimizer={"betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "max_grad_norm": 1.0},
        lrs=[1e-4] * 10,
        steps=[[[i]] for i in range(10)],
        step_scale=[1.0] * 10,
        rows=rows,
        records=[{"record_id": i} for i in range(args.rows)],
        pad_id=0,
        init={"w": torch.zeros(4, 4)},
    )
    with tempfile.TemporaryDirectory() as tmp:
        new = Path(tmp) / "v2"
        t0 = time.perf_counter()
        rec.save(new)
        save_new = time.perf_counter() - t0
        t0 = time.perf_counter()
        back = RR.ReplayRecord.load(new)
        load_new = time.perf_counter() - t0
        assert back.rows == rows
        size_new = sum(p.stat().st_size for p in new.iterdir())
        # Format /1: the same record with the rows in replay.json.
        old = Path(tmp) / "v1"
        old.mkdir()
        meta = {**rec.meta(), "format": "openledger-replay/1", "rows": rows, "row_coef": None}
        t0 = time.perf_counter()
        (old / "replay.json").write_text(json.dumps(meta, separators=(",", ":")))
        save_old = time.perf_counter() - t0
        (old / "init.safetensors").write_bytes((new / "init.safetensors").read_bytes())
        t0 = time.perf_counter()
        back = RR.ReplayRecord.load(old)
        load_old = time.perf_counter() - t0
        assert back.rows == rows
        size_old = sum(p.stat().st_size for p in old.iterdir())
    tokens = sum(len(r["input_ids"]) for r in rows)
    print(f"{args.rows} rows, {tokens:,} tokens")
    print(
        f"JSON (/1):        {size_old / 2**20:8.2f} MiB  save {save_old:.3f} s  load {load_old:.3f} s"
    )
    print(
        f"safetensors (/2): {size_new / 2**20:8.2f} MiB  save {save_new:.3f} s  load {load_new:.3f} s"
    )
    print(
        f"ratio JSON / safetensors: size {size_old / size_new:.1f}x, load {load_old / load_new:.1f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
