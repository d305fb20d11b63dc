"""Background work in one line per GUI action, in the style of Anki's `QueryOp`/`CollectionOp`:

    op(self, lambda ctx: studio.datanets.snapshot(name)).success(self.refresh).run_in_background()

The function runs off the GUI thread (reads on a QThreadPool, writes serialised on one worker);
success/failure/cancel callbacks run on the GUI thread. A function taking one argument gets an
`OpContext`: `ctx.progress(step, total, text)` (coalesced to <= 20 GUI updates/s, shown after
~0.5 s) and `ctx.cancel`, a core CancelToken that long core calls accept. No widget is touched off
the GUI thread: everything crosses over through queued signals."""

from __future__ import annotations

import inspect
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import shiboken6
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from studio.core.errors import Cancelled
from studio.core.events import CancelToken

if TYPE_CHECKING:
    from studio.app import Studio

T = TypeVar("T")

SHOW_AFTER_MS = 500  # progress appears only for work longer than this
UPDATE_EVERY_MS = 50  # at most 20 progress updates per second reach the GUI

_READS = QThreadPool.globalInstance
_writes: QThreadPool | None = None
_live: set[Op[Any]] = set()  # running ops stay referenced until they finish


def write_pool() -> QThreadPool:
    """One worker for every write: mutations never race each other."""
    global _writes
    if _writes is None:
        _writes = QThreadPool()
        _writes.setMaxThreadCount(1)
        _writes.setExpiryTimeout(-1)
    return _writes


def running() -> int:
    return len(_live)


class OpContext:
    def __init__(self) -> None:
        self.cancel = CancelToken()
        self._lock = threading.Lock()
        self._latest: tuple[int | None, int | None, str] | None = None
        self.updates = 0  # raw progress calls from the worker (tests compare with GUI updates)

    def progress(self, step: int | None = None, total: int | None = None, text: str = "") -> None:
        """Called from the worker, as often as it likes; raises Cancelled once cancel was asked."""
        with self._lock:
            self._latest = (step, total, text)
            self.updates += 1
        self.cancel.check()

    def report(self, step: int | None = None, total: int | None = None, text: str = "") -> None:
        """Like progress, but never raises: for callbacks whose caller swallows exceptions (an
        event subscriber); the work checks `cancel` itself."""
        with self._lock:
            self._latest = (step, total, text)
            self.updates += 1

    def take(self) -> tuple[int | None, int | None, str] | None:
        with self._lock:
            latest, self._latest = self._latest, None
        return latest


class _Box:
    """Carries a result across threads. (PySide6 mis-counts references when a bare None crosses a
    queued Signal(object): "deallocating None". A box is always a real object.)"""

    __slots__ = ("value", "tb")

    def __init__(self, value: Any, tb: str = "") -> None:
        self.value, self.tb = value, tb


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(object)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn, self.relay = fn, relay
        self.setAutoDelete(False)  # the Op keeps it; Qt deleting a Python runnable crashes PySide6

    def run(self) -> None:
        try:
            result = self.fn()
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the GUI thread
            box, sig = _Box(e, traceback.format_exc()), "failed"
        else:
            box, sig = _Box(result), "done"
        try:
            getattr(self.relay, sig).emit(box)
        except RuntimeError:
            pass  # the application quit while this ran: nobody is left to tell


