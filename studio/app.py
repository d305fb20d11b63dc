"""The Studio facade: one object that the CLI, the GUI and the light node all hold.

It lives above core/chain/train/attribution (not inside core) because core must not import
chain or train. Subsystems are created lazily so `studio datanet list` never imports torch
or web3."""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING

from studio.core.blobs import BlobStore
from studio.core.config import Config
from studio.core.events import EventBus
from studio.core.logs import setup_logging
from studio.core.paths import Paths
from studio.core.prompt import NoPrompter, Prompter
from studio.core.store import Store

if TYPE_CHECKING:
    from studio.attribution.service import Attributor
    from studio.chain.client import ChainClient
    from studio.chain.wallet import Wallet
    from studio.core.datanets import Datanets
    from studio.train.factory import ModelFactory


class Studio:
    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        network: str | None = None,
        prompter: Prompter | None = None,
    ) -> None:
        self.paths = Paths.resolve(home)
        self.log = setup_logging(self.paths.logs)
        self.events = EventBus()
        self._network_override = network
        # Where passwords and confirmations come from: the CLI's terminal, the GUI's dialog;
        # by default nobody (headless: a password must come from a file, the env or the keyring).
        self.prompter: Prompter = prompter or NoPrompter()

    @cached_property
    def config(self) -> Config:
        return Config.load(self.paths.config)

    def save_config(self) -> None:
        self.config.save(self.paths.config)

    @property
    def network_name(self) -> str:
        return self._network_override or os.environ.get("STUDIO_NETWORK") or self.config.network

    @cached_property
    def store(self) -> Store:
        return Store(self.paths.db, backups=self.paths.backups)

    @cached_property
    def blobs(self) -> BlobStore:
        return BlobStore(self.paths.blobs)

    @cached_property
    def datanets(self) -> Datanets:
        from studio.core.datanets import Datanets

        return Datanets(self.store, self.blobs, self.config, self.events)

    # The wallet, the chain, the ModelFactory and attribution are built from the parts they take
    # (each constructor names them; `for_studio` takes a typed DataHome), imported when first used.
    @cached_property
    def wallet(self) -> Wallet:
        from studio.chain.wallet import Wallet

        return Wallet.for_studio(self)

    @cached_property
    def chain(self) -> ChainClient:
        from studio.chain.client import ChainClient

        return ChainClient.for_studio(self)

    @cached_property
    def models(self) -> ModelFactory:
        from studio.train.factory import ModelFactory

        # on_chain=self: registration reaches `self.chain` only when a model is registered.
        return ModelFactory(
            paths=self.paths,
            store=self.store,
            events=self.events,
            datanets=self.datanets,
            on_chain=self,
        )

    @cached_property
    def attribution(self) -> Attributor:
        from studio.attribution.service import Attributor

        return Attributor(
            models=self.models, datanets=self.datanets, events=self.events, paths=self.paths
        )

    def close(self) -> None:
        if "wallet" in self.__dict__:
            self.wallet.lock_all()  # closing the studio locks every unlocked account
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> Studio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
