"""OS keyring: opt-in only, stores only the keystore password, unusable backends are detected."""

from __future__ import annotations

import os
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from runtime_kit import PASSWORD, fast_scrypt, password_file  # noqa: F401

from studio.chain import keyring_store
from studio.core.errors import WalletError


def _backend(module: str, name: str = "Keyring", **attrs: object) -> KeyringBackend:
    cls = type(
        name,
        (KeyringBackend,),
        {
            "priority": 1,
            "get_password": lambda *a: None,
            "set_password": lambda *a: None,
            "delete_password": lambda *a: None,
            **attrs,
        },
    )
    cls.__module__ = module
    return cls()


@pytest.mark.parametrize(
    "module,name",
    [
        ("keyring.backends.fail", "Keyring"),
        ("keyring.backends.null", "Keyring"),
        ("keyrings.alt.file", "PlaintextKeyring"),
        ("keyrings.alt.file", "EncryptedKeyring"),
        ("somewhere.else", "PlaintextKeyring"),
    ],
)
def test_unusable_backends_are_detected(module: str, name: str) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(_backend(module, name))
    try:
        ok, detail = keyring_store.keyring_status()
        assert not ok and name in detail
    finally:
        keyring.set_keyring(previous)


def test_chainer_with_only_unusable_backends_is_unusable() -> None:
    previous = keyring.get_keyring()
    fail = _backend("keyring.backends.fail")
    chainer = _backend("keyring.backends.chainer", "ChainerBackend", backends=[fail])
    keyring.set_keyring(chainer)
    try:
        assert keyring_store.keyring_status()[0] is False
        chainer.backends = [fail, _backend("keyring.backends.SecretService")]  # type: ignore[attr-defined]
        assert keyring_store.keyring_status()[0] is True
    finally:
        keyring.set_keyring(previous)


def test_memory_backend_is_usable(memory_keyring) -> None:
    assert keyring_store.keyring_status() == (
        True,
        f"{type(memory_keyring).__module__}.MemoryKeyring",
    )


def test_opt_in_stores_only_the_password(
    studio, memory_keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STUDIO_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", open(os.devnull))
    w = studio.wallet
    address, _ = w.create(PASSWORD)
    w.unlock(address, password=PASSWORD)
    assert memory_keyring.items == {}  # not without opting in
    w.lock_all()
    with pytest.raises(WalletError, match="No keystore password"):
        w.unlock(address)

    w.unlock(address, password=PASSWORD, remember_in_keyring=True)
    assert list(memory_keyring.items.values()) == [PASSWORD]
    assert list(memory_keyring.items) == [(keyring_store.SERVICE, address)]
    key_hex = w.export(address, private_key=True, password=PASSWORD)[2:]
    assert all(key_hex not in v.lower() for v in memory_keyring.items.values())
    assert w.get(address).remembered

    w.lock_all()
    assert w.unlock(address).address == address  # the keyring answers now

    # a stale password in the keyring gives a clear message
    memory_keyring.items[(keyring_store.SERVICE, address)] = "stale password!"
    w.lock_all()
    with pytest.raises(WalletError, match="keyring no longer opens"):
        w.unlock(address)

    assert w.forget_password(address)
    assert memory_keyring.items == {} and not w.get(address).remembered


def test_opt_in_refused_without_usable_backend(studio) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(_backend("keyring.backends.fail"))
    try:
        address, _ = studio.wallet.create(PASSWORD)
        with pytest.raises(WalletError, match="Cannot remember the password"):
            studio.wallet.unlock(address, password=PASSWORD, remember_in_keyring=True)
        assert "keyring_accounts" not in studio.config.extra
    finally:
        keyring.set_keyring(previous)


def test_cli_keyring(cli, password_file: Path, memory_keyring) -> None:  # noqa: F811
    rc, out, err = cli(
        "wallet", "create", "--password-file", str(password_file), "--remember", "--json"
    )
    assert rc == 0, err
    assert list(memory_keyring.items.values()) == [PASSWORD]
    rc, out, _ = cli("wallet", "keyring", "status", "--json")
    assert rc == 0 and '"usable": true' in out
    rc, out, _ = cli("wallet", "keyring", "forget")
    assert rc == 0 and memory_keyring.items == {}
