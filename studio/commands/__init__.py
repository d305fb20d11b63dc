"""Every operation is declared once here: a function over the Studio facade whose typed keyword
signature is the contract (Electrum's `commands.py` idea).

    @operation("datanet curate", "Accept or reject records.")
    def curate(studio: Studio, name: str, *, accept_all: bool = False, ...) -> CurateResult: ...

- Parameters before `*` are the command line's positional arguments; keyword-only ones are its
  options (`--accept-all`); no default means required. Types pick the parser: `bool` is a flag,
  `list[int]` takes several values, `Literal[...]` gives the choices. `Annotated[T, arg(...)]`
  only adds help, a metavar, choices, other option names or "repeatable".
- It returns a typed result (studio.*.results) and prints nothing: what it has to say while it
  runs goes out as events (see `note`), the CLI renders the result (studio/cli_render.py).
- A keyword-only parameter `cancel: CancelToken | None = None` is the caller's cancel token (the
  GUI's Cancel button); it is never a command-line option, and the operation hands it down.
- Everyone calls it the same way: `invoke("datanet curate", studio, name="x", accept_all=True)`
  (the CLI after parsing, the GUI from a background op, the node's admin API)."""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal, TextIO, Union

from studio.core.errors import InvalidInput
from studio.core.events import Event

if TYPE_CHECKING:
    from studio.app import Studio

# Modules whose import registers operations, in help order.
COMMAND_MODULES = (
    "studio.commands.basic",
    "studio.commands.datanet",
    "studio.commands.wallet",
    "studio.commands.devnet",
    "studio.commands.stake",
    "studio.commands.model",
    "studio.commands.attribution",
    "studio.commands.gui",
    "studio.commands.node",
)


@dataclass(frozen=True)
class Arg:
    """What a signature cannot say: help text, metavar, choices, option names, repeatable."""

    help: str | None = None
    metavar: str | None = None
    choices: tuple[Any, ...] | None = None
    flags: tuple[str, ...] = ()  # option names, e.g. ("--from",) for a parameter called sender
    repeat: bool = False  # a list option given once per value: --datanet a --datanet b


def arg(
    help: str | None = None,
    *,
    metavar: str | None = None,
    choices: tuple[Any, ...] | list[Any] | None = None,
    flags: tuple[str, ...] | str = (),
    repeat: bool = False,
) -> Arg:
    return Arg(
        help,
        metavar,
        tuple(choices) if choices is not None else None,
        (flags,) if isinstance(flags, str) else tuple(flags),
        repeat,
    )


_NO_DEFAULT = inspect.Parameter.empty
# Parameters the caller supplies (never options): the cancel token.
CONTEXT_PARAMS = frozenset({"cancel"})


@dataclass(frozen=True)
class Param:
    """One parameter of an operation, as the signature declares it."""

    name: str
    type: Any  # the element type for lists: str, int, float, bool
    default: Any  # _NO_DEFAULT: required
    positional: bool  # before `*` in the signature
    is_list: bool = False
    optional: bool = False  # `X | None`
    choices: tuple[Any, ...] | None = None
    meta: Arg = field(default_factory=Arg)

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


@dataclass
class Operation:
    path: tuple[str, ...]
    func: Callable[..., Any]
    help: str
    network: bool = False  # touches the chain: the CLI offers --network
    wallet: bool = False  # may need a keystore password: the CLI offers --password-file
    internal: bool = False  # not listed (the training job runner); prints nothing but its stream

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @cached_property
    def params(self) -> list[Param]:
        return _params(self.func)

    @property
    def cancellable(self) -> bool:
        """It takes a cancel token (a long operation the GUI offers to cancel)."""
        return "cancel" in inspect.signature(self.func).parameters

    def __call__(self, studio: Studio, /, **kwargs: Any) -> Any:
        return invoke(self.path, studio, **kwargs)


REGISTRY: dict[tuple[str, ...], Operation] = {}


