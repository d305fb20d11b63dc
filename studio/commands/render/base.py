"""The renderer registry and the small helpers every renderer shares (plural nouns, times, OPEN
amounts, one line per row of a list)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from studio.core.errors import StudioError

if TYPE_CHECKING:
    from studio.commands import Context, Operation

Renderer = Callable[[Any, Mapping[str, Any], "Context"], None]
RENDERERS: dict[str, Renderer] = {}
T = TypeVar("T")


def renders(path: str) -> Callable[[Renderer], Renderer]:
    def deco(fn: Renderer) -> Renderer:
        RENDERERS[path] = fn
        return fn

    return deco


def says(path: str, text: Callable[[Any, Mapping[str, Any]], str]) -> None:
    """The renderer of an operation whose text is one line: `text(result, kwargs)`."""

    def one_line(result: Any, kw: Mapping[str, Any], ctx: Context) -> None:
        ctx.say(text(result, kw))

    RENDERERS[path] = one_line


def show(ctx: Context, op: Operation, result: Any, kwargs: Mapping[str, Any]) -> None:
    if ctx.json:
        ctx.emit_result(result)
        return
    fn = RENDERERS.get(op.name)
    if fn is not None:
        fn(result, kwargs, ctx)


# The core words its hints without CLI flags; here is how the command line says them.
_FLAG_PHRASES: tuple[tuple[str, str], ...] = (
    ("Give a password file", "Use --password-file FILE"),
    (
        "Try again with the right password.",
        "Try again, or use --password-file with the right password.",
    ),
    ("Choose a writable data home (or set STUDIO_HOME", "Pass --home DIR (or set STUDIO_HOME"),
    ("Name the column that holds the text", "Pass --text-column NAME"),
    ("or use another data home.", "or point --home at another folder."),
    ("Say why the records are rejected.", "Pass --reason TEXT."),
    (
        "Accept some records by id, accept all that score well enough, or reject some by id with a reason.",
        "studio datanet curate NAME (--accept ID… | --accept-all | --reject ID… --reason TEXT)",
    ),
    ("Name at least one Datanet (NAME or NAME@VERSION).", "Pass --datanet NAME[@VERSION]."),
    ("Pick another name.", "Pick another --name."),
    ("Export to a new folder.", "Pass --out to a new folder."),
)


def error_hint(e: StudioError) -> str:
    hint = e.hint or ""
    for plain, flagged in _FLAG_PHRASES:
        hint = hint.replace(plain, flagged)
    return hint


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def fmt_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def open_amount(wei: int, **kw: Any) -> str:
    from studio.chain.networks import format_open

    return str(format_open(wei, **kw))


def table(
    ctx: Context, rows: Iterable[T], line: Callable[[T], str], *, empty: str | None = None
) -> bool:
    """One line per row (the list renderers); `empty` is said when there are none. Returns
    whether there were rows."""
    any_rows = False
    for row in rows:
        ctx.say(line(row))
        any_rows = True
    if not any_rows and empty is not None:
        ctx.say(empty)
    return any_rows
