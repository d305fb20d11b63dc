"""`studio gui [--screenshots DIR]`: the desktop studio. The only command that loads Qt; it imports
the ui package lazily (by name), so nothing below ui ever imports it at module level."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from studio.commands import Context, arg, command
from studio.core.errors import StudioError


@command(
    "gui",
    "Open the desktop studio (one window per data home).",
    arg(
        "--screenshots",
        metavar="DIR",
        default=None,
        help="render every page in light and dark, scale 1 and 2, to DIR/<page>-<theme>.png, then exit",
    ),
    network=True,
)
def gui(ctx: Context, args: argparse.Namespace) -> Any:
    try:
        ui_app = importlib.import_module("studio.ui.app")
    except ImportError as e:
        raise StudioError(
            f"The desktop studio needs PySide6 ({e}).",
            hint="pip install 'openledger-studio[gui]'",
        ) from e
    rc = ui_app.run(ctx.home, screenshots=args.screenshots, network=ctx.network)
    if rc:
        raise SystemExit(rc)
    return None
