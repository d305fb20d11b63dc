"""Exact attribution: the metagradient d loss(query) / d w_record of every training record,
by differentiating through the recorded training run (MAGIC, Ilyas & Engstrom 2025, and the
REPLAY algorithm it uses).

Every token's loss in every training step is multiplied by its record's weight w (all 1 in the
real run), so the final adapter is a function theta_T(w) of the weights, and the attribution of
a query is the gradient of the query's loss at theta_T(w) with respect to w, at w = 1. A
record's score is minus that gradient: how much the query's loss falls per unit of extra
weight on the record.

How it is computed (reverse-mode through the optimizer, block by block):

1. Replay the run forward, without a graph, from the recorded LoRA initialisation: the same
   batches, learning rates, clipping and AdamW update as the trainer (torch.optim.AdamW's
   single-tensor formula, written functionally). The state after every ``block`` steps
   (parameters and both moments) is kept; ``block`` is chosen for memory.
2. The query's gradient at theta_T seeds the adjoint of the final state.
3. For each block, last to first: recompute its steps from the kept state *with* a graph
   (``create_graph=True``, so the training gradients themselves are differentiable), then one
   vector-Jacobian product carries the adjoint to the block's first state and adds the block's
   share to d loss / d w. Queries share the forward replay and every recomputed block.

Nothing is approximated: the result is the derivative of the replayed run (finite differences
of the replay agree to float64 precision; see tests/attribution/test_exact.py). The replay
follows the trainer to float rounding: it uses eager attention (the fused CPU kernel has no
second derivative) and float64 by default.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import AttributionError, Cancelled
from studio.train.replay_record import ReplayRecord

IGNORE = -100
Query = tuple[Sequence[int], Sequence[int]]  # input_ids, labels (IGNORE: no loss)
Progress = Callable[[int, int, str], None]
REPLAY_ATTENTION = "studio_replay_eager"


@dataclass
class Replay:
    """A loaded replay: the record, the peft model built like the trainer's, and the order of
    the trainable parameters."""

    record: ReplayRecord
    model: Any
    names: list[str]
    dtype: Any

    @property
    def n_records(self) -> int:
        return len(self.record.records)


def load_replay(record: ReplayRecord, base_dir: Path, *, dtype: str = "float64") -> Replay:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from studio.train.trainer import quiet_transformers

    quiet_transformers()
    dt = getattr(torch, dtype)
    base = AutoModelForCausalLM.from_pretrained(
        base_dir, dtype=dt, attn_implementation=_register_attention()
    )
    base.config.use_cache = False
    lo = record.lora
    model = get_peft_model(
        base,
        LoraConfig(
            r=int(lo["r"]),
            lora_alpha=float(lo["alpha"]),
            lora_dropout=float(lo["dropout"]),
            target_modules=lo["targets"],
            bias="none",
            task_type="CAUSAL_LM",
        ),
    )
    if dt == torch.float64:
        _rmsnorm_in_float64(model)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n in names if n not in record.init]
    if missing:
        raise AttributionError(
            "The replay record does not match the model's LoRA layers "
            f"({len(missing)} parameters missing, e.g. {missing[0]}).",
            hint="The base model folder may have changed since training.",
        )
    for p in model.parameters():
        p.requires_grad_(False)
    model.train(float(lo["dropout"]) > 0)
    return Replay(record, model, names, dt)


def _register_attention() -> str:
    """Eager attention with the softmax in the model's dtype. The fused CPU kernel has no second
    derivative, and transformers' eager attention rounds its softmax to float32, which in a
    float64 replay would swamp the derivative."""
    import torch
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    def attention(
        module: Any,
        query: Any,
        key: Any,
        value: Any,
        attention_mask: Any,
        scaling: float,
        dropout: float = 0.0,
        **_: Any,
    ) -> tuple[Any, Any]:
        groups = int(getattr(module, "num_key_value_groups", 1))
        if groups > 1:
            key = key.repeat_interleave(groups, dim=1)
            value = value.repeat_interleave(groups, dim=1)
        w = torch.matmul(query, key.transpose(2, 3)) * scaling
        if attention_mask is not None:
            w = w + attention_mask
        w = torch.nn.functional.softmax(w, dim=-1)
        w = torch.nn.functional.dropout(w, p=dropout, training=module.training)
        return torch.matmul(w, value).transpose(1, 2).contiguous(), w

    AttentionInterface.register(REPLAY_ATTENTION, attention)
    AttentionMaskInterface.register(REPLAY_ATTENTION, eager_mask)
    return REPLAY_ATTENTION


def _rmsnorm_in_float64(model: Any) -> None:
    """Llama-style RMSNorm computes in float32 whatever the model's dtype; in a float64 replay
    that rounding (1e-7) would swamp the derivative, so those norms compute in float64."""
    import types

    import torch

    def forward(self: Any, x: Any) -> Any:
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.variance_epsilon))

    for mod in model.modules():
        name = type(mod).__name__
        if name.endswith("RMSNorm") and "Gemma" not in name and hasattr(mod, "variance_epsilon"):
            mod.forward = types.MethodType(forward, mod)


# -- one training step, functionally -------------------------------------------------------------


def _batch(rep: Replay, idx: Sequence[int]) -> dict[str, Any]:
    import torch

    rows = [rep.record.rows[i] for i in idx]
    width = max(len(r["input_ids"]) for r in rows)
    ids, labels, pos, recs, coef = [], [], [], [], []
    for i, r in zip(idx, rows, strict=True):
        n = width - len(r["input_ids"])
        ids.append(list(r["input_ids"]) + [rep.record.pad_id] * n)
        labels.append(list(r["labels"]) + [IGNORE] * n)
        pos.append(list(r["position_ids"]) + list(range(n)))  # as the trainer's collate
        recs.append(list(r["records"]) + [-1] * n)
        c = rep.record.row_coef[i] if rep.record.row_coef is not None else [1.0] * (width - n)
        coef.append(list(c) + [0.0] * n)
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "position_ids": torch.tensor(pos, dtype=torch.long),
        "records": torch.tensor(recs, dtype=torch.long),
        "coef": torch.tensor(coef, dtype=rep.dtype),
    }


def _token_losses(rep: Replay, params: dict[str, Any], ids: Any, pos: Any, labels: Any) -> Any:
    import torch

    out = torch.func.functional_call(
        rep.model, params, (), {"input_ids": ids, "position_ids": pos, "use_cache": False}
    )
    logits = out.logits[:, :-1, :]
    lab = labels[:, 1:]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).to(rep.dtype),
        lab.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    ).view(lab.shape)


def _safe_sqrt(v: Any) -> Any:
    """sqrt with a zero derivative where v == 0 (a moment that never saw a gradient: LoRA A's
    first step, when B is still zero); elsewhere exactly sqrt."""
    import torch

    pos = v > 0
    return torch.where(
        pos, torch.sqrt(torch.where(pos, v, torch.ones_like(v))), torch.zeros_like(v)
    )


def step(
    rep: Replay,
    t: int,
    state: tuple[list[Any], list[Any], list[Any]],
    w: Any,
    *,
    graph: bool,
    batches: dict[int, list[dict[str, Any]]] | None = None,
) -> tuple[list[Any], list[Any], list[Any]]:
    """Training step t of the replay: (params, exp_avg, exp_avg_sq) -> the next state."""
    import torch

    rec = rep.record
    params, m, v = state
    if not graph:
        params = [p.detach().requires_grad_(True) for p in params]
    named = dict(zip(rep.names, params, strict=True))
    if rec.rng_state is not None:
        torch.set_rng_state(_rng_at(rep, t))
    grads = [torch.zeros_like(p) for p in params]
    scale = 1.0 / rec.step_scale[t]
    micro = batches[t] if batches is not None and t in batches else None
    for j, idx in enumerate(rec.steps[t]):
        if not idx:
            continue
        b = micro[j] if micro is not None else _batch(rep, idx)
        tok = _token_losses(rep, named, b["input_ids"], b["position_ids"], b["labels"])
        rw = torch.where(b["records"][:, 1:] >= 0, w[b["records"][:, 1:].clamp(min=0)], 0.0)
        loss = (tok * rw * b["coef"][:, 1:]).sum() * scale
        g = torch.autograd.grad(loss, params, create_graph=graph)
        grads = [a + c for a, c in zip(grads, g, strict=True)]
    opt = rec.optimizer
    clip = float(opt.get("max_grad_norm") or 0.0)
    ctx = torch.enable_grad() if graph else torch.no_grad()
    with ctx:
        if clip > 0:  # torch.nn.utils.clip_grad_norm_
            total = torch.sqrt(sum((g * g).sum() for g in grads))
            coef = torch.clamp(clip / (total + 1e-6), max=1.0)
            grads = [g * coef for g in grads]
        lr = rec.lrs[t]
        b1, b2 = (float(x) for x in opt["betas"])
        eps, wd = float(opt["eps"]), float(opt["weight_decay"])
        n = t + 1
        bc1, bc2 = 1 - b1**n, 1 - b2**n
        new_p, new_m, new_v = [], [], []
        for p, g, mi, vi in zip(params, grads, m, v, strict=True):
            p = p * (1 - lr * wd)
            mi = mi + (g - mi) * (1 - b1)  # lerp, as torch's AdamW
            vi = vi * b2 + g * g * (1 - b2)
            denom = _safe_sqrt(vi) / math.sqrt(bc2) + eps
            new_p.append(p - (lr / bc1) * mi / denom)
            new_m.append(mi)
            new_v.append(vi)
    if not graph:
        new_p = [p.detach() for p in new_p]
        new_m = [x.detach() for x in new_m]
        new_v = [x.detach() for x in new_v]
    return new_p, new_m, new_v


def _rng_at(rep: Replay, t: int) -> Any:
    cache = rep.__dict__.setdefault("_rng", {})
    if t not in cache:
        raise AttributionError("internal: replay RNG state missing (replay out of order)")
    return cache[t]


def _init_state(rep: Replay) -> tuple[list[Any], list[Any], list[Any]]:
    import torch

    p = [rep.record.init[n].to(rep.dtype).clone() for n in rep.names]
    return p, [torch.zeros_like(x) for x in p], [torch.zeros_like(x) for x in p]


def _weights(rep: Replay, weights: Any = None) -> Any:
    import torch

    if weights is None:
        return torch.ones(rep.n_records, dtype=rep.dtype)
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64)).to(rep.dtype)
    if w.shape != (rep.n_records,):
        raise AttributionError(f"internal: {w.shape[0]} weights for {rep.n_records} records")
    return w


def _check(cancel: Any) -> None:
    if cancel is not None and getattr(cancel, "cancelled", False):
        raise Cancelled("Exact attribution cancelled.")


def train(
    rep: Replay,
    weights: Any = None,
    *,
    progress: Progress | None = None,
    cancel: Any = None,
    keep_every: int = 0,
) -> tuple[list[Any], dict[int, tuple[list[Any], list[Any], list[Any]]]]:
    """Replay the run forward with the given record weights (default all 1). Returns the final
    parameters (in rep.names order) and, when keep_every > 0, the state at every multiple of it."""
    import torch

    w = _weights(rep, weights)
    state = _init_state(rep)
    kept: dict[int, tuple[list[Any], list[Any], list[Any]]] = {}
    T = rep.record.total_steps
    if rep.record.rng_state is not None:
        torch.set_rng_state(rep.record.rng_state)
        rep.__dict__["_rng"] = {}
    for t in range(T):
        _check(cancel)
        if keep_every and t % keep_every == 0:
            kept[t] = state
        if rep.record.rng_state is not None:
            rep.__dict__["_rng"][t] = torch.get_rng_state()
        state = step(rep, t, state, w, graph=False)
        if progress:
            progress(t + 1, T, f"replay step {t + 1}/{T}")
    return state[0], kept


def query_loss(rep: Replay, params: Sequence[Any], query: Query) -> Any:
    """Mean next-token loss over the query's labelled tokens (as the gradient index's)."""
    import torch

    ids = torch.tensor([list(query[0])], dtype=torch.long)
    labels = torch.tensor([list(query[1])], dtype=torch.long)
    pos = torch.arange(ids.shape[1]).unsqueeze(0)
    was = rep.model.training
    rep.model.eval()
    try:
        tok = _token_losses(rep, dict(zip(rep.names, params, strict=True)), ids, pos, labels)
    finally:
        rep.model.train(was)
    valid = (labels[:, 1:] != IGNORE).to(rep.dtype)
    return (tok * valid).sum() / valid.sum().clamp(min=1)


def _save(path: Path, obj: Any) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def metagradients(
    rep: Replay,
    queries: Sequence[Query],
    *,
    block: int = 1,
    progress: Progress | None = None,
    cancel: Any = None,
    batched: bool = False,
    workdir: Path | None = None,
    weights: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(d loss_q / d w_record for every query q and record, float64 Q x N; the query losses).

    The derivative is taken at `weights` (default all 1, the real run); a record at weight 0
    is in the replay's batches but not in its training, and its gradient is the effect of
    adding it.

    With `workdir`, the kept states and the reverse pass's progress (adjoints and the gradient
    so far, after every block) are saved there, so a cancelled or killed run resumes where it
    stopped and gives the same numbers."""
    import torch

    if not queries:
        return np.zeros((0, rep.n_records)), np.zeros(0)
    T = rep.record.total_steps
    block = max(1, min(int(block), T))
    total = 2 * T
    fwd_file = Path(workdir) / "forward.pt" if workdir else None
    rev_file = Path(workdir) / "reverse.pt" if workdir else None
    if workdir:
        Path(workdir).mkdir(parents=True, exist_ok=True)

    def fwd_progress(done: int, _t: int, msg: str) -> None:
        if progress:
            progress(done, total, msg)

    w0 = _weights(rep, weights)

    def load(path: Path | None) -> dict[str, Any] | None:
        # A resume file taken at other weights or another block size is not this run's.
        if path is None or not path.exists():
            return None
        saved = torch.load(path, weights_only=False)
        kept_w = saved.get("weights")
        same = saved.get("block") == block and isinstance(kept_w, torch.Tensor)
        return saved if same and torch.equal(kept_w, w0) else None

    saved = load(fwd_file)
    if saved is not None:
        final, kept = saved["final"], saved["kept"]
        rep.__dict__["_rng"] = saved["rng"]
    else:
        if rev_file is not None:
            rev_file.unlink(missing_ok=True)
        final, kept = train(rep, w0, progress=fwd_progress, cancel=cancel, keep_every=block)
        if fwd_file is not None:
            rng = rep.__dict__.get("_rng")
            _save(
                fwd_file, {"final": final, "kept": kept, "rng": rng, "weights": w0, "block": block}
            )
    saved = load(rev_file)
    if saved is not None:
        adj, gw, losses, resume_at = saved["adj"], saved["gw"], saved["losses"], saved["next"]
    else:
        # Seeds of the reverse pass: d loss_q / d theta_T (the moments do not enter the loss).
        adj, losses, resume_at = [], [], T
        leaves = [p.detach().requires_grad_(True) for p in final]
        for q in queries:
            loss = query_loss(rep, leaves, q)
            g = torch.autograd.grad(loss, leaves)
            zeros = [torch.zeros_like(p) for p in final]
            adj.append([*g, *zeros, *[z.clone() for z in zeros]])
            losses.append(float(loss.detach()))
        gw = torch.zeros((len(queries), rep.n_records), dtype=torch.float64)
    for start in reversed(range(0, T, block)):
        stop = min(start + block, T)
        if start >= resume_at:
            continue  # done before the run was interrupted
        _check(cancel)
        p0, m0, v0 = (
            [x.detach().clone().requires_grad_(True) for x in part] for part in kept[start]
        )
        w = w0.clone().requires_grad_(True)
        state = (p0, m0, v0)
        for t in range(start, stop):
            state = step(rep, t, state, w, graph=True)
        outs = [*state[0], *state[1], *state[2]]
        ins = [*p0, *m0, *v0, w]
        if batched and len(queries) > 1:
            # One vmapped vector-Jacobian product carries every query's adjoint at once.
            stacked = [torch.stack([a[j] for a in adj]) for j in range(len(outs))]
            g = torch.autograd.grad(
                outs, ins, grad_outputs=stacked, is_grads_batched=True, allow_unused=True
            )
            for qi in range(len(queries)):
                adj[qi] = [
                    x[qi].detach() if x is not None else torch.zeros_like(i)
                    for x, i in zip(g[:-1], ins[:-1], strict=True)
                ]
            if g[-1] is not None:
                gw += g[-1].detach().double()
        else:
            for qi in range(len(queries)):
                g = torch.autograd.grad(
                    outs,
                    ins,
                    grad_outputs=adj[qi],
                    retain_graph=qi < len(queries) - 1,
                    allow_unused=True,
                )
                adj[qi] = [
                    x.detach() if x is not None else torch.zeros_like(i)
                    for x, i in zip(g[:-1], ins[:-1], strict=True)
                ]
                if g[-1] is not None:
                    gw[qi] += g[-1].detach().double()
        del state, outs, g
        if rev_file is not None:
            _save(
                rev_file,
                {
                    "adj": adj,
                    "gw": gw,
                    "losses": losses,
                    "next": start,
                    "weights": w0,
                    "block": block,
                },
            )
        if progress:
            progress(T + (T - start), total, f"reverse through steps {start + 1}-{stop} of {T}")
    return gw.numpy(), np.array(losses)


