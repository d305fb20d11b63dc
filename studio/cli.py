"""`studio` command line, derived from the operation registry in studio.commands: each operation's
signature becomes its argparse parser; its typed result is rendered by studio.cli_render (text) or
printed as JSON (--json). For a chain operation that takes a cancel token (publish), the first
Ctrl-C cancels it politely: it stops at its next safe point (before its first transaction nothing
changes; after it, at the next transaction boundary); a second one interrupts at once. Other
operations keep Ctrl-C as an interrupt (their process pools stop with it)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from studio import __version__
from studio.commands import REGISTRY, Context, Operation, Param, invoke, load_all, to_json
from studio.core.errors import StudioError


def _common(network: bool, wallet: bool) -> argparse.ArgumentParser:
    # SUPPRESS so an option given before the subcommand is not reset by the subparser's default.
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--home",
        default=argparse.SUPPRESS,
        help="data home (default: $STUDIO_HOME or the platform data dir)",
    )
    p.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document"
    )
    if network:
        p.add_argument(
            "--network",
            default=argparse.SUPPRESS,
            help="devnet (default), openledger-testnet, openledger, custom",
        )
    if wallet:
        p.add_argument(
            "--password-file",
            default=argparse.SUPPRESS,
            help="read the keystore password from this file (headless use)",
        )
    return p


def option_names(p: Param) -> tuple[str, ...]:
    return p.meta.flags or ("--" + p.name.replace("_", "-"),)


def _add(parser: argparse.ArgumentParser, p: Param) -> None:
    kw: dict[str, Any] = {}
    if p.meta.help:
        kw["help"] = p.meta.help
    if p.meta.metavar:
        kw["metavar"] = p.meta.metavar
    if p.choices:
        kw["choices"] = list(p.choices)
    conv = p.type if p.type in (int, float) else None
    if p.positional:
        if p.is_list:
            kw["nargs"] = "+" if p.required else "*"
        elif not p.required:
            kw["nargs"] = "?"
        if not p.required:
            kw["default"] = p.default
        if conv:
            kw["type"] = conv
        parser.add_argument(p.name, **kw)
        return
    kw["dest"] = p.name
    if p.type is bool and not p.is_list:
        kw["action"] = "store_true"
        kw["required"] = p.required  # e.g. `model export --merged`: say it out loud
        if not p.required:
            kw["default"] = p.default  # None: "not given", so a config file may decide
        parser.add_argument(*option_names(p), **kw)
        return
    if conv:
        kw["type"] = conv
    if p.is_list:
        if p.meta.repeat:
            kw["action"] = "append"
        else:
            kw["nargs"] = "+"
    if p.required:
        kw["required"] = True
    else:
        kw["default"] = p.default
    parser.add_argument(*option_names(p), **kw)


def build_parser() -> argparse.ArgumentParser:
    load_all()
    parser = argparse.ArgumentParser(
        prog="studio",
        description="OpenLedger Studio: Datanets, ModelFactory and Proof of Attribution on the OpenLedger L2.",
    )
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    parser.add_argument("--home", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", default=False, help=argparse.SUPPRESS)
    parser.add_argument("--network", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--password-file", default=None, help=argparse.SUPPRESS)
    groups: dict[tuple[str, ...], argparse._SubParsersAction] = {}
    groups[()] = parser.add_subparsers(dest="cmd0", metavar="COMMAND")
    parsers: dict[tuple[str, ...], argparse.ArgumentParser] = {}
    for path, op in REGISTRY.items():
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in groups:
                parent = groups[prefix[:-1]]
                gp = parent.add_parser(prefix[-1], help=f"{' '.join(prefix)} commands")
                parsers[prefix] = gp
                groups[prefix] = gp.add_subparsers(dest=f"cmd{depth}", metavar="COMMAND")
        parent = groups[path[:-1]]
        # Internal operations (the job runner) get no help line, so they are not listed.
        listed: dict[str, Any] = {} if op.internal else {"help": op.help}
        sp = parent.add_parser(
            path[-1],
            **listed,
            description=op.help,
            parents=[_common(op.network, op.wallet)],
        )
        for p in op.params:
            _add(sp, p)
        sp.set_defaults(_operation=op)
        parsers[path] = sp
    parser.set_defaults(_parsers=parsers)
    return parser


def command_line(path: str, kwargs: dict[str, Any]) -> str:
    """An operation + keyword arguments as the command a user types (for suggestions)."""
    import shlex

    op = REGISTRY.get(tuple(path.split()))
    words = ["studio", *path.split()]
    if op is None:
        return " ".join(words)
    for p in op.params:
        if p.name not in kwargs:
            continue
        v = kwargs[p.name]
        if p.positional:
            words += [str(x) for x in v] if p.is_list else [str(v)]
        elif p.type is bool and not p.is_list:
            if v:
                words.append(option_names(p)[0])
        elif p.is_list:
            words += [option_names(p)[0], *(str(x) for x in v)]
        elif v is not None:
            words += [option_names(p)[0], str(v)]
    return " ".join(shlex.quote(w) if w != "studio" else w for w in words)


def error_line(e: StudioError) -> str:
    from studio.commands.render import error_hint

    text = e.message
    hint = error_hint(e)
    if hint:
        text = f"{text} {hint}"
    if e.suggest is not None:
        line = command_line(e.suggest.path, dict(e.suggest.kwargs))
        if line not in text:  # a hint may already name the command
            text = f"{text.rstrip()} Run `{line}`."
    return f"error: {text}"


@contextlib.contextmanager
def _cancel_on_interrupt(op: Operation, kwargs: dict[str, Any]) -> Iterator[None]:
    """Give a cancellable chain operation a token that the first Ctrl-C cancels."""
    if (
        not (op.cancellable and op.network)
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    from studio.core.cancel import CancelToken

    token = CancelToken()
    kwargs["cancel"] = token

    def on_sigint(signum: int, frame: Any) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        print("cancelling… (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        kwargs.pop("cancel", None)


def main(argv: Sequence[str] | None = None) -> int:
    import multiprocessing

    multiprocessing.freeze_support()  # a frozen build's child processes must not re-run main
    parser = build_parser()
    args = parser.parse_args(argv)
    op: Operation | None = getattr(args, "_operation", None)
    if op is None:
        # `studio datanet` alone: show that group's help.
        words = [getattr(args, f"cmd{i}", None) for i in range(4)]
        prefix = tuple(w for w in words if w)
        target = args._parsers.get(prefix, parser) if prefix else parser
        target.print_help()
        return 0 if not prefix else 2
    ctx = Context(
        home=args.home,
        network=args.network,
        json_mode=args.json,
        password_file=args.password_file,
        quiet=op.internal,
    )
    kwargs = {p.name: getattr(args, p.name) for p in op.params}
    from studio.commands import render as cli_render

    try:
        with _cancel_on_interrupt(op, kwargs):
            result = invoke(op.path, ctx.studio, **kwargs)
        if not op.internal:
            cli_render.show(ctx, op, result, kwargs)
        return 0
    except StudioError as e:
        if e.result is not None:
            # What the operation found before it failed (e.g. verify's problem list).
            cli_render.show(ctx, op, e.result, kwargs)
        print(error_line(e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `studio datanet records X | head`: the reader left; that is not an error.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as e:  # noqa: BLE001 - last resort: one line for the user, the traceback in the log
        logging.getLogger("studio").exception("unexpected error in %s", op.name)
        print(
            f"error: unexpected {type(e).__name__}: {e} (details in the log: studio doctor shows where)",
            file=sys.stderr,
        )
        return 2
    finally:
        if "studio" in ctx.__dict__:
            ctx.studio.close()


def gui_main() -> int:
    import multiprocessing

    multiprocessing.freeze_support()
    return main(["gui", *sys.argv[1:]])


__all__ = ["build_parser", "command_line", "main", "to_json"]

if __name__ == "__main__":
    raise SystemExit(main())
