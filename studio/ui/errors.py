"""Error dialogs. A StudioError shows its plain message, the hint, a suggested action as a button
and "copy details". Anything unexpected (sys.excepthook, threading.excepthook) shows a crash dialog
once per distinct traceback and is written to the log; nothing is sent anywhere."""

from __future__ import annotations

import hashlib
import logging
import platform
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox, QWidget

from studio import __version__
from studio.core.errors import StudioError

log = logging.getLogger("studio.ui")

# Suggested actions: an error may carry `suggested` (an operation name, from the ops framework) or
# we infer one from its class; the window registers what each name does.
_actions: dict[str, tuple[str, Callable[[], Any]]] = {}
_shown: set[str] = set()
_open: set[QMessageBox] = set()  # parentless dialogs need a Python reference while shown
_log_path: Path | None = None


def register_action(name: str, label: str, fn: Callable[[], Any]) -> None:
    _actions[name] = (label, fn)


def suggested_action(exc: BaseException) -> str | None:
    name = getattr(exc, "suggested", None) or getattr(exc, "suggested_operation", None)
    if isinstance(name, str):
        return name
    cls = type(exc).__name__
    if cls in ("ChainError",):
        return "retry-connection"
    if cls in ("WalletError", "WrongPassword"):
        return "open-wallet"
    return None


def plain_message(exc: BaseException) -> tuple[str, str | None]:
    if isinstance(exc, StudioError):
        return Exception.__str__(exc), exc.hint
    return f"{type(exc).__name__}: {exc}", None


def show_error(parent: QWidget | None, exc: BaseException, tb: str = "") -> QMessageBox:
    """Non-blocking error dialog (open(), not exec()): the window stays responsive."""
    if not isinstance(exc, StudioError):
        report_crash(type(exc), exc, tb)
    msg, hint = plain_message(exc)
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("OpenLedger Studio")
    box.setText(msg)
    box.setAccessibleName("Error")
    if hint:
        box.setInformativeText(hint)
    details = f"{msg}\n{hint or ''}\n\n{tb}".strip()
    box.setDetailedText(details)
    box.addButton(QMessageBox.StandardButton.Close)
    copy = box.addButton("Copy details", QMessageBox.ButtonRole.ActionRole)
    copy.setToolTip("Copy the message and technical details to the clipboard")
    copy.clicked.disconnect()
    copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(details))
    action = suggested_action(exc)
    if action in _actions:
        label, fn = _actions[action]
        btn = box.addButton(label, QMessageBox.ButtonRole.AcceptRole)
        btn.setToolTip(f"Suggested next step: {label}")
        btn.clicked.connect(fn)
    _keep(box)
    box.open()
    return box


def _keep(box: QMessageBox) -> None:
    _open.add(box)
    box.finished.connect(lambda _r: _open.discard(box))


def diagnostics() -> str:
    lines = [
        f"OpenLedger Studio {__version__}",
        f"Python {platform.python_version()} on {platform.platform()}",
    ]
    try:
        from PySide6 import __version__ as qt

        lines.append(f"PySide6 {qt}")
    except ImportError:
        pass
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        lines.append(f"torch {torch.__version__} ({dev})")
    if _log_path is not None and _log_path.exists():
        tail = _log_path.read_text("utf-8", errors="replace").splitlines()[-20:]
        lines += ["", "last log lines:", *tail]
    return "\n".join(lines)


class _CrashRelay(QObject):
    crash = Signal(str, str)

    @Slot(str, str)
    def show(self, title: str, tb: str) -> None:
        box = QMessageBox()
        box.setIcon(QMessageBox.Icon.Critical)
        box.setWindowTitle("OpenLedger Studio: unexpected error")
        box.setText(f"Something went wrong: {title}")
        box.setInformativeText(
            "The window keeps running. The details are in the log; nothing was sent anywhere."
        )
        box.setDetailedText(tb)
        box.setAccessibleName("Unexpected error")
        box.addButton(QMessageBox.StandardButton.Close)
        copy = box.addButton("Copy diagnostics", QMessageBox.ButtonRole.ActionRole)
        copy.clicked.disconnect()
        copy.clicked.connect(
            lambda: QGuiApplication.clipboard().setText(f"{tb}\n\n{diagnostics()}")
        )
        _keep(box)
        box.open()


_relay: _CrashRelay | None = None


def report_crash(
    etype: type[BaseException], value: BaseException, tb: TracebackType | str | None
) -> bool:
    """Log it; show a dialog once per distinct traceback. Returns whether a dialog was shown."""
    text = tb if isinstance(tb, str) else "".join(traceback.format_exception(etype, value, tb))
    log.error("unexpected error: %s", text)
    key = hashlib.sha256(
        "".join(line for line in text.splitlines() if line.startswith("  File")).encode()
        or text.encode()
    ).hexdigest()
    if key in _shown or _relay is None:
        return False
    _shown.add(key)
    _relay.crash.emit(f"{etype.__name__}: {value}", text)
    return True


def install(log_path: Path | None) -> None:
    """sys.excepthook and threading.excepthook -> log + crash dialog (on the GUI thread)."""
    global _relay, _log_path
    _log_path = log_path
    if _relay is None:
        _relay = _CrashRelay()
        _relay.crash.connect(_relay.show, Qt.ConnectionType.QueuedConnection)

    def hook(etype: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(etype, KeyboardInterrupt):
            sys.__excepthook__(etype, value, tb)
            return
        if sys.stderr is not None:  # a windowed (frozen) build has no stderr
            sys.__excepthook__(etype, value, tb)
        report_crash(etype, value, tb)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            report_crash(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook


def seen_crashes() -> int:
    return len(_shown)
