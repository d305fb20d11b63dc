"""Per-example LoRA gradients, compressed by a seeded projection and preconditioned by curvature.

How the pieces were chosen (see the papers cited in issue 5):

* **Per-example gradients without a per-example backward.** A LoRA update is
  ``y += B(A(x)) * s``. For one example, dL/dA = sum_t gA_t x_t^T and dL/dB = sum_t gB_t h_t^T,
  where x_t is the input of A, h_t = A x_t, and gA_t / gB_t are the gradients arriving at the
  outputs of A and B. Hooks capture those four tensors during one batched backward, so a batch of
  examples costs one backward and every example still gets its own exact gradient (padding is on
  the right and carries no loss, so examples never mix).
* **Projection (LoGra-style, factorised).** Instead of forming the gradient and projecting it,
  we project the *activations* first: A's gradient r x d_in becomes r x k by projecting x_t with a
  seeded Gaussian P_in (k x d_in); B's gradient d_out x r becomes k x r by projecting gB_t with
  P_out. The LoRA rank r is already small, so only the wide side is compressed. When k >= d the
  projection is skipped and the gradient is exact. Projection matrices come from NumPy's PCG64
  seeded with (seed, crc32(module name)), which gives the same numbers on every CPU.
* **Curvature: EK-FAC in the projected space (default), per LoRA module.** We studied
  kronfluence (EK-FAC: Kronecker factors from token-level input and output-gradient covariances,
  eigenvalues corrected with per-example gradients) and DataInf (a closed-form inverse of each
  LoRA layer's empirical Fisher, exact only when damping dominates). Because our gradients are
  already projected, EK-FAC's factors are tiny here (r x r and k x k per LoRA matrix), so we fit
  them during the same pass that computes the per-example gradients (no extra backward), with
  eigenbases from the token-level factors and eigenvalues corrected with the stored per-example
  gradients, damping lambda = 0.1 x mean eigenvalue (kronfluence's heuristic). On the bench
  fixture this matched kronfluence's LDS, while an exact per-module empirical Fisher block
  (``curvature="fisher"``, also available) scored lower: with n examples and a few hundred
  dimensions per module, the empirical Fisher is rank-deficient and its inverse over-trusts noise
  directions, which the token-level Kronecker bases avoid. DataInf's approximation is that same
  block's inverse under heavy damping, so it inherits the same weakness.
* **Why only lora_B (default ``lora_params="B"``).** LoRA's two factors parametrise one update
  ``dW = B A`` redundantly: ``(B G, G^-1 A)`` gives the same model for any invertible r x r ``G``,
  so the Gauss-Newton curvature over (A, B) is singular along those r^2 directions and strongly
  coupled between A and B. Per-matrix (block-diagonal) EK-FAC, ours and kronfluence's alike,
  cannot see that coupling, and A's block then adds influence along directions that do not
  change the model. With A held at its trained value, ``B -> B A`` is injective (A has full row
  rank), so the curvature over B alone is a well-posed, exactly block-structured model of the
  update; this is also where fine-tuning does most of its work (Zhu et al. 2024, "Asymmetry in
  low-rank adapters"). Chosen on held-out bench fixtures (seeds 10-13, never the reported
  seeds 0-2): record LDS 0.599 with B only vs 0.587 with A and B (kronfluence 0.583), and it
  halves the index. ``lora_params="AB"`` keeps both.
* **Projection size.** The wide side is projected to 128 by default (held-out LDS rose
  monotonically 16 < 32 < 64 < exact); rows are then count-sketched to ``compress_dim`` for
  wide models, so storage stays bounded.
* **Wide models** (rows wider than ``compress_dim``: the starter model's are 215,040 wide, 30
  layers x 7 matrices x rank 8 x 128). The sketch mixes every whitened direction into every
  column, and whitening with a small damping inflates the low-curvature directions, whose
  collisions then drown the rest: on the starter model's held-out seed (bench
  attribution_families.py, smollm2 seed 10) LDS usual / single-model went from 0.795 / 0.511 at
  16,384 columns and damping 0.1 (with the sketch's seed alone, single-model ran 0.47-0.57) to
  0.837 / 0.659 at 65,536 columns and damping 10, the best point of that seed's grid (damping
  1e-6 to 10, A and B, projection 128 / 256 / none, sketch none / 16,384 / 65,536). A sketched
  index uses ``sketch_damping``; an unsketched one (small models) is unchanged. 65,536 columns
  are 128 KiB a record in fp16.
* **What did not help** (held-out seeds): true (sampled-label) Fisher instead of the empirical
  one, with 1-16 samples (mean LDS lower, contributor LDS clearly lower); damping from 1e-8 to
  1 x mean eigenvalue, per matrix or per module or global (flat within noise); H^-1/2 or
  H^-3/4 ("Adam-like") instead of H^-1 (mixed across seeds); a diagonal Adam-style
  preconditioner; normalising training gradients; the exact per-module Fisher block.
* **Query cost.** One forward+backward on (prompt, output), a few small block solves, then one
  matrix-vector product against the stored training gradients. No pass over the training set.

Storage is fp16 (rows scaled per module by their max-abs, the scale kept in fp32) so that
small gradients neither underflow nor lose relative precision; all sums that decide a score are
done in float64.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

IGNORE = -100


@dataclass(frozen=True)
class GradientConfig:
    seed: int = 0
    proj_dim: int = (
        128  # k: the wide side of each LoRA matrix is projected to k (skipped when k >= d)
    )
    curvature: str = "ekfac"  # "ekfac" (default) or "fisher" (exact per-module block, see below)
    damping: float = 0.1  # lambda = damping * mean eigenvalue of each module's curvature
    batch_size: int = 8
    chunk_size: int = 256  # records per resumable chunk of the index build
    # Wider gradients (big models, many LoRA layers) are stored whitened and count-sketched to
    # this many columns (EK-FAC only); 0 keeps every projected dimension.
    compress_dim: int = 65536
    # The damping of a sketched index, in place of `damping` (see "Wide models" above).
    sketch_damping: float = 10.0
    max_length: int = 512
    # Which LoRA matrices the influence is taken over: "B" (default; see the module docstring,
    # "Why only lora_B") or "AB" (both, as kronfluence tracks them).
    lora_params: str = "B"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def damping_for(self, sketched: bool) -> float:
        """The damping an index built with these settings uses."""
        return self.sketch_damping if sketched else self.damping

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GradientConfig:
        if "sketch_damping" not in d and "damping" in d:
            d = {**d, "sketch_damping": d["damping"]}  # (an index from before: one damping)
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class LoraModule:
    name: str
    lora_A: Any  # torch.nn.Linear (d_in -> r)
    lora_B: Any  # torch.nn.Linear (r -> d_out)
    rank: int
    d_in: int
    d_out: int
    p_in: Any  # torch float64 (k_in x d_in) or None (exact)
    p_out: Any  # torch float64 (k_out x d_out) or None (exact)
    use_a: bool = True  # whether lora_A's gradient is part of the row

    @property
    def k_in(self) -> int:
        return self.d_in if self.p_in is None else int(self.p_in.shape[0])

    @property
    def k_out(self) -> int:
        return self.d_out if self.p_out is None else int(self.p_out.shape[0])

    @property
    def a_cols(self) -> int:
        return self.k_in if self.use_a else 0

    @property
    def a_dim(self) -> int:
        return self.rank * self.a_cols

    @property
    def dim(self) -> int:
        return self.a_dim + self.rank * self.k_out


def _projection(seed: int, name: str, k: int, d: int) -> Any:
    import torch

    if k >= d:
        return None
    rng = np.random.default_rng(
        np.random.SeedSequence([int(seed), zlib.crc32(name.encode("utf-8"))])
    )
    p = rng.standard_normal((k, d)) / np.sqrt(k)
    return torch.from_numpy(p)  # float64


def find_lora_modules(model: Any, cfg: GradientConfig) -> list[LoraModule]:
    """The active LoRA matrices of a peft model, in module order (a fixed order for the index)."""
    from studio.core.errors import AttributionError

    if cfg.lora_params not in ("B", "AB"):
        raise AttributionError(
            f"Unknown LoRA parameter set {cfg.lora_params!r} for the gradient index.",
            hint='Use lora_params="B" (default) or "AB".',
        )
    mods: list[LoraModule] = []
    for name, module in model.named_modules():
        lora_a = getattr(module, "lora_A", None)
        lora_b = getattr(module, "lora_B", None)
        if lora_a is None or lora_b is None or not hasattr(lora_a, "keys"):
            continue
        if getattr(module, "merged", False):
            raise AttributionError(
                "This model's LoRA adapter is merged into the base weights; gradient attribution needs "
                "the unmerged adapter.",
                hint="Use the fine-tuned model id (not an exported merged folder), or the span method.",
            )
        active = [a for a in getattr(module, "active_adapters", []) if a in lora_a.keys()]
        for adapter in active:
            a, b = lora_a[adapter], lora_b[adapter]
            if not hasattr(a, "weight") or a.weight.dim() != 2:
                continue  # embedding/conv LoRA variants are not tracked
            r, d_in = a.weight.shape
            d_out = b.weight.shape[0]
            full = f"{name}.{adapter}"
            mods.append(
                LoraModule(
                    full,
                    a,
                    b,
                    int(r),
                    int(d_in),
                    int(d_out),
                    _projection(cfg.seed, full + ".in", cfg.proj_dim, int(d_in)),
                    _projection(cfg.seed, full + ".out", cfg.proj_dim, int(d_out)),
                    cfg.lora_params == "AB",
                )
            )
    if not mods:
        raise AttributionError(
            "The model has no LoRA layers, so the gradient method cannot run.",
            hint="Attribute a fine-tuned model (studio model list), or use the span method.",
        )
    return mods


def layout(mods: Sequence[LoraModule]) -> list[tuple[int, int]]:
    """(start, stop) column range of each module's block in a gradient row."""
    out, pos = [], 0
    for m in mods:
        out.append((pos, pos + m.dim))
        pos += m.dim
    return out


