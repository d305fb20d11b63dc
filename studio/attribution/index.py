"""The gradient index on disk: projected per-record LoRA gradients (fp16, memory-mapped), the
records they cover, the adapter hash and snapshot roots they were built for, and the inverted
curvature blocks.

Layout of ``<model dir>/attribution/gradient/``::

    meta.json        identity (adapter hash, snapshot roots, config), module layout, counts
    records.json     one entry per row: record_id, datanet, version, contributor, leaf
    grads.npy        (n x D) float16, each module block scaled to [-1, 1]
    scales.npy       (n x modules) float32, the per-block scales
    curvature.npz    per module: EK-FAC eigenbases + corrected eigenvalues (or an inverse Fisher block)

A build writes into ``gradient.building/`` in chunks of ``chunk_size`` records, each chunk
written temp-then-rename, so an interrupted build resumes where it stopped (only when the
identity still matches). The finished folder appears by one rename, never half-written.
"""

from __future__ import annotations

import io
import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from studio.attribution import gradients as G
from studio.core.atomic import replace_dir, write_bytes, write_json
from studio.core.errors import AttributionError

# 2: rows may hold lora_B only (config lora_params); modules rows carry use_a.
FORMAT = "openledger.gradient-index/2"
FACTORS = ("a_in", "a_out", "b_in", "b_out")
DENSE_BYTES = 256 * 2**20  # indexes up to this size (as float64) are scored from memory

ProgressFn = Callable[[int, int, str], None]


def _save_npy_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    write_bytes(path, buf.getvalue())


def _identity_mismatch(have: dict[str, Any], want: dict[str, Any]) -> list[str]:
    return [k for k in sorted(set(have) | set(want)) if have.get(k) != want.get(k)]


