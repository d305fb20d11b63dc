"""The transaction pipeline against a real anvil (the session node from conftest.py, reverted after
each test): idempotency keys, crash recovery from the journal, chain-id refusal, RPC down, decoded
custom errors, speed-up, a nonce manager shared by concurrent senders."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from eth_account import Account
from runtime_kit import NOPE_ABI, Crash, fast_scrypt, fund, reverter_initcode, studio_on  # noqa: F401

from studio.app import Studio
from studio.chain.client import ChainClient
from studio.chain.tx import TxPipeline, TxReverted
from studio.chain.wallet import UnlockedAccount
from studio.core.errors import ChainError, InvalidInput

OPEN = 10**18


def rows(studio: Studio) -> list[dict]:
    return studio.store.query("SELECT * FROM chain_tx ORDER BY id")


def test_send_records_and_key_is_idempotent(anvil, studio, sender) -> None:
    client = studio_on(anvil, studio)
    to = Account.create().address
    res = client.tx.send(sender, to=to, value=12345, purpose="pay", key="pay-1")
    assert (
        res.ok
        and res.block
        and res.gas_used == 21000
        and res.receipt["status"] == 1
        and not res.reused
    )
    again = client.tx.send(sender, to=to, value=12345, purpose="pay", key="pay-1")
    assert again.reused and again.hash == res.hash
    assert client.balance(to) == 12345
    (row,) = rows(studio)
    assert row["status"] == "mined" and row["nonce"] == 0 and row["idem_key"] == "pay-1"
    assert row["raw_tx"].startswith("0x02")  # EIP-1559 (type 2)
    assert int(row["max_fee_per_gas"]) >= int(row["max_priority_fee_per_gas"]) > 0
    res2 = client.tx.send(sender, to=to, value=1, purpose="pay again")
    assert res2.nonce == 1


def test_crash_after_journal_before_broadcast_resends_same_tx(
    anvil, studio_home: Path, sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    to = Account.create().address
    s1 = Studio(studio_home)
    c1 = studio_on(anvil, s1)

    def die(self: TxPipeline, raw: str) -> None:
        raise Crash()

    monkeypatch.setattr(TxPipeline, "_broadcast", die)
    with pytest.raises(Crash):
        c1.tx.send(sender, to=to, value=7 * OPEN, purpose="pay", key="k")
    (row,) = rows(s1)
    assert row["status"] == "signed"
    s1.close()
    monkeypatch.undo()

    s2 = Studio(studio_home)  # "the next run"
    c2 = studio_on(anvil, s2)
    res = c2.tx.send(sender, to=to, value=7 * OPEN, purpose="pay", key="k")
    assert res.hash == row["tx_hash"] and res.nonce == row["nonce"]
    assert c2.balance(to) == 7 * OPEN
    assert [r["status"] for r in rows(s2)] == ["mined"]
    s2.close()


def test_crash_after_broadcast_before_bookkeeping_pays_once(
    anvil, studio_home: Path, sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    to = Account.create().address
    s1 = Studio(studio_home)
    c1 = studio_on(anvil, s1)
    real = TxPipeline._broadcast

    def send_then_die(self: TxPipeline, raw: str) -> None:
        real(self, raw)
        raise Crash()

    monkeypatch.setattr(TxPipeline, "_broadcast", send_then_die)
    with pytest.raises(Crash):
        c1.tx.send(sender, to=to, value=2 * OPEN, purpose="pay", key="k")
    assert rows(s1)[0]["status"] == "signed"
    monkeypatch.undo()

    c2 = studio_on(anvil, Studio(studio_home))
    res = c2.tx.send(sender, to=to, value=2 * OPEN, purpose="pay", key="k")
    assert res.reused  # the journal settled it from the receipt: nothing sent again
    assert c2.balance(to) == 2 * OPEN
    # Without a key the next, different transaction still gets the next nonce.
    other = c2.tx.send(sender, to=to, value=1, purpose="pay 2")
    assert other.nonce == res.nonce + 1
    assert c2.balance(to) == 2 * OPEN + 1


def test_unkeyed_signed_row_is_sent_before_the_next_tx(
    anvil, studio, sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = studio_on(anvil, studio)
    to = Account.create().address
    monkeypatch.setattr(TxPipeline, "_broadcast", lambda self, raw: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        client.tx.send(sender, to=to, value=5, purpose="first")
    monkeypatch.undo()
    client2 = studio_on(anvil, studio)
    res = client2.tx.send(sender, to=to, value=6, purpose="second")
    assert res.nonce == 1
    assert [r["status"] for r in rows(studio)] == ["mined", "mined"]
    assert client2.balance(to) == 11


def test_chain_id_mismatch_is_refused(anvil, studio, sender) -> None:
    client = ChainClient.for_url(studio, anvil.url, 1612)  # the profile says mainnet
    with pytest.raises(ChainError, match="refusing to sign"):
        client.tx.send(sender, to=sender.address, value=1, purpose="pay")
    assert rows(studio) == []


def test_rpc_down_is_a_chain_error_after_bounded_retries(
    studio, sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    from web3._utils.http_session_manager import HTTPSessionManager

    import studio.chain.client as client_mod

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    calls = []
    real = HTTPSessionManager.make_post_request

    def counting(self, *a, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(self, *a, **kw)

    monkeypatch.setattr(HTTPSessionManager, "make_post_request", counting)
    monkeypatch.setattr(client_mod, "RPC_BACKOFF_S", 0.01)
    client = ChainClient.for_url(studio, f"http://127.0.0.1:{port}", 16120)
    with pytest.raises(ChainError, match=f"after {client_mod.RPC_RETRIES} attempts") as ei:
        client.tx.send(sender, to=sender.address, value=1, purpose="pay")
    assert "\n" not in str(ei.value)
    assert len(calls) == client_mod.RPC_RETRIES
    assert rows(studio) == []


def test_custom_errors_are_decoded(anvil, studio, sender) -> None:
    client = studio_on(anvil, studio)
    dep = client.tx.deploy(
        sender, NOPE_ABI, reverter_initcode(42), purpose="deploy reverter", key="dep"
    )
    assert (
        dep.contract_address
        and client.tx.deploy(
            sender, NOPE_ABI, reverter_initcode(42), purpose="deploy reverter", key="dep"
        ).reused
    )
    # refused at estimation: decoded, nothing signed or journaled
    with pytest.raises(ChainError, match=r"Nope\(x=42\)"):
        client.tx.send(sender, to=dep.contract_address, purpose="poke")
    assert len(rows(studio)) == 1
    # mined and reverted (gas given, so no estimate): decoded by replaying it
    with pytest.raises(TxReverted, match=r"Nope\(x=42\)") as ei:
        client.tx.send(sender, to=dep.contract_address, purpose="poke", gas=60_000)
    assert ei.value.result.status == 0 and rows(studio)[-1]["status"] == "failed"
    # transact() registers the contract's errors itself; unknown errors show their selector
    abi = [
        *NOPE_ABI,
        {
            "type": "function",
            "name": "poke",
            "inputs": [],
            "outputs": [],
            "stateMutability": "nonpayable",
        },
    ]
    fresh = ChainClient.for_url(studio, anvil.url, anvil.chain_id)
    with pytest.raises(ChainError, match="custom error 0x"):
        fresh.tx.send(sender, to=dep.contract_address, purpose="poke")
    contract = fresh.w3.eth.contract(address=dep.contract_address, abi=abi)
    with pytest.raises(ChainError, match=r"poke: refused by the chain: Nope\(x=42\)"):
        fresh.tx.transact(sender, contract.functions.poke(), purpose="poke")


def test_insufficient_funds_refused_before_signing(anvil, studio) -> None:
    client = studio_on(anvil, studio)
    poor = UnlockedAccount(bytes(Account.create().key), timeout_s=None)
    with pytest.raises(ChainError, match="too little OPEN"):
        client.tx.send(poor, to=poor.address, value=1, purpose="pay")
    assert rows(studio) == []


def test_speed_up_replaces_a_stuck_transaction(anvil, studio, sender) -> None:
    client = studio_on(anvil, studio)
    to = Account.create().address
    anvil.rpc("evm_setAutomine", False)
    try:
        with pytest.raises(ChainError, match="not mined"):
            client.tx.send(sender, to=to, value=OPEN, purpose="pay", key="slow", timeout=0.2)
        (stuck,) = rows(studio)
        with pytest.raises(ChainError, match="not mined"):
            client.tx.speed_up(stuck["tx_hash"], account=sender, timeout=0.2)
        anvil.rpc("evm_mine")
    finally:
        anvil.rpc("evm_setAutomine", True)
    old, new = rows(studio)
    assert new["replaces"] == old["id"] and new["nonce"] == old["nonce"]
    assert int(new["max_priority_fee_per_gas"]) > int(old["max_priority_fee_per_gas"])
    res = client.tx.wait(old["tx_hash"], timeout=5)  # waiting on either hash finds the mined one
    assert res.hash == new["tx_hash"]
    assert [r["status"] for r in rows(studio)] == ["replaced", "mined"]
    assert client.balance(to) == OPEN
    # the key now resolves to the replacement
    assert (
        client.tx.send(sender, to=to, value=OPEN, purpose="pay", key="slow").hash == new["tx_hash"]
    )


def test_nonces_are_safe_across_concurrent_senders(anvil, studio_home: Path, sender) -> None:
    to = Account.create().address
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        s = Studio(studio_home)  # its own database connection and file locks, like another process
        try:
            client = studio_on(anvil, s)
            for i in range(3):
                client.tx.send(sender, to=to, value=1, purpose=f"worker {n} #{i}")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            s.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    s = Studio(studio_home)
    nonces = sorted(r["nonce"] for r in rows(s))
    assert nonces == list(range(9)) and {r["status"] for r in rows(s)} == {"mined"}
    assert studio_on(anvil, s).balance(to) == 9
    s.close()


SENDER_SCRIPT = """
import sys
from studio.app import Studio
from studio.chain.client import ChainClient
from studio.chain.wallet import UnlockedAccount
url, key, to, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with Studio() as s:
    client = ChainClient.for_url(s, url, 16120)
    acct = UnlockedAccount(bytes.fromhex(key), timeout_s=None)
    for i in range(n):
        client.tx.send(acct, to=to, value=1, purpose=f"process {n} #{i}")
