"""A QR code painted from segno's module matrix (no image files, crisp at any scale)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget


class QrCode(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.matrix: list[list[bool]] = []
        self.text = ""
        self.setAccessibleName("QR code")
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt name
        return QSize(200, 200)

    def set_text(self, text: str) -> None:
        import segno

        self.text = text
        qr = segno.make(text, error="m")
        self.matrix = [[bool(v) for v in row] for row in qr.matrix]
        self.setToolTip(text)
        self.update()

    def paintEvent(self, _e: QPaintEvent) -> None:  # noqa: N802 - Qt name
        if not self.matrix:
            return
        p = QPainter(self)
        pal = self.palette()
        # Scanners need dark modules on a light field, whatever the theme: use the light palette
        # ends (Base and Text of the light theme would invert in dark mode).
        light, dark = pal.color(pal.ColorRole.Base), pal.color(pal.ColorRole.Text)
        if light.lightness() < dark.lightness():
            light, dark = dark, light
        n = len(self.matrix) + 8  # 4-module quiet zone
        side = min(self.width(), self.height())
        cell = side / n
        p.fillRect(QRectF(0, 0, side, side), light)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(dark)
        for y, row in enumerate(self.matrix):
            for x, v in enumerate(row):
                if v:
                    p.drawRect(QRectF((x + 4) * cell, (y + 4) * cell, cell + 0.5, cell + 0.5))
