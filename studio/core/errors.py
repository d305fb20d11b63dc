"""Errors a user can act on. The CLI prints them in one line and exits 1; the GUI shows a dialog.

An error carries a message in plain words, a hint in plain words, and optionally a suggested
operation (a command path + keyword arguments): the CLI renders it as a command line, the GUI as a
button. No text here or below names a CLI flag: that is the renderer's job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Suggestion:
    """An operation the user could run next, e.g. Suggestion("devnet reset", {"yes": True})."""

    path: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""  # a button caption; empty: the GUI derives one from the path


class StudioError(Exception):
    """Base of every user-facing error. The message says what went wrong and what to do."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        suggest: Suggestion | None = None,
        result: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.suggest = suggest
        # What the operation found before it failed (e.g. the problems `verify` lists), shown
        # beside the error.
        self.result = result

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


class WrongPassword(WalletError):
    """The password does not open the keystore (a caller may ask again)."""


class PasswordNeeded(WalletError):
    """No password was given and there is no one to ask (headless, no prompter)."""


class TrainingError(StudioError):
    """A fine-tuning job could not start or failed."""


class AttributionError(StudioError):
    """An attribution report could not be produced or verified."""


class Cancelled(StudioError):
    """The user cancelled a long-running job."""
