"""Attribution speed: gradient index build rate + query latency, span index build rate + query
latency, memory. Each figure is printed with a baseline measured in the same run:

* index build: batched per-example gradients (one backward per batch, hooks) vs the naive way
  (one backward per record), records/s;
* query: ours (one backward + a product with the stored index) vs recomputing every training
  gradient for the query (what an index-free influence method pays per query);
* span query: suffix-array search vs a linear scan of the corpus (bytes.find) for the same spans.

Usage:
  .venv/bin/python bench/attribution_speed.py [--sizes 1000 10000 100000] [--span-tokens 10000000]
      [--model tiny|starter] [--records-for-build 512]

What runs where (2 CPU cores shared here): the build rate is measured on --records-for-build
records of the chosen model and extrapolated to each size; the query latency at each size is
measured for real on an index of that many rows with the model's exact layout (rows copied from
the measured ones, so the matrix product and memory are real). Peak RSS is read from
/proc/self/status.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_model(kind: str, tmp: Path) -> tuple[Any, Any, str]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    if kind == "starter":
        from studio.train import catalog  # the ModelFactory's starter model (SmolLM2-135M)

        home = Path(os.environ.get("STUDIO_HOME", tmp / "home"))
        base_dir = catalog.ensure_bundled(catalog.STARTER_ID, home / "models")
        tok = catalog.load_tokenizer(base_dir)
        desc = "SmolLM2-135M-Instruct"
    else:
        from studio.train.tiny import build_tiny_model, byte_tokenizer

        base_dir = build_tiny_model(tmp / "tiny")
        tok = byte_tokenizer()
        desc = "tiny Llama (2 layers, hidden 64)"
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    model = get_peft_model(
        base,
        LoraConfig(
            r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
        ),
    )
    return model.eval(), tok, desc


def records(tok: Any, n: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(seed)
    words = [
        "tide",
        "keeper",
        "lantern",
        "sourdough",
        "starter",
        "hive",
        "queen",
        "comb",
        "log",
        "dusk",
        "north",
        "beacon",
        "flour",
        "crust",
        "nectar",
        "pollen",
        "gull",
        "storm",
        "oven",
        "honey",
    ]
    out = []
    for _ in range(n):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(10, 16))) + "."
        ids = list(tok(text, add_special_tokens=False)["input_ids"])[:64]
        out.append((ids, list(ids)))
    return out


def bench_gradient(args: argparse.Namespace, tmp: Path) -> None:
    import torch

    from studio.attribution import gradients as G

    torch.set_num_threads(1)
    model, tok, desc = load_model(args.model, tmp)
    cfg = G.GradientConfig()
    mods = G.find_lora_modules(model, cfg)
    blocks = G.layout(mods)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    recs = records(tok, args.records_for_build)
    print(
        f"gradient index on {desc}, LoRA r=8 on q_proj,v_proj, {len(mods)} LoRA modules, "
        f"{blocks[-1][1]} dims/record (proj_dim {cfg.proj_dim}), records of ~{np.mean([len(r[0]) for r in recs]):.0f} tokens"
    )
    # Ours: batched.
    stats: dict[str, Any] = {}
    t0 = time.perf_counter()
    rows = np.concatenate(
        [
            G.batch_gradients(model, mods, recs[s : s + cfg.batch_size], pad, stats=stats)
            for s in range(0, len(recs), cfg.batch_size)
        ]
    )
    t_ours = time.perf_counter() - t0
    # Baseline: one backward per record (same hooks, batch of one).
    nb = min(len(recs), 128)
    t0 = time.perf_counter()
    for r in recs[:nb]:
        G.batch_gradients(model, mods, [r], pad)
    t_naive = (time.perf_counter() - t0) / nb * len(recs)
    rate = len(recs) / t_ours
    print(
        f"  build rate: {rate:,.0f} records/s (batched) vs {len(recs) / t_naive:,.0f} records/s "
        f"(one backward per record): {t_naive / t_ours:.1f}x"
    )
    q16, sc = G.quantize(rows, blocks)
    curv = G.ekfac(
        stats, iter([G.dequantize(q16, sc, blocks)]), mods, blocks, len(recs), cfg.damping
    )
    dim = blocks[-1][1]
    sketch = None
    stored = blocks
    if 0 < cfg.compress_dim < dim:  # what the index does by default for wide gradients
        sketch = G.sketch_matrix(dim, cfg.compress_dim, cfg.seed)
        stored = [(0, cfg.compress_dim)]
        w = G.precondition_ekfac(G.dequantize(q16, sc, blocks), curv, mods, blocks, 0.5)
        q16, sc = G.quantize(sketch.apply(w), stored)
        print(f"  stored whitened + count-sketched to {cfg.compress_dim} dims (compress_dim)")
    query = records(tok, 1, seed=99)[0]
    print(
        f"  {'records':>9} {'build (extrap.)':>16} {'index MB':>9} {'query ms':>9} {'recompute ms':>13} {'ratio':>7} {'peak RSS MB':>12}"
    )
    for n in args.sizes:
        reps = int(np.ceil(n / len(q16)))
        big = np.tile(q16, (reps, 1))[:n]
        big_sc = np.tile(sc, (reps, 1))[:n]
        path = tmp / f"grads{n}.npy"
        np.save(path, big)
        del big
        mm = np.load(path, mmap_mode="r")
        lat = []
        for _ in range(3):
            t0 = time.perf_counter()
            g = G.batch_gradients(model, mods, [query], pad)[0]
            if sketch is None:
                pq = G.precondition_ekfac(g, curv, mods, blocks)
            else:
                w = G.precondition_ekfac(g, curv, mods, blocks, 0.5)
                pq = sketch.apply(w)
            G.scores_against(mm, big_sc, stored, pq)
            lat.append(time.perf_counter() - t0)
        q_ms = 1000 * min(lat)
        recompute_ms = (
            1000 * (t_ours / len(recs)) * n + q_ms
        )  # every training gradient again, per query
        print(
            f"  {n:>9,} {n / rate:>14.1f} s {path.stat().st_size / 2**20:>9.1f} {q_ms:>9.1f} "
            f"{recompute_ms:>13.0f} {recompute_ms / q_ms:>6.0f}x {rss_mb():>12.0f}"
        )
        del mm
        path.unlink()


def bench_span(args: argparse.Namespace) -> None:
    from studio.attribution.span import SpanConfig, SpanIndex

    n_tok = args.span_tokens
    vocab = 49152  # SmolLM2's vocabulary size
    rng = np.random.default_rng(0)
    # Zipf-like token frequencies, records of ~200 tokens.
    ranks = rng.zipf(1.2, size=n_tok) % vocab
    lengths = rng.integers(120, 280, size=n_tok // 120)
    docs, pos = [], 0
    for ln in lengths:
        if pos >= n_tok:
            break
        docs.append(ranks[pos : pos + ln])
        pos += ln
    recs = [{"record_id": i} for i in range(len(docs))]
    t0 = time.perf_counter()
    si = SpanIndex.build(docs, recs, vocab)
    t_build = time.perf_counter() - t0
    total = int(sum(len(d) for d in docs))
    print(f"span index: {total:,} tokens in {len(docs):,} records, vocab {vocab}")
    print(
        f"  build: {t_build:.1f} s = {total / t_build / 1e6:.2f} M tokens/s, suffix array "
        f"{si.sa.nbytes / 2**20:.0f} MB + tokens {si.tokens.nbytes / 2**20:.0f} MB, peak RSS {rss_mb():.0f} MB"
    )
    # A 96-token output: three spans copied from records, glued with random tokens.
    out: list[int] = []
    for k in (10, 500, 2000):
        d = docs[k * 7 % len(docs)]
        out += [int(x) for x in d[20:44]] + [int(x) for x in rng.integers(0, vocab, 8)]
    cfg = SpanConfig(min_len=6)
    si.find_spans(out, cfg)  # warm the corpus bytes
    lat = []
    for _ in range(5):
        t0 = time.perf_counter()
        spans = si.find_spans(out, cfg)
        si.record_scores(spans, cfg)
        lat.append(time.perf_counter() - t0)
    q = min(lat)
    # Baseline: longest match from each output position by linear scans of the corpus.
    corpus = si._corpus()
    w = si.width
    t0 = time.perf_counter()
    base_steps = 0
    for i in range(len(out)):
        length = 0
        while i + length < len(out):
            pat = si._pattern(out[i : i + length + 1])
            at = corpus.find(pat)
            while at != -1 and at % w:
                at = corpus.find(pat, at + 1)
            base_steps += 1
            if at == -1:
                break
            length += 1
    t_base = time.perf_counter() - t0
    print(
        f"  query ({len(out)}-token output, {len(spans)} maximal spans ≥ {cfg.min_len} tokens): "
        f"{1000 * q:.1f} ms vs linear scan {1000 * t_base:.0f} ms ({base_steps} scans): {t_base / q:.0f}x"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Attribution speed (gradient index, span index)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--records-for-build", type=int, default=512)
    ap.add_argument("--model", choices=["tiny", "starter"], default="tiny")
    ap.add_argument("--span-tokens", type=int, default=10_000_000)
    ap.add_argument("--skip", default="", help="gradient,span")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="attr-speed-"))
    try:
        if "gradient" not in args.skip:
            bench_gradient(args, tmp)
        if "span" not in args.skip:
            bench_span(args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
