"""The main window: a sidebar of pages, the pages (created on first visit), the status bar."""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from studio.ui.context import UiContext
from studio.ui.icons import icon
from studio.ui.statusbar import StatusBar


@dataclass(frozen=True)
class PageSpec:
    name: str
    title: str
    icon: str
    module: str
    tip: str


PAGES = (
    PageSpec("home", "Home", "home", "home", "What matters now, and the next step"),
    PageSpec("datanets", "Datanets", "datanets", "datanets", "Collect, curate, snapshot, publish"),
    PageSpec("factory", "ModelFactory", "factory", "factory", "Fine-tune models with LoRA"),
    PageSpec(
        "playground",
        "Playground",
        "playground",
        "playground",
        "Ask a model; see who shaped the answer",
    ),
    PageSpec("wallet", "Wallet", "wallet", "wallet", "Accounts, balances, send and receive OPEN"),
    PageSpec("rewards", "Rewards & staking", "rewards", "rewards", "Claim rewards, stake OPEN"),
    PageSpec("node", "Node", "node", "node", "The light node"),
    PageSpec("settings", "Settings", "settings", "settings", "Network, data home, device, theme"),
)


# What the other pages import, loaded once the window has painted so that a first visit only
# builds widgets (pyqtgraph and numpy alone are ~0.3 s of CPU). Modules that never load Qt go to a
# background thread; the Qt-based ones are imported on the GUI thread, one per idle tick, after it:
# PySide6 creates its Python types lazily, which is not thread-safe (a page module imported off the
# GUI thread while the GUI thread built widgets crashed the process with SIGSEGV).
WARM_UP_PLAIN = ("studio.core.datanets", "numpy", "segno")
WARM_UP_QT = (
    "studio.ui.models",
    "pyqtgraph",
    "studio.ui.pages.plots",
    "studio.ui.pages.datanets",
    "studio.ui.pages.factory",
    "studio.ui.pages.playground",
    "studio.ui.pages.wallet",
    "studio.ui.pages.rewards",
    "studio.ui.pages.node",
    "studio.ui.pages.settings",
    "studio.ui.pages.qr",
)
log = logging.getLogger("studio.ui")


