"""How linear is a bench run in its record weights? The check behind the exact method's
single-model LDS (bench/attribution_families.py).

For a family, seed and optimizer setting: train the run, take the exact metagradient of every
query's loss (float64 replay), then move one record's weight from 1 to 1 - delta and retrain
(float64, same seed and batches). A first-order prediction is -delta * d loss / d w. Printed per
record and delta: the correlation over queries of the true change with the prediction, and the
median ratio true / predicted (1: linear; near 0 or negative: the run reacts far less, or the
other way, than its derivative says). At delta -> 0 both must tend to 1 (the metagradient is
the derivative; tests/attribution/test_exact.py checks it against finite differences); how
fast they leave 1 as delta grows is how far a removal (delta = 1) is from the derivative.

With --fd D the derivative is taken by a finite difference at delta D instead (no reverse pass:
for a model too big for one here, such as the studio's starter model, family smollm2). With
--scores FILE (a score matrix saved by `attribution_families.py --scores DIR --methods exact`
for the same family and seed) the saved metagradient is the prediction, and with --fd as well
each record's finite difference is compared with it: where the two differ, the run is not
smooth in that record's weight even at delta D.

Besides the per-record lines (correlation over queries), the summary gives, for each delta, the
Spearman correlation over the records of the true change with the prediction, per query and
averaged: the ordering of records that the single-model LDS at one record per subset measures.

Usage: .venv/bin/python bench/exact_linearity.py FAMILY SEED [--opt usual|smooth]
       [--records 4] [--deltas 1e-4 1e-2 0.1 1] [--lr LR] [--epochs 2]
       [--fd 0.05 --dtype float32] [--eps EPS] [--record-ids 42 83 ...] [--scores FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import attribution_families as F  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("family", choices=list(F.FAMILIES))
    ap.add_argument("seed", type=int)
    ap.add_argument("--opt", default="usual", choices=list(F.OPT_SETTINGS))
    ap.add_argument("--lr", type=float, default=None, help="override the setting's learning rate")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--eps", type=float, default=None, help="override the setting's AdamW eps")
    ap.add_argument("--records", type=int, default=4, help="records perturbed (random, seed 0)")
    ap.add_argument("--record-ids", type=int, nargs="+", default=None, help="these records instead")
    ap.add_argument(
        "--scores",
        type=Path,
        default=None,
        help="a saved exact score matrix (queries x records, = -metagradient) as the prediction",
    )
    ap.add_argument("--deltas", type=float, nargs="+", default=[1e-4, 1e-2, 0.1, 1.0])
    ap.add_argument(
        "--fd",
        type=float,
        default=None,
        help="predict from the change at this small delta instead of the metagradient (a model "
        "too large for the reverse pass, e.g. smollm2; use --dtype float32 and deltas above it)",
    )
    ap.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    args = ap.parse_args(argv)

    import torch

    fam = F.FAMILIES[args.family]
    fam.epochs = args.epochs
    for k, v in F.OPT_SETTINGS[args.opt].items():
        setattr(fam, k, v)
    if args.lr is not None:
        fam.lr = args.lr
    if args.eps is not None:
        fam.eps = args.eps
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="exact-lin-"))
    try:
        _run(args, fam, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _run(args: argparse.Namespace, fam: F.Family, tmp: Path) -> None:
    import torch

    from studio.attribution import exact as X

    seed = args.seed
    base, fx = F.family_setup(fam, seed, tmp / "base")
    # the evaluation queries of bench/attribution_families.py
    every = len(fx.style_queries) // fx.contributors
    queries = [q for i, q in enumerate(fx.style_queries) if i % every == 0] + fx.canary_queries
    qs = [(q.input_ids, q.labels) for q in queries]
    trainer = F.Trainer(base, fx, fam)
    record, _, _ = trainer.fit(seed)
    rep = trainer.replay(record, args.dtype)
    n = len(fx.train)
    if args.scores is not None:
        grads = -np.load(args.scores)
    elif args.fd:
        grads = None
    else:
        grads = X.metagradients(rep, qs, **F.exact_plan(rep, len(qs)))[0]

    def losses(w: np.ndarray) -> np.ndarray:
        final, _ = X.train(rep, w)
        with torch.no_grad():
            return np.array([float(X.query_loss(rep, final, q)) for q in qs])

    base_l = losses(np.ones(n))
    print(
        f"{fam.name} seed {seed}, optimizer {args.opt} (lr {fam.lr:g}, eps {fam.eps:g}), "
        f"{n} records, {len(qs)} queries, {record.total_steps} steps",
        flush=True,
    )
    rows: dict[float, list[tuple[float, float]]] = {d: [] for d in args.deltas}
    changes: dict[float, list[tuple[np.ndarray, np.ndarray]]] = {d: [] for d in args.deltas}
    chosen = args.record_ids or np.random.default_rng(0).choice(n, args.records, replace=False)
    for i in chosen:
        if args.fd:  # the derivative by a finite difference (no reverse pass: big models)
            w = np.ones(n)
            w[i] = 1.0 - args.fd
            slope = -(losses(w) - base_l) / args.fd
            if grads is not None:
                g = grads[:, i]
                print(
                    f"  record {int(i):4d}  finite difference at {args.fd:g} vs metagradient:"
                    f" corr {np.corrcoef(slope, g)[0, 1]:+.3f}"
                    f"  median ratio {np.median(slope / g):+.3f}",
                    flush=True,
                )
        else:
            slope = grads[:, i]
        for d in args.deltas:
            w = np.ones(n)
            w[i] = 1.0 - d
            true = losses(w) - base_l
            pred = -d * slope
            corr = float(np.corrcoef(true, pred)[0, 1])
            ratio = float(np.median(true / pred))
            rows[d].append((corr, ratio))
            changes[d].append((true, pred))
            print(
                f"  record {int(i):4d}  delta {d:<7g} corr(true, predicted) {corr:+.3f}  "
                f"median true/predicted {ratio:+.3f}  mean |true| {np.abs(true).mean():.2e}",
                flush=True,
            )
    for d, v in rows.items():
        c, r = np.array(v).T
        true, pred = (np.array(x) for x in zip(*changes[d], strict=True))  # records x queries
        over_records = (
            [F.A.spearman(pred[:, q], true[:, q]) for q in range(true.shape[1])]
            if len(true) > 2
            else [float("nan")]
        )
        print(
            f"delta {d:<7g} mean corr {c.mean():+.3f}  mean ratio {r.mean():+.3f}"
            f"  Spearman over records (mean over queries) {np.mean(over_records):+.3f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