@contextmanager
def _capture(mods: Sequence[LoraModule]) -> Iterator[dict[str, dict[str, Any]]]:
    """Hooks that record LoRA inputs and output-gradients; LoRA weights require grad meanwhile."""
    store: dict[str, dict[str, Any]] = {m.name: {} for m in mods}
    handles = []
    saved = []
    for m in mods:
        for p in (m.lora_A.weight, m.lora_B.weight):
            saved.append((p, p.requires_grad))
            p.requires_grad_(True)

        def fa(_mod: Any, inp: Any, out: Any, _n: str = m.name) -> None:
            store[_n]["x"] = inp[0].detach()
            out.register_hook(lambda g, _n=_n: store[_n].__setitem__("gA", g.detach()))

        def fb(_mod: Any, inp: Any, out: Any, _n: str = m.name) -> None:
            store[_n]["h"] = inp[0].detach()
            out.register_hook(lambda g, _n=_n: store[_n].__setitem__("gB", g.detach()))

        handles.append(m.lora_A.register_forward_hook(fa))
        handles.append(m.lora_B.register_forward_hook(fb))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()
        for p, rg in saved:
            p.grad = None
            p.requires_grad_(rg)


def _pad(batch: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int) -> tuple[Any, Any, Any]:
    import torch

    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (x, y) in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(list(x), dtype=torch.long)
        labels[i, : len(y)] = torch.tensor(list(y), dtype=torch.long)
        mask[i, : len(x)] = 1
    return ids, labels, mask


