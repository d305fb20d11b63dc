"""Helpers for the chain-runtime tests (wallet, keyring, devnet, tx): a cheap scrypt work factor,
a Studio wired to the session anvil from conftest.py, and a password file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

PASSWORD = "correct horse battery staple"
FAST_SCRYPT_N = 2**10  # the file records its own n; production keeps 2**18


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.chain import keystore

    monkeypatch.setattr(keystore, "SCRYPT_N", FAST_SCRYPT_N)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    p = tmp_path / "pw.txt"
    p.write_text(PASSWORD + "\n")
    p.chmod(0o600)  # else: a visible warning
    return p


def studio_on(anvil: Any, studio: Any) -> Any:
    """Point `studio.chain` at the test anvil (a 'custom' network with the anvil's chain id)."""
    from studio.chain.client import ChainClient

    client = ChainClient.for_url(studio, anvil.url, anvil.chain_id)
    studio.__dict__["chain"] = client
    return client


def use_anvil_for_cli(anvil: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI commands run with --network custom against the test anvil."""
    monkeypatch.setenv("STUDIO_NETWORK", "custom")
    monkeypatch.setenv("STUDIO_RPC_URL", anvil.url)
    monkeypatch.setenv("STUDIO_CHAIN_ID", str(anvil.chain_id))


def fund(anvil: Any, address: str, wei: int) -> None:
    h = anvil.w3.eth.send_transaction({"from": anvil.accounts[0], "to": address, "value": wei})
    anvil.w3.eth.wait_for_transaction_receipt(h)


class Crash(BaseException):
    """Stands for the process dying (not an Exception: nothing may catch it)."""


NOPE_ABI = [{"type": "error", "name": "Nope", "inputs": [{"name": "x", "type": "uint256"}]}]


def reverter_initcode(arg: int = 42) -> str:
    """Hand-assembled contract whose every call reverts with the custom error Nope(uint256 arg)."""
    from eth_utils import function_signature_to_4byte_selector

    sel = bytes(function_signature_to_4byte_selector("Nope(uint256)")).hex()
    runtime = f"63{sel}60e01b600052" + f"60{arg:02x}600452" + "6024" + "6000" + "fd"
    size = len(runtime) // 2
    init = f"60{size:02x}80600b600039" + "6000f3"
    assert len(init) // 2 == 0x0B
    return "0x" + init + runtime
