"""ChainClient: one connection to the selected network (profile + web3 + transaction pipeline).

It takes what it uses and nothing more: the network profile, the data home's paths, the store (the
transaction journal, deployments) and the event bus. `Studio.chain` builds one for the selected
network. On the devnet, touching `.w3` or `.network` starts anvil on demand; `.deployment()` deploys
the contracts there once per chain id."""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

from web3 import Web3

from studio.core.errors import ChainError
from studio.core.events import EventBus
from studio.core.paths import Paths

from .networks import PROFILES, Network, get_network, parse_address
from .rpc import RPC_BACKOFF_S, RPC_RETRIES, RPC_TIMEOUT_S, StudioHTTPProvider, make_web3

if TYPE_CHECKING:
    from studio.core.facade import DataHome
    from studio.core.store import Store

    from .devnet import Devnet
    from .tx import TxPipeline, TxResult

__all__ = [
    "RPC_BACKOFF_S",
    "RPC_RETRIES",
    "RPC_TIMEOUT_S",
    "ChainClient",
    "StudioHTTPProvider",
    "make_web3",
]


class ChainClient:
    def __init__(
        self,
        profile: Network,
        *,
        paths: Paths,
        store: Store,
        events: EventBus | None = None,
    ) -> None:
        self.profile = profile
        self.paths = paths
        self.store = store
        self.events = events or EventBus()
        self._deployment: dict[str, Any] | None = None

    @classmethod
    def for_studio(cls, home: DataHome) -> ChainClient:
        """The client of the network `home` is set to."""
        profile = get_network(home.network_name, home.config)
        return cls(profile, paths=home.paths, store=home.store, events=home.events)

    @classmethod
    def for_devnet(cls, home: DataHome) -> ChainClient:
        """The embedded devnet's client, whatever network the studio is set to (the faucet)."""
        return cls(PROFILES["devnet"], paths=home.paths, store=home.store, events=home.events)

    @classmethod
    def for_paths(cls, paths: Paths, *, network: Network | None = None) -> ChainClient:
        """A client without a Studio facade (devnet faucet, scripts)."""
        from studio.core.config import Config
        from studio.core.store import Store

        profile = network or get_network(
            Config.load(paths.config).network, Config.load(paths.config)
        )
        return cls(profile, paths=paths, store=Store(paths.db, backups=paths.backups))

    @classmethod
    def for_url(
        cls, home: DataHome, url: str, chain_id: int, *, name: str = "custom"
    ) -> ChainClient:
        """A client for an RPC the caller runs (e.g. a test's own anvil)."""
        return cls(
            Network(name, int(chain_id), url),
            paths=home.paths,
            store=home.store,
            events=home.events,
        )

    # -- connection --------------------------------------------------------------------------
    @property
    def chain_id(self) -> int:
        return self.profile.chain_id

    @cached_property
    def devnet(self) -> Devnet | None:
        if not self.profile.embedded:
            return None
        from .devnet import Devnet

        return Devnet(self.paths, chain_id=self.profile.chain_id, events=self.events)

    @cached_property
    def network(self) -> Network:
        """The profile with its RPC URL; on the devnet this starts anvil if it is not running."""
        if self.devnet is not None:
            st = self.devnet.up()
            return self.profile.with_url(st["url"])
        if not self.profile.rpc_url:
            raise ChainError(
                f"The {self.profile.name} network has no RPC URL.",
                hint="Set STUDIO_RPC_URL or rpc_urls in config.json.",
            )
        return self.profile

    @cached_property
    def w3(self) -> Web3:
        return make_web3(str(self.network.rpc_url), network_name=self.profile.name)

    def check_chain_id(self) -> int:
        """The node's chain id, refused unless it is the profile's (never sign for another chain)."""
        actual = int(self.w3.eth.chain_id)
        if actual != self.profile.chain_id:
            raise ChainError(
                f"The RPC at {self.network.rpc_url} is chain {actual}, but the {self.profile.name} "
                f"network is chain {self.profile.chain_id}; refusing to sign for another chain.",
                hint="Check the network chosen and its RPC URL.",
            )
        return actual

    @cached_property
    def tx(self) -> TxPipeline:
        from .tx import TxPipeline

        return TxPipeline(self)

    def after_transaction(self) -> None:
        """Called by the pipeline after each mined transaction: the devnet writes its state now,
        so a devnet killed before its periodic dump keeps what the journal calls mined."""
        if self.devnet is not None:
            self.devnet.save_state(self.w3)

    # -- money -------------------------------------------------------------------------------
    def faucet(self, address: str, amount_wei: int) -> TxResult:
        """Devnet only: send `amount_wei` OPEN from dev account 0 to `address`."""
        from .devkeys import dev_account

        if not self.profile.embedded:
            raise ChainError(
                f"The faucet exists on the devnet only, not on {self.profile.name}.",
                hint="Fund the account from a wallet that holds OPEN.",
            )
        address = parse_address(address)
        if amount_wei <= 0:
            raise ChainError("The faucet amount must be positive.")
        return self.tx.send(dev_account(0), to=address, value=int(amount_wei), purpose="faucet")

    # -- reads -------------------------------------------------------------------------------
    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(parse_address(address))))

    def deployment(self) -> dict[str, Any]:
        """Contract addresses on this chain. The devnet deploys them on first use."""
        if self._deployment is not None:
            return self._deployment
        from . import contracts

        if self.profile.embedded:
            dep = contracts.ensure_deployed(self)
        elif hasattr(contracts, "load_deployment"):
            dep = contracts.load_deployment(self)
        else:
            path = self.profile.deployment_file(self.paths.home)
            try:
                dep = json.loads(path.read_text())
            except FileNotFoundError as e:
                raise ChainError(
                    f"No contracts are known on {self.profile.name} (chain {self.chain_id}).",
                    hint=f"Put their addresses in {path}.",
                ) from e
        self._deployment = dep
        return dep

    def describe(self) -> dict[str, Any]:
        d = self.profile.to_dict()
        if self.devnet is not None:
            d["rpc_url"] = self.devnet.url
        return d