# -- what it costs, before it starts --------------------------------------------------------------


def available_memory() -> int:
    """Bytes of memory this machine can give now (MemAvailable, else free pages)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


# The largest recomputed graph (estimated) whose queries go through one vmapped product.
BATCHED_GRAPH_BYTES = 512 << 20


def estimate(
    record: ReplayRecord,
    model_config: Any,
    *,
    queries: int = 1,
    dtype: str = "float64",
    tokens_per_s: float | None = None,
    memory_limit: int | None = None,
) -> dict[str, Any]:
    """Memory and time of an exact run, from shapes alone (nothing is loaded).

    Memory: the base model, the kept states (parameters + two moments per kept step), and the
    graph of one recomputed block (activations of forward and backward, kept for the second
    derivative: about three times a training step's), and with `batched` (several queries in
    one vmapped product: small graphs only) a third of that graph for each further query.
    Time: the training loop's speed (from the model card) times the work: one forward replay,
    then per step a recompute with graph (about 3x a step) and one vector-Jacobian product per
    query (about 2x), in float64 about 2x slower."""
    size = 8 if dtype == "float64" else 4
    n_params = sum(int(np.prod(v.shape)) for v in record.init.values())
    c = model_config
    hidden = int(getattr(c, "hidden_size", 0) or getattr(c, "n_embd", 0) or 768)
    inter = int(getattr(c, "intermediate_size", 0) or 4 * hidden)
    layers = int(getattr(c, "num_hidden_layers", 0) or getattr(c, "n_layer", 0) or 12)
    heads = int(getattr(c, "num_attention_heads", 0) or 12)
    vocab = int(getattr(c, "vocab_size", 0) or 32000)
    base_params = vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * inter)
    T = max(1, record.total_steps)
    step_bytes = 0
    step_tokens = []
    for micro in record.steps:
        tokens = 0
        worst = 0
        for idx in micro:
            if not idx:
                continue
            width = max(len(record.rows[i]["input_ids"]) for i in idx)
            per_tok = layers * (34 * hidden + 10 * inter + 5 * heads * width) + 4 * vocab
            worst = max(worst, len(idx) * width * per_tok * size * 3)
            tokens += len(idx) * width
        step_bytes = max(step_bytes, worst)
        step_tokens.append(tokens)
    state_bytes = 3 * n_params * size
    # Block size: the spacing of kept states that needs least memory.
    block = max(1, min(T, round(math.sqrt(T * state_bytes / max(1, step_bytes)))))
    memory = (
        base_params * size
        + math.ceil(T / block) * state_bytes
        + block * step_bytes
        + (queries + 2) * state_bytes
    )
    limit = memory_limit if memory_limit is not None else int(0.8 * available_memory())
    # One vmapped product for all queries, rather than one per query, only for a small graph:
    # vmapping holds every query's backward at once (on the starter model, 4 queries: 13.8 GB
    # against 9.5 GB one by one, and slower, 24 against 16 s a step).
    vmap_extra = (queries - 1) * block * step_bytes // 3
    batched = (
        queries > 1 and block * step_bytes <= BATCHED_GRAPH_BYTES and memory + vmap_extra <= limit
    )
    if batched:
        memory += vmap_extra
    tps = tokens_per_s or 20_000.0
    work = sum(step_tokens) / tps * (1 + 3 + 2 * max(1, queries)) * (2 if size == 8 else 1)
    return {
        "steps": T,
        "records": len(record.records),
        "queries": queries,
        "block": block,
        "batched": batched,
        "dtype": dtype,
        "memory_bytes": int(memory),
        "memory_limit_bytes": int(limit),
        "seconds": round(work, 1),
        "fits": memory <= limit,
        "speed_source": "model card" if tokens_per_s else "assumed 20k tokens/s",
    }


def describe(est: dict[str, Any]) -> str:
    return (
        f"exact replay of {est['steps']} steps over {est['records']} records for "
        f"{est['queries']} quer{'y' if est['queries'] == 1 else 'ies'}: about "
        f"{est['memory_bytes'] / 2**20:,.0f} MiB of memory (limit {est['memory_limit_bytes'] / 2**20:,.0f} MiB) "
        f"and {est['seconds']:,.0f} s"
    )


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0
