"""Progress and status events. Core code emits; the CLI prints, the GUI re-emits as Qt signals,
the node serves them. No Qt here: a subscriber is any callable."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Event:
    kind: str  # "progress", "log", "done", "error", or a domain name such as "train.step"
    job: str = ""
    message: str = ""
    step: int | None = None
    total: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        known = {
            k: d[k] for k in ("kind", "job", "message", "step", "total", "data", "time") if k in d
        }
        return cls(**known)


Subscriber = Callable[[Event], None]


class EventBus:
    """Thread-safe fan-out. A failing subscriber never breaks the work that emitted."""

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

    def emit(self, event: Event) -> None:
        with self._lock:
            subs = list(self._subs)
        for fn in subs:
            try:
                fn(event)
            except Exception:  # noqa: BLE001 - a broken listener must not stop a job
                pass

    def progress(
        self, job: str, step: int, total: int | None, message: str = "", **data: Any
    ) -> None:
        self.emit(Event("progress", job=job, step=step, total=total, message=message, data=data))

    def log(self, job: str, message: str, **data: Any) -> None:
        self.emit(Event("log", job=job, message=message, data=data))


class CancelToken:
    """Checked by long work at safe points; set from another thread (GUI) or a signal handler."""

    def __init__(self) -> None:
        self._ev = threading.Event()

    def cancel(self) -> None:
        self._ev.set()

    @property
    def cancelled(self) -> bool:
        return self._ev.is_set()

    def check(self) -> None:
        if self._ev.is_set():
            from studio.core.errors import Cancelled

            raise Cancelled("Cancelled.")