def _import_quietly(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - the page's own import will show the real error
        log.debug("warm-up import of %s failed", name, exc_info=True)


def warm_up(
    plain: tuple[str, ...] = WARM_UP_PLAIN, qt: tuple[str, ...] = WARM_UP_QT
) -> threading.Thread:
    """Start the warm-up: `plain` on a thread at once, then `qt` on the GUI thread."""

    def run() -> None:
        for name in plain:
            _import_quietly(name)

    global _warming
    t = threading.Thread(target=run, name="studio-warm-up", daemon=True)
    t.start()
    _warming = t

    def next_qt(names: tuple[str, ...]) -> None:
        if t.is_alive():  # its modules first, or the GUI thread would wait on their import lock
            QTimer.singleShot(20, lambda: next_qt(names))
        elif names:
            _import_quietly(names[0])
            QTimer.singleShot(0, lambda: next_qt(names[1:]))

    QTimer.singleShot(0, lambda: next_qt(qt))
    return t


_warming: threading.Thread | None = None


def finish_warm_up(timeout: float = 60.0) -> None:
    """Wait for the warm-up thread before the interpreter exits: a daemon thread still importing
    while Python finalizes can crash the process (SIGSEGV)."""
    if _warming is not None:
        _warming.join(timeout)


class MainWindow(QMainWindow):
    def __init__(self, ui: UiContext) -> None:
        super().__init__()
        self.ui = ui
        self.setWindowTitle(f"OpenLedger Studio — {ui.studio.paths.home}")
        self.setWindowIcon(icon("studio"))
        self.setAccessibleName("OpenLedger Studio")
        self.pages: dict[str, QWidget] = {}
        self.sidebar = QListWidget()
        self.sidebar.setAccessibleName("Pages")
        self.sidebar.setIconSize(QSize(20, 20))
        self.sidebar.setFixedWidth(190)
        self.sidebar.setSpacing(2)
        self.sidebar.setFrameShape(QListWidget.Shape.NoFrame)
        self.stack = QStackedWidget()
        self.stack.setAccessibleName("Page")
        for i, spec in enumerate(PAGES):
            item = QListWidgetItem(icon(spec.icon), spec.title)
            item.setToolTip(f"{spec.tip} (Ctrl+{i + 1})")
            item.setData(Qt.ItemDataRole.UserRole, spec.name)
            item.setSizeHint(QSize(180, 36))
            self.sidebar.addItem(item)
            sc = QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self)
            sc.activated.connect(lambda n=spec.name: self.show_page(n))
            self.stack.addWidget(QWidget())  # placeholder until first visit
        self.sidebar.currentRowChanged.connect(self._row_changed)
        body = QWidget()
        lay = QHBoxLayout(body)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.sidebar)
        lay.addWidget(self.stack, 1)
        self.setCentralWidget(body)
        self.status = StatusBar(ui, self)
        self.setStatusBar(self.status)
        ui.navigate.connect(self.show_page)
        self.keep_jobs: bool | None = None  # tests answer the close question here
        geo = ui.settings.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1180, 760)
        # The first page loads its data once the window has painted: its background read (which
        # imports the Datanets code) would otherwise hold the GIL during the first paint.
        self._first_paint_done = False
        self._after_paint: list[Any] = []
        self.show_page(str(ui.settings.value("window/page", "home")), refresh=False)

    # -- pages --------------------------------------------------------------------------------
    def page(self, name: str) -> QWidget:
        """The page widget, created on first use (so cold start builds only one page)."""
        if name not in self.pages:
            idx = [p.name for p in PAGES].index(name)
            spec = PAGES[idx]
            mod = importlib.import_module(f"studio.ui.pages.{spec.module}")
            widget = mod.Page(self.ui)
            widget.setAccessibleName(spec.title)
            old = self.stack.widget(idx)
            self.stack.removeWidget(old)
            old.deleteLater()
            self.stack.insertWidget(idx, widget)
            self.pages[name] = widget
        return self.pages[name]

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt name
        super().paintEvent(event)
        if not self._first_paint_done:
            self._first_paint_done = True
            QTimer.singleShot(0, self._refresh_current)
            QTimer.singleShot(0, warm_up)
            for fn in self._after_paint:
                QTimer.singleShot(0, fn)
            self._after_paint.clear()

    def after_first_paint(self, fn: Any) -> None:
        """Run fn once the window has painted (at once if it already has)."""
        if self._first_paint_done:
            QTimer.singleShot(0, fn)
        else:
            self._after_paint.append(fn)

    def _refresh_current(self) -> None:
        shown = getattr(self.pages.get(self.current_page()), "on_shown", None)
        if shown is not None:
            shown()

    def show_page(self, name: str, *, refresh: bool = True) -> None:
        names = [p.name for p in PAGES]
        if name not in names:
            name = "home"
        idx = names.index(name)
        widget = self.page(name)
        self.stack.setCurrentIndex(idx)
        if self.sidebar.currentRow() != idx:
            self.sidebar.blockSignals(True)
            self.sidebar.setCurrentRow(idx)
            self.sidebar.blockSignals(False)
        self.ui.settings.setValue("window/page", name)
        shown = getattr(widget, "on_shown", None)
        if shown is not None and refresh:
            shown()

    def retheme(self) -> None:
        """After a palette change: icons and plots take colours when built, so rebuild them."""
        for i, spec in enumerate(PAGES):
            self.sidebar.item(i).setIcon(icon(spec.icon))
        self.setWindowIcon(icon("studio"))
        current = self.current_page()
        for name in list(self.pages):
            idx = [p.name for p in PAGES].index(name)
            old = self.pages.pop(name)
            self.stack.removeWidget(old)
            old.deleteLater()
            self.stack.insertWidget(idx, QWidget())
        self.show_page(current)
        self.status.refresh()

    def current_page(self) -> str:
        return PAGES[self.stack.currentIndex()].name

    def _row_changed(self, row: int) -> None:
        if row >= 0:
            self.show_page(PAGES[row].name)

    def bring_forward(self) -> None:
        self.setWindowState(self.windowState() & ~Qt.WindowState.WindowMinimized)
        self.show()
        self.raise_()
        self.activateWindow()

    # -- closing ------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt name
        running = self.ui.jobs.running()
        if running:
            keep = self.keep_jobs
            if keep is None:
                box = QMessageBox(self)
                box.setIcon(QMessageBox.Icon.Question)
                box.setWindowTitle("Training is running")
                names = ", ".join(j.model_id for j in running)
                box.setText(f"{len(running)} job(s) running: {names}.")
                box.setInformativeText(
                    "Keep them running in the background (the next window shows their progress), "
                    "or stop them now (a checkpoint is saved; resume later)?"
                )
                k = box.addButton("Keep running", QMessageBox.ButtonRole.AcceptRole)
                s = box.addButton("Stop jobs", QMessageBox.ButtonRole.DestructiveRole)
                c = box.addButton(QMessageBox.StandardButton.Cancel)
                box.exec()
                if box.clickedButton() == c:
                    event.ignore()
                    return
                keep = box.clickedButton() == k
                del s
            if not keep:
                import os
                import signal

                for j in running:
                    row = self.ui.studio.store.one(
                        "SELECT pid FROM models WHERE id = ?", (j.model_id,)
                    )
                    pid = (row or {}).get("pid") or (j.proc.pid if j.proc else None)
                    if pid:
                        try:
                            os.kill(int(pid), signal.SIGINT)  # the job saves a checkpoint
                        except ProcessLookupError:
                            pass
        if self.ui.node is not None:  # the in-process node stops with the window
            node, self.ui.node = self.ui.node, None
            node.stop()
        self.ui.settings.setValue("window/geometry", self.saveGeometry())
        self.ui.settings.setValue("window/page", self.current_page())
        self.ui.settings.sync()
        self.ui.jobs.stop()
        self.ui.conn.stop()
        event.accept()
