"""Attribution on fixture families the fast index was not tuned on, in two LDS settings, with the
exact method (studio/attribution/exact.py) beside the fast default, kronfluence EK-FAC and TRAK.

Families (every one reported, wins and losses):
* ``tuned``    bench/attribution.py's fixture (the one the fast default was tuned on, on seeds
               10-13): 8 synthetic contributors, tiny Llama (hidden 64, 2 layers), LoRA on
               q,v,up,down.
* ``targets``  the same data, LoRA on the studio's default Llama target set
               (q,k,v,o,gate,up,down), rank 8.
* ``size``     a bigger tiny model (hidden 128, 3 layers, MLP 256) and longer records (12-18
               pseudo-words, about twice the tokens).
* ``datanet``  natural text: the sentences of resources/sample-datanet, one contributor per
               source file, each with one planted fact (a canary) in an order used nowhere else.

Every model is trained through the exact replay's own forward step (float32, eager attention),
so the model the other methods score is the run the exact method differentiates (in float64).

LDS settings (record level, Spearman over M subsets, averaged over queries):
* ``usual``   M random halves of the records, each retrained with a fresh seed (new LoRA init
              and data order): predicting the learning algorithm, seed noise included.
* ``single``  for each drop fraction (--drops, default 1%, 2.5%, 5%, 10%), M random drops of that
              fraction, retrained with the same seed, init and batches (dropped records weigh 0):
              predicting this model (MAGIC's single-model setting, the one a validator re-runs);
              LDS near 1 at small drops and falling with larger ones says how linear the run is.
              (--drop-weight w retrains with the drawn records weighted w instead of 0: at w
              near 1 a correct metagradient must predict the change; bench/exact_linearity.py
              measures the same per record.)
Methods: ``ours`` (the fast default), ``ours-cal`` (the fast index with damping and projection
picked per model by agreement with exact attributions of 4 held-out calibration sentences, never
the evaluation queries), ``exact`` (this model's metagradient), ``exact-avg`` (the mean exact
metagradient over --replays replays with seeds used nowhere else: the algorithm, not one model),
``exact-sub`` (the mean over --replays random halves of the data, each trained as a retrain is,
of the metagradient at that half's weights: where the usual setting's retrains are),
``exact-sub-norm`` (the same draws, each scaled to unit length per query before the mean),
kronfluence EK-FAC (all queries in one call: its best per-query latency) and TRAK (dattri).
Canary recall@1 (the planted fact's own record ranked first for its query), per-query latency
(exact: one replay shared by all queries, divided by their number), build time (index/factors;
exact: none) and peak memory (process RSS above the level before the method, sampled every
10 ms) complete the table. Validation loss (held-out sentences) says how well a setting trains.

Latency columns: query_ms is wall time (at nice 15 on a shared machine mostly waiting for a
core), query_cpu_ms the process CPU time of one query per call (EK-FAC: median of the first 3
queries, one call each), batch_cpu_ms the CPU time per query with all queries in one call (ours:
batches of 8 and one product; EK-FAC: its query_ms figure). ``ours-grid`` scores the fast index
at every point of OURS_GRID (damping x LoRA matrices, and k = 256), for a choice made on held-out
seeds only by bench/attribution_grid_pick.py. Fast-index variants tried on held-out seeds (run
only when named): ``ours-ckpt2`` / ``ours-ckpt4`` (the fast index on the model after 1/2, or
1/4 1/2 3/4, of the steps beside the final one, each query's scores scaled to unit length per
checkpoint, then averaged; ``-raw``: plain mean), ``adam-final`` / ``adam-traj`` (first-order
influence with AdamW's own diagonal preconditioner, at the end or summed over four points of
the run) and ``sgd-final`` (the plain gradient dot product).
``ours-sketch`` and ``ours-pick`` (on request) score the count-sketch of wide rows and the
damping points combined from the starter model's held-out grid (SKETCH_GRID, PICK_GRID).
``smollm2`` is not a fixture family but the studio's starter model (SmolLM2-135M-Instruct,
pretrained, converted once under $SMOLLM2_HOME or the temp folder) on the datanet fixture: is
a real model's LoRA run as linear in its record weights as the tiny ones? Run it on its own.

No setting was tuned on the evaluation seeds (0 1 2): the fast default is studio's (chosen on
seeds 10-13 of ``tuned``), the smooth optimizer setting was picked on seed 10, the exact method
has none (its block spacing changes memory only), kronfluence and TRAK run as
bench/attribution.py runs them.

Results, the commands that produced them and the conditions: docs/attribution.md.

Usage: .venv/bin/python bench/attribution_families.py [--families ...] [--seeds 0 1 2]
       [--subsets 16] [--drops 0.01 0.025 0.05 0.1] [--drop-weight 0] [--opt usual|smooth]
       [--replays 4]
       [--methods ours ours-cal ours-grid ours-sketch ours-pick exact exact-avg exact-sub
                  exact-sub-norm kronfluence-ekfac trak-dattri ours-ckpt2 ours-ckpt4 ...]
       [--json PATH] [--cache DIR]

(--cache DIR keeps each seed's retrain losses: a later run of other methods on the same family,
seed and setting skips the retraining, most of a run's time on the starter model.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import attribution as A  # noqa: E402  (bench/attribution.py: fixture, methods, metrics)

ALL7 = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class Family:
    name: str
    targets: list[str]
    rank: int = 4
    hidden: int = 64
    layers: int = 2
    inter: int = 128
    words: tuple[int, int] = (6, 9)
    epochs: int = 6
    lr: float = 4e-3
    bs: int = 8
    eps: float = 1e-8
    warmup: float = 0.0  # fraction of the steps with a linear warm-up (then constant)


# Optimizer settings (--opt). "usual" is the bench's (and bench/attribution.py's) run. "smooth"
# was picked on held-out seed 10 of `tuned` only (--seeds 10 --eps/--lr/--warmup; validation loss
# within the seed-to-seed spread): a large AdamW eps (1e-3: where a gradient's RMS is below eps
# the step shrinks with the gradient, SGD-like, instead of staying unit-size; eps 1e-6 trained
# to the same validation loss as 1e-8 to 4 decimals, so it changes nothing), a 10% warm-up, and
# the learning rate raised to 1e-2 to train as far as the usual run in the same steps.
OPT_SETTINGS: dict[str, dict[str, float]] = {
    "usual": {},
    "smooth": {"eps": 1e-3, "warmup": 0.1, "lr": 1e-2},
}


FAMILIES = {
    "tuned": Family("tuned", A.TARGETS),
    "targets": Family("targets", ALL7, rank=8),
    "size": Family("size", A.TARGETS, hidden=128, layers=3, inter=256, words=(12, 18), epochs=4),
    "datanet": Family("datanet", A.TARGETS),
    # not a fixture family: the studio's starter model (SmolLM2-135M-Instruct, pretrained) on the
    # datanet fixture with the studio trainer's LoRA (rank 8 on all seven matrices) and learning
    # rate (2e-4, 5% warm-up; constant after it, no clipping: the bench's loop), to see whether
    # a real model's run is as linear in its record weights as the tiny ones (exact single-model
    # LDS). Costly on CPU: run on its own (--families smollm2); --opt/--lr apply to it too.
    "smollm2": Family("smollm2", ALL7, rank=8, lr=2e-4, warmup=0.05),
}
# where the starter model is converted once (bench runs share it); SMOLLM2_HOME overrides
SMOLLM2_MODELS = Path(os.environ.get("SMOLLM2_HOME", Path(tempfile.gettempdir()) / "bench-models"))


def family_setup(fam: Family, seed: int, folder: Path) -> tuple[Path, A.Fixture]:
    """A family's base model folder (a tiny model built into `folder`, or the starter) and
    fixture for a seed."""
    if fam.name == "smollm2":
        base, tok = _starter()
        return base, datanet_fixture(seed, tok=tok)
    from studio.train.tiny import build_tiny_model

    fx = datanet_fixture(seed) if fam.name == "datanet" else synthetic_fixture(seed, fam)
    base = build_tiny_model(
        folder, seed=seed, hidden_size=fam.hidden, layers=fam.layers, intermediate_size=fam.inter
    )
    return base, fx


def _starter() -> tuple[Path, Any]:
    from studio.train.catalog import ensure_bundled, load_tokenizer

    base = ensure_bundled("smollm2-135m", SMOLLM2_MODELS)
    tok = load_tokenizer(base)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return base, tok


# -- fixtures ------------------------------------------------------------------------------------


def synthetic_fixture(seed: int, fam: Family) -> A.Fixture:
    if fam.words == (6, 9):
        return A.build_fixture(seed)
    # bench/attribution.py's generator with longer sentences
    orig = A._sentence
    lo, hi = fam.words

    def longer(rng: random.Random, words: list[str], c: int, n: int) -> str:
        return orig(rng, words, c, rng.randint(lo, hi))

    A._sentence = longer  # type: ignore[assignment]
    try:
        return A.build_fixture(seed)
    finally:
        A._sentence = orig  # type: ignore[assignment]


def _sentences(text: str) -> list[str]:
    text = re.sub(r"[#*`>|]", " ", text)
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [" ".join(p.split()) for p in parts if len(p.split()) >= 5]


def datanet_fixture(seed: int, max_bytes: int = 96, tok: Any = None) -> A.Fixture:
    """Sentences of the sample Datanet; contributor = source file; one planted fact each
    (tokenised byte by byte for the tiny models, or by `tok`)."""
    from studio.train.tiny import byte_tokenizer

    tok = tok or byte_tokenizer()
    rng = random.Random(2000 + seed)
    sample = ROOT / "resources" / "sample-datanet"
    files = json.loads((sample / "manifest.json").read_text())["files"]
    train: list[A.Example] = []
    style_q: list[A.Example] = []
    canary_q: list[A.Example] = []
    canary_rows: list[int] = []
    for c, f in enumerate(files):
        raw = (sample / f["file"]).read_text()
        if f["file"].endswith(".jsonl"):
            raw = "\n".join(
                f"{d['prompt']} {d['response']}"
                for d in (json.loads(x) for x in raw.splitlines() if x.strip())
            )
        sents = _sentences(raw)
        rng.shuffle(sents)
        held, kept = sents[:2], sents[2:]
        for s in kept:
            ids = A._encode(tok, s[:max_bytes])
            train.append(A.Example(ids, list(ids), c))
        words = sorted({w.strip(".,;:()\"'").lower() for s in kept for w in s.split()} - {""})
        words = [w for w in words if w.isalpha() and len(w) > 3]
        prefix = f"{Path(f['file']).stem} fact: "
        secret = " ".join(rng.sample(words, 5)) + "."
        ids = A._encode(tok, prefix + secret)
        canary_rows.append(len(train))
        train.append(A.Example(ids, list(ids), c, canary=True))
        p = len(tok(prefix, add_special_tokens=False)["input_ids"])
        canary_q.append(A.Example(ids, [A.IGNORE] * p + ids[p:], c))
        for s in held:
            ids = A._encode(tok, s[:max_bytes])
            style_q.append(A.Example(ids, list(ids), c))
    for i, e in enumerate(train):
        e.record_id = i + 1
    return A.Fixture(train, style_q, canary_q, canary_rows, len(files), tok)


# -- training through the replay ------------------------------------------------------------------


_BASES: dict[str, Any] = {}


def make_record(
    base: Path, exs: list[A.Example], fam: Family, seed: int, n_records: int, pad: int
) -> Any:
    """The replay record of bench/attribution.py's training loop (python-random order per epoch,
    mean over examples of each example's mean token loss, AdamW, constant LR, no clipping)."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from studio.train.replay_record import ReplayRecord

    key = str(base)
    if key not in _BASES:
        _BASES[key] = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(seed)
    model = get_peft_model(
        copy.deepcopy(_BASES[key]),
        LoraConfig(
            r=fam.rank, lora_alpha=2 * fam.rank, lora_dropout=0.0, target_modules=fam.targets
        ),
    )
    init = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    rows, coef = [], []
    for e in exs:
        row, c = _row(e)
        rows.append(row)
        coef.append(c)
    g = random.Random(seed)
    steps, scale = [], []
    for _ in range(fam.epochs):
        order = list(range(len(exs)))
        g.shuffle(order)
        for s in range(0, len(order), fam.bs):
            steps.append([order[s : s + fam.bs]])
            scale.append(float(len(order[s : s + fam.bs])))
    warm = int(round(fam.warmup * len(steps)))
    lrs = [fam.lr * min(1.0, (t + 1) / warm) if warm else fam.lr for t in range(len(steps))]
    return ReplayRecord(
        lora={"r": fam.rank, "alpha": 2 * fam.rank, "dropout": 0.0, "targets": fam.targets},
        optimizer={
            "betas": [0.9, 0.999],
            "eps": fam.eps,
            "weight_decay": 0.0,
            "max_grad_norm": 0.0,
        },
        lrs=lrs,
        steps=steps,
        step_scale=scale,
        rows=rows,
        records=[{"record_id": i + 1} for i in range(n_records)],
        pad_id=pad,
        init=init,
        row_coef=coef,
    )


