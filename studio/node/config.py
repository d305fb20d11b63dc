"""The node's settings: a JSON config file (`--config FILE`, else `node.json` in the data home),
then command-line flags on top. Secrets are never in this file: the keystore password comes from
`password_file`, `$STUDIO_PASSWORD`, or systemd credentials (`$CREDENTIALS_DIRECTORY/password`);
the API token from `api_token_file`, `$STUDIO_NODE_TOKEN` or `$CREDENTIALS_DIRECTORY/api-token`."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class NodeConfig:
    api: str = "127.0.0.1:8787"  # HOST:PORT; port 0 = any free port
    models: list[str] = field(
        default_factory=list
    )  # model ids to serve (default: every fine-tuned one)
    account: str | None = None  # the node's address (default: the active wallet account)
    password_file: str | None = None
    api_token_file: str | None = None
    validator: bool = False
    require_payment: bool = True
    attribution: bool = True
    attribution_method: str = "span"  # or gradient, hybrid, exact; auto: exact where the
    # version allows it on this machine (a validator then decides by exact), else span
    attribution_top_k: int = 5
    checkpoint_number: int = 0
    checkpoint_hash: str | None = None
    poll_s: float = 1.0
    subscribe: bool = True  # new heads by `eth_subscribe newHeads` where the RPC has a websocket
    ws_url: str | None = None  # the RPC's websocket (default: its HTTP address with ws://)
    max_tokens_limit: int = 512
    max_request_bytes: int = 256 * 1024
    max_concurrent: int = 16
    payment_wait_s: float = 10.0
    validator_interval_s: float = 5.0
    validator_sample: float = 1.0  # share of other nodes' records re-checked
    peers: list[str] = field(default_factory=list)  # other nodes' API URLs (reports, adapters)
    log_json: bool = True

    @property
    def host(self) -> str:
        return self.api.rsplit(":", 1)[0].strip("[]") or "127.0.0.1"

    @property
    def port(self) -> int:
        try:
            return int(self.api.rsplit(":", 1)[1])
        except (IndexError, ValueError) as e:
            raise ConfigError(
                f"Bad API address {self.api!r}.", hint="Use HOST:PORT, e.g. 127.0.0.1:8787."
            ) from e

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None, **overrides: Any) -> NodeConfig:
        data: dict[str, Any] = {}
        if path is not None and Path(path).exists():
            try:
                data = json.loads(Path(path).read_text("utf-8"))
            except ValueError as e:
                raise ConfigError(f"The node config {path} is not valid JSON: {e}.") from e
            if not isinstance(data, dict):
                raise ConfigError(f"The node config {path} must be a JSON object.")
        elif path is not None and overrides.get("_explicit"):
            raise ConfigError(f"No node config at {path}.")
        overrides.pop("_explicit", None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"Unknown setting(s) in {path}: {', '.join(unknown)}.",
                hint=f"Known settings: {', '.join(sorted(known))}.",
            )
        data.update({k: v for k, v in overrides.items() if v is not None})
        cfg = cls(**data)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        _ = self.port
        if self.attribution_method not in ("span", "gradient", "hybrid", "exact", "auto"):
            raise ConfigError("attribution_method must be span, gradient, hybrid, exact or auto.")
        if self.max_tokens_limit < 1 or self.max_concurrent < 1:
            raise ConfigError("max_tokens_limit and max_concurrent must be at least 1.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _credential(name: str) -> Path | None:
    d = os.environ.get("CREDENTIALS_DIRECTORY")
    if d and (Path(d) / name).is_file():
        return Path(d) / name
    return None


def password_source(cfg: NodeConfig) -> str | None:
    """A password file to unlock the node's keystore with: the configured one, else the systemd
    credential. None: the wallet falls back to $STUDIO_PASSWORD (with its warning)."""
    if cfg.password_file:
        return cfg.password_file
    cred = _credential("password")
    return str(cred) if cred else None


def api_token(cfg: NodeConfig) -> str | None:
    if cfg.api_token_file:
        return Path(cfg.api_token_file).read_text("utf-8").strip() or None
    env = os.environ.get("STUDIO_NODE_TOKEN")
    if env:
        return env.strip()
    cred = _credential("api-token")
    return cred.read_text("utf-8").strip() if cred else None
