"""Node test fixtures: one real anvil for the node tests (session), reverted to a snapshot after each
test, and a Studio wired to it with the four contracts deployed through the studio's own pipeline.
Helpers live in node_kit.py."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
for extra in (HERE.parent / "chain", HERE.parent / "train"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from chain_kit import CHAIN_ID, Anvil, _dev_keys, _free_port  # noqa: E402


@pytest.fixture(scope="session")
def node_anvil() -> Iterator[Anvil]:
    from eth_account import Account

    from studio.chain.devnet import anvil_command, find_anvil

    keys = _dev_keys()
    accounts = [Account.from_key(k).address for k in keys]
    port = _free_port()
    proc = subprocess.Popen(
        anvil_command(port, CHAIN_ID, anvil=find_anvil()),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    node = Anvil(f"http://127.0.0.1:{port}", port, CHAIN_ID, accounts, keys, proc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if node.w3.eth.chain_id == CHAIN_ID:
                break
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.05)
    try:
        yield node
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def anvil(node_anvil: Anvil) -> Iterator[Anvil]:
    snap = node_anvil.rpc("evm_snapshot")
    try:
        yield node_anvil
    finally:
        node_anvil.rpc("evm_revert", snap)


@pytest.fixture
def chain_studio(studio: Any, anvil: Anvil) -> Any:
    """The test's Studio on the anvil (network `custom`), contracts deployed by the pipeline."""
    from studio.chain import contracts
    from studio.chain.client import ChainClient

    client = ChainClient.for_url(studio, anvil.url, anvil.chain_id)
    contracts.ensure_deployed(client, allow_deploy=True)
    studio.__dict__["chain"] = client
    return studio
