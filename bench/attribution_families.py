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
* ``single``  M random drops of 10% of the records, retrained with the same seed, init and
              batches (dropped records weigh 0): predicting this model (MAGIC's single-model
              setting, the one a validator re-runs).
Canary recall@1 (the planted fact's own record ranked first for its query), per-query latency
(exact: one replay shared by all queries, divided by their number), build time (index/factors;
exact: none) and peak memory (process RSS above the level before the method, sampled every
10 ms) complete the table.

No setting was tuned here: the fast default is studio's (chosen on seeds 10-13 of ``tuned``),
the exact method has none (its block spacing changes memory only), kronfluence and TRAK run
as bench/attribution.py runs them.

Last run (2 shared CPU cores at load ~20, so seed 0 only, 8 subsets per setting, 2 epochs;
`--families F --seeds 0 1 2 --subsets 8 --epochs 2`), record LDS usual / single-model:
  tuned    fast 0.479/0.277  exact 0.150/0.656  EK-FAC 0.507/0.342  TRAK 0.571/0.232
  targets  fast 0.473/0.390  exact 0.076/0.472  EK-FAC 0.481/0.311  TRAK 0.475/0.185
  datanet  fast 0.254/0.248  exact 0.135/0.641  EK-FAC 0.238/0.125  TRAK 0.224/0.500
  size     fast 0.726/0.552  (the other methods did not finish in time)
Fast per-query latency 0.14-0.40 s vs EK-FAC 24-30 s (kronfluence's per-query call). The exact
method is the best in the single-model setting but below 0.9 at 10% drops: the derivative is
exact (finite differences agree to 1e-6), the run is not linear at that scale (AdamW with
eps 1e-8 acts like sign descent on small gradients). Retraining the single-model subsets in
float64 (--truth-dtype float64) gave the same LDS, so float32 noise is not the cause.

Usage: .venv/bin/python bench/attribution_families.py [--families ...] [--seeds 0 1 2]
       [--subsets 16] [--methods ours exact kronfluence-ekfac trak-dattri] [--json PATH]
"""

from __future__ import annotations

import argparse
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


FAMILIES = {
    "tuned": Family("tuned", A.TARGETS),
    "targets": Family("targets", ALL7, rank=8),
    "size": Family("size", A.TARGETS, hidden=128, layers=3, inter=256, words=(12, 18), epochs=4),
    "datanet": Family("datanet", A.TARGETS),
}


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


def datanet_fixture(seed: int, max_bytes: int = 96) -> A.Fixture:
    """Sentences of the sample Datanet; contributor = source file; one planted fact each."""
    from studio.train.tiny import byte_tokenizer

    tok = byte_tokenizer()
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
        n = max(1, sum(1 for y in e.labels[1:] if y != A.IGNORE))
        rows.append(
            {
                "input_ids": e.input_ids,
                "labels": e.labels,
                "position_ids": list(range(len(e.input_ids))),
                "records": [e.record_id - 1] * len(e.input_ids),
            }
        )
        coef.append([1.0 / n] * len(e.input_ids))
    g = random.Random(seed)
    steps, scale = [], []
    for _ in range(fam.epochs):
        order = list(range(len(exs)))
        g.shuffle(order)
        for s in range(0, len(order), fam.bs):
            steps.append([order[s : s + fam.bs]])
            scale.append(float(len(order[s : s + fam.bs])))
    return ReplayRecord(
        lora={"r": fam.rank, "alpha": 2 * fam.rank, "dropout": 0.0, "targets": fam.targets},
        optimizer={"betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "max_grad_norm": 0.0},
        lrs=[fam.lr] * len(steps),
        steps=steps,
        step_scale=scale,
        rows=rows,
        records=[{"record_id": i + 1} for i in range(n_records)],
        pad_id=pad,
        init=init,
        row_coef=coef,
    )


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


def run_exact(trainer: Trainer, record: Any, queries: list[A.Example]) -> dict[str, Any]:
    from studio.attribution import exact as X

    rep = trainer.replay(record, "float64")
    t0 = time.perf_counter()
    grads, _ = X.metagradients(
        rep, [(q.input_ids, q.labels) for q in queries], block=8, batched=True
    )
    total = time.perf_counter() - t0
    return {"scores": -grads, "latency": total / len(queries), "build": 0.0}


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


def run_family_seed(
    fam: Family,
    seed: int,
    subsets: int,
    methods: list[str],
    tmp: Path,
    drop: float,
    truth_dtype: str = "float32",
) -> dict[str, Any]:
    import torch

    _BASES.clear()
    from studio.train.tiny import build_tiny_model

    torch.set_num_threads(1)
    fx = datanet_fixture(seed) if fam.name == "datanet" else synthetic_fixture(seed, fam)
    base = build_tiny_model(
        tmp / f"base-{fam.name}-{seed}",
        seed=seed,
        hidden_size=fam.hidden,
        layers=fam.layers,
        intermediate_size=fam.inter,
    )
    # One style query per contributor (the first) and every canary query: the exact method's cost
    # grows with the number of queries, and every method is scored on the same ones.
    style = [
        q
        for i, q in enumerate(fx.style_queries)
        if i % (len(fx.style_queries) // fx.contributors) == 0
    ]
    fx.style_queries = style
    queries = fx.style_queries + fx.canary_queries
    nq = len(fx.style_queries)
    trainer = Trainer(base, fx, fam)
    t0 = time.perf_counter()
    record, rep, final = trainer.fit(seed)
    t_train = time.perf_counter() - t0
    n = len(fx.train)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    usual_masks = np.zeros((subsets, n), dtype=bool)
    usual_losses = []
    for m in range(subsets):
        usual_masks[m, rng.choice(n, n // 2, replace=False)] = True
        _, r, f = trainer.fit(10_000 + 97 * seed + m, subset=usual_masks[m])
        usual_losses.append(trainer.losses(r, f, queries))
    single_masks = np.ones((subsets, n), dtype=bool)
    single_losses = []
    for m in range(subsets):
        single_masks[m, rng.choice(n, max(1, int(round(drop * n))), replace=False)] = False
        r = trainer.replay(record, truth_dtype)
        f, _ = __import__("studio.attribution.exact", fromlist=["x"]).train(
            r, single_masks[m].astype(float)
        )
        single_losses.append(trainer.losses(r, f, queries))
    t_retrain = time.perf_counter() - t0
    usual_l, single_l = np.array(usual_losses), np.array(single_losses)
    model = trainer.peft_model(rep, final)
    res: dict[str, Any] = {
        "family": fam.name,
        "seed": seed,
        "records": n,
        "queries": len(queries),
        "steps": record.total_steps,
        "train_s": round(t_train, 2),
        "retrain_s": round(t_retrain, 1),
        "methods": {},
    }
    runners = {
        "ours": lambda: A.run_ours(model, fx, queries, tmp / f"{fam.name}-{seed}"),
        "exact": lambda: run_exact(trainer, record, queries),
        "kronfluence-ekfac": lambda: A.run_kronfluence(
            model, fx, queries, tmp / f"{fam.name}-{seed}"
        ),
        "trak-dattri": lambda: A.run_trak(model, fx, queries, tmp / f"{fam.name}-{seed}"),
    }
    for name in methods:
        try:
            with PeakRSS() as mem:
                r = runners[name]()
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
        res["methods"][name] = {
            "lds_usual": round(A.lds(s, usual_masks, usual_l), 4),
            "lds_single": round(A.lds(s, single_masks, single_l), 4),
            "canary@1": A.canary_recall(s[nq:], fx, 1),
            "query_ms": round(1000 * r["latency"], 2),
            "build_s": round(r["build"], 2),
            "peak_mb": round(mem.mb, 1),
        }
        print(f"  {fam.name} seed {seed} {name:<18} {json.dumps(res['methods'][name])}", flush=True)
    return res


KEYS = ["lds_usual", "lds_single", "canary@1", "query_ms", "build_s", "peak_mb"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--subsets", type=int, default=16)
    ap.add_argument(
        "--drop", type=float, default=0.1, help="fraction dropped in the single-model setting"
    )
    ap.add_argument(
        "--methods", nargs="+", default=["ours", "exact", "kronfluence-ekfac", "trak-dattri"]
    )
    ap.add_argument(
        "--truth-dtype",
        default="float32",
        choices=("float32", "float64"),
        help="precision of the single-model retrains (float64: the run exact differentiates)",
    )
    ap.add_argument("--epochs", type=int, default=None, help="override every family's epochs")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.epochs:
        for f in FAMILIES.values():
            f.epochs = args.epochs
    tmp = Path(tempfile.mkdtemp(prefix="attr-fam-"))
    out: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        for fname in args.families:
            for seed in args.seeds:
                print(f"{fname} seed {seed}: training + {2 * args.subsets} retrains…", flush=True)
                out.append(
                    run_family_seed(
                        FAMILIES[fname],
                        seed,
                        args.subsets,
                        args.methods,
                        tmp,
                        args.drop,
                        args.truth_dtype,
                    )
                )
                if args.json:
                    Path(args.json).write_text(json.dumps({"runs": out}, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"\nmean over seeds {' '.join(map(str, args.seeds))}; {args.subsets} subsets per setting; "
        f"single-model drop {args.drop:.0%}; {time.perf_counter() - t0:.0f} s in all"
    )
    print(f"{'family':<9}{'method':<19}" + "".join(f"{k:>12}" for k in KEYS))
    summary: dict[str, Any] = {}
    for fname in args.families:
        for name in args.methods:
            rows = [
                r["methods"][name]
                for r in out
                if r["family"] == fname and "lds_usual" in r["methods"].get(name, {})
            ]
            if not rows:
                why = next(
                    (
                        v
                        for r in out
                        if r["family"] == fname
                        for v in r["methods"].get(name, {}).values()
                    ),
                    "not run",
                )
                print(f"{fname:<9}{name:<19}{why}")
                continue
            mean = {k: float(np.mean([x[k] for x in rows])) for k in KEYS}
            summary[f"{fname}/{name}"] = mean
            print(f"{fname:<9}{name:<19}" + "".join(f"{mean[k]:>12.4g}" for k in KEYS))
        o, k = summary.get(f"{fname}/ours"), summary.get(f"{fname}/kronfluence-ekfac")
        if o and k:
            print(
                f"{'':<9}ours / EK-FAC: LDS usual {o['lds_usual'] / k['lds_usual'] if k['lds_usual'] else float('nan'):.2f}x, "
                f"per-query latency {k['query_ms'] / o['query_ms']:.1f}x lower"
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": out, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
