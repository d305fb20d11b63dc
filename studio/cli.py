"""`studio` command line, built from the command registry in studio.commands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from studio import __version__
from studio.commands import REGISTRY, Context, load_all
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
    for path, cmd in REGISTRY.items():
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in groups:
                parent = groups[prefix[:-1]]
                gp = parent.add_parser(prefix[-1], help=f"{' '.join(prefix)} commands")
                parsers[prefix] = gp
                groups[prefix] = gp.add_subparsers(dest=f"cmd{depth}", metavar="COMMAND")
        parent = groups[path[:-1]]
        # Names starting with "_" are internal (the job runner): no help line, so not listed.
        listed = {} if path[-1].startswith("_") else {"help": cmd.help}
        sp = parent.add_parser(
            path[-1],
            **listed,
            description=cmd.help,
            parents=[_common(cmd.network, cmd.wallet)],
        )
        for a in cmd.args:
            sp.add_argument(*a.names, **a.kwargs)
        sp.set_defaults(_command=cmd)
        parsers[path] = sp
    parser.set_defaults(_parsers=parsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cmd = getattr(args, "_command", None)
    if cmd is None:
        # `studio datanet` alone: show that group's help.
        words = [getattr(args, f"cmd{i}", None) for i in range(4)]
        prefix = tuple(w for w in words if w)
        target = args._parsers.get(prefix, parser) if prefix else parser
        target.print_help()
        return 0 if not prefix else 2
    ctx = Context(
        home=args.home, network=args.network, json_mode=args.json, password_file=args.password_file
    )
    try:
        result = cmd.func(ctx, args)
        ctx.emit_result(result)
        return 0
    except StudioError as e:
        print(f"error: {e}", file=sys.stderr)
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
        logging.getLogger("studio").exception("unexpected error in %s", " ".join(cmd.path))
        print(
            f"error: unexpected {type(e).__name__}: {e} (details in the log: studio doctor shows where)",
            file=sys.stderr,
        )
        return 2
    finally:
        if "studio" in ctx.__dict__:
            ctx.studio.close()


def gui_main() -> int:
    return main(["gui", *sys.argv[1:]])


if __name__ == "__main__":
    raise SystemExit(main())
