"""Every command is declared once here, as data plus a function over the Studio facade.
The CLI builds argparse from this registry; the GUI and the node call the same functions.

A command function takes (ctx, args) and returns a JSON-able result. Human output goes through
ctx.say(); with --json only the returned result is printed, as one JSON document."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TextIO

from studio.core.events import Event

# Modules whose import registers commands, in help order.
COMMAND_MODULES = (
    "studio.commands.basic",
    "studio.commands.datanet",
    "studio.commands.wallet",
    "studio.commands.devnet",
    "studio.commands.stake",
    "studio.commands.model",
    "studio.commands.attribution",
    "studio.commands.gui",
)


@dataclass
class Arg:
    names: tuple[str, ...]
    kwargs: dict[str, Any]


def arg(*names: str, **kwargs: Any) -> Arg:
    return Arg(names, kwargs)


@dataclass
class Command:
    path: tuple[str, ...]
    func: Callable[[Context, argparse.Namespace], Any]
    help: str
    args: list[Arg] = field(default_factory=list)
    network: bool = False  # takes --network
    wallet: bool = False  # takes --password-file


REGISTRY: dict[tuple[str, ...], Command] = {}


def command(
    path: str, help: str, *args: Arg, network: bool = False, wallet: bool = False
) -> Callable[
    [Callable[[Context, argparse.Namespace], Any]], Callable[[Context, argparse.Namespace], Any]
]:
    def deco(
        fn: Callable[[Context, argparse.Namespace], Any],
    ) -> Callable[[Context, argparse.Namespace], Any]:
        key = tuple(path.split())
        if key in REGISTRY:
            raise RuntimeError(f"command declared twice: {path}")
        REGISTRY[key] = Command(key, fn, help, list(args), network, wallet)
        return fn

    return deco


def load_all() -> dict[tuple[str, ...], Command]:
    for mod in COMMAND_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            # An area not built yet (or stripped from a build) simply has no commands.
            if e.name != mod:
                raise
    return REGISTRY


class Context:
    """What a command runs with: the facade (created on first use), output mode, options."""

    def __init__(
        self,
        *,
        home: str | None = None,
        network: str | None = None,
        json_mode: bool = False,
        password_file: str | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
        quiet: bool = False,
    ) -> None:
        self.home = home
        self.network = network
        self.json = json_mode
        self.password_file = password_file
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet
        self._last_progress: dict[str, float] = {}

    @cached_property
    def studio(self) -> Any:
        from studio.app import Studio

        s = Studio(self.home, network=self.network)
        s.events.subscribe(self._on_event)
        return s

    def say(self, text: str = "") -> None:
        """Human-readable output; suppressed in --json mode (stdout is one JSON document)."""
        if not self.json and not self.quiet:
            print(text, file=self.out, flush=True)

    def address_or_active(self, address: str | None) -> str:
        """An ADDRESS argument (EIP-55 checked), or the active wallet account when it is omitted."""
        if address:
            from studio.chain.networks import parse_address

            return str(parse_address(address))
        return str(self.studio.wallet.get(None).address)

    def warn(self, text: str) -> None:
        print(f"warning: {text}", file=self.err, flush=True)

    def _on_event(self, ev: Event) -> None:
        if self.quiet:
            return
        if ev.kind == "progress":
            import time

            now = time.monotonic()
            last = self._last_progress.get(ev.job, 0.0)
            done = ev.total is not None and ev.step is not None and ev.step >= ev.total
            if now - last < 0.5 and not done:
                return
            self._last_progress[ev.job] = now
            frac = f"{ev.step}/{ev.total}" if ev.total else f"{ev.step}"
            print(f"  [{ev.job}] {frac} {ev.message}".rstrip(), file=self.err, flush=True)
        elif ev.kind in ("log", "warning"):
            print(f"  {ev.message}", file=self.err, flush=True)

    def emit_result(self, result: Any) -> None:
        if self.json:
            result = _wei_as_strings(result)
            print(
                json.dumps(result, indent=2, sort_keys=False, default=str),
                file=self.out,
                flush=True,
            )


def _wei_as_strings(obj: Any) -> Any:
    """Every `*_wei` amount in --json output is a decimal string: OPEN amounts pass 2**53, where
    JSON readers in other languages (JavaScript) silently round integers."""
    if isinstance(obj, dict):
        return {
            k: str(v)
            if isinstance(k, str)
            and k.endswith("_wei")
            and isinstance(v, int)
            and not isinstance(v, bool)
            else _wei_as_strings(v)
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [_wei_as_strings(v) for v in obj]
    return obj
