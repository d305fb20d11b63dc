"""One module per page; each defines `Page(ui)`. Shared building blocks live here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from studio.ui.context import UiContext


def button(
    text: str, tip: str, slot: Callable[[], Any] | None = None, *, primary: bool = False
) -> QPushButton:
    b = QPushButton(text)
    b.setToolTip(tip)
    b.setAccessibleName(text)
    if primary:
        b.setDefault(True)
    if slot is not None:
        b.clicked.connect(lambda _=False: slot())
    return b


def heading(text: str, size: float = 1.5) -> QLabel:
    lab = QLabel(text)
    f = QFont(lab.font())
    f.setPointSizeF(f.pointSizeF() * size)
    f.setBold(True)
    lab.setFont(f)
    lab.setAccessibleName(text)
    return lab


def muted(text: str = "") -> QLabel:
    lab = QLabel(text)
    lab.setWordWrap(True)
    lab.setForegroundRole(lab.foregroundRole())
    lab.setEnabled(True)
    pal = lab.palette()
    pal.setColor(lab.foregroundRole(), pal.color(pal.ColorGroup.Disabled, pal.ColorRole.WindowText))
    lab.setPalette(pal)
    return lab


class Card(QFrame):
    """A titled panel on a page (Home tiles, side panels)."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(self.backgroundRole().Base)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.lay = QVBoxLayout(self)
        self.lay.setContentsMargins(14, 12, 14, 12)
        self.title = heading(title, 1.1)
        self.lay.addWidget(self.title)
        self.body = QLabel("…")
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.lay.addWidget(self.body, 1)
        self.setAccessibleName(title)

    def set_text(self, html: str) -> None:
        self.body.setText(html)


class BasePage(QWidget):
    title = ""
    subtitle = ""

    def __init__(self, ui: UiContext) -> None:
        super().__init__()
        self.ui = ui
        self.studio = ui.studio
        self.outer = QVBoxLayout(self)
        self.outer.setContentsMargins(20, 16, 20, 12)
        self.outer.setSpacing(10)
        self.outer.addWidget(heading(self.title))
        if self.subtitle:
            self.outer.addWidget(muted(self.subtitle))
        self._loaded = False

    def on_shown(self) -> None:
        self.refresh()

    def refresh(self) -> None:  # pages override
        pass


def grid(*rows: tuple[str, QWidget]) -> QGridLayout:
    g = QGridLayout()
    for i, (label, w) in enumerate(rows):
        lab = QLabel(label)
        lab.setBuddy(w)
        g.addWidget(lab, i, 0)
        g.addWidget(w, i, 1)
    return g
