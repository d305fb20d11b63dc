"""studio node run: the headless light node (follow + verify the chain, serve, record, validate)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from studio.commands import arg, note, operation

if TYPE_CHECKING:
    from studio.app import Studio


@operation(
    "node run",
    "Run the light node: verify the chain, serve the OpenAI-compatible API under /v1, record attributions.",
    network=True,
    wallet=True,
)
def node_run(
    studio: Studio,
    *,
    api: Annotated[
        str | None, arg("listen address (default 127.0.0.1:8787)", metavar="HOST:PORT")
    ] = None,
    validator: Annotated[bool, arg("also re-check other nodes' attributions")] = False,
    config: Annotated[
        str | None, arg("node settings (default: node.json in the data home)", metavar="FILE")
    ] = None,
    models: Annotated[
        list[str] | None,
        arg(
            "serve this model (repeatable; default: every fine-tuned one)",
            metavar="MODEL",
            flags="--model",
            repeat=True,
        ),
    ] = None,
    account: Annotated[
        str | None, arg("the node's account (default: the active wallet)", metavar="ADDRESS")
    ] = None,
    free: Annotated[bool, arg("serve without payment (local testing)")] = False,
    api_token_file: Annotated[
        str | None, arg("bearer token clients must send", metavar="FILE")
    ] = None,
) -> dict[str, Any]:
    from studio.node.config import NodeConfig
    from studio.node.logjson import log_to_stderr
    from studio.node.service import Node

    path = Path(config) if config else studio.paths.home / "node.json"
    cfg = NodeConfig.load(
        path,
        _explicit=bool(config),
        api=api,
        validator=validator or None,
        models=models or None,
        account=account,
        api_token_file=api_token_file,
        require_payment=False if free else None,
    )
    log_to_stderr(cfg.log_json)
    node = Node(studio, cfg)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        node.start()
        note(studio, f"node serving {', '.join(node.hosted()) or 'no models'} at {node.url}/v1")
        if node.follower is not None:
            st = node.follower.status()
            note(studio, f"verified up to block {st['verified_to']} ({st['state']})")
        # One machine-readable line for supervisors and tests: the node is up at this URL.
        print(f"ready {node.url}", file=sys.stderr, flush=True)
        stop.wait()
        note(studio, "stopping: finishing in-flight requests")
    finally:
        node.stop()
        for s, h in old.items():
            signal.signal(s, h)
    return node.status()
