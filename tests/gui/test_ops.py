"""The background-op helper: success, failure, cancel, progress coalescing, write serialisation,
events re-emitted on the GUI thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from studio.core.errors import Cancelled, InvalidInput
from studio.core.events import Event, EventBus


@pytest.fixture(autouse=True)
def app(qapp: Any) -> Any:
    return qapp


def test_success_runs_off_the_gui_thread_and_calls_back_on_it(qtbot: Any) -> None:
    from studio.ui.ops import op

    gui = threading.get_ident()
    seen: dict[str, Any] = {}

    def work() -> int:
        seen["worker"] = threading.get_ident()
        return 42

    op(None, work).success(
        lambda r: seen.update(result=r, cb=threading.get_ident())
    ).run_in_background()
    qtbot.waitUntil(lambda: "result" in seen)
    assert seen["result"] == 42
    assert seen["worker"] != gui
    assert seen["cb"] == gui


def test_none_result_crosses_threads(qtbot: Any) -> None:
    from studio.ui.ops import op

    got: list[Any] = []
    for _ in range(200):
        op(None, lambda: None).success(got.append).run_in_background()
    qtbot.waitUntil(lambda: len(got) == 200)
    assert got == [None] * 200


def test_failure_goes_to_the_failure_callback_with_the_error(qtbot: Any) -> None:
    from studio.ui.ops import op

    errors: list[BaseException] = []
    after: list[bool] = []

    def work() -> None:
        raise InvalidInput("bad name", hint="use lower case")

    op(None, work).success(lambda _r: pytest.fail("no success")).failure(errors.append).after(
        lambda: after.append(True)
    ).run_in_background()
    qtbot.waitUntil(lambda: bool(after))
    assert isinstance(errors[0], InvalidInput)
    assert errors[0].hint == "use lower case"


def test_failure_without_callback_opens_the_error_dialog(qtbot: Any) -> None:
    from PySide6.QtWidgets import QApplication, QMessageBox

    from studio.ui import errors
    from studio.ui.ops import op

    ran: list[bool] = []
    errors.register_action("open-wallet", "Open Wallet", lambda: ran.append(True))

    def work() -> None:
        from studio.core.errors import WalletError

        raise WalletError("Wrong password for 0xabc.", hint="Type it again.")

    op(None, work).run_in_background()

    def dialog() -> QMessageBox | None:
        for w in QApplication.topLevelWidgets():
            if isinstance(w, QMessageBox) and w.isVisible() and "Wrong password" in w.text():
                return w
        return None

    qtbot.waitUntil(lambda: dialog() is not None)
    box = dialog()
    assert box is not None
    assert box.informativeText() == "Type it again."
    labels = [b.text() for b in box.buttons()]
    assert "Copy details" in labels and "Open Wallet" in labels
    [b for b in box.buttons() if b.text() == "Open Wallet"][0].click()
    assert ran == [True]


def test_cancel_stops_the_work_at_its_next_progress_call(qtbot: Any) -> None:
    from studio.ui.ops import op

    started = threading.Event()
    cancelled: list[bool] = []
    steps: list[int] = []

    def work(ctx: Any) -> str:
        for i in range(10_000):
            started.set()
            steps.append(i)
            ctx.progress(i, 10_000, "working")
            time.sleep(0.001)
        return "finished"

    o = op(None, work).with_progress("Long").success(lambda _r: pytest.fail("not cancelled"))
    o.cancelled(lambda: cancelled.append(True)).run_in_background()
    started.wait(5)
    o.cancel()
    qtbot.waitUntil(lambda: bool(cancelled))
    assert len(steps) < 10_000
    assert o.finished


def test_cancelled_error_from_the_core_counts_as_cancel(qtbot: Any) -> None:
    from studio.ui.ops import op

    out: list[str] = []

    def work() -> None:
        raise Cancelled("Training cancelled.")

    op(None, work).failure(lambda e: out.append("failure")).cancelled(
        lambda: out.append("cancel")
    ).run_in_background()
    qtbot.waitUntil(lambda: bool(out))
    assert out == ["cancel"]


def test_progress_is_coalesced_and_shown_only_for_long_work(qtbot: Any) -> None:
    from PySide6.QtWidgets import QApplication, QProgressDialog

    from studio.ui import ops

    done: list[bool] = []

    def work(ctx: Any) -> None:
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < 1.2:
            ctx.progress(i, None, f"step {i}")
            i += 1

    o = ops.op(None, work).with_progress("Counting").success(lambda _r: done.append(True))
    o.run_in_background()
    qtbot.waitUntil(
        lambda: any(
            isinstance(w, QProgressDialog) and w.isVisible() for w in QApplication.topLevelWidgets()
        ),
        timeout=5000,
    )
    qtbot.waitUntil(lambda: bool(done), timeout=10_000)
    # thousands of progress calls from the worker, at most ~20 GUI updates per second
    assert o.ctx.updates > 1000
    assert 0 < o.gui_updates <= o.ctx.updates / 50
    quick = ops.op(None, lambda ctx: ctx.progress(1, 1)).with_progress("Quick")
    quick.success(lambda _r: done.append(True)).run_in_background()
    qtbot.waitUntil(lambda: len(done) == 2)
    assert quick._dialog is None  # finished before the 0.5 s threshold: never shown


def test_streamed_progress_reaches_a_callback_coalesced_and_ends_on_the_last_piece(
    qtbot: Any,
) -> None:
    """What the Playground streams an answer through: the worker reports the growing text from
    an event subscriber (ctx.report never raises); the GUI callback sees a few of them, always
    a prefix of the final text, the last call being the whole text; no progress dialog."""
    from studio.ui import ops

    seen: list[str] = []
    done: list[str] = []
    words = [f"w{i} " for i in range(3000)]

    def work(ctx: Any) -> str:
        text = ""
        for w in words:
            text += w
            ctx.report(len(text), None, text)
            time.sleep(0.0002)
        return text

    o = ops.op(None, work).on_progress(lambda _s, _t, text: seen.append(text))
    o.success(done.append).run_in_background()
    qtbot.waitUntil(lambda: bool(done), timeout=30_000)
    final = "".join(words)
    assert done == [final] and seen[-1] == final
    assert all(final.startswith(t) for t in seen)
    assert 0 < len(seen) <= o.ctx.updates / 10 and o._dialog is None


def test_writes_run_one_at_a_time_in_order(qtbot: Any) -> None:
    from studio.ui.ops import write_op

    active = [0]
    peak = [0]
    order: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1
        return i

    for i in range(8):
        write_op(None, lambda i=i: work(i)).success(order.append).run_in_background()
    qtbot.waitUntil(lambda: len(order) == 8)
    assert order == list(range(8))
    assert peak[0] == 1


def test_events_from_any_thread_arrive_on_the_gui_thread(qtbot: Any) -> None:
    from studio.ui.bridge import EventBridge

    bus = EventBus()
    bridge = EventBridge(bus)
    got: list[tuple[str, int]] = []
    bridge.on("train", lambda ev: got.append((ev.kind, threading.get_ident())))
    t = threading.Thread(
        target=lambda: (
            [bus.emit(Event("train.step", step=i)) for i in range(5)] + [bus.emit(Event("log"))]
        )
    )
    t.start()
    t.join()
    qtbot.waitUntil(lambda: len(got) == 5)
    assert {k for k, _ in got} == {"train.step"}
    assert {tid for _, tid in got} == {threading.get_ident()}
    bridge.close()


def test_crash_dialog_once_per_distinct_traceback(qtbot: Any, tmp_path: Any) -> None:
    from studio.ui import errors

    errors.install(tmp_path / "studio.log")
    shown = []
    for _ in range(3):
        try:
            raise ValueError("boom")
        except ValueError as e:
            shown.append(errors.report_crash(type(e), e, e.__traceback__))
    assert shown == [True, False, False]
    try:
        raise KeyError("other place")
    except KeyError as e:
        assert errors.report_crash(type(e), e, e.__traceback__) is True
