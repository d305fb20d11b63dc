"""Every test runs with its own data home, one torch thread, no hub access and an in-memory keyring."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from studio.commands import Context  # noqa: E402

# Property tests draw the same examples on every run and machine (derandomize: the seed comes from
# the test itself), and keep no example database, so a failure in CI reproduces locally.
settings.register_profile("studio", derandomize=True, database=None, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "studio"))

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def studio_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("STUDIO_HOME", str(home))
    yield home
    if (home / "devnet" / "anvil.json").exists():  # a devnet a test started: never leave it running
        from studio.chain.devnet import Devnet
        from studio.core.paths import Paths

        Devnet(Paths.resolve(home)).down()


@pytest.fixture(autouse=True)
def memory_keyring() -> object:
    """An in-memory keyring backend, so no test touches (or hangs on) a real OS keyring."""
    import keyring
    from keyring.backend import KeyringBackend

    class MemoryKeyring(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            super().__init__()
            self.items: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.items.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.items[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.items.pop((service, username), None)

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def studio(studio_home: Path):
    from studio.app import Studio

    s = Studio(studio_home)
    yield s
    s.close()


def run_cli(*argv: str, home: Path | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    from studio.cli import main

    out, err = io.StringIO(), io.StringIO()
    args = list(argv)
    if home is not None:
        args += ["--home", str(home)]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(args)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def cli(studio_home: Path):
    def _run(*argv: str) -> tuple[int, str, str]:
        return run_cli(*argv)

    return _run


__all__ = ["Context", "run_cli", "REPO"]
