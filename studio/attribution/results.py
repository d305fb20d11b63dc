"""Typed results of the attribution operations (see core/results.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from studio.core.results import HIDDEN, Result


@dataclass(frozen=True)
class AttributionReport(Result):
    """A report: which records and contributors shaped an output. `to_dict()` is the report
    document itself (what is hashed, signed and saved), so its shape is the report format's."""

    report: Mapping[str, Any]
    path: str | None = field(default=None, metadata=HIDDEN)  # where it was saved

    @property
    def report_hash(self) -> str:
        return str(self.report["report_hash"])

    @property
    def weights(self) -> list[Mapping[str, Any]]:
        return list(self.report["weights"])

    @property
    def top_records(self) -> list[Mapping[str, Any]]:
        return list(self.report["top_records"])

    def to_dict(self) -> dict[str, Any]:
        return dict(self.report)


@dataclass(frozen=True)
class IndexBuild(Result):
    model: str
    records: int
    examples: int
    dim: int
    span_tokens: int
    path: str
    reused: bool


@dataclass(frozen=True)
class ReportCheck(Result):
    """`attribution verify`: did a re-run give the same report?"""

    match: bool
    match_within_tolerance: bool
    float_noise: tuple[str, ...]
    differences: tuple[str, ...]
    report_hash: str
    recomputed_hash: str
    signature: str
    signer: str | None = None


@dataclass(frozen=True)
class ExactEstimate(Result):
    """What an exact attribution needs on this machine (`attribute --method exact --estimate`)."""

    model: str
    steps: int
    records: int
    queries: int
    block: int
    dtype: str
    memory_bytes: int
    memory_limit_bytes: int
    seconds: float
    fits: bool
    speed_source: str
    summary: str


@dataclass(frozen=True)
class ExactJobDone(Result):
    """The exact attribution job finished; its report is in the job folder."""

    job: str
    report_hash: str
