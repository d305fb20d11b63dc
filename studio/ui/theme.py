"""Fusion style with our own light and dark palettes. Widgets take colours from the palette only;
the few extra colours (connection state, contributor colours) come from `accent()` and
`contributor_color()` so they stay readable in both themes."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")

_LIGHT = {
    "window": "#f4f5f7",
    "base": "#ffffff",
    "alt": "#eef0f3",
    "text": "#1d2330",
    "mid": "#c9ced6",
    "button": "#e9ecf0",
    "highlight": "#2f6fde",
    "htext": "#ffffff",
    "link": "#1f5fc9",
    "disabled": "#8a93a3",
    "tooltip": "#fffbe6",
}
_DARK = {
    "window": "#1e2128",
    "base": "#16181d",
    "alt": "#23262e",
    "text": "#e4e7ec",
    "mid": "#3a3f4a",
    "button": "#2b2f38",
    "highlight": "#4c8dff",
    "htext": "#0b0d11",
    "link": "#7fb0ff",
    "disabled": "#7d8596",
    "tooltip": "#2b2f38",
}
# State colours picked for contrast on both the light and the dark window colour.
_STATE = {
    "light": {"ok": "#1e8e3e", "warn": "#b26a00", "bad": "#c5221f", "muted": "#6b7280"},
    "dark": {"ok": "#5bd17b", "warn": "#f5b14c", "bad": "#ff7a70", "muted": "#9aa3b2"},
}
# Contributor colours (span highlights, bars): Okabe-Ito, readable for colour-blind users.
_CONTRIB = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]

_current = "light"


def resolve(theme: str) -> str:
    if theme == "system":
        hints = QGuiApplication.styleHints()
        scheme = hints.colorScheme() if hints is not None else Qt.ColorScheme.Unknown
        return "dark" if scheme == Qt.ColorScheme.Dark else "light"
    return theme if theme in ("light", "dark") else "light"


def palette(name: str) -> QPalette:
    c = _DARK if name == "dark" else _LIGHT
    p = QPalette()
    role = QPalette.ColorRole
    for r, key in (
        (role.Window, "window"),
        (role.Base, "base"),
        (role.AlternateBase, "alt"),
        (role.WindowText, "text"),
        (role.Text, "text"),
        (role.ButtonText, "text"),
        (role.ToolTipText, "text"),
        (role.PlaceholderText, "disabled"),
        (role.Button, "button"),
        (role.Mid, "mid"),
        (role.Dark, "mid"),
        (role.Highlight, "highlight"),
        (role.HighlightedText, "htext"),
        (role.Link, "link"),
        (role.ToolTipBase, "tooltip"),
        (role.BrightText, "htext"),
    ):
        p.setColor(r, QColor(c[key]))
    p.setColor(role.Light, QColor(c["alt"]))
    p.setColor(role.Midlight, QColor(c["mid"]))
    p.setColor(role.Shadow, QColor(c["mid"]))
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, r, QColor(c["disabled"]))
    return p


def apply(app: QApplication, theme: str) -> str:
    """Fusion + our palette; returns the resolved name ("light" or "dark")."""
    global _current
    app.setStyle("Fusion")
    _current = resolve(theme)
    app.setPalette(palette(_current))
    return _current


def current() -> str:
    return _current


def accent(kind: str) -> QColor:
    """ok / warn / bad / muted, tuned to the current theme."""
    return QColor(_STATE[_current].get(kind, _STATE[_current]["muted"]))


def contributor_color(index: int) -> QColor:
    return QColor(_CONTRIB[index % len(_CONTRIB)])


def highlight_background(index: int) -> QColor:
    """A contributor colour made translucent enough that text on it stays readable."""
    c = contributor_color(index)
    c.setAlpha(110 if _current == "dark" else 80)
    return c
