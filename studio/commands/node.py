"""studio node run: the headless light node (follow + verify the chain, serve, record, validate)."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from studio.commands import Context, arg, command


@command(
    "node run",
    "Run the light node: verify the chain, serve the OpenAI-compatible API under /v1, record attributions.",
    arg("--api", metavar="HOST:PORT", default=None, help="listen address (default 127.0.0.1:8787)"),
    arg(
        "--validator",
        action="store_true",
        default=None,
        help="also re-check other nodes' attributions",
    ),
    arg(
        "--config",
        metavar="FILE",
        default=None,
        help="node settings (default: node.json in the data home)",
    ),
    arg(
        "--model",
        dest="models",
        action="append",
        default=None,
        metavar="MODEL",
        help="serve this model (repeatable; default: every fine-tuned one)",
    ),
    arg(
        "--account",
        metavar="ADDRESS",
        default=None,
        help="the node's account (default: the active wallet)",
    ),
    arg("--free", action="store_true", default=False, help="serve without payment (local testing)"),
    arg("--api-token-file", metavar="FILE", default=None, help="bearer token clients must send"),
    network=True,
    wallet=True,
)
def node_run(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.node.config import NodeConfig
    from studio.node.logjson import log_to_stderr
    from studio.node.service import Node

    studio = ctx.studio
    path = Path(args.config) if args.config else studio.paths.home / "node.json"
    cfg = NodeConfig.load(
        path,
        _explicit=bool(args.config),
        api=args.api,
        validator=args.validator,
        models=args.models,
        account=args.account,
        password_file=ctx.password_file,
        api_token_file=args.api_token_file,
        require_payment=False if args.free else None,
    )
    log_to_stderr(cfg.log_json)
    node = Node(studio, cfg)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        node.start()
        ctx.say(f"node serving {', '.join(node.hosted()) or 'no models'} at {node.url}/v1")
        if node.follower is not None:
            st = node.follower.status()
            ctx.say(f"verified up to block {st['verified_to']} ({st['state']})")
        print(f"ready {node.url}", file=ctx.err, flush=True)
        stop.wait()
        ctx.say("stopping: finishing in-flight requests")
    finally:
        node.stop()
        for s, h in old.items():
            signal.signal(s, h)
    return node.status()