def operation(
    path: str, help: str, *, network: bool = False, wallet: bool = False, internal: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = tuple(path.split())
        if key in REGISTRY:
            raise RuntimeError(f"operation declared twice: {path}")
        REGISTRY[key] = Operation(key, fn, help, network, wallet, internal)
        return fn

    return deco


# The old name: a command is an operation.
command = operation


def load_all() -> dict[tuple[str, ...], Operation]:
    for mod in COMMAND_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            # An area not built yet (or stripped from a build) simply has no commands.
            if e.name != mod:
                raise
    return REGISTRY


def get(path: str | tuple[str, ...]) -> Operation:
    key = tuple(path.split()) if isinstance(path, str) else tuple(path)
    load_all()
    try:
        return REGISTRY[key]
    except KeyError:
        raise InvalidInput(f"There is no operation called {' '.join(key)!r}.") from None


def invoke(path: str | tuple[str, ...], studio: Studio, /, **kwargs: Any) -> Any:
    """Run one operation with keyword arguments; returns its typed result. Unknown or missing
    arguments raise TypeError (a programming error, not a user one)."""
    op = get(path)
    sig = inspect.signature(op.func)
    sig.bind(studio, **kwargs)  # TypeError names the bad argument, before anything runs
    with studio.events.operation(op.name):  # its events carry one operation id
        return op.func(studio, **kwargs)


# -- Signature → parameters ---------------------------------------------------------------------


def _params(fn: Callable[..., Any]) -> list[Param]:
    sig = inspect.signature(fn)
    names = dict(fn.__globals__)
    names.update(
        Annotated=Annotated, Any=Any, Literal=Literal, Union=Union, typing=typing, Arg=Arg, arg=arg
    )
    out: list[Param] = []
    for i, p in enumerate(sig.parameters.values()):
        if p.name in CONTEXT_PARAMS and "CancelToken" not in str(p.annotation):
            # It would silently vanish from the CLI (and the CLI's Ctrl-C would fill it in).
            raise TypeError(f"{fn.__qualname__}: `{p.name}` is the caller's CancelToken only")
        if i == 0 or p.name in CONTEXT_PARAMS:
            continue  # the facade; what the caller supplies, not the user
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            raise TypeError(f"{fn.__qualname__}: parameter {p.name} must be named")
        ann = p.annotation
        if isinstance(ann, str):
            ann = eval(ann, names)  # noqa: S307 - our own annotations, resolved once per operation
        out.append(_param(p.name, ann, p.default, p.kind == p.POSITIONAL_OR_KEYWORD))
    return out


def _param(name: str, ann: Any, default: Any, positional: bool) -> Param:
    meta = Arg()
    if typing.get_origin(ann) is Annotated:
        base, *extras = typing.get_args(ann)
        meta = next((e for e in extras if isinstance(e, Arg)), meta)
        ann = base
    optional = False
    origin = typing.get_origin(ann)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        optional = len(args) < len(typing.get_args(ann))
        ann = args[0] if len(args) == 1 else Any
        origin = typing.get_origin(ann)
    is_list = False
    if origin in (list, tuple) or ann in (list, tuple):
        is_list = True
        inner = [a for a in typing.get_args(ann) if a is not Ellipsis]
        ann = inner[0] if inner else str
        origin = typing.get_origin(ann)
    choices = meta.choices
    if origin is Literal:
        choices = choices or tuple(typing.get_args(ann))
        ann = type(choices[0]) if choices else str
    return Param(name, ann, default, positional, is_list, optional, choices, meta)


# -- What an operation says while it runs -------------------------------------------------------


def note(studio: Studio, text: str, *, job: str = "") -> None:
    """A line for the user while the operation runs (the CLI prints it; the GUI shows a status)."""
    studio.events.emit(Event("note", job=job, message=text))


def warn(studio: Studio, text: str, *, job: str = "") -> None:
    studio.events.emit(Event("warning", job=job, message=f"warning: {text}"))


def address_or_active(studio: Studio, address: str | None) -> str:
    """An ADDRESS argument (EIP-55 checked), or the active wallet account when it is omitted."""
    if address:
        from studio.chain.networks import parse_address

        return str(parse_address(address))
    return str(studio.wallet.get(None).address)


# -- The console: what a command-line run (and the demo) writes to ------------------------------


class Context:
    """A console over one Studio: human lines to `out`, events to `err`, --json as one document.
    The CLI makes one per run; the demo's stages narrate through `say`."""

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
        studio: Studio | None = None,
    ) -> None:
        self.home = home
        self.network = network
        self.json = json_mode
        self.password_file = password_file
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet
        self._last_progress: dict[str, float] = {}
        self._stepped: set[str] = set()  # jobs whose steps print as lines (no progress too)
        self._column = 0  # characters printed on the current stdout line by streamed tokens
        if studio is not None:
            self.__dict__["studio"] = studio
            studio.events.subscribe(self._on_event)

    @cached_property
    def studio(self) -> Studio:
        from studio.app import Studio

        prompter = None
        if not self.quiet:
            from studio.cli_prompt import ConsolePrompter

            prompter = ConsolePrompter(self.password_file)
        s = Studio(self.home, network=self.network, prompter=prompter)
        s.events.subscribe(self._on_event)
        return s

    def say(self, text: str = "") -> None:
        """Human-readable output; suppressed in --json mode (stdout is one JSON document)."""
        if not self.json and not self.quiet:
            self._end_stream()
            print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(f"warning: {text}", file=self.err, flush=True)

    def address_or_active(self, address: str | None) -> str:
        return address_or_active(self.studio, address)

    def end_line(self) -> None:
        """After streamed tokens: finish their line (or print an empty one, as `say("")`)."""
        if self._column:
            self._end_stream()
        else:
            self.say("")

    def _end_stream(self) -> None:
        if self._column:
            print("", file=self.out, flush=True)
            self._column = 0

    def _on_event(self, ev: Event) -> None:
        if self.quiet:
            return
        if ev.kind == "note":
            self.say(ev.message)
        elif ev.kind == "token":
            if not self.json:
                print(ev.message, end="", file=self.out, flush=True)
                self._column += len(ev.message)
        elif ev.kind == "train.step":
            self._stepped.add(ev.job)
            self.say(f"  step {ev.step}/{ev.total}  {ev.message}")
        elif ev.kind == "train.eval":
            d = ev.data
            self.say(
                f"  eval ({d.get('when', '')}) loss {d['eval_loss']:.4f}  perplexity {d['perplexity']:.2f}"
            )
        elif ev.kind == "progress":
            if ev.job in self._stepped and not self.json:
                return  # the step lines above show it
            import time

            now = time.monotonic()
            last = self._last_progress.get(ev.job, 0.0)
            done = ev.total is not None and ev.step is not None and ev.step >= ev.total
            if now - last < 0.5 and not done:
                return
            self._last_progress[ev.job] = now
            frac = f"{ev.step}/{ev.total}" if ev.total else f"{ev.step}"
            if ev.data.get("unit") == "bytes" and ev.total:  # (an ingest: MB of the file)
                frac = f"{(ev.step or 0) / 1e6:.1f}/{ev.total / 1e6:.1f} MB"
            print(f"  [{ev.job}] {frac} {ev.message}".rstrip(), file=self.err, flush=True)
        elif ev.kind in ("log", "warning"):
            print(f"  {ev.message}", file=self.err, flush=True)

    def emit_result(self, result: Any) -> None:
        if self.json:
            print(to_json(result), file=self.out, flush=True)


def to_json(result: Any) -> str:
    """--json: the result's to_dict(), with every `*_wei` amount as a decimal string."""
    from studio.core.results import plain

    return json.dumps(_wei_as_strings(plain(result)), indent=2, sort_keys=False, default=str)


def _wei_as_strings(obj: Any) -> Any:
    """Every `*_wei` amount in --json output is a decimal string: OPEN amounts pass 2**53, where
    JSON readers in other languages (JavaScript) silently round integers."""
    if isinstance(obj, Mapping):
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