"""


def test_nonces_are_safe_across_processes(anvil, studio_home: Path, sender, tmp_path: Path) -> None:
    import subprocess
    import sys

    key = sender._signer().key.hex().removeprefix("0x")
    to = Account.create().address
    script = tmp_path / "sender.py"
    script.write_text(SENDER_SCRIPT)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), anvil.url, key, to, "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    s = Studio(studio_home)
    assert sorted(r["nonce"] for r in rows(s)) == list(range(6))
    assert {r["status"] for r in rows(s)} == {"mined"}
    assert studio_on(anvil, s).balance(to) == 6
    s.close()


def test_a_reset_chain_is_noticed_by_its_genesis(anvil, studio, sender) -> None:
    from studio.chain.networks import Network

    client = studio_on(anvil, studio)
    to = Account.create().address
    client.tx.send(sender, to=to, value=1, purpose="pay", key="once")
    # Pretend the journal was written on another chain with this id (a reset behind our back).
    # On `custom` that is an error (it used to wipe the journal silently): only the user knows.
    studio.store.execute("UPDATE chain_identity SET genesis_hash = '0xdead'")
    with pytest.raises(ChainError, match="another genesis") as ei:
        studio_on(anvil, studio).tx.send(sender, to=to, value=1, purpose="pay", key="once")
    assert "forget-chain" in (ei.value.hint or "")
    assert len(rows(studio)) == 1  # nothing forgotten
    from studio.commands import invoke

    with pytest.raises(InvalidInput, match="forgets every transaction"):
        invoke("wallet forget-chain", studio, chain_id=anvil.chain_id)
    assert len(invoke("wallet forget-chain", studio, chain_id=anvil.chain_id, yes=True)) == 1
    assert rows(studio) == []
    studio_on(anvil, studio).tx.send(sender, to=to, value=1, purpose="pay", key="once")
    studio.store.execute("UPDATE chain_identity SET genesis_hash = '0xdead'")
    # The embedded devnet after `devnet reset` is a new chain: forgotten, with a warning.
    devnet = ChainClient(
        Network("devnet", anvil.chain_id, anvil.url, embedded=True),
        paths=studio.paths,
        store=studio.store,
        events=studio.events,
    )
    devnet.__dict__["w3"] = anvil.w3  # the test's anvil stands in for the embedded one
    devnet.__dict__["devnet"] = None  # (no state file to write)
    seen = []
    studio.events.subscribe(seen.append)
    res = devnet.tx.send(sender, to=to, value=1, purpose="pay", key="once")
    assert not res.reused  # the stale journal was forgotten, so the key is new on this chain
    assert any(ev.kind == "warning" and "reset" in ev.message for ev in seen)
    assert [r["tx_hash"] for r in rows(studio)] == [res.hash]

    # On a public network profile the same mismatch is refused outright.
    studio.store.execute("UPDATE chain_identity SET genesis_hash = '0xdead'")
    public = ChainClient(
        Network("openledger", anvil.chain_id, anvil.url),
        paths=studio.paths,
        store=studio.store,
        events=studio.events,
    )
    with pytest.raises(ChainError, match="another genesis"):
        public.tx.send(sender, to=to, value=1, purpose="pay")


def test_cli_send_speed_up_history(
    anvil, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from runtime_kit import PASSWORD, use_anvil_for_cli

    use_anvil_for_cli(anvil, monkeypatch)
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)  # else: a visible warning
    acct = Account.create()
    kf = tmp_path / "key"
    kf.write_text(bytes(acct.key).hex())
    assert (
        cli("wallet", "import", "--private-key-file", str(kf), "--password-file", str(pw))[0] == 0
    )
    fund(anvil, acct.address, 5 * OPEN)
    to = Account.create().address
    anvil.rpc("evm_setAutomine", False)
    try:
        rc, out, err = cli(
            "wallet", "send", to, "1", "--key", "k", "--timeout", "0.2", "--password-file", str(pw)
        )
        assert rc == 1 and "not mined" in err and err.count("\n") == 1
        rc, out, _ = cli("wallet", "history", "--json")
        (row,) = json.loads(out)
        assert row["status"] == "sent"
        rc, out, err = cli(
            "wallet", "speed-up", row["tx_hash"], "--timeout", "0.2", "--password-file", str(pw)
        )
        assert rc == 1 and "not mined" in err
        anvil.rpc("evm_mine")
    finally:
        anvil.rpc("evm_setAutomine", True)
    rc, out, err = cli(
        "wallet", "send", to, "1", "--key", "k", "--password-file", str(pw), "--json"
    )
    assert rc == 0, err
    assert json.loads(out)["reused"] is True
    rc, out, _ = cli("wallet", "history", "--json")
    assert [r["status"] for r in json.loads(out)] == ["mined", "replaced"]
    rc, out, _ = cli("wallet", "balance", to, "--json")
    assert json.loads(out)["balance_wei"] == str(OPEN)
    rc, out, err = cli("wallet", "speed-up", "0x" + "ab" * 32, "--password-file", str(pw))
    assert rc == 1 and "not in this studio's journal" in err
