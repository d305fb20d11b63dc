"""Typed results of the ModelFactory operations (see core/results.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from studio.core.results import OMIT_NONE, Result


@dataclass(frozen=True)
class ModelEntry(Result):
    """A base model or a fine-tuned version (`model list`). The fields beyond these differ by
    kind (a base has name/license/ready; a fine-tune status/step/hashes) and stay in `extra`."""

    id: str
    kind: str  # "base" | "fine-tune"
    base: str | None
    datanets: tuple[Mapping[str, Any], ...]
    dir: str

    def get(self, key: str, default: Any = None) -> Any:
        return self.extra.get(key, default)

    @property
    def status(self) -> str:
        return str(self.get("status", "ready"))


@dataclass(frozen=True)
class TrainingStatus(ModelEntry):
    """Where a training job stands (`model train|resume|cancel`); with the card once ready."""

    card: Mapping[str, Any] | None = field(default=None, metadata=OMIT_NONE)
    adapter_dir: str | None = field(default=None, metadata={"json": "hidden"})


@dataclass(frozen=True)
class TrainingStarted(Result):
    """A detached job: it runs on as process `pid`."""

    id: str
    pid: int
    status: str = "training"


@dataclass(frozen=True)
class JobDone(Result):
    id: str
    dir: str


@dataclass(frozen=True)
class Evaluation(Result):
    model: str
    datanet: Mapping[str, Any]
    examples: int
    loss: float
    perplexity: float
    base_loss: float
    base_perplexity: float


@dataclass(frozen=True)
class MergedModel(Result):
    id: str
    dir: str


@dataclass(frozen=True)
class ModelRegistration(Result):
    """`model register`: what the chain registry returned (model id on chain, tx, …)."""

    local_id: str = field(default="", metadata={"json": "hidden"})  # the model's id here


@dataclass(frozen=True)
class Generation(Result):
    model: str
    prompt: str
    output: str
    seed: int
