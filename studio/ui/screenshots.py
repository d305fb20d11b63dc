"""`studio gui --screenshots DIR`: every page rendered to DIR/<page>-<theme>.png (light and dark)
and DIR/<page>-<theme>@2x.png (device pixel ratio 2), from the data home as it is. `make
screenshots` first fills a fresh home with real data (scripts/screenshot_home.py: devnet, the
sample Datanet published, a tiny model trained, an attribution report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, QSize, QTimer
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication

from studio.ui import theme

SIZE = QSize(1280, 800)


def _settle(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def _wait(pred: Any, timeout_ms: int = 20_000) -> None:
    waited = 0
    while not pred() and waited < timeout_ms:
        _settle(50)
        waited += 50


def render(win: Any, path: Path, scale: int) -> None:
    img = QImage(SIZE * scale, QImage.Format.Format_ARGB32)
    img.setDevicePixelRatio(scale)
    img.fill(win.palette().window().color())
    p = QPainter(img)
    win.render(p)
    p.end()
    img.save(str(path), "PNG")


def render_all(
    studio: Any, out: Path, *, scales: tuple[int, ...] = (1, 2), prepare: Any = None
) -> int:
    from studio.ui.app import application, build
    from studio.ui.window import PAGES

    app = application()
    out.mkdir(parents=True, exist_ok=True)
    ui, win = build(studio, connect=True)
    ui.answer = lambda title, text: False  # never block on a dialog
    win.resize(SIZE)
    win.show()
    _wait(lambda: ui.conn.state == "green" or ui.conn.state == "red", 60_000)
    if prepare is not None:
        prepare(ui, win)
    written = 0
    for name in ("light", "dark"):
        theme.apply(app, name)
        win.retheme()
        for spec in PAGES:
            win.show_page(spec.name)
            page = win.pages[spec.name]
            hook = getattr(page, "screenshot_ready", None)
            _settle(400)
            if hook is not None:
                _wait(hook, 20_000)
            _settle(300)
            for scale in scales:
                suffix = "" if scale == 1 else f"@{scale}x"
                render(win, out / f"{spec.name}-{name}{suffix}.png", scale)
                written += 1
        win.retheme()
    print(f"wrote {written} screenshots to {out}")
    win.keep_jobs = True
    win.close()
    ui.conn.stop()
    QApplication.processEvents()
    return 0
