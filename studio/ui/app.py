"""`studio gui`: the QApplication, theme, one instance per data home, the main window."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from studio.ui import errors, theme

if TYPE_CHECKING:
    from studio.app import Studio


def application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv or [sys.argv[0]])
    app.setApplicationName("OpenLedger Studio")
    app.setOrganizationName("OpenLedger")
    app.setApplicationDisplayName("OpenLedger Studio")
    return app  # type: ignore[return-value]


def settings_for(home: Path) -> QSettings:
    """GUI settings (geometry, last page, theme) live in the data home, one file per home."""
    return QSettings(str(Path(home) / "gui.ini"), QSettings.Format.IniFormat)


def build(studio: Studio, *, connect: bool = True) -> tuple[Any, Any]:
    """(UiContext, MainWindow) for a Studio; `connect=False` leaves the chain alone (tests)."""
    from studio.ui.bridge import EventBridge
    from studio.ui.connection import ConnectionMonitor
    from studio.ui.context import UiContext
    from studio.ui.jobs import JobsTracker
    from studio.ui.window import MainWindow

    app = application()
    settings = settings_for(studio.paths.home)
    theme.apply(app, str(settings.value("theme", "system")))
    errors.install(studio.paths.logs / "studio.log")
    bridge = EventBridge(studio.events)
    jobs = JobsTracker(studio)
    conn = ConnectionMonitor(studio)
    ui = UiContext(studio, settings, bridge, jobs, conn)
    bridge.on("changed", lambda ev: _announce(ui, ev))
    win = MainWindow(ui)
    jobs.start()
    if connect:
        # Only after the first paint: the chain client imports web3 (~1 s of CPU), which a
        # fixed delay would let in before the paint on a slow or loaded machine.
        win.after_first_paint(lambda: conn.start(300))
    return ui, win


_AREAS = {
    "datanets": "datanets",
    "records": "datanets",
    "snapshots": "datanets",
    "models": "models",
    "accounts": "wallet",
    "transactions": "chain",
}


def _announce(ui: Any, ev: Any) -> None:
    """A core "changed" event (what a mutation changed) → the pages showing that area refresh."""
    changes = (ev.data or {}).get("changes") or {}
    for area in sorted({_AREAS[k] for k, v in changes.items() if v and k in _AREAS}):
        ui.changed.emit(area)


# Imported only when a page needs them; none may be loaded at the first paint (bench/gui.py).
HEAVY = (
    "torch",
    "transformers",
    "peft",
    "web3",
    "eth_account",
    "pyqtgraph",
    "pandas",
    "pyarrow",
    "numpy",
)


def _report_first_paint(win: Any, path: Path, app: QApplication) -> None:
    import json
    import time

    from PySide6.QtCore import QEvent, QObject

    class FirstPaint(QObject):
        def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802 - Qt name
            if ev.type() == QEvent.Type.Paint and not path.exists():
                heavy = [m for m in HEAVY if m in sys.modules]
                studio_mods = sorted(m for m in sys.modules if m.startswith("studio."))
                info = {"t": time.time(), "cpu": time.process_time(), "heavy": heavy}
                path.write_text(json.dumps({**info, "studio_modules": studio_mods}))
                QTimer.singleShot(0, app.quit)
            return False

    win._first_paint = FirstPaint(win)
    win.installEventFilter(win._first_paint)
    win.centralWidget().installEventFilter(win._first_paint)


def needs_wizard(studio: Studio, settings: QSettings) -> bool:
    keystores = studio.paths.keystores
    has_account = keystores.exists() and any(keystores.glob("*.json"))
    return not has_account and settings.value("wizard/done", "false") != "true"


def run(
    home: str | None = None, *, screenshots: str | None = None, network: str | None = None
) -> int:
    from studio.app import Studio

    with Studio(home, network=network) as studio:
        return run_studio(studio, screenshots=screenshots)


def run_studio(studio: Studio, *, screenshots: str | None = None) -> int:
    """The window over a Studio facade (the `gui` operation's body)."""
    from studio.ui.single import SingleInstance

    app = application()
    if screenshots:
        from studio.ui.screenshots import render_all

        return render_all(studio, Path(screenshots))
    single = SingleInstance(studio.paths.home)
    if not single.acquire():
        if single.raise_other():
            print("OpenLedger Studio is already open for this data home: brought it forward.")
            return 0
        print("error: another studio window holds this data home (gui.lock).", file=sys.stderr)
        return 1
    ui, win = build(studio)
    single.listen(win.bring_forward)
    win.show()
    if needs_wizard(studio, ui.settings):
        from studio.ui.wizard import FirstRunWizard

        QTimer.singleShot(0, lambda: FirstRunWizard(ui, win).open())
    painted = os.environ.get("STUDIO_GUI_FIRST_PAINT_FILE")
    if painted:  # bench/gui.py: cold start to first paint, then quit
        _report_first_paint(win, Path(painted), app)
    try:
        return app.exec()
    finally:
        from studio.ui.window import finish_warm_up

        finish_warm_up()
        single.release()
        ui.bridge.close()