def _row(e: A.Example) -> tuple[dict[str, Any], list[float]]:
    """One example as a replay row, and its per-token loss coefficient (the mean over its
    labelled tokens)."""
    n = max(1, sum(1 for y in e.labels[1:] if y != A.IGNORE))
    row = {
        "input_ids": e.input_ids,
        "labels": e.labels,
        "position_ids": list(range(len(e.input_ids))),
        "records": [e.record_id - 1] * len(e.input_ids),
    }
    return row, [1.0 / n] * len(e.input_ids)


class Trainer:
    """One float32 replay model per family and seed (loading it is the slow part)."""

    def __init__(self, base: Path, fx: A.Fixture, fam: Family) -> None:
        self.base, self.fx, self.fam = base, fx, fam
        self.models: dict[str, Any] = {}

    def replay(self, record: Any, dtype: str = "float32") -> Any:
        from studio.attribution import exact as X

        if dtype not in self.models:
            self.models[dtype] = X.load_replay(record, self.base, dtype=dtype)
        rep = self.models[dtype]
        rep.record = record
        return rep

    def fit(
        self, seed: int, weights: np.ndarray | None = None, subset: np.ndarray | None = None
    ) -> Any:
        from studio.attribution import exact as X

        n = len(self.fx.train)
        exs = (
            self.fx.train if subset is None else [self.fx.train[i] for i in np.flatnonzero(subset)]
        )
        rec = make_record(self.base, exs, self.fam, seed, n, self.fx.tok.pad_token_id)
        rep = self.replay(rec)
        final, _ = X.train(rep, weights)
        return rec, rep, final

    def losses(self, rep: Any, final: Any, queries: list[A.Example]) -> np.ndarray:
        import torch

        from studio.attribution import exact as X

        with torch.no_grad():
            return np.array(
                [float(X.query_loss(rep, final, (q.input_ids, q.labels))) for q in queries]
            )

    def peft_model(self, rep: Any, final: Any) -> Any:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        fam = self.fam
        m = get_peft_model(
            AutoModelForCausalLM.from_pretrained(self.base),
            LoraConfig(
                r=fam.rank, lora_alpha=2 * fam.rank, lora_dropout=0.0, target_modules=fam.targets
            ),
        )
        named = dict(m.named_parameters())
        with torch.no_grad():
            for name, v in zip(rep.names, final, strict=True):
                named[name].copy_(v.float())
        m.eval()
        return m


