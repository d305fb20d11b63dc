"""Errors a user can act on. The CLI prints them in one line and exits 1; the GUI shows a dialog."""

from __future__ import annotations


class StudioError(Exception):
    """Base of every user-facing error. The message says what went wrong and what to do."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{msg} {self.hint}" if self.hint else msg


class ConfigError(StudioError):
    """The configuration or data home is unusable."""


class StoreError(StudioError):
    """The local database cannot be opened, migrated or written."""


class NotFound(StudioError):
    """A named thing (Datanet, record, model, account…) does not exist."""


class AlreadyExists(StudioError):
    """A thing with that name already exists."""


class InvalidInput(StudioError):
    """A file or argument cannot be accepted as given."""


class IntegrityError(StudioError):
    """Stored data does not match its hash: tampering or disk corruption."""


class ChainError(StudioError):
    """The chain could not be reached or refused a transaction."""


class WalletError(StudioError):
    """A wallet or keystore problem: wrong password, corrupt file, locked account."""


class TrainingError(StudioError):
    """A fine-tuning job could not start or failed."""


class AttributionError(StudioError):
    """An attribution report could not be produced or verified."""


class Cancelled(StudioError):
    """The user cancelled a long-running job."""
