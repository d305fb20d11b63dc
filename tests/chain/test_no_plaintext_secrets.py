"""After a full wallet flow (create with mnemonic, import a key, unlock, send, keyring opt-in), no
file under the data home holds a private key (hex with or without 0x, or raw bytes), the mnemonic,
or the password."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from runtime_kit import PASSWORD, fast_scrypt, fund, password_file, use_anvil_for_cli  # noqa: F401


def test_no_secret_in_the_data_home(
    anvil,
    cli,
    studio_home: Path,
    tmp_path: Path,
    password_file: Path,  # noqa: F811
    memory_keyring,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_anvil_for_cli(anvil, monkeypatch)
    rc, out, err = cli(
        "wallet", "create", "--mnemonic", "--password-file", str(password_file), "--json"
    )
    assert rc == 0, err
    created = json.loads(out)
    phrase = created["mnemonic"]
    Account.enable_unaudited_hdwallet_features()
    key1 = bytes(Account.from_mnemonic(phrase).key)
    assert Account.from_key(key1).address == created["address"]

    acct2 = Account.create()
    key2 = bytes(acct2.key)
    kf = tmp_path / "imported-key.txt"
    kf.write_text("0x" + key2.hex())
    rc, out, err = cli(
        "wallet", "import", "--private-key-file", str(kf), "--password-file", str(password_file)
    )
    assert rc == 0, err

    for addr in (created["address"], acct2.address):
        fund(anvil, addr, 10**18)
        rc, out, err = cli(
            "wallet",
            "send",
            anvil.accounts[1],
            "0.1",
            "--from",
            addr,
            "--password-file",
            str(password_file),
            "--key",
            f"pay-{addr}",
            "--json",
        )
        assert rc == 0, err
        assert json.loads(out)["status"] == 1
    rc, out, err = cli(
        "wallet", "keyring", "remember", acct2.address, "--password-file", str(password_file)
    )
    assert rc == 0, err
    # The raw key goes where the user says (here a 0600 file outside the home), never into it.
    from studio.app import Studio
    from studio.commands import invoke
    from studio.core.prompt import FixedPrompter

    shown = studio_home.parent / "exported-key.txt"
    with Studio(studio_home, prompter=FixedPrompter(PASSWORD, yes=True)) as s:
        invoke("wallet export", s, address=acct2.address, private_key=True, out=str(shown))
    assert key2.hex() in shown.read_text()

    needles = [PASSWORD.encode(), phrase.encode(), " ".join(phrase.split()[:6]).encode()]
    for key in (key1, key2):
        needles += [
            key,
            key.hex().encode(),
            ("0x" + key.hex()).encode(),
            key.hex().upper().encode(),
        ]
    files = [p for p in studio_home.rglob("*") if p.is_file()]
    assert any(p.name == "studio.sqlite" for p in files) and any(
        p.parent.name == "keystores" for p in files
    )
    for p in files:
        data = p.read_bytes()
        low = data.lower()
        for needle in needles:
            assert needle not in data and needle.lower() not in low, f"secret found in {p}"