# -- the exact method and memory sampling --------------------------------------------------------


def exact_plan(rep: Any, queries: int) -> dict[str, Any]:
    """The studio's own estimate for this replay: its block spacing and whether the queries
    share one vmapped product (memory only: the numbers do not depend on either), or a clear
    refusal when it needs more memory than the machine has (rather than the kernel killing the
    whole run)."""
    from studio.attribution import exact as X

    dtype = str(rep.dtype).removeprefix("torch.")
    est = X.estimate(rep.record, rep.model.config, queries=queries, dtype=dtype)
    if not est["fits"]:
        raise MemoryError(f"{X.describe(est)}: too large for this machine")
    return {"block": int(est["block"]), "batched": bool(est["batched"])}


def run_exact(trainer: Trainer, record: Any, queries: list[A.Example]) -> dict[str, Any]:
    from studio.attribution import exact as X

    rep = trainer.replay(record, "float64")
    plan = exact_plan(rep, len(queries))
    t0, c0 = time.perf_counter(), time.process_time()
    grads, _ = X.metagradients(rep, [(q.input_ids, q.labels) for q in queries], **plan)
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "scores": -grads,
        "latency": total / len(queries),
        "cpu": cpu / len(queries),
        "build": 0.0,
    }


def run_exact_avg(trainer: Trainer, seed: int, queries: list[A.Example], k: int) -> dict[str, Any]:
    """The exact metagradient of the learning algorithm rather than of one model: the mean over
    k replays of the full data with seeds used nowhere else (not the model's, not the retrains')."""
    from studio.attribution import exact as X

    n, pad = len(trainer.fx.train), trainer.fx.tok.pad_token_id
    t0, c0 = time.perf_counter(), time.process_time()
    total = np.zeros((len(queries), n))
    for j in range(k):
        rec = make_record(
            trainer.base, trainer.fx.train, trainer.fam, 30_000 + 97 * seed + j, n, pad
        )
        rep = trainer.replay(rec, "float64")
        grads, _ = X.metagradients(
            rep,
            [(q.input_ids, q.labels) for q in queries],
            **exact_plan(rep, len(queries)),
        )
        total += -grads
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "scores": total / k,
        "latency": elapsed / len(queries),
        "cpu": cpu / len(queries),
        "build": 0.0,
    }


