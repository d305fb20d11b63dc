"""Where the studio keeps its data: STUDIO_HOME / --home, else the platform's user data dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from studio.core.errors import ConfigError

APP_NAME = "OpenLedgerStudio"


def default_home() -> Path:
    env = os.environ.get("STUDIO_HOME")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True)
class Paths:
    """Every location inside one data home. Created on first use with owner-only permissions."""

    home: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> Paths:
        root = Path(home).expanduser() if home else default_home()
        paths = cls(root.resolve())
        paths.ensure()
        return paths

    def ensure(self) -> None:
        # umask 077: keystores, journals and unpublished data are nobody else's business.
        old = os.umask(0o077)
        try:
            for d in (
                self.home,
                self.blobs,
                self.logs,
                self.keystores,
                self.models,
                self.devnet,
                self.jobs,
            ):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(
                f"Cannot create the data home at {self.home}: {e.strerror}.",
                hint="Choose a writable data home (or set STUDIO_HOME to a writable folder).",
            ) from e
        finally:
            os.umask(old)

    @property
    def db(self) -> Path:
        return self.home / "studio.sqlite"

    @property
    def config(self) -> Path:
        return self.home / "config.json"

    @property
    def blobs(self) -> Path:
        return self.home / "blobs"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def keystores(self) -> Path:
        return self.home / "keystores"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def devnet(self) -> Path:
        return self.home / "devnet"

    @property
    def jobs(self) -> Path:
        return self.home / "jobs"

    @property
    def backups(self) -> Path:
        return self.home / "backups"

    @property
    def exports(self) -> Path:
        return self.home / "exports"
