"""SVG icons from resources/icons, drawn in the palette's text colour (so they follow the theme)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from studio.core.resources import resource_path


def icons_dir() -> Path:
    return resource_path("icons")


@lru_cache(maxsize=64)
def _svg(name: str) -> str:
    return (icons_dir() / f"{name}.svg").read_text("utf-8")


def icon(name: str, color: str | None = None, size: int = 24) -> QIcon:
    if color is None:
        color = QGuiApplication.palette().windowText().color().name()
    data = QByteArray(_svg(name).replace("currentColor", color).encode())
    renderer = QSvgRenderer(data)
    out = QIcon()
    for scale in (1, 2):
        pm = QPixmap(size * scale, size * scale)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        renderer.render(p, QRectF(0, 0, size * scale, size * scale))
        p.end()
        pm.setDevicePixelRatio(scale)
        out.addPixmap(pm)
    return out