def unit_rows(m: np.ndarray) -> np.ndarray:
    """Each query's scores (a row) scaled to unit length (a row of zeros stays zero)."""
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-300)


_SUB_DRAWS: dict[tuple[str, int, int], tuple[list[np.ndarray], float, float]] = {}


def run_exact_sub(
    trainer: Trainer, seed: int, queries: list[A.Example], k: int, *, norm: bool = False
) -> dict[str, Any]:
    """The exact metagradient where the usual setting's retrains are: at k random halves of the
    data (seeds used nowhere else), each trained as a retrain is (the half alone, its own order
    and steps), with the other half in every step at weight 0, so that their gradient is the
    effect of adding them. The mean over the k draws is the score; with `norm` (exact-sub-norm)
    each draw's scores of a query are scaled to unit length first, so that one draw whose run
    is chaotic in the weights (derivatives far larger than any retrain's change) does not
    outvote the others. The two share their draws within one run of the bench."""
    key = (trainer.fam.name, seed, k)
    if key not in _SUB_DRAWS:
        _SUB_DRAWS[key] = _exact_sub_draws(trainer, seed, queries, k)
    draws, elapsed, cpu = _SUB_DRAWS[key]
    if norm:
        draws = [unit_rows(g) for g in draws]
    return {
        "scores": np.mean(draws, axis=0),
        "latency": elapsed / len(queries),
        "cpu": cpu / len(queries),
        "build": 0.0,
    }


