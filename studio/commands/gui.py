"""`studio gui [--screenshots DIR]`: the desktop studio. The only operation that loads Qt; it imports
the ui package lazily (by name), so nothing below ui ever imports it at module level."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Annotated

from studio.commands import arg, operation
from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.app import Studio


@operation("gui", "Open the desktop studio (one window per data home).", network=True)
def gui(
    studio: Studio,
    *,
    screenshots: Annotated[
        str | None,
        arg(
            "render every page in light and dark, scale 1 and 2, to DIR/<page>-<theme>.png, then exit",
            metavar="DIR",
        ),
    ] = None,
) -> None:
    try:
        ui_app = importlib.import_module("studio.ui.app")
    except ImportError as e:
        raise StudioError(
            f"The desktop studio needs PySide6 ({e}).",
            hint="pip install 'openledger-studio[gui]'",
        ) from e
    rc = ui_app.run_studio(studio, screenshots=screenshots)
    if rc:
        raise SystemExit(rc)
