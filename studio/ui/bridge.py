"""Core events land on the GUI thread (Electrum's `qt_event_listener` pattern): the EventBus calls
subscribers on whatever thread emitted; the bridge re-emits each event through a Qt signal, so a
slot connected to `event` always runs on the GUI thread and may touch widgets."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal

from studio.core.events import Event, EventBus


class EventBridge(QObject):
    event = Signal(object)  # studio.core.events.Event

    def __init__(self, bus: EventBus, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._unsubscribe: Callable[[], None] | None = bus.subscribe(self.event.emit)

    def on(self, kinds: str | tuple[str, ...], slot: Callable[[Event], None]) -> None:
        """Connect `slot` to events whose kind starts with one of `kinds` ("train", "progress")."""
        prefixes = (kinds,) if isinstance(kinds, str) else kinds

        def relay(ev: Event) -> None:
            if ev.kind.startswith(prefixes):
                slot(ev)

        self.event.connect(relay, Qt.ConnectionType.QueuedConnection)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
