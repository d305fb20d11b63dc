"""Wallet: keystore round trips, bad inputs leave the disk untouched, unlock/lock, signatures, CLI."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from runtime_kit import PASSWORD, fast_scrypt, password_file  # noqa: F401

from studio.chain import keystore
from studio.chain.wallet import UnlockedAccount, Wallet
from studio.core.errors import AlreadyExists, InvalidInput, WalletError


def snapshot(home: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted(home.rglob("*"))
        if p.is_file() and "logs" not in p.parts
    }


def test_production_work_factor_is_scrypt_2_18() -> None:
    import importlib

    fresh = importlib.reload(keystore)
    try:
        assert fresh.SCRYPT_N == 2**18
    finally:
        importlib.reload(keystore)


def test_create_unlock_sign_round_trip(studio) -> None:
    w = studio.wallet
    address, phrase = w.create(PASSWORD, label="main")
    assert phrase is None
    path = Path(w.get(address).path)
    doc = json.loads(path.read_text())
    assert doc["crypto"]["kdf"] == "scrypt" and doc["version"] == 3
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert w.active_address() == address == studio.config.active_account

    acct = w.unlock(password=PASSWORD)
    assert acct.address == address
    assert w.unlock() is acct  # decrypted once; no password needed while unlocked
    sig = acct.sign_message(b"hello")
    assert (
        Account.recover_message(encode_defunct(primitive=b"hello"), signature=sig.signature)
        == address
    )

    domain = {
        "name": "Studio",
        "version": "1",
        "chainId": 16120,
        "verifyingContract": "0x" + "11" * 20,
    }
    types = {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Bind": [{"name": "datanetId", "type": "uint256"}, {"name": "leaves", "type": "bytes32"}],
    }
    msg = {"datanetId": 7, "leaves": b"\x01" * 32}
    sig712 = acct.sign_typed_data(domain, types, msg)
    signable = encode_typed_data(
        domain, {k: v for k, v in types.items() if k != "EIP712Domain"}, msg
    )
    assert Account.recover_message(signable, signature=sig712.signature) == address


def test_mnemonic_create_then_import_gives_same_account(studio, tmp_path: Path) -> None:
    address, phrase = studio.wallet.create(PASSWORD, mnemonic=True)
    assert phrase and len(phrase.split()) == 12
    other = Wallet.for_studio(type(studio)(tmp_path / "other"))
    assert other.import_mnemonic(phrase, PASSWORD) == address
    # another path is another account
    assert other.import_mnemonic(phrase, PASSWORD, path="m/44'/60'/0'/0/1") != address
    with pytest.raises(AlreadyExists):
        other.import_mnemonic(phrase, PASSWORD)
    with pytest.raises(InvalidInput):
        other.import_mnemonic("not a real mnemonic at all", PASSWORD)


def test_import_private_key_and_export(studio) -> None:
    acct = Account.create()
    address = studio.wallet.import_private_key(acct.key.hex(), PASSWORD)
    assert address == acct.address
    exported = studio.wallet.export(address)
    assert json.loads(exported)["address"].lower() == address[2:].lower()
    assert (
        studio.wallet.export(address, private_key=True, password=PASSWORD)
        == "0x" + bytes(acct.key).hex()
    )
    with pytest.raises(InvalidInput):
        studio.wallet.import_private_key("0x1234", PASSWORD)


@pytest.mark.parametrize("kdf,n", [("scrypt", 2**10), ("scrypt", 2**4), ("pbkdf2", 2)])
def test_import_keystore_round_trip(studio, tmp_path: Path, kdf: str, n: int) -> None:
    acct = Account.create()
    src = tmp_path / "external.json"
    original = Account.encrypt(acct.key, PASSWORD, kdf=kdf, iterations=n)  # type: ignore[arg-type]
    src.write_text(json.dumps(original))
    address = studio.wallet.import_keystore(src, password=PASSWORD)
    assert address == acct.address
    stored = json.loads(Path(studio.wallet.get(address).path).read_text())
    # pbkdf2 and weaker scrypt imports are re-encrypted with our scrypt work factor
    assert stored["crypto"]["kdf"] == "scrypt"
    assert stored["crypto"]["kdfparams"]["n"] == max(n if kdf == "scrypt" else 0, keystore.SCRYPT_N)
    assert (stored["crypto"] == original["crypto"]) == (kdf == "scrypt" and n >= keystore.SCRYPT_N)
    assert studio.wallet.unlock(address, password=PASSWORD).address == address


def test_wrong_password_corrupt_and_mismatched_keystores_change_nothing(
    studio, studio_home: Path, tmp_path: Path
) -> None:
    w = studio.wallet
    address, _ = w.create(PASSWORD)
    before = snapshot(studio_home)

    with pytest.raises(WalletError, match="Wrong password"):
        w.unlock(address, password="not the password")

    acct = Account.create()
    good = Account.encrypt(acct.key, PASSWORD, kdf="scrypt", iterations=2**10)
    cases = {
        "wrong-password.json": json.dumps(good),
        "not-json.json": "{this is not json",
        "no-crypto.json": json.dumps({"version": 3, "address": good["address"]}),
        "bad-mac.json": json.dumps({**good, "crypto": {**good["crypto"], "mac": "00" * 32}}),
        "other-address.json": json.dumps({**good, "address": "ab" * 20}),
    }
    for name, text in cases.items():
        f = tmp_path / name
        f.write_text(text)
        pw = "wrong password!" if name == "wrong-password.json" else PASSWORD
        with pytest.raises(WalletError) as ei:
            w.import_keystore(f, password=pw)
        assert "\n" not in str(ei.value)
    assert snapshot(studio_home) == before

    # A keystore on disk whose address field was altered: refused with a clear message.
    path = Path(w.get(address).path)
    doc = json.loads(path.read_text())
    doc["address"] = acct.address[2:].lower()
    tampered = keystore.keystore_path(path.parent, acct.address)
    tampered.write_text(json.dumps(doc))
    with pytest.raises(WalletError, match="altered"):
        w.unlock(acct.address, password=PASSWORD)


def test_auto_lock_after_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import studio.chain.wallet as wallet_mod

    now = [1000.0]
    monkeypatch.setattr(wallet_mod, "_boot_clock", lambda: now[0])
    acct = UnlockedAccount(bytes(Account.create().key), timeout_s=60)
    acct.sign_message(b"x")
    now[0] += 59
    acct.sign_message(b"x")  # use resets the idle timer
    now[0] += 61
    assert acct.locked
    with pytest.raises(WalletError, match="locked"):
        acct.sign_transaction({})
    acct2 = UnlockedAccount(bytes(Account.create().key), timeout_s=None)
    acct2.lock()
    with pytest.raises(WalletError, match="locked"):
        acct2.sign_message(b"x")
    assert "locked" in repr(acct2) and acct2.address in repr(acct2)


def test_password_sources(studio, password_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    w = studio.wallet
    address, _ = w.create(PASSWORD)
    monkeypatch.delenv("STUDIO_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # not a TTY: never prompt
    with pytest.raises(WalletError, match="No keystore password"):
        w.unlock(address)
    seen = []
    studio.events.subscribe(lambda ev: seen.append(ev))
    assert w.unlock(address, password_file=str(password_file)).address == address
    w.lock_all()
    monkeypatch.setenv("STUDIO_PASSWORD", PASSWORD)
    assert w.unlock(address).address == address
    assert any(ev.kind == "warning" and "STUDIO_PASSWORD" in ev.message for ev in seen)
    with pytest.raises(WalletError, match="at least"):
        w.create("short")


def test_cli_wallet_commands(cli, password_file: Path, tmp_path: Path, studio_home: Path) -> None:  # noqa: F811
    rc, out, err = cli(
        "wallet",
        "create",
        "--mnemonic",
        "--label",
        "main",
        "--password-file",
        str(password_file),
        "--json",
    )
    assert rc == 0, err
    created = json.loads(out)
    assert len(created["mnemonic"].split()) == 12 and created["active"]
    key = Account.create()
    kf = tmp_path / "key.txt"
    kf.write_text(bytes(key.key).hex())
    rc, out, err = cli(
        "wallet", "import", "--private-key-file", str(kf), "--password-file", str(password_file)
    )
    assert rc == 0, err
    rc, out, _ = cli("wallet", "list", "--json")
    assert {a["address"] for a in json.loads(out)} == {created["address"], key.address}
    rc, out, _ = cli("wallet", "use", key.address)
    assert rc == 0
    rc, out, _ = cli("wallet", "show", "--json")
    assert json.loads(out)["address"] == key.address
    dest = tmp_path / "backup.json"
    rc, out, err = cli("wallet", "export", key.address, "--out", str(dest))
    assert rc == 0, err
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert json.loads(dest.read_text())["crypto"]["kdf"] == "scrypt"

    # user errors: exit 1, one line, no traceback
    bad_pw = tmp_path / "bad.txt"
    bad_pw.write_text("wrong password\n")
    bad_pw.chmod(0o600)  # else: a visible warning
    for argv in (
        ("wallet", "show", "0x" + "12" * 20),
        ("wallet", "show", "nonsense"),
        ("wallet", "import", "--private-key-file", str(kf), "--password-file", str(password_file)),
        ("wallet", "import"),
        ("wallet", "export", key.address, "--private-key", "--password-file", str(bad_pw)),
        ("wallet", "create", "--password-file", str(tmp_path / "missing.txt")),
        ("wallet", "import", "--keystore", str(kf), "--password-file", str(password_file)),
    ):
        rc, out, err = cli(*argv)
        assert rc == 1, (argv, out, err)
        assert err.startswith("error: ") and err.count("\n") == 1, (argv, err)


def test_damaged_keystore_in_the_wallet_is_reported(studio, studio_home: Path) -> None:
    w = studio.wallet
    address, _ = w.create(PASSWORD)
    other = Account.create().address
    (studio_home / "keystores" / f"{other}.json").write_text("{broken")
    seen = []
    studio.events.subscribe(seen.append)
    assert [i.address for i in w.list()] == [address]
    assert any("skipping" in ev.message for ev in seen)
    with pytest.raises(WalletError, match="damaged"):
        w.get(other)
