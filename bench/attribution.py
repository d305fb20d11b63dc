"""Attribution quality: ours vs kronfluence EK-FAC vs TRAK (dattri), on one fixture, same run.

The fixture is built in code: the tiny Llama (studio/train/tiny.py, byte tokenizer) with a LoRA
adapter fine-tuned on records from C synthetic contributors. Each contributor writes in its own
vocabulary (pseudo-words over its own letters) and its own style (separator, ending). Each also
has one single-copy canary: a phrase of its own words in an order that appears nowhere else.
Queries are held out: two fresh records per contributor (style queries) and, per canary, the
canary's prefix as context with the loss on its secret continuation (canary queries).

Metrics
* LDS (linear datamodeling score): M random half-size subsets of the records are retrained from
  the same LoRA init and data-order seed; for each query, Spearman correlation between the
  predicted effect (sum of the subset's attribution scores) and the actual query loss (negated, so
  "helpful" is positive for every method), averaged over queries. Contributor-level LDS: the same
  with M random halves of the contributors (all of a contributor's records in or out).
* canary recall@1 / @5: the canary's own record among the top 1 / 5 for its canary query.
* contributor AUC: per style query, the probability that the true contributor's summed score
  beats another contributor's (ties count half), averaged.
* latency: per-query wall time to score one query against all records after the index/factors
  exist (ours: one backward + block solves + a matrix product; kronfluence: compute_pairwise_scores
  for one query; TRAK: attribute for one query), plus the one-off build time.

Usage: .venv/bin/python bench/attribution.py [--seeds 0 1 2] [--subsets 50] [--methods ...]
[--cache DIR] (--cache keeps the retrained-subset losses, so re-runs skip the retraining).
Report seeds 0 1 2; choose settings on other seeds (the default was chosen on seeds 10-13).
bench/attribution_families.py runs the same methods, plus the exact method, on fixture families
this default was not tuned on, in the usual and the single-model LDS settings.
kronfluence and dattri are optional: install them into the venv for the bench only
(`pip install --no-deps kronfluence dattri einops einconv opt-einsum`); the bench says when one is
missing and still runs the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

IGNORE = -100
LETTERS = "bcdfghjklmnpqrstvwxz"
VOWELS = "aeiouy"
SEPS = [" ", " ", "-", " ", "_", " ", ", ", " "]
ENDS = [".", "!", ";", "?", ".", "!!", " ~", " ."]
TARGETS = ["q_proj", "v_proj", "up_proj", "down_proj"]


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]
    contributor: int
    record_id: int = 0
    datanet: str = "bench"
    version: int = 1
    leaf: str | None = None
    canary: bool = False


@dataclass
class Fixture:
    train: list[Example]
    style_queries: list[Example]
    canary_queries: list[Example]
    canary_rows: list[int]
    contributors: int
    tok: Any
    meta: dict[str, Any] = field(default_factory=dict)


def _words(rng: random.Random, c: int, n: int) -> list[str]:
    cons = LETTERS[(c * 3) % len(LETTERS) :] + LETTERS[: (c * 3) % len(LETTERS)]
    cons = cons[:4]  # each contributor: its own 4 consonants
    out = set()
    while len(out) < n:
        k = rng.randint(2, 3)
        out.add("".join(rng.choice(cons) + rng.choice(VOWELS) for _ in range(k)))
    return sorted(out)


def _sentence(rng: random.Random, words: list[str], c: int, n: int) -> str:
    ws = [rng.choice(words) for _ in range(n)]
    return SEPS[c % len(SEPS)].join(ws) + ENDS[c % len(ENDS)]


def _encode(tok: Any, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"]) + [tok.eos_token_id]


def build_fixture(seed: int, contributors: int = 8, per: int = 12) -> Fixture:
    from studio.train.tiny import byte_tokenizer

    tok = byte_tokenizer()
    rng = random.Random(1000 + seed)
    train: list[Example] = []
    style_q: list[Example] = []
    canary_q: list[Example] = []
    canary_rows: list[int] = []
    for c in range(contributors):
        words = _words(rng, c, 10)
        for _ in range(per):
            ids = _encode(tok, _sentence(rng, words, c, rng.randint(6, 9)))
            train.append(Example(ids, list(ids), c))
        # The canary: a fixed phrase of this contributor's words, in an order used nowhere else.
        prefix = f"{words[0]} code{SEPS[c % len(SEPS)]}"
        secret = " ".join(rng.sample(words, 5)) + ENDS[c % len(ENDS)]
        ids = _encode(tok, prefix + secret)
        canary_rows.append(len(train))
        train.append(Example(ids, list(ids), c, canary=True))
        p = len(tok(prefix, add_special_tokens=False)["input_ids"])
        canary_q.append(Example(ids, [IGNORE] * p + ids[p:], c))
        for _ in range(2):
            ids = _encode(tok, _sentence(rng, words, c, rng.randint(6, 9)))
            style_q.append(Example(ids, list(ids), c))
    for i, e in enumerate(train):
        e.record_id = i + 1
    return Fixture(train, style_q, canary_q, canary_rows, contributors, tok)


# -- training ------------------------------------------------------------------------------------


def _pad(batch: list[Example], pad_id: int) -> tuple[Any, Any, Any]:
    from studio.attribution.gradients import _pad as pad

    return pad([(e.input_ids, e.labels) for e in batch], pad_id)


def train_lora(
    base_dir: Path,
    examples: list[Example],
    seed: int,
    epochs: int = 6,
    lr: float = 4e-3,
    bs: int = 8,
    pad_id: int = 0,
) -> Any:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from studio.attribution.gradients import per_example_loss

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS)
    )
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0
    )
    g = random.Random(seed)
    model.train()
    for _ in range(epochs):
        order = list(range(len(examples)))
        g.shuffle(order)
        for s in range(0, len(order), bs):
            batch = [examples[i] for i in order[s : s + bs]]
            ids, labels, mask = _pad(batch, pad_id)
            loss = per_example_loss(model(input_ids=ids, attention_mask=mask).logits, labels).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model


def query_losses(model: Any, queries: list[Example], pad_id: int) -> np.ndarray:
    from studio.attribution.gradients import example_losses

    return example_losses(model, [(q.input_ids, q.labels) for q in queries], pad_id)


# -- methods ------------------------------------------------------------------------------------


def run_ours(
    model: Any,
    fx: Fixture,
    queries: list[Example],
    tmp: Path,
    **overrides: Any,
) -> dict[str, Any]:
    """Our gradient method through the real index code; `overrides` change GradientConfig
    fields (none: the studio's default)."""
    from studio.attribution import gradients as G
    from studio.attribution.index import build_gradient_index

    if "damping" in overrides:  # a grid point's damping is the index's, sketched or not
        overrides.setdefault("sketch_damping", overrides["damping"])
    cfg = G.GradientConfig(**{"batch_size": 8, "chunk_size": 256, **overrides})
    t0 = time.perf_counter()
    tag = "-".join(f"{k}{v}" for k, v in sorted(overrides.items())) or "default"
    gi = build_gradient_index(
        tmp / f"ours-{tag}",
        model,
        fx.train,
        {"config": cfg.to_dict()},
        pad_id=fx.tok.pad_token_id,
    )
    build = time.perf_counter() - t0
    mods = G.find_lora_modules(model, cfg)
    scores, lat, cpu = [], [], []
    for q in queries:
        t0, c0 = time.perf_counter(), time.process_time()
        g = G.batch_gradients(model, mods, [(q.input_ids, q.labels)], fx.tok.pad_token_id)[0]
        scores.append(gi.scores(g))
        lat.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    # The same queries in one call (batches of 8, one product): what kronfluence's batched
    # figure is, so its per-query cost is compared like with like.
    c0 = time.process_time()
    qg = np.concatenate(
        [
            G.batch_gradients(
                model,
                mods,
                [(q.input_ids, q.labels) for q in queries[s : s + 8]],
                fx.tok.pad_token_id,
            )
            for s in range(0, len(queries), 8)
        ]
    )
    gi.scores(qg)
    batch_cpu = (time.process_time() - c0) / len(queries)
    return {
        "scores": np.array(scores),
        "latency": float(np.median(lat)),
        "cpu": float(np.median(cpu)),
        "batch_cpu": batch_cpu,
        "build": build,
        "dim": gi.meta["dim"],
    }


def _lora_module_names(model: Any) -> list[str]:
    return [
        n
        for n, m in model.named_modules()
        if (".lora_A." in n + "." or ".lora_B." in n + ".")
        and n.split(".")[-2] in ("lora_A", "lora_B")
    ]


class _ListDataset:
    def __init__(self, exs: list[Example], width: int, pad_id: int) -> None:
        self.exs, self.width, self.pad = exs, width, pad_id

    def __len__(self) -> int:
        return len(self.exs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        e = self.exs[i]
        n = len(e.input_ids)
        ids = torch.full((self.width,), self.pad, dtype=torch.long)
        lab = torch.full((self.width,), IGNORE, dtype=torch.long)
        mask = torch.zeros(self.width, dtype=torch.long)
        ids[:n] = torch.tensor(e.input_ids)
        lab[:n] = torch.tensor(e.labels)
        mask[:n] = 1
        return {"input_ids": ids, "labels": lab, "attention_mask": mask}


def run_kronfluence(
    model: Any, fx: Fixture, queries: list[Example], tmp: Path, batched: bool = False
) -> dict[str, Any]:
    import copy

    import torch
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments, ScoreArguments
    from kronfluence.task import Task

    from studio.attribution.gradients import per_example_loss

    tracked = _lora_module_names(model)

    class LMTask(Task):
        def compute_train_loss(self, batch: Any, model: Any, sample: bool = False) -> Any:
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            labels = batch["labels"]
            if sample:  # true Fisher: labels sampled from the model where there is a loss
                with torch.no_grad():
                    probs = torch.softmax(logits[:, :-1].float(), -1)
                    sampled = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1).view(
                        probs.shape[:-1]
                    )
                labels = labels.clone()
                keep = labels[:, 1:] != IGNORE
                labels[:, 1:][keep] = sampled[keep]
            return per_example_loss(logits, labels).sum()

        def compute_measurement(self, batch: Any, model: Any) -> Any:
            return self.compute_train_loss(batch, model)

        def get_influence_tracked_modules(self) -> list[str]:
            return tracked

        def get_attention_mask(self, batch: Any) -> Any:
            return batch["attention_mask"]

    width = max(len(e.input_ids) for e in fx.train + queries)
    train_ds = _ListDataset(fx.train, width, fx.tok.pad_token_id)
    m = prepare_model(copy.deepcopy(model), LMTask())
    analyzer = Analyzer(
        analysis_name="bench",
        model=m,
        task=LMTask(),
        output_dir=str(tmp / "kron"),
        cpu=True,
        disable_tqdm=True,
        disable_model_save=True,
    )
    t0 = time.perf_counter()
    analyzer.fit_all_factors(
        factors_name="ekfac",
        dataset=train_ds,
        per_device_batch_size=16,
        factor_args=FactorArguments(strategy="ekfac"),
        overwrite_output_dir=True,
    )
    build = time.perf_counter() - t0

    def score(name: str, qs: list[Example]) -> Any:
        analyzer.compute_pairwise_scores(
            scores_name=name,
            factors_name="ekfac",
            query_dataset=_ListDataset(qs, width, fx.tok.pad_token_id),
            train_dataset=train_ds,
            per_device_query_batch_size=len(qs),
            per_device_train_batch_size=64,
            score_args=ScoreArguments(),
            overwrite_output_dir=True,
        )
        return analyzer.load_pairwise_scores(name)["all_modules"]

    scores, lat = [], []
    if batched:
        # All queries in one call (per-query latency = total / queries: kronfluence's best case).
        t0, c0 = time.perf_counter(), time.process_time()
        s = score("all", queries)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        # One query per call (what answering one question costs), on the first 3 queries.
        one = []
        for j, q in enumerate(queries[:3]):
            c0 = time.process_time()
            score(f"one{j}", [q])
            one.append(time.process_time() - c0)
        return {
            "scores": s.double().numpy(),
            "latency": total / len(queries),
            "cpu": float(np.median(one)),
            "batch_cpu": cpu / len(queries),
            "build": build,
        }
    for j, q in enumerate(queries):
        t0 = time.perf_counter()
        s = score(f"q{j}", [q])
        lat.append(time.perf_counter() - t0)
        scores.append(s[0].double().numpy())
    return {"scores": np.array(scores), "latency": float(np.median(lat)), "build": build}


def run_trak(model: Any, fx: Fixture, queries: list[Example], tmp: Path) -> dict[str, Any]:
    import torch
    from dattri.algorithm.trak import TRAKAttributor
    from dattri.task import AttributionTask

    width = max(len(e.input_ids) for e in fx.train + queries)
    lora_params = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    names = list(lora_params)
    for n, p in model.named_parameters():  # dattri differentiates the trainable (LoRA) params
        p.requires_grad_("lora_" in n)

    def nll(params: dict[str, Any], data: Any) -> Any:
        ids, labels, mask = data
        # No padding mask: under vmap it would be data-dependent control flow in transformers; with
        # right padding the causal mask alone keeps real tokens from seeing pads, and pads carry no loss.
        del mask
        out = torch.func.functional_call(model, params, (ids.unsqueeze(0),))
        logits = out.logits[0, :-1]
        lab = labels[1:]
        valid = (lab != IGNORE).to(logits.dtype)
        lp = torch.log_softmax(logits.float(), -1)
        tok_lp = torch.gather(lp, 1, lab.clamp(min=0).unsqueeze(1)).squeeze(1)
        return -(tok_lp * valid).sum() / valid.sum().clamp(min=1)

    def prob(params: dict[str, Any], data: Any) -> Any:
        return torch.exp(-nll(params, data))

    full = {
        n: p.detach() for n, p in model.state_dict().items()
    }  # state_dict: tied weights included
    task = AttributionTask(loss_func=nll, model=model, checkpoints=full)

    def loader(exs: list[Example]) -> Any:
        ds = _ListDataset(exs, width, fx.tok.pad_token_id)
        items = [ds[i] for i in range(len(ds))]
        tensors = [(d["input_ids"], d["labels"], d["attention_mask"]) for d in items]
        return torch.utils.data.DataLoader(tensors, batch_size=16, shuffle=False)

    att = TRAKAttributor(
        task=task,
        correct_probability_func=prob,
        layer_name=names,
        device="cpu",
        projector_kwargs={"proj_dim": 512, "device": "cpu", "proj_max_batch_size": 16},
        regularization=1e-3,
    )
    t0 = time.perf_counter()
    att.cache(loader(fx.train))
    build = time.perf_counter() - t0
    scores, lat, cpu = [], [], []
    for q in queries:
        t0, c0 = time.perf_counter(), time.process_time()
        s = att.attribute(loader([q]))  # (n_train, n_test)
        lat.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        scores.append(s[:, 0].double().numpy())
    return {
        "scores": np.array(scores),
        "latency": float(np.median(lat)),
        "cpu": float(np.median(cpu)),
        "build": build,
    }


# -- metrics ------------------------------------------------------------------------------------


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    r = spearmanr(a, b).statistic
    return float(r) if np.isfinite(r) else 0.0


def lds(scores: np.ndarray, masks: np.ndarray, losses: np.ndarray) -> float:
    """scores (Q x N), masks (M x N) bool, losses (M x Q) -> mean Spearman over queries."""
    pred = masks.astype(np.float64) @ scores.T  # (M x Q)
    return float(np.mean([spearman(pred[:, q], -losses[:, q]) for q in range(scores.shape[0])]))


def contributor_auc(scores: np.ndarray, fx: Fixture, queries: list[Example]) -> float:
    owner = np.array([e.contributor for e in fx.train])
    aucs = []
    for q, e in zip(scores, queries, strict=True):
        per = np.array([q[owner == c].sum() for c in range(fx.contributors)])
        t = per[e.contributor]
        others = np.delete(per, e.contributor)
        aucs.append(float(np.mean((t > others) + 0.5 * (t == others))))
    return float(np.mean(aucs))


def canary_recall(scores: np.ndarray, fx: Fixture, k: int) -> float:
    hits = 0
    for s, row in zip(scores, fx.canary_rows, strict=True):
        order = np.argsort(-s, kind="stable")
        hits += int(row in order[:k])
    return hits / len(fx.canary_rows)


# -- main ---------------------------------------------------------------------------------------


def retrain_losses(
    seed: int, subsets: int, epochs: int, tmp: Path, cache: Path | None = None
) -> tuple[Any, Fixture, Any, dict[str, np.ndarray], float, float]:
    """The fixture, its fine-tuned model, and the LDS ground truth (subset masks + query losses of
    the retrained models). The ground truth is a pure function of (seed, subsets, epochs), so it
    can be cached between runs with --cache (the retrains are most of the bench's time)."""
    import torch

    from studio.train.tiny import build_tiny_model

    torch.set_num_threads(1)
    fx = build_fixture(seed)
    base = build_tiny_model(tmp / f"base{seed}", seed=seed)
    pad = fx.tok.pad_token_id
    queries = fx.style_queries + fx.canary_queries
    t0 = time.perf_counter()
    model = train_lora(base, fx.train, seed, epochs=epochs, pad_id=pad)
    t_train = time.perf_counter() - t0
    path = cache / f"truth-s{seed}-m{subsets}-e{epochs}.npz" if cache else None
    if path is not None and path.exists():
        with np.load(path) as z:
            return model, fx, base, {k: z[k] for k in z.files}, t_train, 0.0
    # Retraining for LDS: record halves and contributor halves, same init and order seed.
    rng = np.random.default_rng(seed)
    n = len(fx.train)
    rec_masks = np.zeros((subsets, n), dtype=bool)
    for m in range(subsets):
        rec_masks[m, rng.choice(n, n // 2, replace=False)] = True
    owner = np.array([e.contributor for e in fx.train])
    con_masks = np.zeros((subsets, n), dtype=bool)
    for m in range(subsets):
        keep = rng.choice(fx.contributors, fx.contributors // 2, replace=False)
        con_masks[m] = np.isin(owner, keep)
    t0 = time.perf_counter()

    def losses(masks: np.ndarray) -> np.ndarray:
        return np.array(
            [
                query_losses(
                    train_lora(
                        base,
                        [fx.train[i] for i in np.flatnonzero(mk)],
                        seed,
                        epochs=epochs,
                        pad_id=pad,
                    ),
                    queries,
                    pad,
                )
                for mk in masks
            ]
        )

    truth = {
        "rec_masks": rec_masks,
        "rec_losses": losses(rec_masks),
        "con_masks": con_masks,
        "con_losses": losses(con_masks),
    }
    t_retrain = time.perf_counter() - t0
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **truth)
    return model, fx, base, truth, t_train, t_retrain


def run_seed(
    seed: int,
    subsets: int,
    methods: list[str],
    tmp: Path,
    epochs: int,
    cache: Path | None = None,
) -> dict[str, Any]:
    model, fx, _base, truth, t_train, t_retrain = retrain_losses(seed, subsets, epochs, tmp, cache)
    queries = fx.style_queries + fx.canary_queries
    nq_style = len(fx.style_queries)
    n = len(fx.train)
    rec_masks, rec_losses = truth["rec_masks"], truth["rec_losses"]
    con_masks, con_losses = truth["con_masks"], truth["con_losses"]
    results: dict[str, Any] = {
        "seed": seed,
        "records": n,
        "queries": len(queries),
        "train_s": round(t_train, 2),
        "retrain_s": round(t_retrain, 1),
        "methods": {},
    }
    runners = {
        # The studio's default: lora_B gradients, wide side projected to 128 (exact on this model).
        "ours": lambda: run_ours(model, fx, queries, tmp),
        # Ablations: lora_A and lora_B both (as kronfluence tracks them); a 4x smaller projection;
        # the previous default (both, projection 32).
        "ours-AB": lambda: run_ours(model, fx, queries, tmp, lora_params="AB"),
        "ours-proj32": lambda: run_ours(model, fx, queries, tmp, proj_dim=32),
        "ours-AB-proj32": lambda: run_ours(model, fx, queries, tmp, lora_params="AB", proj_dim=32),
        # Whitened + count-sketched to under a quarter of the width (what wide models get).
        "ours-sketch512": lambda: run_ours(model, fx, queries, tmp, compress_dim=512),
        "kronfluence-ekfac": lambda: run_kronfluence(model, fx, queries, tmp),
        "trak-dattri": lambda: run_trak(model, fx, queries, tmp),
    }
    for name in methods:
        try:
            r = runners[name]()
        except ModuleNotFoundError as e:
            results["methods"][name] = {
                "missing": f"{e.name} is not installed (pip install --no-deps {e.name})"
            }
            continue
        except Exception as e:  # noqa: BLE001 - a baseline that fails is reported, not fatal
            results["methods"][name] = {"failed": f"{type(e).__name__}: {e}"}
            traceback.print_exc()
            continue
        s = r["scores"]
        results["methods"][name] = {
            "lds_record": round(lds(s, rec_masks, rec_losses), 4),
            "lds_contributor": round(lds(s, con_masks, con_losses), 4),
            "canary_recall@1": canary_recall(s[nq_style:], fx, 1),
            "canary_recall@5": canary_recall(s[nq_style:], fx, 5),
            "contributor_auc": round(contributor_auc(s[:nq_style], fx, fx.style_queries), 4),
            "query_ms": round(1000 * r["latency"], 2),
            "build_s": round(r["build"], 2),
        }
        print(f"  seed {seed} {name:<18} {json.dumps(results['methods'][name])}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--subsets", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument(
        "--methods",
        nargs="+",
        default=[
            "ours",
            "ours-AB",
            "ours-proj32",
            "ours-AB-proj32",
            "ours-sketch512",
            "kronfluence-ekfac",
            "trak-dattri",
        ],
    )
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument(
        "--cache",
        default=None,
        help="keep the retrained-subset losses (the LDS ground truth) here and reuse them",
    )
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="attr-bench-"))
    all_res = []
    try:
        for seed in args.seeds:
            print(f"seed {seed}: training + {2 * args.subsets} retrains…", flush=True)
            all_res.append(
                run_seed(
                    seed,
                    args.subsets,
                    args.methods,
                    tmp,
                    args.epochs,
                    Path(args.cache) if args.cache else None,
                )
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    keys = [
        "lds_record",
        "lds_contributor",
        "canary_recall@1",
        "canary_recall@5",
        "contributor_auc",
        "query_ms",
        "build_s",
    ]
    print("\nmean over seeds " + " ".join(map(str, args.seeds)))
    print(f"{'method':<20}" + "".join(f"{k:>17}" for k in keys))
    summary: dict[str, Any] = {}
    for name in args.methods:
        rows = [r["methods"][name] for r in all_res if "lds_record" in r["methods"].get(name, {})]
        if not rows:
            why = next((v for r in all_res for v in r["methods"].get(name, {}).values()), "not run")
            print(f"{name:<20} {why}")
            summary[name] = {"unavailable": why}
            continue
        mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
        summary[name] = mean
        print(f"{name:<20}" + "".join(f"{mean[k]:>17.4g}" for k in keys))
    if "ours" in summary and "lds_record" in summary.get("kronfluence-ekfac", {}):
        o, k = summary["ours"], summary["kronfluence-ekfac"]
        print(
            f"\nours vs kronfluence EK-FAC: LDS(record) {o['lds_record']:.3f} vs {k['lds_record']:.3f}, "
            f"LDS(contributor) {o['lds_contributor']:.3f} vs {k['lds_contributor']:.3f}, "
            f"per-query latency {k['query_ms'] / o['query_ms']:.1f}x lower"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"seeds": all_res, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
