"""Typed results of operations: frozen dataclasses with `to_dict()`.

Operations return these (the CLI renders them as text or, with --json, prints `to_dict()`; the GUI
reads their fields; the node serialises them). A field the type does not name yet (a key a newer
domain method added) is kept in `extra` and still reaches `to_dict()`, so JSON never loses data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="Result")

# Field metadata: HIDDEN fields are for the renderer only (never in JSON); OMIT_NONE fields are
# left out of JSON while None (so optional parts do not change a documented shape).
HIDDEN = {"json": "hidden"}
OMIT_NONE = {"json": "omit_none"}


def plain(value: Any) -> Any:
    """JSON-able form: results become dicts, tuples lists, mappings dicts."""
    if isinstance(value, Result):
        return value.to_dict()
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return to_dict()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Result:
    """Base of every typed result."""

    # Nested result types by field name, for from_dict (a list of dicts becomes a tuple of them).
    nested: ClassVar[Mapping[str, type[Result]]] = {}
    # JSON key of a field whose Python name differs (e.g. sender -> "from").
    keys: ClassVar[Mapping[str, str]] = {}

    extra: Mapping[str, Any] = field(default_factory=dict, kw_only=True, repr=False)

    @classmethod
    def from_dict(cls: type[R], d: Mapping[str, Any], **overrides: Any) -> R:
        by_key = {cls.keys.get(f.name, f.name): f.name for f in fields(cls) if f.name != "extra"}
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for k, v in d.items():
            name = by_key.get(k)
            if name is None:
                extra[k] = v
                continue
            sub = cls.nested.get(name)
            if sub is not None and isinstance(v, Mapping):
                v = sub.from_dict(v)
            elif sub is not None and isinstance(v, list | tuple):
                v = tuple(sub.from_dict(x) if isinstance(x, Mapping) else x for x in v)
            elif isinstance(v, list):
                v = tuple(v)
            known[name] = v
        known.update(overrides)
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            mode = f.metadata.get("json")
            value = getattr(self, f.name)
            if mode == "hidden" or (mode == "omit_none" and value is None):
                continue
            out[self.keys.get(f.name, f.name)] = plain(value)
        for k, v in self.extra.items():
            out.setdefault(k, plain(v))
        return out


# -- Datanets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordCounts(Result):
    pending: int = 0
    accepted: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class Snapshot(Result):
    """An immutable version of a Datanet's accepted records. `datanet snapshot --json` is
    exactly {"version", "root", "records"}: the other fields are left out while unknown."""

    version: int
    root: str
    records: int
    datanet: str | None = field(default=None, metadata=OMIT_NONE)
    created_at: float | None = field(default=None, metadata=OMIT_NONE)
    manifest_hash: str | None = field(default=None, metadata=OMIT_NONE)
    unchanged: bool = field(default=False, metadata=HIDDEN)  # same root as the latest version


@dataclass(frozen=True)
class DatanetFile(Result):
    id: int
    name: str
    format: str
    contributor: str
    records: int
    sha256: str = ""
    size: int = 0
    refused: int = 0
    added_at: float = 0.0


@dataclass(frozen=True)
class Datanet(Result):
    nested: ClassVar[Mapping[str, type[Result]]] = {
        "records": RecordCounts,
        "latest_snapshot": Snapshot,
        "files_list": DatanetFile,
        "snapshots": Snapshot,
    }

    name: str
    summary: str
    description: str
    tags: tuple[str, ...]
    license: str
    kind: str
    created_at: float
    owner: str | None
    files: int
    records: RecordCounts
    latest_snapshot: Snapshot | None
    # `datanet show` adds the files and every snapshot.
    files_list: tuple[DatanetFile, ...] | None = field(default=None, metadata=OMIT_NONE)
    snapshots: tuple[Snapshot, ...] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class Record(Result):
    id: int
    kind: str
    status: str
    score: float
    preview: str
    contributor: str
    status_reason: str | None = None
    reasons: tuple[str, ...] = ()
    pii: Any = ()
    license: str = ""
    supersedes: int | None = None


@dataclass(frozen=True)
class AddFileResult(Result):
    """One file of `datanet add`: status added | duplicate | error."""

    file: str
    status: str
    path: str = ""
    records: int = field(default=0, metadata=OMIT_NONE)
    sha256: str | None = field(default=None, metadata=OMIT_NONE)
    refused: tuple[Any, ...] | None = field(default=None, metadata=OMIT_NONE)
    flags: Mapping[str, int] | None = field(default=None, metadata=OMIT_NONE)
    file_id: int | None = field(default=None, metadata=OMIT_NONE)
    message: str | None = field(default=None, metadata=OMIT_NONE)
    error: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class CurateResult(Result):
    datanet: str
    status: str
    changed: tuple[int, ...]
    left_pending: tuple[int, ...]
    min_score: float = field(default=0.5, metadata=HIDDEN)


@dataclass(frozen=True)
class RecordProof(Result):
    version: int
    root: str
    record_id: int
    leaf: str
    proof: tuple[str, ...]


@dataclass(frozen=True)
class VerifyResult(Result):
    datanet: str
    records_checked: int
    snapshots_checked: int
    ok: bool
    problems: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class ExportResult(Result):
    datanet: str
    version: int
    root: str
    records: int
    format: str
    path: str


# -- Doctor -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check(Result):
    check: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class DoctorReport(Result):
    nested: ClassVar[Mapping[str, type[Result]]] = {"checks": Check}

    version: str
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class Summary(Result):
    """A free-form summary (the demo's stages): to_dict() is the mapping itself."""

    data: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {k: plain(v) for k, v in self.data.items()}