class Op(Generic[T]):
    def __init__(
        self, parent: QWidget | None, fn: Callable[..., T], *, write: bool = False
    ) -> None:
        self.parent = parent
        self.fn = fn
        self.write = write
        self.ctx = OpContext()
        self._success: Callable[[T], Any] | None = None
        self._failure: Callable[[BaseException], Any] | None = None
        self._cancelled: Callable[[], Any] | None = None
        self._finally: Callable[[], Any] | None = None
        self._label: str | None = None
        self._on_progress: Callable[[int | None, int | None, str], Any] | None = None
        self._dialog: QProgressDialog | None = None
        self.gui_updates = 0
        self.finished = False
        self._takes_ctx = _takes_argument(fn)

    # -- builder --------------------------------------------------------------------------------
    def success(self, cb: Callable[[T], Any]) -> Op[T]:
        self._success = cb
        return self

    def failure(self, cb: Callable[[BaseException], Any]) -> Op[T]:
        self._failure = cb
        return self

    def cancelled(self, cb: Callable[[], Any]) -> Op[T]:
        self._cancelled = cb
        return self

    def after(self, cb: Callable[[], Any]) -> Op[T]:
        """Runs after success, failure or cancel (re-enable a button, say)."""
        self._finally = cb
        return self

    def with_progress(self, label: str = "Working…") -> Op[T]:
        self._label = label
        return self

    def on_progress(self, cb: Callable[[int | None, int | None, str], Any]) -> Op[T]:
        """cb(step, total, text) on the GUI thread with the latest progress, at most 20 times a
        second however often the worker reports (a streamed answer, a live count), and no dialog
        unless `with_progress` asks for one too."""
        self._on_progress = cb
        return self

    def cancel(self) -> None:
        self.ctx.cancel.cancel()

    def run_in_background(self) -> Op[T]:
        _live.add(self)
        self._relay = _Relay()
        # Queued: the worker emits, the GUI thread runs the slot.
        self._relay.done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        self._relay.failed.connect(self._on_failed, Qt.ConnectionType.QueuedConnection)
        if self._label is not None or self._on_progress is not None:
            self._timer = QTimer()
            self._timer.setInterval(UPDATE_EVERY_MS)
            self._timer.timeout.connect(self._pump)
            self._timer.start()
        if self._label is not None:
            QTimer.singleShot(SHOW_AFTER_MS, self._show_progress)
        call = (lambda: self.fn(self.ctx)) if self._takes_ctx else self.fn
        pool = write_pool() if self.write else _READS()
        self._job = _Job(call, self._relay)
        pool.start(self._job)
        return self

    # -- GUI thread -------------------------------------------------------------------------------
    def _show_progress(self) -> None:
        if self.finished or self._label is None:
            return
        d = QProgressDialog(self._label, "Cancel", 0, 0, self.parent)
        d.setWindowTitle("Working")
        d.setAccessibleName("Progress")
        d.setMinimumDuration(0)
        d.setWindowModality(Qt.WindowModality.WindowModal)
        d.canceled.connect(self.cancel)
        d.show()
        self._dialog = d
        self._pump()

    def _pump(self) -> None:
        latest = self.ctx.take()
        if latest is None:
            return
        self.gui_updates += 1
        step, total, text = latest
        if self._on_progress is not None and not self._gone():
            self._on_progress(step, total, text)
        if self._dialog is not None:
            if total:
                self._dialog.setMaximum(int(total))
                self._dialog.setValue(int(step or 0))
            if text:
                self._dialog.setLabelText(f"{self._label}\n{text}")

    def _close(self) -> None:
        self.finished = True
        if self._label is not None or self._on_progress is not None:
            self._timer.stop()
            self._pump()  # the last update (the end of a streamed answer) is never dropped
        if self._dialog is not None and shiboken6.isValid(self._dialog):
            self._dialog.canceled.disconnect(self.cancel)
            self._dialog.close()
            self._dialog.deleteLater()
            self._dialog = None
        _live.discard(self)

    def _gone(self) -> bool:
        """The widget that asked was deleted meanwhile (page rebuilt, window closed): its
        callbacks would touch dead widgets, so they are skipped."""
        return self.parent is not None and not shiboken6.isValid(self.parent)

    def _on_done(self, box: _Box) -> None:
        result: T = box.value
        self._close()
        if self._gone():
            return
        try:
            if self.ctx.cancel.cancelled and self._cancelled is not None:
                self._cancelled()
            elif self._success is not None:
                self._success(result)
        finally:
            if self._finally is not None:
                self._finally()

    def _on_failed(self, box: _Box) -> None:
        exc, tb = box.value, box.tb
        self._close()
        if self._gone():
            return
        try:
            if isinstance(exc, Cancelled) or (
                self.ctx.cancel.cancelled and isinstance(exc, KeyboardInterrupt)
            ):
                if self._cancelled is not None:
                    self._cancelled()
            elif self._failure is not None:
                self._failure(exc)
            else:
                from studio.ui.errors import show_error

                show_error(self.parent, exc, tb)
        finally:
            if self._finally is not None:
                self._finally()


def op(parent: QWidget | None, fn: Callable[..., T], *, write: bool = False) -> Op[T]:
    return Op(parent, fn, write=write)


def write_op(parent: QWidget | None, fn: Callable[..., T]) -> Op[T]:
    return Op(parent, fn, write=True)


def call(studio: Studio, path: str, **kwargs: Any) -> Any:
    """Run a declared operation (studio.commands) with keyword arguments, as the CLI does; a typed
    result comes back as its plain dict. Called from inside a background op."""
    from studio.commands import invoke

    result = invoke(path, studio, **kwargs)
    return result.to_dict() if hasattr(result, "to_dict") else result


def _takes_argument(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        for p in params
    )
