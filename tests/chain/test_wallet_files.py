"""Every way a keystore reaches the disk leaves it 0600 in a 0700 folder (whatever the umask), and
the configured unlock timeout is the one an unlocked account actually locks after."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from eth_account import Account
from runtime_kit import FAST_SCRYPT_N, PASSWORD, fast_scrypt, password_file  # noqa: F401

from studio.chain import keystore


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)  # what most desktops run with: files 0644 unless we say otherwise
    yield
    os.umask(old)


def test_every_keystore_write_is_0600(
    studio,
    cli,
    tmp_path: Path,
    password_file: Path,  # noqa: F811
    loose_umask: None,
) -> None:
    w = studio.wallet
    folder = Path(studio.paths.home)
    written: dict[str, str] = {}
    written["create"], _ = w.create(PASSWORD)
    written["create --mnemonic"], _ = w.create(PASSWORD, mnemonic=True)
    written["import key"] = w.import_private_key(bytes(Account.create().key), PASSWORD)
    Account.enable_unaudited_hdwallet_features()
    _, phrase = Account.create_with_mnemonic()
    written["import mnemonic"] = w.import_mnemonic(phrase, PASSWORD)
    # Imported keystores: a weak one is re-encrypted, one as strong as ours is copied as is.
    weak, strong = Account.create(), Account.create()
    for acct, kdf, n in ((weak, "pbkdf2", 1000), (strong, "scrypt", FAST_SCRYPT_N)):
        src = tmp_path / f"{kdf}.json"
        src.write_text(json.dumps(Account.encrypt(acct.key, PASSWORD, kdf=kdf, iterations=n)))
        src.chmod(0o644)  # the source's mode must not leak into the copy
        written[f"import keystore ({kdf})"] = w.import_keystore(src, PASSWORD)
    # Through the CLI too (its own Studio, its own code path to the file).
    kf = tmp_path / "key.txt"
    kf.write_text(bytes(Account.create().key).hex())
    rc, out, err = cli(
        "wallet", "import", "--private-key-file", str(kf), "--password-file", str(password_file),
        "--json",
    )  # fmt: skip
    assert rc == 0, err
    written["cli import"] = json.loads(out)["address"]
    ks_dir = folder / "keystores"
    assert _mode(ks_dir) == 0o700
    for how, address in written.items():
        path = keystore.keystore_path(ks_dir, address)
        assert _mode(path) == 0o600, how
        assert json.loads(path.read_text())["crypto"]["kdf"] == "scrypt", how
    dest = tmp_path / "backup.json"
    rc, _, err = cli("wallet", "export", written["create"], "--out", str(dest))
    assert rc == 0, err
    assert _mode(dest) == 0o600
    assert not [p for p in ks_dir.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("configured, locks_after", [(5, 5), (0, None)])  # 0: refused (issue 9)
def test_unlock_timeout_comes_from_the_config(
    studio_home: Path, monkeypatch: pytest.MonkeyPatch, configured: int, locks_after: int | None
) -> None:
    import studio.chain.wallet as wallet_mod
    from studio.app import Studio

    studio_home.mkdir(parents=True, exist_ok=True)
    (studio_home / "config.json").write_text(json.dumps({"unlock_timeout_s": configured}))
    now = [1000.0]
    monkeypatch.setattr(wallet_mod, "_boot_clock", lambda: now[0])  # counts suspend too
    st = Studio(studio_home)
    try:
        address, _ = st.wallet.create(PASSWORD)
        if locks_after is None:  # "never lock" is no longer a setting: 1 s to 1 day
            from studio.core.errors import ConfigError

            with pytest.raises(ConfigError, match="between 1 second and 1 day"):
                st.wallet.unlock(address, password=PASSWORD)
            return
        acct = st.wallet.unlock(address, password=PASSWORD)
        assert acct.timeout_s == locks_after
        assert st.wallet.unlock(address) is acct  # within the timeout: no second decryption
        if locks_after is None:
            now[0] += 10**7
            assert not acct.locked
            return
        now[0] += locks_after - 0.5
        acct.sign_message(b"still open")  # use resets the idle timer
        now[0] += locks_after - 0.5
        assert not acct.locked
        now[0] += 1.0
        assert acct.locked
        again = st.wallet.unlock(address, password=PASSWORD)
        assert again is not acct and not again.locked
    finally:
        st.close()
