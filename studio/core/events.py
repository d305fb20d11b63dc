"""Progress and status events. Core code emits; the CLI prints, the GUI re-emits as Qt signals,
the node serves them. No Qt here: a subscriber is any callable.

Every event has a kind from `EventKind` (one declared list, not free strings) and the id of the
operation it belongs to: `EventBus.operation()` opens one (a fresh id per call; nested calls, such as
the transactions a publish sends, share the outer id), so a GUI routes progress and "what changed"
to the action that caused it. Long work runs in job subprocesses too: `core.jobs` streams events as
JSON lines and `Event.from_dict` reads them back."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, get_args

from studio.core.cancel import CancelToken

if TYPE_CHECKING:
    from studio.core.changes import Changes

log = logging.getLogger(__name__)


class EventKind(StrEnum):
    """Every kind of event there is. A StrEnum: it compares equal to its string and is one in JSON."""

    PROGRESS = "progress"  # step / total / message
    LOG = "log"  # a line worth showing
    WARNING = "warning"  # something the user should know (a reset chain, a password in env)
    DONE = "done"  # a job finished
    ERROR = "error"  # a job failed
    CANCELLED = "cancelled"  # a job stopped on request
    CHANGED = "changed"  # a mutation finished; data["changes"] is Changes.to_dict()
    TRAIN_STEP = "train.step"  # one optimizer step (data: loss, lr, …)
    TRAIN_EVAL = "train.eval"  # a held-out evaluation during training
    TX_SENT = "tx.sent"  # data: hash, nonce
    TX_MINED = "tx.mined"  # data: hash, ok
    NOTE = "note"  # a line an operation says to the user while it runs (the CLI prints it)
    TOKEN = "token"  # generated text as it streams (message: the new text)


# The same list as plain strings, so `Event("warning", …)` type-checks and a typo does not.
KindName = Literal[
    "progress",
    "log",
    "warning",
    "done",
    "error",
    "cancelled",
    "changed",
    "train.step",
    "train.eval",
    "tx.sent",
    "tx.mined",
    "note",
    "token",
]


@dataclass
class Event:
    kind: EventKind | KindName
    job: str = ""  # which work: "ingest", "verify", a model id, "tx", …
    message: str = ""
    step: int | None = None
    total: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
    op: str = ""  # the operation id (set by the bus from the current operation when empty)

    def __post_init__(self) -> None:
        try:
            self.kind = EventKind(self.kind)
        except ValueError:  # a kind outside the declared list is a bug, not data
            raise ValueError(
                f"Unknown event kind {self.kind!r}: declare it in EventKind (studio/core/events.py)."
            ) from None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = str(self.kind)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        known = {
            k: d[k]
            for k in ("kind", "job", "message", "step", "total", "data", "time", "op")
            if k in d
        }
        return cls(**known)


assert set(get_args(KindName)) == {k.value for k in EventKind}

Subscriber = Callable[[Event], None]

_current_op: contextvars.ContextVar[str] = contextvars.ContextVar("studio_operation", default="")


def new_operation_id() -> str:
    return uuid.uuid4().hex[:16]


def current_operation() -> str:
    """The id of the operation running in this thread (context), or ""."""
    return _current_op.get()


class EventBus:
    """Thread-safe fan-out. A failing subscriber never breaks the work that emitted; it is logged."""

    def __init__(self) -> None:
        self._subs: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subs.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subs:
                    self._subs.remove(fn)

        return unsubscribe

    @contextmanager
    def operation(self, name: str = "", op_id: str | None = None) -> Iterator[str]:
        """Run a block as one operation: events emitted inside it (in this thread) carry its id.
        Inside another operation the outer id is kept, unless `op_id` names one."""
        outer = _current_op.get()
        op = op_id or outer or new_operation_id()
        token = _current_op.set(op)
        try:
            yield op
        finally:
            _current_op.reset(token)

    def emit(self, event: Event) -> None:
        if not event.op:
            event.op = _current_op.get()
        with self._lock:
            subs = list(self._subs)
        for fn in subs:
            try:
                fn(event)
            except Exception:  # noqa: BLE001 - a broken listener must not stop a job
                log.exception("event subscriber %r failed on a %s event", fn, event.kind)

    def progress(
        self, job: str, step: int, total: int | None, message: str = "", **data: Any
    ) -> None:
        self.emit(
            Event(EventKind.PROGRESS, job=job, step=step, total=total, message=message, data=data)
        )

    def log(self, job: str, message: str, **data: Any) -> None:
        self.emit(Event(EventKind.LOG, job=job, message=message, data=data))

    def warning(self, job: str, message: str, **data: Any) -> None:
        self.emit(Event(EventKind.WARNING, job=job, message=message, data=data))

    def changed(self, changes: Changes, job: str = "") -> None:
        """Announce what a mutation changed (see core.changes)."""
        if changes:
            self.emit(Event(EventKind.CHANGED, job=job, data={"changes": changes.to_dict()}))


__all__ = [
    "CancelToken",
    "Event",
    "EventBus",
    "EventKind",
    "Subscriber",
    "current_operation",
    "new_operation_id",
]
