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
)


def run_demo(ctx: Context, *, fresh: bool = False, skip: set[str] | None = None) -> dict[str, Any]:
    skip = skip or set()
    if fresh:
        from studio.core.paths import default_home

        home = ctx.home or str(default_home())
        shutil.rmtree(home, ignore_errors=True)
    state: dict[str, Any] = {}
    summary: dict[str, Any] = {}
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
    ctx.say("\nDemo finished.")
    return summary
