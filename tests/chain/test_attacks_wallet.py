"""Secrets and keystores (issue 9): each attack performed for real (a real anvil's
/proc/PID/environ, hostile keystore files, a real pseudo-terminal), then shown to fail."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from runtime_kit import PASSWORD, fast_scrypt  # noqa: F401

from studio.chain import keystore
from studio.core.errors import ConfigError, WalletError


def test_studio_password_never_reaches_anvil_or_job_processes(
    studio_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: $STUDIO_PASSWORD was readable in anvil's /proc/PID/environ long after the
    command that read it had exited (anvil outlives it), and in every job subprocess."""
    from studio.app import Studio
    from studio.core.jobs import child_environment

    monkeypatch.setenv("STUDIO_PASSWORD", PASSWORD)
    with Studio(studio_home) as s:
        devnet = s.chain.devnet
        try:
            st = devnet.up()  # started while the variable is still set
            environ = Path(f"/proc/{st['pid']}/environ").read_bytes().split(b"\0")
            assert not any(e.startswith(b"STUDIO_PASSWORD=") for e in environ)
            assert "STUDIO_PASSWORD" not in child_environment()
            address, _ = s.wallet.create(PASSWORD)
            s.wallet.lock_all()
            assert s.wallet.unlock(address).address == address  # the variable was used...
            assert "STUDIO_PASSWORD" not in os.environ  # ...and removed once read
            s.wallet.lock_all()
            assert s.wallet.unlock(address).address == address  # still known to this process
        finally:
            devnet.down()


def test_loose_password_file_is_a_visible_warning(studio, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o644)
    seen: list = []
    studio.events.subscribe(seen.append)
    studio.wallet.create(studio.wallet.new_password(password_file=str(pw)))
    assert any(ev.kind == "warning" and "chmod 600" in ev.message for ev in seen)


def test_private_key_export_needs_a_terminal_a_typed_confirmation_and_no_keyring(
    cli, studio, tmp_path: Path, studio_home: Path
) -> None:
    """Attack: `wallet export --private-key --json` (or into a pipe, a log) with the password
    taken silently from the keyring or the environment."""
    acct = Account.create()
    address = studio.wallet.import_private_key("0x" + bytes(acct.key).hex(), PASSWORD)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    for extra in ([], ["--json"]):
        rc, out, err = cli(
            "wallet", "export", address, "--private-key", "--password-file", str(pw), *extra
        )
        assert rc == 1 and bytes(acct.key).hex() not in out + err, extra
    # No password source but the terminal: the environment and the keyring are not asked.
    os.environ["STUDIO_PASSWORD"] = PASSWORD
    try:
        with pytest.raises(WalletError, match="No keystore password"):
            studio.wallet.export(address, private_key=True)
    finally:
        os.environ.pop("STUDIO_PASSWORD", None)
    # At a real terminal, with the typed confirmation: the key is shown.
    env = {**os.environ, "STUDIO_HOME": str(studio_home), "PYTHONPATH": os.getcwd()}
    for answer, shown in (("no\n", False), ("y\n", True)):
        master, slave = pty.openpty()
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "studio",
                "wallet",
                "export",
                address,
                "--private-key",
                "--password-file",
                str(pw),
            ],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            close_fds=True,
        )
        os.close(slave)
        os.write(master, answer.encode())
        text = b""
        deadline = time.monotonic() + 60
        while p.poll() is None and time.monotonic() < deadline:
            try:
                text += os.read(master, 4096)
            except OSError:
                break
        p.wait(timeout=60)
        try:
            text += os.read(master, 65536)
        except OSError:
            pass
        os.close(master)
        assert (bytes(acct.key).hex() in text.decode(errors="replace")) == shown, text
        assert (p.returncode == 0) == shown


def _external(kdf: str, n: int) -> dict:
    return dict(Account.encrypt(Account.create().key, PASSWORD, kdf=kdf, iterations=n))  # type: ignore[arg-type]


