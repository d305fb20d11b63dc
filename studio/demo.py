"""The headless end-to-end demo behind `make demo`. Each area adds a stage; stages print what
they do through ctx.say and return a summary."""

from __future__ import annotations

import importlib
import shutil
from typing import Any

from studio.commands import Context

# (stage name, module with `run_stage(ctx, state) -> dict`)
STAGES = (
    ("datanets", "studio.demo_stages.datanets"),
    ("chain", "studio.demo_stages.chain"),
    ("train", "studio.demo_stages.train"),
    ("attribution", "studio.demo_stages.attribution"),
    ("settle", "studio.demo_stages.settle"),
    ("node", "studio.demo_stages.node"),
)


def run_demo(ctx: Context, *, fresh: bool = False, skip: set[str] | None = None) -> dict[str, Any]:
    skip = skip or set()
    if fresh:
        from studio.core.paths import default_home

        home = ctx.home or str(default_home())
        _stop_devnet(home)  # else the old home's anvil would be orphaned
        shutil.rmtree(home, ignore_errors=True)
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
            from studio.core.paths import default_home

            _stop_devnet(ctx.home or str(default_home()))
    if "chain" in summary:
        ctx.say(
            "\nDevnet stopped; its state is kept and any command that needs it starts it again."
        )
    ctx.say("\nDemo finished.")
    return summary


def _stop_devnet(home: str) -> None:
    from pathlib import Path

    if not (Path(home) / "devnet").exists():
        return
    try:
        from studio.chain.devnet import Devnet
        from studio.core.paths import Paths

        Devnet(Paths.resolve(home)).down()
    except ImportError:
        pass
