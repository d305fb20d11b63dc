"""Losing money through the transaction pipeline (issue 9), each reproduced on a real anvil:
double payment on a re-run, a signed send leaking into an unrelated command, and a journal that
says "already sent" for a transaction the chain lost in a rollback."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from runtime_kit import PASSWORD, Crash, fast_scrypt, fund, studio_on  # noqa: F401

from studio.chain.tx import TxPipeline

OPEN = 10**18


def test_rerun_of_a_killed_send_pays_once_without_a_key(
    anvil, cli, tmp_path: Path, studio_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: `wallet send` without --key, SIGKILLed at seeded random points and re-run each
    time, paid more than once (27 OPEN for 20 intended over 20 runs). With the intent key each
    re-run is the same payment; --again pays again on purpose. Also with --key."""
    from runtime_kit import use_anvil_for_cli

    use_anvil_for_cli(anvil, monkeypatch)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    os.chmod(pw, 0o600)
    acct = Account.create()
    kf = tmp_path / "key"
    kf.write_text(bytes(acct.key).hex())
    rc, _, err = cli("wallet", "import", "--private-key-file", str(kf), "--password-file", str(pw))
    assert rc == 0, err
    fund(anvil, acct.address, 20 * OPEN)
    env = {**os.environ, "STUDIO_HOME": str(studio_home), "PYTHONPATH": os.getcwd()}
    rng = random.Random(9)
    for extra, to in (
        ([], Account.create().address),
        (["--key", "rent"], Account.create().address),
    ):
        argv = [
            sys.executable,
            "-m",
            "studio",
            "wallet",
            "send",
            to,
            "1",
            "--password-file",
            str(pw),
        ]
        argv += extra
        for _ in range(6):  # kill -9 at a seeded random moment, then the user runs it again
            p = subprocess.Popen(
                argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(rng.uniform(0.2, 4.0))
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
            p.wait()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert anvil.balance(to) == OPEN, extra  # exactly what was intended
    again = subprocess.run(
        [*argv[:-2], "--again"], env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert anvil.balance(to) == 2 * OPEN  # --again: a second payment, on purpose


def test_signed_but_unsent_send_is_listed_abandoned_and_never_leaks(
    anvil, studio, sender, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: a send killed right after its journal write was sent silently by the next,
    unrelated command. Now it is listed as pending, can be abandoned (then it is never sent),
    and when it is sent by a later command that command reports it."""
    client = studio_on(anvil, studio)
    first, second, third = (Account.create().address for _ in range(3))

    def die(self: TxPipeline, raw: str) -> None:
        raise Crash

    with monkeypatch.context() as m, pytest.raises(Crash):
        m.setattr(TxPipeline, "_broadcast", die)
        client.tx.send(sender, to=first, value=5, purpose="pay first")
    (row,) = client.tx.unsent(sender.address)
    assert row["purpose"] == "pay first"
    from runtime_kit import use_anvil_for_cli

    use_anvil_for_cli(anvil, monkeypatch)
    import json

    rc, out, err = cli("wallet", "pending", "--json")
    assert rc == 0 and [r["tx_hash"] for r in json.loads(out)] == [row["tx_hash"]], err
    rc, out, err = cli("wallet", "pending", "--abandon", row["tx_hash"])
    assert rc == 0 and "never be sent" in out, err
    assert client.tx.unsent() == []
    rc, out, err = cli("wallet", "pending", "--abandon", row["tx_hash"])
    assert rc == 1 and "abandoned" in err  # only a signed-but-unsent row can be abandoned
    client.tx.send(sender, to=second, value=7, purpose="pay second")
    assert anvil.balance(first) == 0 and anvil.balance(second) == 7

    # Not abandoned: the next command sends it and says so.
    with monkeypatch.context() as m, pytest.raises(Crash):
        m.setattr(TxPipeline, "_broadcast", die)
        client.tx.send(sender, to=first, value=5, purpose="pay first, take 2")
    seen: list = []
    studio.events.subscribe(seen.append)
    client.tx.send(sender, to=third, value=9, purpose="pay third")
    assert any("pay first, take 2" in ev.message and "sent again" in ev.message for ev in seen)
    assert anvil.balance(first) == 5 and anvil.balance(third) == 9


def test_keyed_resend_after_a_rollback_rebroadcasts_instead_of_claiming_sent(
    anvil, studio, sender
) -> None:
    """Attack: the chain lost a mined transaction (devnet killed inside its dump interval, a
    rollback), and a keyed re-send said "Already sent" although nothing was paid."""
    client = studio_on(anvil, studio)
    to = Account.create().address
    snap = anvil.rpc("evm_snapshot")
    first = client.tx.send(sender, to=to, value=123, purpose="pay", key="invoice-7")
    anvil.rpc("evm_revert", snap)  # the chain forgets it; the journal still says mined
    assert anvil.balance(to) == 0
    again = studio_on(anvil, studio).tx.send(
        sender, to=to, value=123, purpose="pay", key="invoice-7"
    )
    assert again.hash == first.hash  # the journaled bytes, sent again: never a second payment
    assert anvil.balance(to) == 123
    third = studio_on(anvil, studio).tx.send(
        sender, to=to, value=123, purpose="pay", key="invoice-7"
    )
    assert third.reused and anvil.balance(to) == 123


def test_devnet_killed_right_after_a_transaction_keeps_it(
    studio_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: anvil killed (kill -9, power loss) inside its state-dump interval lost a
    transaction the journal called mined. The devnet now writes its state after each one."""
    from studio.app import Studio
    from studio.chain.client import ChainClient

    with Studio(studio_home) as s:
        client = ChainClient.for_studio(s)
        devnet = client.devnet
        assert devnet is not None
        try:
            devnet.up()
            someone = Account.create().address
            client.faucet(someone, 3 * OPEN)
            pid = int(devnet.status()["pid"])
            os.kill(pid, signal.SIGKILL)  # no clean exit, no periodic dump
            deadline = time.monotonic() + 10
            while devnet.status().get("running") and time.monotonic() < deadline:
                time.sleep(0.05)
            devnet.up()
            assert ChainClient.for_studio(s).balance(someone) == 3 * OPEN
        finally:
            devnet.down()