@dataclass
class GradientIndex:
    path: Path
    meta: dict[str, Any]
    records: list[dict[str, Any]]
    grads: np.ndarray  # memmap float16 (n x D)
    scales: np.ndarray  # float32 (n x M)
    curvature: list[Any]  # per module: damped inverse Fisher block, or an EKFACBlock

    @property
    def blocks(self) -> list[tuple[int, int]]:
        return [tuple(b) for b in self.meta["blocks"]]  # type: ignore[misc]

    @property
    def config(self) -> G.GradientConfig:
        return G.GradientConfig.from_dict(self.meta["identity"]["config"])

    @classmethod
    def open(cls, path: Path) -> GradientIndex:
        path = Path(path)
        try:
            meta = json.loads((path / "meta.json").read_text())
            records = json.loads((path / "records.json").read_text())
            grads = np.load(path / "grads.npy", mmap_mode="r")
            scales = np.load(path / "scales.npy")
            with np.load(path / "curvature.npz") as z:
                if meta["identity"]["config"].get("curvature") == "fisher":
                    curvature: list[Any] = [z[f"b{i}"] for i in range(len(meta["blocks"]))]
                else:
                    curvature = [
                        G.EKFACBlock.from_arrays(z, f"b{i}") for i in range(len(meta["blocks"]))
                    ]
        except (OSError, ValueError, KeyError) as e:
            raise AttributionError(
                f"The gradient index at {path} is unreadable ({e}).",
                hint="Rebuild it: studio attribution index MODEL.",
            ) from e
        if meta.get("format") != FORMAT or grads.shape != (len(records), meta.get("stored_dim")):
            raise AttributionError(
                f"The gradient index at {path} is from another version or damaged.",
                hint="Rebuild it: studio attribution index MODEL.",
            )
        return cls(path, meta, records, grads, scales, curvature)

    def check_identity(self, identity: dict[str, Any]) -> None:
        have = self.meta["identity"]
        if "config" in have:  # (settings added since it was built read as it was built)
            have = {**have, "config": self.config.to_dict()}
        bad = _identity_mismatch(have, identity)
        if not bad:
            return
        detail = []
        if "adapter_hash" in bad:
            detail.append(
                f"adapter {str(have.get('adapter_hash'))[:18]}… (model has "
                f"{str(identity.get('adapter_hash'))[:18]}…)"
            )
        if "snapshots" in bad:
            have_s = ", ".join(
                f"{s['datanet']}@{s['version']} {s['root'][:12]}…"
                for s in have.get("snapshots", [])
            )
            want_s = ", ".join(
                f"{s['datanet']}@{s['version']} {s['root'][:12]}…"
                for s in identity.get("snapshots", [])
            )
            detail.append(f"snapshots [{have_s}] (model trained on [{want_s}])")
        rest = [k for k in bad if k not in ("adapter_hash", "snapshots")]
        if rest:
            detail.append("settings " + ", ".join(rest))
        raise AttributionError(
            "The gradient index was built for another "
            + "; ".join(detail)
            + ", so it cannot be used.",
            hint="Rebuild it for this model: studio attribution index MODEL.",
        )

    def check_modules(self, mods: Sequence[G.LoraModule]) -> None:
        names = [[m.name, m.dim] for m in mods]
        if names != [row[:2] for row in self.meta["modules"]]:
            raise AttributionError(
                "The gradient index covers other LoRA layers than this model has.",
                hint="Rebuild it: studio attribution index MODEL.",
            )

    @property
    def module_shapes(self) -> list[G.ModuleShape]:
        """Rank and projected sizes of each module, for reshaping stored rows."""
        return [
            G.ModuleShape(name, r, ki, ko, bool(use_a))
            for name, _dim, r, ki, ko, use_a in self.meta["modules"]
        ]

    def precondition(self, query_grad: np.ndarray) -> np.ndarray:
        if self.config.curvature == "fisher":
            return G.precondition(query_grad, self.curvature, self.blocks)
        return G.precondition_ekfac(query_grad, self.curvature, self.module_shapes, self.blocks)

    def scores(self, query_grad: np.ndarray) -> np.ndarray:
        """Influence of every indexed example on the query (positive: it lowered the query loss)."""
        if self.meta.get("sketch"):
            k = self.meta["stored_dim"]
            w = G.precondition_ekfac(
                query_grad, self.curvature, self.module_shapes, self.blocks, 0.5
            )
            z = self.sketch.apply(w)
            return G.scores_against(self.rows, self.scales, [(0, k)], z)
        return G.scores_against(self.rows, self.scales, self.blocks, self.precondition(query_grad))

    @property
    def rows(self) -> np.ndarray:
        """The stored rows for scoring: for an index up to DENSE_BYTES as float64, converted
        once and kept (the conversion was most of a query's matrix-product time, redone every
        query); a bigger one stays memory-mapped fp16 and is converted chunk by chunk. The
        values, and so the scores, are the same either way."""
        if "_rows" not in self.__dict__:
            small = self.grads.size * 8 <= DENSE_BYTES
            self.__dict__["_rows"] = np.asarray(self.grads, np.float64) if small else self.grads
        return self.__dict__["_rows"]  # type: ignore[no-any-return]

    @property
    def sketch(self) -> Any:
        if "_sketch" not in self.__dict__:
            self.__dict__["_sketch"] = G.sketch_matrix(
                self.meta["dim"], self.meta["stored_dim"], self.config.seed
            )
        return self.__dict__["_sketch"]


