"""Network profiles. Every profile differs only by RPC URL, chain id and deployment file.

- `devnet` (default): the embedded anvil started by the studio (studio.chain.devnet), chain id 16120,
  its RPC URL known once it runs.
- `openledger-testnet` (chain id 161201) and `openledger` (chain id 1612): public endpoints, the URL
  overridable with config `rpc_urls: {name: url}` or `STUDIO_RPC_URL`.
- `custom`: any EVM JSON-RPC endpoint; the URL comes from `STUDIO_RPC_URL` or config `custom_rpc_url`,
  the chain id from `STUDIO_CHAIN_ID` or config `custom_chain_id` (the pipeline refuses to sign for any
  other chain, so it must be stated, never guessed from the node).

OPEN is the native gas token, 18 decimals; `parse_open` / `format_open` convert user amounts."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from studio.core.address import checksum_address
from studio.core.errors import ConfigError, InvalidInput

DEVNET_CHAIN_ID = 16120
OPEN_DECIMALS = 18
WEI_PER_OPEN = 10**OPEN_DECIMALS


@dataclass(frozen=True)
class Network:
    name: str
    chain_id: int
    rpc_url: str | None  # None for the devnet until it is up
    embedded: bool = False  # True: the studio runs this chain itself (anvil)
    explorer_url: str | None = None

    def deployment_file(self, home: Path) -> Path:
        """Where the contract addresses for this chain are kept: <home>/deployments/<chain_id>.json."""
        return Path(home) / "deployments" / f"{self.chain_id}.json"

    def with_url(self, url: str) -> Network:
        return replace(self, rpc_url=url)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "chain_id": self.chain_id,
            "rpc_url": self.rpc_url,
            "embedded": self.embedded,
        }


PROFILES: dict[str, Network] = {
    "devnet": Network("devnet", DEVNET_CHAIN_ID, None, embedded=True),
    "openledger-testnet": Network(
        "openledger-testnet",
        161201,
        "https://rpctn.openledger.xyz",
        explorer_url="https://testnet.openledger.xyz",
    ),
    "openledger": Network(
        "openledger", 1612, "https://rpc.openledger.xyz", explorer_url="https://scan.openledger.xyz"
    ),
    "custom": Network("custom", 0, None),
}


def network_names() -> list[str]:
    return list(PROFILES)


def get_network(name: str, config: Any = None) -> Network:
    """The profile called `name`, with URL overrides from the environment and the config applied.

    `config` is a studio.core.config.Config (or None); only its `extra` dict is read."""
    extra: dict[str, Any] = dict(getattr(config, "extra", None) or {})
    if name not in PROFILES:
        raise ConfigError(
            f"Unknown network {name!r}.",
            hint=f"Use one of: {', '.join(PROFILES)}.",
        )
    prof = PROFILES[name]
    env_url = os.environ.get("STUDIO_RPC_URL")
    if name == "custom":
        url = env_url or extra.get("custom_rpc_url")
        raw_id = os.environ.get("STUDIO_CHAIN_ID") or extra.get("custom_chain_id")
        if not url:
            raise ConfigError(
                "The custom network has no RPC URL.",
                hint="Set STUDIO_RPC_URL (or custom_rpc_url in config.json) and STUDIO_CHAIN_ID.",
            )
        try:
            chain_id = int(str(raw_id), 0) if raw_id is not None else 0
        except ValueError:
            chain_id = 0
        if chain_id <= 0:
            raise ConfigError(
                "The custom network has no valid chain id.",
                hint="Set STUDIO_CHAIN_ID (or custom_chain_id in config.json) to the chain's id.",
            )
        return Network("custom", chain_id, str(url))
    if prof.embedded:
        return prof
    urls = extra.get("rpc_urls") if isinstance(extra.get("rpc_urls"), dict) else {}
    url = env_url or (urls or {}).get(name) or prof.rpc_url
    return replace(prof, rpc_url=str(url))


# -- addresses ----------------------------------------------------------------------------------


def parse_address(text: Any) -> str:
    """A user-typed address → its checksummed form. Mixed case must carry a valid EIP-55 checksum:
    that checksum exists to catch a mistyped character before OPEN goes to a stranger."""
    return checksum_address(text, noun="address")


# -- amounts of OPEN ----------------------------------------------------------------------------


def parse_open(text: str | int) -> int:
    """A user amount to wei: "1.5" or "1.5 OPEN" → 1.5e18 wei; "100wei" → 100. Refuses negatives and
    more than 18 decimals."""
    if isinstance(text, int):
        if text < 0:
            raise InvalidInput("An amount cannot be negative.")
        return text
    s = str(text).strip().replace("_", "")
    low = s.lower()
    try:
        if low.endswith("wei"):
            n = int(low[:-3].strip())
            if n < 0:
                raise InvalidInput("An amount cannot be negative.")
            return n
        if low.endswith("open"):
            s = s[:-4].strip()
        d = Decimal(s)
    except (InvalidOperation, ValueError) as e:
        raise InvalidInput(
            f"Not an amount: {text!r}.", hint="Write it in OPEN (e.g. 1.5) or in wei (e.g. 100wei)."
        ) from e
    if not d.is_finite() or d < 0:
        raise InvalidInput(
            f"Not a valid amount: {text!r}.", hint="Use a positive number of OPEN, e.g. 1.5."
        )
    wei = d * WEI_PER_OPEN
    if wei != wei.to_integral_value():
        raise InvalidInput(f"{text!r} has more than {OPEN_DECIMALS} decimals.")
    return int(wei)


def format_open(wei: int, *, places: int | None = None) -> str:
    """wei → "1,234.5 OPEN" (exact unless `places` rounds it down)."""
    wei = int(wei)
    sign = "-" if wei < 0 else ""
    whole, frac = divmod(abs(wei), WEI_PER_OPEN)
    frac_s = f"{frac:0{OPEN_DECIMALS}d}".rstrip("0")
    if places is not None:
        frac_s = frac_s[:places]
    return f"{sign}{whole:,}{'.' + frac_s if frac_s else ''} OPEN"