def test_hostile_kdf_cost_is_refused_before_any_work(studio, tmp_path: Path) -> None:
    """Attack: a keystore asking for scrypt n=2**22 (4 GiB) or 10**9 pbkdf2 rounds."""
    doc = _external("scrypt", 2**10)
    doc["crypto"]["kdfparams"]["n"] = 2**22
    with pytest.raises(WalletError, match="refusing"):
        keystore.decrypt(doc, PASSWORD)
    doc = _external("pbkdf2", 2)
    doc["crypto"]["kdfparams"]["c"] = 10**9
    f = tmp_path / "hostile.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(WalletError, match="refusing"):
        studio.wallet.import_keystore(f, password=PASSWORD)


def test_weak_keystore_is_reencrypted_on_first_unlock(studio, studio_home: Path) -> None:
    """A pbkdf2 / weak-scrypt keystore dropped into the wallet folder is upgraded on unlock."""
    w = studio.wallet
    for kdf, n in (("pbkdf2", 2), ("scrypt", 2**4)):
        doc = _external(kdf, n)
        path = keystore.keystore_path(studio_home / "keystores", doc["address"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))
        path.chmod(0o600)
        seen: list = []
        studio.events.subscribe(seen.append)
        w.unlock(path.stem, password=PASSWORD)
        new = json.loads(path.read_text())
        assert (
            new["crypto"]["kdf"] == "scrypt"
            and new["crypto"]["kdfparams"]["n"] == keystore.SCRYPT_N
        )
        assert any("re-encrypted" in ev.message for ev in seen)
        assert w.unlock(path.stem, password=PASSWORD).address.lower()[2:] == doc["address"].lower()


def test_damaged_symlinked_and_loose_keystores_are_reported(
    studio, studio_home: Path, tmp_path: Path
) -> None:
    w = studio.wallet
    address, _ = w.create(PASSWORD)
    path = Path(w.get(address).path)
    doc = json.loads(path.read_text())
    doc["crypto"]["ciphertext"] = "00" * (len(doc["crypto"]["ciphertext"]) // 2)
    path.write_text(json.dumps(doc))
    with pytest.raises(WalletError, match="(?i)wrong password or damaged file"):
        w.unlock(address, password=PASSWORD)
    other = Account.create()
    outside = tmp_path / "elsewhere.json"
    outside.write_text(
        json.dumps(dict(Account.encrypt(other.key, PASSWORD, kdf="scrypt", iterations=2**10)))
    )
    (studio_home / "keystores" / f"{other.address}.json").symlink_to(outside)
    seen: list = []
    studio.events.subscribe(seen.append)
    w.list()
    messages = " | ".join(ev.message for ev in seen)
    assert "symbolic link" in messages and "read by other users" in messages


def test_unlock_timeout_is_validated_and_counts_suspend(
    studio, monkeypatch: pytest.MonkeyPatch
) -> None:
    import studio.chain.wallet as wallet_mod

    w = studio.wallet
    address, _ = w.create(PASSWORD)
    for bad in (0, -5, 86_401, "soon"):
        studio.config.unlock_timeout_s = bad
        with pytest.raises(ConfigError, match="between 1 second and 1 day"):
            w.unlock(address, password=PASSWORD)
    studio.config.unlock_timeout_s = 60
    if not hasattr(time, "CLOCK_BOOTTIME"):
        pytest.skip("no CLOCK_BOOTTIME here")
    # A suspend: CLOCK_MONOTONIC stands still on Linux, CLOCK_BOOTTIME keeps counting.
    boot = [1_000.0]
    real = time.clock_gettime
    monkeypatch.setattr(
        wallet_mod.time,
        "clock_gettime",
        lambda clk: boot[0] if clk == time.CLOCK_BOOTTIME else real(clk),
    )
    frozen = time.monotonic()
    monkeypatch.setattr(wallet_mod.time, "monotonic", lambda: frozen)
    acct = w.unlock(address, password=PASSWORD)
    boot[0] += 3_600  # an hour asleep
    assert acct.locked


def test_closing_the_studio_locks_every_account(studio_home: Path) -> None:
    from studio.app import Studio

    s = Studio(studio_home)
    a, _ = s.wallet.create(PASSWORD)
    b, _ = s.wallet.create(PASSWORD)
    accounts = [s.wallet.unlock(x, password=PASSWORD) for x in (a, b)]
    s.close()
    assert all(acct.locked for acct in accounts)
