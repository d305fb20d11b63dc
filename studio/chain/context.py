"""What the on-chain operations (ledger, staking, datanets_onchain, model_registration) take from
the Studio facade, as Protocols: they cannot import `studio.app` (it sits above them), and a test can
hand them any object with these parts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from studio.core.datanets import Datanets
    from studio.core.events import EventBus
    from studio.core.store import Store

    from .client import ChainClient


class OnChain(Protocol):
    """The chain client, and the store where what was done on chain is remembered."""

    @property
    def chain(self) -> ChainClient: ...
    @property
    def store(self) -> Store: ...


class Publishing(OnChain, Protocol):
    """Publishing a Datanet also reads its local records and snapshots and reports progress."""

    @property
    def datanets(self) -> Datanets: ...
    @property
    def events(self) -> EventBus: ...
