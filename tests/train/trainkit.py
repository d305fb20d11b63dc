"""Helpers shared by the ModelFactory tests."""

from __future__ import annotations

from typing import Any


def make_records(n: int = 12) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        base = dict(
            record_id=i + 1,
            index=i,
            datanet="field-notes",
            version=1,
            contributor=["0xAa", "0xBb", "0xCc"][i % 3],
            text="",
            prompt=None,
            response=None,
            messages=None,
        )
        if i % 3 == 0:
            base.update(kind="text", text=f"Tide log {i}: the keeper saw high water at dawn. " * 2)
        elif i % 3 == 1:
            base.update(
                kind="prompt_response",
                prompt=f"How warm is proof {i}?",
                response=f"Keep the dough at {20 + i} degrees.",
            )
        else:
            base.update(
                kind="chat",
                messages=[
                    {"role": "user", "content": f"Bees {i}?"},
                    {"role": "assistant", "content": f"Smoke the hive {i} times."},
                ],
            )
        out.append(base)
    return out


PROVENANCE = [
    {
        "name": "field-notes",
        "version": 1,
        "root": "0x" + "ab" * 32,
        "records": 12,
        "record_ids": list(range(1, 13)),
    }
]

FAST = dict(
    max_steps=6,
    batch_size=2,
    max_length=64,
    checkpoint_every=2,
    learning_rate=1e-2,
    warmup_ratio=0.0,
    val_split=0.2,
)


def train_tiny(
    studio: Any, name: str | None = None, records: list | None = None, **settings: Any
) -> str:
    model_id = studio.models.prepare(
        base="tiny",
        records=records or make_records(),
        provenance=PROVENANCE,
        settings={**FAST, **settings},
        name=name,
    )
    studio.models.run_job(model_id)
    return model_id