def per_example_loss(logits: Any, labels: Any) -> Any:
    """Mean next-token cross-entropy of each example over its labelled tokens (HF label layout)."""
    import torch

    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    tok = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]),
        shift_labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    ).view(shift_labels.shape)
    valid = (shift_labels != IGNORE).sum(dim=1).clamp(min=1)
    return tok.sum(dim=1) / valid


def batch_gradients(
    model: Any,
    mods: Sequence[LoraModule],
    batch: Sequence[tuple[Sequence[int], Sequence[int]]],
    pad_id: int,
    stats: dict[str, dict[str, Any]] | None = None,
) -> np.ndarray:
    """Projected per-example LoRA gradients of the examples' mean loss, float64 (B x D).

    With `stats`, also accumulate the token-level Kronecker factors of every module (sums of
    outer products of projected inputs and output-gradients over real tokens), for EK-FAC."""
    import torch

    ids, labels, mask = _pad(batch, pad_id)
    with _capture(mods) as store:
        with torch.enable_grad():
            out = model(input_ids=ids, attention_mask=mask)
            losses = per_example_loss(out.logits, labels)
            losses.sum().backward()
        rows = []
        with torch.no_grad():
            for m in mods:
                s = store[m.name]
                x, g_a = s["x"].double(), s["gA"].double()
                h, g_b = s["h"].double(), s["gB"].double()
                if not m.use_a:  # an empty A side keeps one code path for both layouts
                    x = x[..., :0]
                elif m.p_in is not None:
                    x = x @ m.p_in.T
                if m.p_out is not None:
                    g_b = g_b @ m.p_out.T
                grad_a = torch.einsum("btr,btk->brk", g_a, x)  # (B, r, k_in) or (B, r, 0)
                grad_b = torch.einsum("btk,btr->bkr", g_b, h)  # (B, k_out, r)
                if stats is not None:
                    valid = mask.bool()
                    st = stats.setdefault(m.name, {})
                    for key, t in (("a_in", x), ("a_out", g_a), ("b_in", h), ("b_out", g_b)):
                        v = t[valid]
                        st[key] = st.get(key, 0) + (v.T @ v).numpy()
                rows.append(
                    torch.cat([grad_a.reshape(len(batch), -1), grad_b.reshape(len(batch), -1)], 1)
                )
        return torch.cat(rows, 1).numpy()