def _exact_sub_draws(
    trainer: Trainer, seed: int, queries: list[A.Example], k: int
) -> tuple[list[np.ndarray], float, float]:
    from studio.attribution import exact as X

    fx, n, pad = trainer.fx, len(trainer.fx.train), trainer.fx.tok.pad_token_id
    t0, c0 = time.perf_counter(), time.process_time()
    draws = []
    for j in range(k):
        draw = 40_000 + 97 * seed + j
        mask = np.zeros(n, dtype=bool)
        mask[np.random.default_rng(draw).choice(n, n // 2, replace=False)] = True
        inside, outside = np.flatnonzero(mask), np.flatnonzero(~mask)
        rec = make_record(trainer.base, [fx.train[i] for i in inside], trainer.fam, draw, n, pad)
        # The left-out rows go into a micro-batch of their own, spread evenly over each epoch's
        # steps, so the trained half's batches stay exactly the retrain's.
        per_epoch = len(rec.steps) // trainer.fam.epochs
        for e in range(trainer.fam.epochs):
            order = [int(i) for i in outside]
            random.Random(draw * 31 + e).shuffle(order)
            for s in range(per_epoch):
                rows = []
                for i in order[s::per_epoch]:
                    rows.append(len(rec.rows))
                    row, c = _row(fx.train[i])
                    rec.rows.append(row)
                    rec.row_coef.append(c)
                rec.steps[e * per_epoch + s].append(rows)
        rep = trainer.replay(rec, "float64")
        grads, _ = X.metagradients(
            rep,
            [(q.input_ids, q.labels) for q in queries],
            **exact_plan(rep, len(queries)),
            weights=mask.astype(np.float64),
        )
        draws.append(-grads)
    return draws, time.perf_counter() - t0, time.process_time() - c0


# The fast index's settings tried per family (--methods ours-grid): every point is scored on
# every seed, and a point is chosen on held-out seeds only (bench/attribution_grid_pick.py).
# Damping 1e-6 x the mean eigenvalue with A and B is kronfluence as the bench runs it
# (ScoreArguments' default damping is an absolute 1e-8, not its 0.1 x mean heuristic).
OURS_GRID = [
    *(
        {"damping": d, "proj_dim": 128, "lora_params": lp}
        for lp in ("B", "AB")
        for d in (1e-6, 1e-3, 0.01, 0.03, 0.1, 0.3, 1.0)
    ),
    {"damping": 0.1, "proj_dim": 256, "lora_params": "B"},
]


# The count-sketch that keeps a wide model's index bounded (GradientConfig.compress_dim; the
# starter model's rows are 30 layers x 7 matrices x 8 x 128 = 215,040 wide): none, 4x wider,
# and the default with other sketch seeds (how much of a difference is the sketch's draw; the
# seed also draws the projection).
SKETCH_GRID = [
    *(
        {"damping": 0.1, "proj_dim": 128, "lora_params": "B", "compress_dim": c, "seed": sd}
        for c, sd in ((0, 0), (65536, 0), (16384, 1), (16384, 2))
    ),
    # and no projection either (every lora_B whole: 1,244,160 columns a record here)
    {"damping": 0.1, "proj_dim": 4096, "lora_params": "B", "compress_dim": 0, "seed": 0},
]


# Points picked from OURS_GRID and SKETCH_GRID on held-out seed 10 of the starter model (more
# damping and a wider sketch each helped there), combined: to choose one on that seed only.
PICK_GRID = [
    {"damping": d, "proj_dim": 128, "lora_params": lp, "compress_dim": c, "seed": 0}
    for d, lp, c in (
        (1.0, "B", 65536),
        (3.0, "B", 65536),
        (3.0, "B", 16384),
        (1.0, "AB", 65536),
        (10.0, "B", 65536),
    )
]


def grid_tag(point: dict[str, Any]) -> str:
    extra = "".join(f",{k[0]}={point[k]}" for k in ("compress_dim", "seed") if k in point)
    return f"ours[d={point['damping']:g},p={point['proj_dim']},{point['lora_params']}{extra}]"


CAL_GRID = [
    {"damping": d, "proj_dim": p} for p in (64, 128, 256) for d in (0.01, 0.03, 0.1, 0.3, 1.0)
]


def run_ours_calibrated(
    model: Any,
    trainer: Trainer,
    record: Any,
    fx: A.Fixture,
    queries: list[A.Example],
    cal_queries: list[A.Example],
    tmp: Path,
) -> dict[str, Any]:
    """The fast index with damping and projection picked per model: exact attributions of a few
    calibration queries (held-out sentences, not the evaluation queries) are the target, and the
    grid point whose scores correlate best with them (mean Spearman over records) is kept."""
    from studio.attribution import exact as X

    t0 = time.perf_counter()
    rep = trainer.replay(record, "float64")
    grads, _ = X.metagradients(
        rep,
        [(q.input_ids, q.labels) for q in cal_queries],
        **exact_plan(rep, len(cal_queries)),
    )
    target = -grads
    best, best_r = CAL_GRID[0], -2.0
    for point in CAL_GRID:
        r = A.run_ours(model, fx, cal_queries, tmp / "cal", **point)
        rho = float(np.mean([A.spearman(a, b) for a, b in zip(r["scores"], target, strict=True)]))
        if rho > best_r:
            best, best_r = point, rho
    cal_s = time.perf_counter() - t0
    out = A.run_ours(model, fx, queries, tmp / "cal-final", **best)
    out["build"] += cal_s
    out["chosen"] = {**best, "spearman_vs_exact": round(best_r, 4)}
    return out


# ours-ckpt: the fast index built on checkpoints of the same run (fractions of its steps) beside
# the final model, each query's scores scaled to unit length per checkpoint and averaged (a
# TracIn-CP-like ensemble over the trajectory; the fast query's cost times the checkpoints).
CKPT_SETS = {"ours-ckpt2": (0.5, 1.0), "ours-ckpt4": (0.25, 0.5, 0.75, 1.0)}
CKPT_RAW = {"ours-ckpt2-raw": "ours-ckpt2", "ours-ckpt4-raw": "ours-ckpt4"}  # plain mean


def trajectory(trainer: Trainer, record: Any) -> tuple[Any, dict[int, Any]]:
    """The float32 replay and its full state (parameters, AdamW moments) after every step, the
    last included."""
    from studio.attribution import exact as X

    rep = trainer.replay(record)
    T = record.total_steps
    _, kept = X.train(rep, None, keep_every=1)
    kept[T] = X.step(rep, T - 1, kept[T - 1], X._weights(rep), graph=False)
    return rep, kept


def step_at(fraction: float, total: int) -> int:
    """The step count after `fraction` of the run (at least one step: LoRA starts at zero)."""
    return total if fraction >= 1.0 else max(1, int(round(fraction * total)))


def checkpoint_scores(
    trainer: Trainer, record: Any, fx: A.Fixture, queries: list[A.Example], tmp: Path
) -> dict[float, dict[str, Any]]:
    """run_ours() on the model after each fraction of the steps any CKPT_SETS entry names."""
    rep, kept = trajectory(trainer, record)
    out = {}
    for f in sorted({f for fs in CKPT_SETS.values() for f in fs}):
        params = kept[step_at(f, record.total_steps)][0]
        out[f] = A.run_ours(trainer.peft_model(rep, params), fx, queries, tmp / f"ckpt-{f:g}")
    return out


def combine_checkpoints(per: dict[float, dict[str, Any]], fracs: tuple[float, ...], norm: bool):
    mats = [np.asarray(per[f]["scores"], dtype=np.float64) for f in fracs]
    if norm:
        mats = [unit_rows(m) for m in mats]
    out = {"scores": np.mean(mats, axis=0)}
    for k in ("latency", "cpu", "batch_cpu", "build"):
        if all(k in per[f] for f in fracs):
            out[k] = sum(per[f][k] for f in fracs)
    return out


# adam-*: first-order influence under the run's own optimizer (TracIn with Adam's diagonal
# preconditioner, as LESS uses it): score = query gradient . train gradient / (sqrt(v) + eps),
# v the AdamW second moment at that point of the run; -final at the end only, -traj summed over
# four points of the trajectory weighted by their learning rate.
ADAM_SETS = {"adam-final": (1.0,), "adam-traj": (0.25, 0.5, 0.75, 1.0), "sgd-final": (1.0,)}


def run_adam_tracin(
    trainer: Trainer, record: Any, fx: A.Fixture, queries: list[A.Example], fracs, precond: bool
) -> dict[str, Any]:
    import torch

    from studio.attribution import exact as X

    t0 = time.perf_counter()
    rep, kept = trajectory(trainer, record)
    T = record.total_steps
    opt = record.optimizer
    b2, eps = float(opt["betas"][1]), float(opt["eps"])

    def grads(params: list[Any], exs: list[A.Example]) -> torch.Tensor:
        ps = [p.detach().clone().requires_grad_(True) for p in params]
        rows = []
        for e in exs:
            g = torch.autograd.grad(X.query_loss(rep, ps, (e.input_ids, e.labels)), ps)
            rows.append(torch.cat([x.reshape(-1) for x in g]).double())
        return torch.stack(rows)

    scores = np.zeros((len(queries), len(fx.train)))
    cpu = 0.0
    for f in fracs:
        t = step_at(f, T)
        params, _, v = kept[t]
        vv = torch.cat([x.reshape(-1) for x in v]).double()
        p = 1.0 / (torch.sqrt(vv / (1 - b2**t)) + eps) if precond else torch.ones_like(vv)
        g_train = grads(params, fx.train) * p
        c0 = time.process_time()
        g_q = grads(params, queries)
        scores += float(record.lrs[min(t, T - 1)]) * (g_q @ g_train.T).numpy()
        cpu += time.process_time() - c0
    return {
        "scores": scores,
        "latency": cpu / len(queries),
        "cpu": cpu / len(queries),
        "build": time.perf_counter() - t0,
    }


class PeakRSS:
    def __init__(self) -> None:
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRSS:
        self._t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 2**20


# -- one family, one seed ------------------------------------------------------------------------


def _truth_path(
    cache: Path, fam: Family, seed: int, subsets: int, drops: list[float], dtype: str, w: float
) -> Path:
    """One file per retrain setting: every field of the family (optimizer and epochs included)
    and of the run that changes the retrains' losses goes into its name's hash. The file of the
    k-th drop fraction is keyed by the fractions up to it (its masks are drawn after theirs), and
    the first one also holds the usual setting's losses."""
    key = json.dumps([vars(fam), seed, subsets, list(drops), dtype, w], sort_keys=True, default=str)
    tag = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache / f"truth-{fam.name}-s{seed}-{tag}.npz"


def _load_truth(cache: Path | None, *key: Any) -> dict[str, np.ndarray]:
    if cache is None:
        return {}
    path = _truth_path(cache, *key)
    if not path.exists():
        return {}
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _save_truth(cache: Path, *key: Any, **arrays: np.ndarray) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    path = _truth_path(cache, *key)
    tmp = path.with_suffix(".part.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def run_family_seed(
    fam: Family,
    seed: int,
    subsets: int,
    methods: list[str],
    tmp: Path,
    drops: list[float],
    truth_dtype: str = "float32",
    replays: int = 4,
    drop_weight: float = 0.0,
    cache: Path | None = None,
    scores_dir: Path | None = None,
) -> dict[str, Any]:
    import torch

    from studio.attribution import exact as X

    _BASES.clear()

    torch.set_num_threads(1)
    base, fx = family_setup(fam, seed, tmp / f"base-{fam.name}-{seed}")
    # One style query per contributor (the first) and every canary query: the exact method's cost
    # grows with the number of queries, and every method is scored on the same ones. The other
    # held-out sentences are the validation set (its loss says how well a setting trains) and
    # the calibration queries of `ours-cal` (never the evaluation queries).
    every = len(fx.style_queries) // fx.contributors
    style = [q for i, q in enumerate(fx.style_queries) if i % every == 0]
    held = [q for i, q in enumerate(fx.style_queries) if i % every != 0]
    fx.style_queries = style
    queries = fx.style_queries + fx.canary_queries
    nq = len(fx.style_queries)
    trainer = Trainer(base, fx, fam)
    t0 = time.perf_counter()
    record, rep, final = trainer.fit(seed)
    t_train = time.perf_counter() - t0
    val_loss = float(np.mean(trainer.losses(rep, final, held)))
    n = len(fx.train)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()

    # (the masks are drawn whether or not the losses come from the cache: the same draws)
    def key(k: int) -> tuple[Any, ...]:
        return (fam, seed, subsets, drops[: k + 1], truth_dtype, drop_weight)

    got = [_load_truth(cache, *key(k)) for k in range(max(1, len(drops)))]
    retrain_usual = "usual" not in got[0]
    if retrain_usual:
        got = [{} for _ in got]  # (drop files go with the usual losses they were drawn after)
    usual_masks = np.zeros((subsets, n), dtype=bool)
    usual_losses = []
    for m in range(subsets):
        usual_masks[m, rng.choice(n, n // 2, replace=False)] = True
        if retrain_usual:
            _, r, f = trainer.fit(10_000 + 97 * seed + m, subset=usual_masks[m])
            usual_losses.append(trainer.losses(r, f, queries))
    usual_l = got[0].get("usual", np.array(usual_losses))
    single: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for k, drop in enumerate(drops):
        masks = np.ones((subsets, n), dtype=bool)
        losses = []
        cached = got[k].get(f"single{k}")
        for m in range(subsets):
            masks[m, rng.choice(n, max(1, int(round(drop * n))), replace=False)] = False
            if cached is None:
                r = trainer.replay(record, truth_dtype)
                f, _ = X.train(r, np.where(masks[m], 1.0, drop_weight))
                losses.append(trainer.losses(r, f, queries))
        single[drop] = (masks, np.array(losses) if cached is None else cached)
        if cached is None and cache is not None:
            _save_truth(
                cache,
                *key(k),
                **{f"single{k}": single[drop][1]},
                **({"usual": usual_l} if k == 0 else {}),
            )
    if not drops and retrain_usual and cache is not None:
        _save_truth(cache, *key(0), usual=usual_l)
    t_retrain = time.perf_counter() - t0
    model = trainer.peft_model(rep, final)
    res: dict[str, Any] = {
        "family": fam.name,
        "seed": seed,
        "records": n,
        "queries": len(queries),
        "steps": record.total_steps,
        "optimizer": {"lr": fam.lr, "eps": fam.eps, "warmup": fam.warmup},
        "drop_weight": drop_weight,
        "val_loss": round(val_loss, 4),
        "train_s": round(t_train, 2),
        "retrain_s": round(t_retrain, 1),
        "methods": {},
    }
    work = tmp / f"{fam.name}-{seed}"
    runners = {
        "ours": lambda: A.run_ours(model, fx, queries, work),
        "ours-cal": lambda: run_ours_calibrated(
            model, trainer, record, fx, queries, held[:4], work
        ),
        "exact": lambda: run_exact(trainer, record, queries),
        "exact-avg": lambda: run_exact_avg(trainer, seed, queries, replays),
        "exact-sub": lambda: run_exact_sub(trainer, seed, queries, replays),
        "exact-sub-norm": lambda: run_exact_sub(trainer, seed, queries, replays, norm=True),
        "kronfluence-ekfac": lambda: A.run_kronfluence(model, fx, queries, work, batched=True),
        "trak-dattri": lambda: A.run_trak(model, fx, queries, work),
    }
    print(
        f"  {fam.name} seed {seed}: val loss {val_loss:.4f}, train {t_train:.1f} s, "
        f"retrains {t_retrain:.0f} s",
        flush=True,
    )
    todo: list[tuple[str, Any]] = []
    per_ckpt: dict[float, dict[str, Any]] = {}

    def ckpt(name: str) -> dict[str, Any]:
        if not per_ckpt:
            per_ckpt.update(checkpoint_scores(trainer, record, fx, queries, work / "ckpt"))
        return combine_checkpoints(
            per_ckpt, CKPT_SETS[CKPT_RAW.get(name, name)], norm=name not in CKPT_RAW
        )

    for name in methods:
        if name in ADAM_SETS:
            todo.append(
                (
                    name,
                    lambda name=name: run_adam_tracin(
                        trainer, record, fx, queries, ADAM_SETS[name], not name.startswith("sgd")
                    ),
                )
            )
        elif name in CKPT_SETS or name in CKPT_RAW:
            todo.append((name, lambda name=name: ckpt(name)))
        elif name in GRIDS:
            todo += [
                (grid_tag(pt), lambda pt=pt: A.run_ours(model, fx, queries, work / "grid", **pt))
                for pt in GRIDS[name]
            ]
        else:
            todo.append((name, runners[name]))
    for name, runner in todo:
        try:
            with PeakRSS() as mem:
                r = runner()
        except ModuleNotFoundError as e:
            res["methods"][name] = {
                "missing": f"{e.name} is not installed (pip install --no-deps {e.name})"
            }
            continue
        except Exception as e:  # noqa: BLE001 - a baseline that fails is reported, not fatal
            res["methods"][name] = {"failed": f"{type(e).__name__}: {e}"}
            traceback.print_exc()
            continue
        s = np.asarray(r["scores"], dtype=np.float64)
        if scores_dir is not None:  # (to score other drop fractions later without re-running)
            scores_dir.mkdir(parents=True, exist_ok=True)
            safe = re.sub(r"[^\w.=,-]", "_", name)
            np.save(scores_dir / f"{fam.name}-s{seed}-{safe}.npy", s)
        row = {"lds_usual": round(A.lds(s, usual_masks, usual_l), 4)}
        for drop, (masks, losses) in single.items():
            row[f"single@{drop:g}"] = round(A.lds(s, masks, losses), 4)
        row.update(
            {
                "canary@1": A.canary_recall(s[nq:], fx, 1),
                "query_ms": round(1000 * r["latency"], 2),
                # CPU seconds of the query work (wall time at nice 15 on a loaded machine is
                # mostly waiting for a core: a same-run CPU ratio is the fair comparison)
                "query_cpu_ms": round(1000 * r["cpu"], 2) if "cpu" in r else None,
                # per query when all queries go in one call (kronfluence's latency column)
                "batch_cpu_ms": round(1000 * r["batch_cpu"], 2) if "batch_cpu" in r else None,
                "build_s": round(r["build"], 2),
                "peak_mb": round(mem.mb, 1),
            }
        )
        if "chosen" in r:
            row["chosen"] = r["chosen"]
        res["methods"][name] = row
        print(f"  {fam.name} seed {seed} {name:<18} {json.dumps(row)}", flush=True)
    return res


METHODS = [
    "ours",
    "ours-cal",
    "ours-grid",
    "ours-sketch",
    "ours-pick",
    *CKPT_SETS,
    *CKPT_RAW,
    *ADAM_SETS,
    "exact",
    "exact-avg",
    "exact-sub",
    "exact-sub-norm",
    "kronfluence-ekfac",
    "trak-dattri",
]

# run only when named: the grid, and the fast-index variants tried on held-out seeds
GRIDS = {"ours-grid": OURS_GRID, "ours-sketch": SKETCH_GRID, "ours-pick": PICK_GRID}
ON_REQUEST = {*GRIDS, *CKPT_SETS, *CKPT_RAW, *ADAM_SETS}


def keys(drops: list[float]) -> list[str]:
    return [
        "lds_usual",
        *[f"single@{d:g}" for d in drops],
        "canary@1",
        "query_ms",
        "query_cpu_ms",
        "batch_cpu_ms",
        "build_s",
        "peak_mb",
    ]


def summarize(
    out: list[dict[str, Any]], families: list[str], methods: list[str], drops: list[float]
) -> dict[str, Any]:
    ks = keys(drops)
    print(f"{'family':<9}{'method':<19}" + "".join(f"{k:>13}" for k in ks))
    summary: dict[str, Any] = {}
    for fname in families:
        runs = [r for r in out if r["family"] == fname]
        if runs:
            vl = [r["val_loss"] for r in runs]
            print(
                f"{fname:<9}val loss {np.mean(vl):.4f} ± {np.std(vl):.4f} over seeds "
                f"{' '.join(str(r['seed']) for r in runs)}"
            )
        for name in methods:
            rows = [r["methods"][name] for r in runs if "lds_usual" in r["methods"].get(name, {})]
            if not rows:
                why = next(
                    (v for r in runs for v in r["methods"].get(name, {}).values()), "not run"
                )
                print(f"{fname:<9}{name:<19}{why}")
                continue
            vals = {k: [np.nan if x.get(k) is None else x[k] for x in rows] for k in ks}
            mean = {k: float(np.mean(v)) for k, v in vals.items()}
            sd = {k: float(np.std(v)) for k, v in vals.items()}
            summary[f"{fname}/{name}"] = {"mean": mean, "std": sd, "seeds": len(rows)}
            print(
                f"{fname:<9}{name:<19}"
                + "".join(
                    f"{mean[k]:>8.3f}±{sd[k]:<4.2f}"
                    if k.startswith(("lds", "single"))
                    else f"{mean[k]:>13.4g}"
                    for k in ks
                )
            )
        o = summary.get(f"{fname}/ours")
        k = summary.get(f"{fname}/kronfluence-ekfac")
        if o and k and k["mean"]["lds_usual"]:
            print(
                f"{'':<9}ours / EK-FAC: LDS usual {o['mean']['lds_usual'] / k['mean']['lds_usual']:.2f}x, "
                f"per-query latency {k['mean']['query_ms'] / o['mean']['query_ms']:.1f}x lower "
                f"(CPU: one query per call {k['mean']['query_cpu_ms'] / o['mean']['query_cpu_ms']:.1f}x, "
                f"all queries in one call {k['mean']['batch_cpu_ms'] / o['mean']['batch_cpu_ms']:.1f}x)"
            )
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--families",
        nargs="+",
        default=[f for f in FAMILIES if f != "smollm2"],
        choices=list(FAMILIES),
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--subsets", type=int, default=16)
    ap.add_argument(
        "--drops",
        type=float,
        nargs="+",
        default=[0.01, 0.025, 0.05, 0.1],
        help="fractions dropped in the single-model setting (one LDS each)",
    )
    ap.add_argument(
        "--methods",
        nargs="+",
        default=[m for m in METHODS if m not in ON_REQUEST],
        choices=METHODS,
    )
    ap.add_argument("--opt", default="usual", choices=list(OPT_SETTINGS))
    ap.add_argument("--eps", type=float, default=None, help="override the setting's AdamW eps")
    ap.add_argument("--lr", type=float, default=None, help="override the setting's learning rate")
    ap.add_argument("--warmup", type=float, default=None, help="override the warm-up fraction")
    ap.add_argument(
        "--replays",
        type=int,
        default=4,
        help="replays averaged by exact-avg (seeds 30000+) and exact-sub (40000+)",
    )
    ap.add_argument(
        "--truth-dtype",
        default="float32",
        choices=("float32", "float64"),
        help="precision of the single-model retrains (float64: the run exact differentiates)",
    )
    ap.add_argument(
        "--drop-weight",
        type=float,
        default=0.0,
        help="weight of the dropped records in the single-model retrains (0: removed; 0.9: a "
        "small perturbation, where a correct metagradient must predict the change)",
    )
    ap.add_argument("--epochs", type=int, default=None, help="override every family's epochs")
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--cache",
        default=None,
        help="folder keeping the retrains' query losses per family, seed and setting, so that "
        "a re-run (other methods, the same seed) skips the retraining",
    )
    ap.add_argument("--scores", default=None, help="folder for each method's score matrix (.npy)")
    args = ap.parse_args(argv)
    for f in FAMILIES.values():
        if args.epochs:
            f.epochs = args.epochs
        for k, v in OPT_SETTINGS[args.opt].items():
            setattr(f, k, v)
        for k in ("eps", "lr", "warmup"):
            if getattr(args, k) is not None:
                setattr(f, k, getattr(args, k))
    tmp = Path(tempfile.mkdtemp(prefix="attr-fam-"))
    out: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        for fname in args.families:
            for seed in args.seeds:
                print(
                    f"{fname} seed {seed} ({args.opt}): training + "
                    f"{args.subsets * (1 + len(args.drops))} retrains…",
                    flush=True,
                )
                out.append(
                    run_family_seed(
                        FAMILIES[fname],
                        seed,
                        args.subsets,
                        args.methods,
                        tmp,
                        args.drops,
                        args.truth_dtype,
                        args.replays,
                        args.drop_weight,
                        Path(args.cache) if args.cache else None,
                        Path(args.scores) if args.scores else None,
                    )
                )
                if args.json:
                    Path(args.json).write_text(json.dumps({"runs": out}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # the values trained with (--eps/--lr/--warmup override the named setting's)
    fam0 = FAMILIES[args.families[0]]
    print(
        f"\nmean ± std over seeds {' '.join(map(str, args.seeds))}; optimizer {args.opt} "
        f"(lr {fam0.lr:g}, eps {fam0.eps:g}, warm-up {fam0.warmup:g}); {args.subsets} subsets "
        f"per setting; {time.perf_counter() - t0:.0f} s in all"
    )
    shown = [
        t for m in args.methods for t in ([grid_tag(p) for p in GRIDS[m]] if m in GRIDS else [m])
    ]
    summary = summarize(out, args.families, shown, args.drops)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": out, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
