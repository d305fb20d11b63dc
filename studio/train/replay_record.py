"""The replay record: what an exact re-run of a finished training run needs, written beside the
adapter (``replay/``) so exact attribution (studio/attribution/exact.py) can differentiate
through the run.

The trainer is deterministic, so the record is small: the LoRA initialisation, the training rows
(token ids, labels, position ids, which record each token came from), the batches of every step,
the learning rate of every step, the AdamW and clipping settings, and the torch RNG state the
loop started from (LoRA dropout draws from it). Optimizer states between steps are not stored:
the replay recomputes them from the start, keeping checkpoints in memory at a spacing it
chooses for the memory it has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import AttributionError

# /2: the training rows (token ids, labels, positions, record of each token, loss coefficients)
# are flat int16/int32 (float64) arrays in rows.safetensors instead of JSON lists in replay.json
# (smaller and several times faster to load: bench/attribution_replay_io.py prints the ratios).
# /1 records (rows in replay.json) still load.
REPLAY_FORMAT = "openledger-replay/2"
READABLE_FORMATS = ("openledger-replay/1", REPLAY_FORMAT)
REPLAY_DIR = "replay"
ROW_FIELDS = ("input_ids", "labels", "position_ids", "records")


@dataclass
class ReplayRecord:
    lora: dict[str, Any]  # r, alpha, dropout, targets
    optimizer: dict[str, Any]  # betas, eps, weight_decay, max_grad_norm
    lrs: list[float]  # learning rate of each optimizer step
    steps: list[list[list[int]]]  # per step: micro-batches of row indices
    step_scale: list[float]  # per step: the loss of every token is divided by this
    rows: list[dict[str, Any]]  # input_ids, labels, position_ids, records (per token, -1: none)
    records: list[dict[str, Any]]  # datanet, version, record_id, contributor (weight order)
    pad_id: int
    exact: bool = True
    why_not: str | None = None  # when not exact: why, in plain words
    dtype: str = "float32"
    init: dict[str, Any] = field(default_factory=dict)  # trainable parameter name -> tensor
    rng_state: Any = None  # torch ByteTensor at the start of step 0 (dropout > 0 only)
    row_coef: list[list[float]] | None = None  # per-token loss coefficient (None: all 1)

    @property
    def total_steps(self) -> int:
        return len(self.steps)

    def meta(self) -> dict[str, Any]:
        return {
            "format": REPLAY_FORMAT,
            "exact": self.exact,
            "why_not": self.why_not,
            "dtype": self.dtype,
            "lora": self.lora,
            "optimizer": self.optimizer,
            "lrs": self.lrs,
            "steps": self.steps,
            "step_scale": self.step_scale,
            "records": self.records,
            "pad_id": self.pad_id,
            "rows": len(self.rows),  # the rows themselves are in rows.safetensors
        }

    def save(self, out: Path) -> None:
        import torch
        from safetensors.torch import save

        from studio.core.atomic import write_bytes, write_text

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        init = {k: v.detach().cpu().contiguous() for k, v in self.init.items()}
        write_bytes(out / "init.safetensors", save(init))
        write_bytes(out / "rows.safetensors", save(pack_rows(self.rows, self.row_coef)))
        if self.rng_state is not None:
            torch.save(self.rng_state, out / "rng.pt")
        write_text(out / "replay.json", json.dumps(self.meta(), separators=(",", ":")))

    @classmethod
    def load(cls, path: Path) -> ReplayRecord:
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        try:
            meta = json.loads((path / "replay.json").read_text("utf-8"))
            init = load_file(str(path / "init.safetensors"))
        except (OSError, ValueError, SafetensorError) as e:
            raise AttributionError(
                f"This model version has no readable replay record ({path}).",
                hint="Exact attribution needs a model trained by this version of the studio; "
                "use the gradient method, or retrain the model.",
            ) from e
        if meta.get("format") not in READABLE_FORMATS:
            raise AttributionError(
                f"Unknown replay record format {meta.get('format')!r} in {path}.",
                hint="It was written by a newer studio: update, or use the gradient method.",
            )
        if meta["format"] == REPLAY_FORMAT:
            try:
                rows, row_coef = unpack_rows(load_file(str(path / "rows.safetensors")))
            except (OSError, ValueError, KeyError, SafetensorError) as e:
                raise AttributionError(
                    f"The replay record's rows in {path} are missing or damaged ({e}).",
                    hint="Use the gradient method, or retrain the model.",
                ) from e
        else:
            rows, row_coef = meta["rows"], meta.get("row_coef")
        rng = torch.load(path / "rng.pt", weights_only=True) if (path / "rng.pt").exists() else None
        return cls(
            lora=meta["lora"],
            optimizer=meta["optimizer"],
            lrs=[float(x) for x in meta["lrs"]],
            steps=meta["steps"],
            step_scale=[float(x) for x in meta["step_scale"]],
            rows=rows,
            records=meta["records"],
            pad_id=int(meta["pad_id"]),
            exact=bool(meta.get("exact")),
            why_not=meta.get("why_not"),
            dtype=meta.get("dtype", "float32"),
            init=init,
            rng_state=rng,
            row_coef=row_coef,
        )


def pack_rows(rows: list[dict[str, Any]], row_coef: list[list[float]] | None) -> dict[str, Any]:
    """The rows as flat tensors: each field concatenated (int16 where every value fits, else
    int32; the loss coefficients float64)
    with its row starts in FIELD.offsets."""
    import torch

    def flat(lists: list[list[Any]], dtype: Any) -> tuple[Any, Any]:
        off = torch.zeros(len(lists) + 1, dtype=torch.int64)
        if lists:
            off[1:] = torch.cumsum(torch.tensor([len(x) for x in lists], dtype=torch.int64), 0)
        vals = torch.tensor([x for xs in lists for x in xs], dtype=dtype)
        if dtype == torch.int64 and (vals.numel() == 0 or (vals.abs().max() < 2**15)):
            vals = vals.to(torch.int16)  # a small vocabulary, short rows, few records
        elif dtype == torch.int64:
            vals = vals.to(torch.int32)
        return vals, off

    out: dict[str, Any] = {}
    for f in ROW_FIELDS:
        out[f], out[f + ".offsets"] = flat([list(r[f]) for r in rows], torch.int64)
    if row_coef is not None:
        out["coef"], out["coef.offsets"] = flat([list(c) for c in row_coef], torch.float64)
    return out


def unpack_rows(t: dict[str, Any]) -> tuple[list[dict[str, Any]], list[list[float]] | None]:
    def split(name: str) -> list[list[Any]]:
        vals, off = t[name].tolist(), t[name + ".offsets"].tolist()
        return [vals[a:b] for a, b in zip(off[:-1], off[1:], strict=True)]

    cols = {f: split(f) for f in ROW_FIELDS}
    n = len(cols[ROW_FIELDS[0]])
    rows = [{f: cols[f][i] for f in ROW_FIELDS} for i in range(n)]
    return rows, (split("coef") if "coef" in t else None)


def summary(path: Path) -> dict[str, Any]:
    """What the model card says about exact attribution, from replay/replay.json."""
    p = Path(path) / "replay.json"
    if not p.exists():
        return {"exact": False, "why_not": "no replay record (trained before exact attribution)"}
    meta = json.loads(p.read_text("utf-8"))
    return {
        "exact": bool(meta.get("exact")),
        "why_not": meta.get("why_not"),
        "steps": len(meta.get("steps", [])),
        "records": len(meta.get("records", [])),
    }
