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


# -- found by the sampled mutation look (docs/mutants.md) -----------------------------------------


def test_intent_key_is_stable_and_ignores_only_spelling() -> None:
    from studio.chain.tx import intent_key

    a, b = (
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    )
    key = intent_key(a.lower(), b, 5, "0xABcd")
    # journaled keys outlive an upgrade: the same payment must hash to the same key forever
    assert (
        key
        == "intent:" + __import__("hashlib").sha256(f"{a}|{b}|5|0xabcd".encode()).hexdigest()[:32]
    )
    assert intent_key(a, b, 5, "0xabcd") == key  # address and data spelling do not matter
    assert len({key, intent_key(a, b, 6, "0xabcd"), intent_key(a, None, 5, "0xabcd")}) == 3


def test_a_reused_result_is_the_mined_one_and_a_key_names_one_transfer(
    anvil, studio, sender
) -> None:
    client = studio_on(anvil, studio)
    to = Account.create().address
    res = client.tx.send(sender, to=to, value=7, purpose="pay", key="once")
    again = client.tx.send(sender, to=to, value=7, purpose="pay", key="once")
    assert again.reused and (again.status, again.block, again.gas_used, again.nonce) == (
        1,
        res.block,
        21000,
        res.nonce,
    )
    client.tx.check_key_free("once", sender=sender.address, to=to, value=7)  # the same transfer
    client.tx.check_key_free("unused", sender=sender.address, to=to, value=8)
    with pytest.raises(InvalidInput, match="already used for another transaction") as e:
        client.tx.check_key_free("once", sender=sender.address, to=to, value=8)
    assert e.value.hint == "Use a new key for a new transfer."


def test_speed_up_with_cancel_sends_nothing_to_the_payee(anvil, studio, sender) -> None:
    client = studio_on(anvil, studio)
    to = Account.create().address
    anvil.rpc("evm_setAutomine", False)
    try:
        with pytest.raises(ChainError, match="not mined"):
            client.tx.send(sender, to=to, value=OPEN, purpose="pay", timeout=0.2)
        (stuck,) = rows(studio)
        with pytest.raises(ChainError, match="not mined"):
            client.tx.speed_up(stuck["tx_hash"], account=sender, cancel=True, timeout=0.2)
        anvil.rpc("evm_mine")
    finally:
        anvil.rpc("evm_setAutomine", True)
    old, new = rows(studio)
    assert (new["to_address"], int(new["value"]), new["purpose"]) == (
        sender.address,
        0,
        "cancel: pay",
    )
    assert client.tx.wait(old["tx_hash"], timeout=5).hash == new["tx_hash"]
    assert client.balance(to) == 0


def test_settle_sends_again_a_transaction_the_node_dropped(anvil, studio, sender) -> None:
    client = studio_on(anvil, studio)
    to = Account.create().address
    anvil.rpc("evm_setAutomine", False)
    try:
        with pytest.raises(ChainError, match="not mined"):
            client.tx.send(sender, to=to, value=3, purpose="pay", timeout=0.2)
        (row,) = rows(studio)
        client.tx.settle(sender.address)  # in the node's pool: nothing to do
        assert rows(studio)[0]["status"] == "sent"
        anvil.rpc("anvil_dropTransaction", row["tx_hash"])  # e.g. a node restarted meanwhile
        report = client.tx.settle(sender.address)
        assert [(r["hash"], r["action"]) for r in report] == [(row["tx_hash"], "rebroadcast")]
        anvil.rpc("evm_mine")
    finally:
        anvil.rpc("evm_setAutomine", True)
    assert client.tx.wait(row["tx_hash"], timeout=5).ok and client.balance(to) == 3


