"""The headless end-to-end demo behind `make demo`. Each area adds a stage; stages narrate what
they do through ctx.say (a note event: the CLI prints it, a GUI could show it) and return a
summary."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.commands import note

if TYPE_CHECKING:
    from studio.app import Studio

# (stage name, module with `run_stage(ctx, state) -> dict`)
STAGES = (
    ("datanets", "studio.demo_stages.datanets"),
    ("chain", "studio.demo_stages.chain"),
    ("train", "studio.demo_stages.train"),
    ("attribution", "studio.demo_stages.attribution"),
    ("settle", "studio.demo_stages.settle"),
    ("node", "studio.demo_stages.node"),
)


class Narration:
    """What a stage writes to: `say` sends a note event; `studio` is the facade."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.home = str(studio.paths.home)

    def say(self, text: str = "") -> None:
        note(self.studio, text, job="demo")


def _wipe(studio: Studio) -> None:
    """--fresh: empty the data home (the open log file stays; the folders are made again)."""
    from studio.core.paths import Paths

    home = Path(studio.paths.home)
    _stop_devnet(str(home))  # else the old home's anvil would be orphaned
    studio.close()
    for cached in (
        "config",
        "store",
        "blobs",
        "datanets",
        "wallet",
        "chain",
        "models",
        "attribution",
    ):
        studio.__dict__.pop(cached, None)  # opened on the old files: open again on first use
    for child in home.iterdir():
        if child == studio.paths.logs:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
    Paths.resolve(home)


def run_demo(
    studio: Studio, *, fresh: bool = False, skip: set[str] | None = None
) -> dict[str, Any]:
    skip = skip or set()
    if fresh:
        _wipe(studio)
    ctx = Narration(studio)
    state: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    try:
        for name, modname in STAGES:
            if name in skip:
                continue
            try:
                mod = importlib.import_module(modname)
            except ModuleNotFoundError as e:
                if e.name == modname:
                    continue
                raise
            ctx.say(f"\n=== {name} ===")
            summary[name] = mod.run_stage(ctx, state)
    finally:
        if "chain" not in skip:
            # Leave nothing running behind `make demo`, even when a stage failed; any command
            # that needs the chain starts it again.
            _stop_devnet(ctx.home)
    if "chain" in summary:
        ctx.say(
            "\nDevnet stopped; its state is kept and any command that needs it starts it again."
        )
    ctx.say("\nDemo finished.")
    return summary


def _stop_devnet(home: str) -> None:
    if not (Path(home) / "devnet").exists():
        return
    try:
        from studio.chain.devnet import Devnet
        from studio.core.paths import Paths

        Devnet(Paths.resolve(home)).down()
    except ImportError:
        pass