def build_gradient_index(
    out: Path,
    model: Any,
    examples: Sequence[Any],
    identity: dict[str, Any],
    *,
    pad_id: int,
    progress: ProgressFn | None = None,
    cancel: Any = None,
) -> GradientIndex:
    """Build (or resume) the index for `examples` (objects with record_id, datanet, version,
    contributor, input_ids, labels and optionally leaf) and return it opened."""
    cfg = G.GradientConfig.from_dict(identity["config"])
    if not examples:
        raise AttributionError(
            "No training records to index.", hint="Check the model's Datanet snapshots."
        )
    out = Path(out)
    building = out.with_name(out.name + ".building")
    ident_path = building / "identity.json"
    if building.exists():
        try:
            same = json.loads(ident_path.read_text()) == identity
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(building)
    building.mkdir(parents=True, exist_ok=True)
    if not ident_path.exists():
        write_json(ident_path, identity)

    mods = G.find_lora_modules(model, cfg)
    blocks = G.layout(mods)
    n = len(examples)
    dim = blocks[-1][1]
    n_chunks = math.ceil(n / cfg.chunk_size)
    done = 0
    for c in range(n_chunks):
        lo, hi = c * cfg.chunk_size, min(n, (c + 1) * cfg.chunk_size)
        path = building / f"chunk_{c:06d}.npz"
        if not path.exists():
            rows = []
            stats: dict[str, dict[str, Any]] = {}
            for s in range(lo, hi, cfg.batch_size):
                if cancel is not None:
                    cancel.check()
                batch = [(e.input_ids, e.labels) for e in examples[s : min(hi, s + cfg.batch_size)]]
                rows.append(G.batch_gradients(model, mods, batch, pad_id, stats=stats))
                if progress:
                    progress(min(hi, s + cfg.batch_size), n, "records")
            q, sc = G.quantize(np.concatenate(rows, 0), blocks)
            factors = {f"{j}.{k}": stats[m.name][k] for j, m in enumerate(mods) for k in FACTORS}
            _save_npy_atomic(path, {"q": q, "s": sc, **factors})
        done = hi
        if progress:
            progress(done, n, "records")

    # Assemble: one memory-mapped matrix, the scales, and the curvature from the stored values.
    sketch = cfg.curvature == "ekfac" and 0 < cfg.compress_dim < dim
    stored = [(0, cfg.compress_dim)] if sketch else blocks
    damping = cfg.damping_for(sketch)
    stored_dim = stored[-1][1]
    out_mm = {
        "g": np.lib.format.open_memmap(
            building / "grads.npy", mode="w+", dtype=np.float16, shape=(n, stored_dim)
        )
    }
    scales = np.empty((n, len(stored)), dtype=np.float32)

    def chunk_rows(copy: bool = not sketch) -> Any:
        for c in range(n_chunks):
            with np.load(building / f"chunk_{c:06d}.npz") as z:
                q, sc = z["q"], z["s"]
            lo = c * cfg.chunk_size
            if copy:
                out_mm["g"][lo : lo + len(q)] = q
                scales[lo : lo + len(q)] = sc
            yield lo, G.dequantize(q, sc, blocks)

    if cfg.curvature == "fisher":
        invs = G.fisher_inverses((r for _, r in chunk_rows()), blocks, n, damping)
        curv = {f"b{i}": inv for i, inv in enumerate(invs)}
    else:
        # Kronecker factors: summed over chunks in order (float64), then EK-FAC.
        stats = {m.name: {k: np.zeros((1, 1)) for k in FACTORS} for m in mods}
        for c in range(n_chunks):
            with np.load(building / f"chunk_{c:06d}.npz") as z:
                for j, m in enumerate(mods):
                    for k in FACTORS:
                        stats[m.name][k] = stats[m.name][k] + z[f"{j}.{k}"]
        blocks_ek = G.ekfac(stats, (r for _, r in chunk_rows()), mods, blocks, n, damping)
        curv = {k: v for i, b in enumerate(blocks_ek) for k, v in b.arrays(f"b{i}").items()}
        if sketch:
            # Second pass: whiten with H^-1/2, count-sketch, store (scores stay g_q . H^-1 g_i).
            sk = G.sketch_matrix(dim, stored_dim, cfg.seed)
            for lo, rows in chunk_rows(copy=False):
                w = G.precondition_ekfac(rows, blocks_ek, mods, blocks, 0.5)
                q, sc = G.quantize(sk.apply(w), stored)
                out_mm["g"][lo : lo + len(q)] = q
                scales[lo : lo + len(q)] = sc
    out_mm.pop("g").flush()  # and close the map before the folder is renamed
    np.save(building / "scales.npy", scales)
    _save_npy_atomic(building / "curvature.npz", curv)
    records = [
        {
            "record_id": int(e.record_id),
            "datanet": e.datanet,
            "version": int(e.version),
            "contributor": e.contributor,
            "leaf": getattr(e, "leaf", None),
        }
        for e in examples
    ]
    write_json(building / "records.json", records)
    meta = {
        "format": FORMAT,
        "identity": identity,
        "n": n,
        "dim": dim,
        "stored_dim": stored_dim,
        "sketch": sketch,
        "blocks": blocks,
        "modules": [[m.name, m.dim, m.rank, m.k_in, m.k_out, m.use_a] for m in mods],
    }
    write_json(building / "meta.json", meta)
    for c in range(n_chunks):
        (building / f"chunk_{c:06d}.npz").unlink()
    ident_path.unlink()
    # Swap in atomically: the old index (if any) stays until the new one is in place.
    replace_dir(building, out)
    return GradientIndex.open(out)
