"""The training data plan: the validation split, rows and their collation into batches, and which
rows every optimizer step takes (a function of rows and config only: a resume sees the same
batches), plus the learning-rate schedule."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from studio.train.config import TrainConfig
from studio.train.data import IGNORE, Example, pack_examples

Row = tuple[list[int], list[int], list[int]]  # input_ids, labels, position_ids


def validation_record_ids(record_ids: Sequence[int], val_split: float, seed: int) -> set[int]:
    """Whole records held out for validation, chosen by a seeded shuffle."""
    ids = sorted(set(record_ids))
    n_val = int(math.floor(len(ids) * val_split)) if len(ids) >= 5 else 0
    rng = random.Random(seed)
    rng.shuffle(ids)
    return set(ids[:n_val])


def split_examples(
    examples: Sequence[Example], val_split: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Validation holds whole records (never half a record)."""
    val_ids = validation_record_ids([e.record_id for e in examples], val_split, seed)
    if not val_ids:
        return list(examples), []
    return [e for e in examples if e.record_id not in val_ids], [
        e for e in examples if e.record_id in val_ids
    ]


def to_rows(examples: Sequence[Example], max_length: int, packing: bool) -> list[Row]:
    if packing:
        return pack_examples(examples, max_length)
    return [(e.input_ids, e.labels, list(range(len(e.input_ids)))) for e in examples]


def collate(rows: Sequence[Row], pad_id: int) -> dict[str, Any]:
    """Right-pad to the longest row. Padding gets its own position ids (0, 1, …) so the model's
    packed-sequence mask isolates it; no 2D attention mask is passed (that would disable it)."""
    import torch

    width = max(len(r[0]) for r in rows)
    ids, labels, pos = [], [], []
    for i, lab, p in rows:
        n = width - len(i)
        ids.append(i + [pad_id] * n)
        labels.append(lab + [IGNORE] * n)
        pos.append(p + list(range(n)))
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "position_ids": torch.tensor(pos, dtype=torch.long),
    }


def loss_items(rows: Sequence[Row]) -> int:
    # The model shifts labels by one: the first label of each row never carries loss.
    return sum(sum(1 for x in r[1][1:] if x != IGNORE) for r in rows)


@dataclass
class Plan:
    """Where every optimizer step takes its rows from; a function of (rows, config) only,
    so a resumed run sees exactly the batches the uninterrupted run would have seen."""

    n_rows: int
    batch_size: int
    grad_accum: int
    seed: int
    total_steps: int

    @property
    def micro_per_epoch(self) -> int:
        return math.ceil(self.n_rows / self.batch_size)

    def _perm(self, epoch: int) -> list[int]:
        import torch

        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n_rows, generator=g).tolist()

    def micro_batches(self, step: int) -> list[list[int]]:
        out = []
        for m in range(self.grad_accum):
            g = step * self.grad_accum + m
            epoch, k = divmod(g, self.micro_per_epoch)
            perm = self._perm(epoch)
            out.append(perm[k * self.batch_size : (k + 1) * self.batch_size])
        return out

    def position(self, step: int) -> dict[str, int]:
        epoch, k = divmod(step * self.grad_accum, self.micro_per_epoch)
        return {"epoch": epoch, "micro_batch": k, "step": step}


def make_plan(n_rows: int, cfg: TrainConfig) -> Plan:
    micro = math.ceil(n_rows / cfg.batch_size)
    steps_per_epoch = max(1, math.ceil(micro / cfg.grad_accum))
    total = cfg.max_steps if cfg.max_steps else max(1, math.ceil(cfg.epochs * steps_per_epoch))
    return Plan(n_rows, cfg.batch_size, cfg.grad_accum, cfg.seed, total)


def lr_lambda(schedule: str, warmup: int, total: int) -> Callable[[int], float]:
    def f(s: int) -> float:
        if s < warmup:
            return (s + 1) / (warmup + 1)
        p = (s - warmup) / max(1, total - warmup)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * p))
        if schedule == "linear":
            return max(0.0, 1.0 - p)
        return 1.0

    return f
