"""What the layers below the Studio facade may take from it, as a Protocol: they cannot import
`studio.app` (it sits above them), and a test or script can hand them any object with these parts.
Constructors take the parts themselves (paths, store, events, …); only the `for_studio(home)`
shortcuts take a whole `DataHome`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from studio.core.blobs import BlobStore
    from studio.core.config import Config
    from studio.core.events import EventBus
    from studio.core.paths import Paths
    from studio.core.prompt import Prompter
    from studio.core.store import Store


class DataHome(Protocol):
    """One data home: its folders, settings, store, blobs, event bus and prompter."""

    @property
    def paths(self) -> Paths: ...
    @property
    def config(self) -> Config: ...
    @property
    def store(self) -> Store: ...
    @property
    def blobs(self) -> BlobStore: ...
    @property
    def events(self) -> EventBus: ...
    @property
    def prompter(self) -> Prompter: ...
    @property
    def network_name(self) -> str: ...

    def save_config(self) -> None: ...
