"""How the command line shows each operation's typed result as text (--json prints to_dict()).

One renderer per operation path; it gets the result, the keyword arguments the operation ran
with and the console. Renderers only print: nothing here changes state. The registry and the
shared helpers are in base.py; the renderers, one module per area, register on import."""

from __future__ import annotations

from . import chain as chain
from . import models as models
from .base import RENDERERS, Renderer, error_hint, renders, show, table
from .datanets import add_result_lines
from .models import report_lines

__all__ = [
    "RENDERERS",
    "Renderer",
    "add_result_lines",
    "error_hint",
    "renders",
    "report_lines",
    "show",
    "table",
]
