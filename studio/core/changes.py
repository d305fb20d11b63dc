"""What a mutation changed, so a page redraws only that (Anki's OpChanges).

Domain mutations announce a `Changes` on the event bus (`EventBus.changed`, an event of kind
`changed` whose `data["changes"]` is `Changes.to_dict()`); `track_changes` gathers those of one call.
Transactions are picked up from the pipeline's `tx.sent` / `tx.mined` events as well, so the chain
layer needs no extra call for them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studio.core.events import Event, EventBus


def _fs(items: Iterable[Any] | None) -> frozenset[Any]:
    return frozenset(items or ())


@dataclass(frozen=True)
class Changes:
    """Names and ids of what a call created, changed or removed. Empty means nothing changed."""

    datanets: frozenset[str] = field(default_factory=frozenset)  # Datanet names
    records: frozenset[int] = field(default_factory=frozenset)  # record ids
    snapshots: frozenset[tuple[str, int]] = field(default_factory=frozenset)  # (datanet, version)
    models: frozenset[str] = field(default_factory=frozenset)  # model ids
    accounts: frozenset[str] = field(default_factory=frozenset)  # checksummed addresses
    transactions: frozenset[str] = field(default_factory=frozenset)  # tx hashes

    @classmethod
    def of(
        cls,
        *,
        datanets: Iterable[str] | None = None,
        records: Iterable[int] | None = None,
        snapshots: Iterable[tuple[str, int]] | None = None,
        models: Iterable[str] | None = None,
        accounts: Iterable[str] | None = None,
        transactions: Iterable[str] | None = None,
    ) -> Changes:
        return cls(
            _fs(datanets),
            frozenset(int(r) for r in records or ()),
            frozenset((str(n), int(v)) for n, v in snapshots or ()),
            _fs(models),
            _fs(accounts),
            _fs(transactions),
        )

    def __or__(self, other: Changes) -> Changes:
        return Changes(
            *(getattr(self, f.name) | getattr(other, f.name) for f in fields(self))  # type: ignore[arg-type]
        )

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def to_dict(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {f.name: sorted(getattr(self, f.name)) for f in fields(self)}
        out["snapshots"] = [{"datanet": n, "version": v} for n, v in out["snapshots"]]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Changes:
        snaps = [
            (s["datanet"], s["version"]) if isinstance(s, dict) else tuple(s)
            for s in d.get("snapshots", ())
        ]
        return cls.of(
            datanets=d.get("datanets"),
            records=d.get("records"),
            snapshots=snaps,  # type: ignore[arg-type]
            models=d.get("models"),
            accounts=d.get("accounts"),
            transactions=d.get("transactions"),
        )


NOTHING = Changes()


class ChangeTracker:
    """The changes announced during one `track_changes` block (by this operation only)."""

    def __init__(self, op: str) -> None:
        self.op = op
        self.changes = NOTHING

    def __call__(self, event: Event) -> None:
        from studio.core.events import EventKind

        if event.op != self.op:
            return
        if event.kind == EventKind.CHANGED:
            self.changes |= Changes.from_dict(event.data.get("changes", {}))
        elif event.kind in (EventKind.TX_SENT, EventKind.TX_MINED) and event.data.get("hash"):
            self.changes |= Changes.of(transactions=[event.data["hash"]])


@contextmanager
def track_changes(bus: EventBus, name: str = "") -> Iterator[ChangeTracker]:
    """Run a call as one operation and gather what it changed:

    with track_changes(studio.events, "datanet curate") as t:
        studio.datanets.curate("notes", accept_all=True)
    t.changes  # Changes(datanets={'notes'}, records={…})
    """
    with bus.operation(name) as op:
        tracker = ChangeTracker(op)
        unsubscribe = bus.subscribe(tracker)
        try:
            yield tracker
        finally:
            unsubscribe()