@pytest.mark.parametrize("network", ["openledger", "openledger-testnet"])
def test_on_a_public_network_a_key_reuses_a_receipt_only_three_blocks_deep(
    anvil, studio, sender, network: str
) -> None:
    from studio.chain.networks import Network

    public = ChainClient(
        Network(network, anvil.chain_id, anvil.url),
        paths=studio.paths,
        store=studio.store,
        events=studio.events,
    )
    to = Account.create().address
    res = public.tx.send(sender, to=to, value=1, purpose="pay", key="deep")
    for _depth in (1, 2):  # a reorg could still drop it: do not report it as paid yet
        with pytest.raises(ChainError, match="not yet 3 blocks deep"):
            public.tx.send(sender, to=to, value=1, purpose="pay", key="deep", timeout=0)
        anvil.rpc("evm_mine")
    again = public.tx.send(sender, to=to, value=1, purpose="pay", key="deep", timeout=0)
    assert again.reused and again.hash == res.hash and public.balance(to) == 1
    # Another chain behind a public network's URL: a wrong URL, never a reset to forget.
    studio.store.execute("UPDATE chain_identity SET genesis_hash = '0xdead'")
    fresh = ChainClient(
        Network(network, anvil.chain_id, anvil.url),
        paths=studio.paths,
        store=studio.store,
        events=studio.events,
    )
    with pytest.raises(ChainError, match="another genesis") as ei:
        fresh.tx.send(sender, to=to, value=1, purpose="pay")
    assert ei.value.hint == "Check the RPC URL (STUDIO_RPC_URL / rpc_urls in config.json)."


def test_a_revert_without_data_is_recorded_in_the_nodes_words(anvil, studio, sender) -> None:
    client = studio_on(anvil, studio)
    runtime = "60006000fd"  # revert(0, 0): no reason, no custom error
    dep = client.tx.deploy(sender, [], "0x600580600b6000396000f3" + runtime, purpose="deploy")
    with pytest.raises(TxReverted) as ei:
        client.tx.send(sender, to=dep.contract_address, purpose="poke", gas=60_000)
    row = rows(studio)[-1]
    assert row["status"] == "failed" and row["error"] == "execution reverted", row["error"]
    assert str(ei.value).endswith(" reverted: execution reverted."), str(ei.value)


def test_a_refused_broadcast_is_abandoned_with_the_nodes_reason(
    anvil, studio, sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = studio_on(anvil, studio)
    monkeypatch.setattr(TxPipeline, "_fees", lambda self: (1, 1))  # below the base fee
    with pytest.raises(ChainError) as ei:
        client.tx.send(sender, to=Account.create().address, value=1, purpose="pay")
    (row,) = rows(studio)
    assert row["status"] == "abandoned" and "base fee" in row["error"], row["error"]
    assert str(ei.value).startswith("pay: refused by the chain: ") and row["error"] in str(ei.value)


def test_a_broadcast_the_node_already_has_counts_as_sent(
    anvil, studio, sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = studio_on(anvil, studio)

    def retried(self: TxPipeline, raw: str) -> None:  # the RPC timed out after the node took it
        self.w3.eth.send_raw_transaction(raw)
        self.w3.eth.send_raw_transaction(raw)  # the retry: "already known"

    monkeypatch.setattr(TxPipeline, "_broadcast", retried)
    mined = []
    monkeypatch.setattr(ChainClient, "after_transaction", lambda self: mined.append(1))
    to = Account.create().address
    anvil.rpc("evm_setAutomine", False)
    try:
        with pytest.raises(ChainError, match="not mined") as ei:
            client.tx.send(sender, to=to, value=2, purpose="pay", timeout=0.2)
        (row,) = rows(studio)
        assert row["status"] == "sent" and mined == []
        assert ei.value.hint == (
            "Run the command again to keep waiting, or speed it up with a higher fee "
            f"(`studio wallet speed-up {row['tx_hash']}`)."
        )
        anvil.rpc("evm_mine")
    finally:
        anvil.rpc("evm_setAutomine", True)
    assert client.tx.wait(row["tx_hash"], timeout=5).ok and client.balance(to) == 2
    assert mined == [1]  # the embedded devnet would write its state now


def test_gas_limit_is_capped_at_the_blocks_and_a_purpose_is_required(anvil, studio, sender) -> None:
    client = studio_on(anvil, studio)
    to = Account.create().address
    with pytest.raises(InvalidInput) as ei:
        client.tx.send(sender, to=to, value=1, purpose="")
    assert ei.value.message == "Every transaction needs a purpose (it is shown in the journal)."
    # A block just over a transfer: the margin on the estimate must not ask for more than fits.
    usual = int(anvil.w3.eth.get_block("latest")["gasLimit"])
    anvil.rpc("evm_setBlockGasLimit", hex(22_000))
    anvil.rpc("evm_mine")
    try:
        res = client.tx.send(sender, to=to, value=1, purpose="pay")
    finally:
        anvil.rpc("evm_setBlockGasLimit", hex(usual))
    assert res.ok and int(rows(studio)[0]["gas_limit"]) == 22_000
