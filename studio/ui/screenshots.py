"""`studio gui --screenshots DIR`: every page rendered to DIR/<page>-<theme>.png (light and dark)
and DIR/<page>-<theme>@2x.png (device pixel ratio 2), from the data home as it is. `make
screenshots` first fills a fresh home with real data (scripts/screenshot_home.py: devnet, the
sample Datanet published, a tiny model trained, an attribution report)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEventLoop, QSize, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from studio.ui import theme

if TYPE_CHECKING:
    from studio.app import Studio

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
    img = QImage(win.size() * scale, QImage.Format.Format_ARGB32)
    img.setDevicePixelRatio(scale)
    img.fill(win.palette().window().color())
    win.render(img)
    # no alpha and the strongest zlib level: the docs keep these files in git
    img.convertToFormat(QImage.Format.Format_RGB888).save(str(path), "PNG", 0)


def _prepare(ui: Any, win: Any) -> None:
    """Real content where a page would otherwise open empty: the demo's question, answered and
    attributed in the Playground; the first record picked on the Datanets page."""
    from studio.demo_stages.attribution import ANSWER, QUESTION

    ready = [
        m
        for m in ui.studio.models.list()
        if m.get("kind") == "fine-tune" and m["status"] == "ready"
    ]
    if not ready:
        return
    play = win.page("playground")
    play.refresh()
    _wait(lambda: play.model.count() > 0, 20_000)
    if play.model.count():
        play.prompt.setPlainText(QUESTION)
        play.answer.setPlainText(ANSWER)
        play.attribute()
        _wait(lambda: play.report is not None, 120_000)


def render_all(
    studio: Studio, out: Path, *, scales: tuple[int, ...] = (1, 2), prepare: Any = None
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
    (prepare or _prepare)(ui, win)
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
            win.resize(SIZE)
            _settle(300)
            if win.width() > SIZE.width():
                print(f"warning: {spec.name} needs {win.width()} px: wider than {SIZE.width()}")
            for scale in scales:
                suffix = "" if scale == 1 else f"@{scale}x"
                render(win, out / f"{spec.name}-{name}{suffix}.png", scale)
                written += 1
        win.retheme()
    print(f"wrote {written} screenshots to {out}")
    from studio.ui.window import finish_warm_up

    finish_warm_up()
    win.keep_jobs = True
    win.close()
    ui.conn.stop()
    QApplication.processEvents()
    return 0
