"""ChainClient: one connection to the selected network (profile + web3 + transaction pipeline).

`Studio.chain` is `ChainClient.for_studio(studio)`. On the devnet, touching `.w3` or `.network`
starts anvil on demand; `.deployment()` deploys the contracts there once per chain id."""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from web3 import HTTPProvider, Web3
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from studio.core.errors import ChainError
from studio.core.events import EventBus
from studio.core.paths import Paths

from .networks import PROFILES, Network, get_network

if TYPE_CHECKING:
    from studio.core.store import Store

    from .devnet import Devnet
    from .tx import TxPipeline

RPC_RETRIES = 4
RPC_BACKOFF_S = 0.25  # 0.25, 0.5, 1.0 s between the attempts
RPC_TIMEOUT_S = 30.0


class StudioHTTPProvider(HTTPProvider):
    """HTTPProvider with bounded retries + backoff whose final failure is a ChainError a user can act on."""

    def __init__(
        self,
        url: str,
        *,
        network_name: str,
        retries: int = RPC_RETRIES,
        backoff_s: float = RPC_BACKOFF_S,
        timeout_s: float = RPC_TIMEOUT_S,
    ) -> None:
        super().__init__(
            url,
            request_kwargs={"timeout": timeout_s},
            exception_retry_configuration=ExceptionRetryConfiguration(
                errors=(requests.ConnectionError, requests.Timeout, requests.HTTPError),
                retries=retries,
                backoff_factor=backoff_s,
            ),
        )
        self.network_name = network_name
        self.retries = retries

    def make_request(self, method: Any, params: Any) -> Any:
        try:
            return super().make_request(method, params)
        except (requests.ConnectionError, requests.Timeout, requests.HTTPError) as e:
            hint = (
                "Start it with `studio devnet up`."
                if self.network_name == "devnet"
                else "Check your connection, the network chosen and its RPC URL (STUDIO_RPC_URL)."
            )
            raise ChainError(
                f"Cannot reach the {self.network_name} RPC at {self.endpoint_uri} "
                f"after {self.retries} attempts ({type(e).__name__}).",
                hint=hint,
            ) from e


def make_web3(
    url: str,
    *,
    network_name: str = "custom",
    retries: int | None = None,
    backoff_s: float | None = None,
) -> Web3:
    return Web3(
        StudioHTTPProvider(
            url,
            network_name=network_name,
            retries=RPC_RETRIES if retries is None else retries,
            backoff_s=RPC_BACKOFF_S if backoff_s is None else backoff_s,
        )
    )


class ChainClient:
    def __init__(
        self,
        profile: Network,
        *,
        paths: Paths,
        store: Store,
        events: EventBus | None = None,
        studio: Any = None,
    ) -> None:
        self.profile = profile
        self.paths = paths
        self.store = store
        self.events = events or EventBus()
        self.studio = studio
        self._deployment: dict[str, Any] | None = None

    @classmethod
    def for_studio(cls, studio: Any) -> ChainClient:
        profile = get_network(studio.network_name, studio.config)
        return cls(
            profile, paths=studio.paths, store=studio.store, events=studio.events, studio=studio
        )

    @classmethod
    def for_devnet(cls, studio: Any) -> ChainClient:
        """The embedded devnet's client, whatever network the studio is set to (the faucet)."""
        return cls(
            PROFILES["devnet"],
            paths=studio.paths,
            store=studio.store,
            events=studio.events,
            studio=studio,
        )

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
    def for_url(cls, studio: Any, url: str, chain_id: int, *, name: str = "custom") -> ChainClient:
        """A client for an RPC the caller runs (e.g. a test's own anvil)."""
        return cls(
            Network(name, int(chain_id), url),
            paths=studio.paths,
            store=studio.store,
            events=studio.events,
            studio=studio,
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

    # -- reads -------------------------------------------------------------------------------
    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def deployment(self) -> dict[str, Any]:
        """Contract addresses on this chain. The devnet deploys them on first use."""
        if self._deployment is not None:
            return self._deployment
        from studio.chain import (
            contracts,  # written by the contracts engineer; imported when needed
        )

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