def example_losses(
    model: Any, batch: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int
) -> np.ndarray:
    import torch

    ids, labels, mask = _pad(batch, pad_id)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
        return per_example_loss(out.logits, labels).double().numpy()


def quantize(rows: np.ndarray, blocks: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """float64 rows -> (fp16 values in [-1, 1], fp32 per-block scales). Round-to-nearest-even, fixed."""
    q = np.empty(rows.shape, dtype=np.float16)
    scales = np.empty((rows.shape[0], len(blocks)), dtype=np.float32)
    for j, (a, b) in enumerate(blocks):
        s = np.abs(rows[:, a:b]).max(axis=1).astype(np.float32)
        s[s == 0] = 1.0
        scales[:, j] = s
        q[:, a:b] = (rows[:, a:b] / s.astype(np.float64)[:, None]).astype(np.float16)
    return q, scales


def dequantize(q: np.ndarray, scales: np.ndarray, blocks: Sequence[tuple[int, int]]) -> np.ndarray:
    out = q.astype(np.float64)
    for j, (a, b) in enumerate(blocks):
        out[:, a:b] *= scales[:, j].astype(np.float64)[:, None]
    return out


def fisher_inverses(
    chunks: Iterator[np.ndarray], blocks: Sequence[tuple[int, int]], n: int, damping: float
) -> list[np.ndarray]:
    """Damped inverse of each module's empirical Fisher block, accumulated in float64 in row order."""
    acc = [np.zeros((b - a, b - a)) for a, b in blocks]
    for rows in chunks:
        for j, (a, b) in enumerate(blocks):
            g = rows[:, a:b]
            acc[j] += g.T @ g
    invs = []
    for f in acc:
        f = f / max(n, 1)
        f = (f + f.T) / 2
        evals, evecs = np.linalg.eigh(f)
        evals = np.clip(evals, 0.0, None)
        lam = damping * float(evals.mean()) if evals.mean() > 0 else 1e-8
        invs.append((evecs / (evals + lam)) @ evecs.T)
    return invs


@dataclass
class EKFACBlock:
    """One module's eigenvalue-corrected Kronecker factors in the projected space."""

    qa_out: np.ndarray  # (r x r) eigenvectors of A's output-gradient covariance
    qa_in: np.ndarray  # (k_in x k_in) eigenvectors of A's projected input covariance
    lam_a: np.ndarray  # (r x k_in) corrected eigenvalues + damping
    qb_out: np.ndarray  # (k_out x k_out)
    qb_in: np.ndarray  # (r x r)
    lam_b: np.ndarray  # (k_out x r)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.{k}": getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_arrays(cls, z: Any, prefix: str) -> EKFACBlock:
        return cls(**{k: z[f"{prefix}.{k}"] for k in cls.__dataclass_fields__})


def _eigvecs(m: np.ndarray) -> np.ndarray:
    if m.size == 0:  # the A side of a B-only index
        return np.zeros(m.shape)
    m = (m + m.T) / 2
    _, v = np.linalg.eigh(m)
    # Fix each eigenvector's sign (largest-magnitude entry positive) so that results do not
    # depend on the LAPACK build.
    idx = np.argmax(np.abs(v), axis=0)
    return v * np.sign(v[idx, np.arange(v.shape[1])])


@dataclass(frozen=True)
class ModuleShape:
    name: str
    rank: int
    k_in: int
    k_out: int
    use_a: bool = True

    @property
    def a_cols(self) -> int:
        return self.k_in if self.use_a else 0

    @property
    def a_dim(self) -> int:
        return self.rank * self.a_cols


def _split(row: np.ndarray, m: LoraModule | ModuleShape) -> tuple[np.ndarray, np.ndarray]:
    na = m.a_dim
    ga = row[..., :na].reshape(*row.shape[:-1], m.rank, m.a_cols)
    gb = row[..., na:].reshape(*row.shape[:-1], m.k_out, m.rank)
    return ga, gb


def ekfac(
    stats: dict[str, dict[str, Any]],
    chunks: Iterator[np.ndarray],
    mods: Sequence[LoraModule],
    blocks: Sequence[tuple[int, int]],
    n: int,
    damping: float,
) -> list[EKFACBlock]:
    """EK-FAC (George et al. 2018; Grosse et al. 2023) on the projected LoRA gradients: Kronecker
    eigenbases from token-level factors, eigenvalues corrected with the per-example gradients
    (second moments in that basis), damping = `damping` x their mean (kronfluence's heuristic)."""
    bases = []
    for m in mods:
        st = stats[m.name]
        bases.append(
            (
                _eigvecs(st["a_out"]),
                _eigvecs(st["a_in"]),
                _eigvecs(st["b_out"]),
                _eigvecs(st["b_in"]),
            )
        )
    acc_a = [np.zeros((m.rank, m.a_cols)) for m in mods]
    acc_b = [np.zeros((m.k_out, m.rank)) for m in mods]
    for rows in chunks:
        for j, (m, (a, b)) in enumerate(zip(mods, blocks, strict=True)):
            ga, gb = _split(rows[:, a:b], m)
            qao, qai, qbo, qbi = bases[j]
            acc_a[j] += ((qao.T @ ga @ qai) ** 2).sum(0)
            acc_b[j] += ((qbo.T @ gb @ qbi) ** 2).sum(0)
    out = []
    for j in range(len(mods)):
        la, lb = acc_a[j] / max(n, 1), acc_b[j] / max(n, 1)
        # One damping for the module's whole block (A and B), as for one layer in kronfluence.
        mean = float(np.concatenate([la.ravel(), lb.ravel()]).mean())
        lam = damping * mean if mean > 0 else 1e-12
        qao, qai, qbo, qbi = bases[j]
        out.append(EKFACBlock(qao, qai, la + lam, qbo, qbi, lb + lam))
    return out


def precondition_ekfac(
    g: np.ndarray,
    curv: Sequence[EKFACBlock],
    mods: Sequence[LoraModule | ModuleShape],
    blocks: Sequence[tuple[int, int]],
    power: float = 1.0,
) -> np.ndarray:
    """Apply the inverse EK-FAC blocks (power=1) or their inverse square root (power=0.5, which
    whitens: g_q . H^-1 g_i = (H^-1/2 g_q) . (H^-1/2 g_i)) to gradient row(s) g (D,) or (Q, D)."""
    g2 = np.atleast_2d(np.asarray(g, dtype=np.float64))
    out = np.empty_like(g2)
    for c, m, (a, b) in zip(curv, mods, blocks, strict=True):
        ga, gb = _split(g2[:, a:b], m)
        ra = (c.qa_out.T @ ga @ c.qa_in) / c.lam_a**power
        rb = (c.qb_out.T @ gb @ c.qb_in) / c.lam_b**power
        pa = c.qa_out @ ra @ c.qa_in.T
        pb = c.qb_out @ rb @ c.qb_in.T
        out[:, a:b] = np.concatenate([pa.reshape(len(g2), -1), pb.reshape(len(g2), -1)], 1)
    return out[0] if np.ndim(g) == 1 else out


@dataclass(frozen=True)
class CountSketch:
    """A seeded count sketch (dim -> k): coordinate j goes to column cols[j] with sign signs[j].
    Inner products of sketched vectors are unbiased estimates of the originals' (variance about
    |a|^2 |b|^2 / k); applying it is one pass over the vector, in a fixed order (deterministic)."""

    cols: np.ndarray
    signs: np.ndarray
    k: int

    def apply(self, rows: np.ndarray) -> np.ndarray:
        rows2 = np.atleast_2d(np.asarray(rows, dtype=np.float64)) * self.signs
        out = np.stack([np.bincount(self.cols, weights=r, minlength=self.k) for r in rows2])
        return out[0] if np.ndim(rows) == 1 else out


def sketch_matrix(dim: int, k: int, seed: int) -> CountSketch:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(b"count-sketch")]))
    cols = rng.integers(0, k, size=dim)
    signs = rng.choice(np.array([-1.0, 1.0]), size=dim)
    return CountSketch(cols, signs, k)


def precondition(
    g: np.ndarray, invs: Sequence[np.ndarray], blocks: Sequence[tuple[int, int]]
) -> np.ndarray:
    out = np.empty_like(g, dtype=np.float64)
    for inv, (a, b) in zip(invs, blocks, strict=True):
        out[..., a:b] = g[..., a:b] @ inv.T
    return out


def scores_against(
    q16: np.ndarray,
    scales: np.ndarray,
    blocks: Sequence[tuple[int, int]],
    pq: np.ndarray,
    chunk: int = 8192,
) -> np.ndarray:
    """Influence of every stored row on the preconditioned query gradient(s) pq (D,) or (Q, D)."""
    single = pq.ndim == 1
    pq2 = pq[None, :] if single else pq
    n = q16.shape[0]
    out = np.zeros((pq2.shape[0], n))
    for s in range(0, n, chunk):
        rows = np.asarray(q16[s : s + chunk], dtype=np.float64)
        sc = np.asarray(scales[s : s + chunk], dtype=np.float64)
        for j, (a, b) in enumerate(blocks):
            out[:, s : s + chunk] += (pq2[:, a:b] @ rows[:, a:b].T) * sc[:, j][None, :]
    return out[0] if single else out
