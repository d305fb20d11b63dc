"""The embedded devnet: found, started on a free loopback port, genesis of exactly 1e27 wei,
state kept across down/up (balances and contract code), reset, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from runtime_kit import NOPE_ABI, fast_scrypt, reverter_initcode  # noqa: F401

from studio.chain import devnet as devnet_mod
from studio.chain.devnet import (
    DEV_ACCOUNTS,
    DEV_BALANCE_OPEN,
    GENESIS_TOTAL_WEI,
    Devnet,
    dev_account,
    dev_accounts,
    find_anvil,
)
from studio.chain.networks import DEVNET_CHAIN_ID
from studio.core.errors import ChainError
from studio.core.paths import Paths


@pytest.fixture
def devnet(studio_home: Path) -> Iterator[Devnet]:
    d = Devnet(Paths.resolve(studio_home))
    try:
        yield d
    finally:
        d.down()


def test_find_anvil_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = find_anvil()
    monkeypatch.setenv("STUDIO_ANVIL", str(real))
    assert find_anvil() == real
    monkeypatch.setenv("STUDIO_ANVIL", str(tmp_path / "nope"))
    with pytest.raises(ChainError, match="STUDIO_ANVIL"):
        find_anvil()
    monkeypatch.delenv("STUDIO_ANVIL")
    monkeypatch.setattr(devnet_mod, "_project_roots", lambda: [tmp_path])
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ChainError, match="make setup"):
        find_anvil()


def test_genesis_is_exactly_one_billion_open(devnet: Devnet) -> None:
    assert GENESIS_TOTAL_WEI == 10**27 == DEV_ACCOUNTS * DEV_BALANCE_OPEN * 10**18
    st = devnet.up()
    assert (
        st["running"]
        and st["url"].startswith("http://127.0.0.1:")
        and st["chain_id"] == DEVNET_CHAIN_ID
    )
    devnet.down()
    # Every account of the dumped genesis state, not just the dev ones: nobody else holds anything.
    state = json.loads(devnet.state_file.read_text())
    balances = {addr.lower(): int(acc["balance"], 16) for addr, acc in state["accounts"].items()}
    assert sum(balances.values()) == GENESIS_TOTAL_WEI
    assert {a.lower() for a, b in balances.items() if b} == {a.lower() for a in dev_accounts()}
    assert all(balances[a.lower()] == DEV_BALANCE_OPEN * 10**18 for a in dev_accounts())


def test_restart_keeps_balances_and_contracts(devnet: Devnet, studio) -> None:
    from studio.chain.client import ChainClient

    devnet.up()
    client = ChainClient.for_studio(studio)
    assert client.profile.name == "devnet" and client.w3.eth.chain_id == DEVNET_CHAIN_ID
    someone = Account.create().address
    devnet.faucet(someone, 3 * 10**18, pipeline=client.tx)
    dep = client.tx.deploy(dev_account(1), NOPE_ABI, reverter_initcode(), purpose="deploy reverter")
    code = bytes(client.w3.eth.get_code(dep.contract_address))
    assert code
    block = client.w3.eth.block_number
    dev0 = client.balance(dev_accounts()[0])
    assert dev0 < DEV_BALANCE_OPEN * 10**18  # paid the faucet and gas

    first_pid = devnet.status()["pid"]
    st = devnet.down()
    assert st["stopped"] and not st["running"] and not devnet.info_file.exists()
    assert devnet.down()["stopped"] is False  # idempotent

    for _round in range(2):
        st = devnet.up()
        assert st["pid"] != first_pid
        client = ChainClient.for_studio(studio)
        assert client.balance(someone) == 3 * 10**18
        assert client.balance(dev_accounts()[0]) == dev0  # genesis balances are not re-applied
        assert bytes(client.w3.eth.get_code(dep.contract_address)) == code
        assert client.w3.eth.block_number >= block
        devnet.down()
        # a state file cut short by a crash falls back to the last good copy
        devnet.state_file.write_text('{"block": {"numb')

    devnet.up()
    assert ChainClient.for_studio(studio).balance(someone) == 3 * 10**18
    ChainClient.for_studio(studio).faucet(someone, 1)
    assert ChainClient.for_studio(studio).balance(someone) == 3 * 10**18 + 1


def test_devnet_cli(cli, studio_home: Path) -> None:
    rc, out, err = cli("devnet", "up", "--json")
    assert rc == 0, err
    try:
        assert json.loads(out)["running"]
        rc, out, _ = cli("devnet", "up", "--json")  # already up: same node
        assert rc == 0
        rc, out, _ = cli("devnet", "status", "--json")
        st = json.loads(out)
        assert st["running"] and st["chain_id"] == DEVNET_CHAIN_ID
        who = Account.create().address
        rc, out, err = cli("devnet", "faucet", who, "2.5", "--json")
        assert rc == 0, err
        assert json.loads(out)["balance_wei"] == str(25 * 10**17)
        rc, out, _ = cli("wallet", "balance", who, "--json")
        assert json.loads(out)["balance_wei"] == str(25 * 10**17)
        for argv in (
            ("devnet", "faucet", "0x1234", "1"),
            ("devnet", "faucet", who, "-1"),
            ("devnet", "faucet", who, "abc"),
            ("devnet", "reset"),
        ):
            rc, out, err = cli(*argv)
            assert rc == 1 and err.startswith("error: ") and err.count("\n") == 1, (argv, err)
    finally:
        rc, out, _ = cli("devnet", "down", "--json")
    assert rc == 0 and json.loads(out)["stopped"]
    rc, out, _ = cli("devnet", "reset", "--yes", "--json")
    assert rc == 0 and not (studio_home / "devnet" / "state.json").exists()
    from studio.core.store import Store

    assert Store(studio_home / "studio.sqlite").query("SELECT * FROM chain_tx") == []


def test_an_anvil_the_studio_lost_track_of_is_stopped(devnet: Devnet) -> None:
    """A crashed studio can leave anvil running without anvil.json; it would keep dumping an old
    chain over this home's state file. `down` and the next `up` must find and stop it."""
    devnet.up()
    pid = json.loads(devnet.info_file.read_text())["pid"]
    devnet.info_file.unlink()  # the studio forgot it
    assert devnet_mod._stray_anvils(devnet.state_file) == [pid]
    devnet.down()
    assert devnet_mod._stray_anvils(devnet.state_file) == []
    assert not devnet_mod.pid_alive(pid)


def test_genesis_hash_survives_restarts(devnet: Devnet) -> None:
    """anvil 1.7.1 rebuilds block 0 with the current time on each load of its state; the devnet
    pins the genesis timestamp, or the journal takes every restart for a reset chain."""
    from studio.chain.devnet import rpc_call

    hashes = []
    for _ in range(4):
        url = devnet.up()["url"]
        hashes.append(rpc_call(url, "eth_getBlockByNumber", ["0x0", False])["hash"])
        rpc_call(url, "evm_mine")
        devnet.down()
        # A new second between loads: the unpinned genesis would take a new timestamp.
        import time

        time.sleep(1.1)
    assert len(set(hashes)) == 1, hashes
    # Which block 0 a load picks is arbitrary, so every copy in the state must be the same one.
    blocks = json.loads(devnet.state_file.read_bytes())["blocks"]
    zeros = {b["header"]["timestamp"] for b in blocks if int(b["header"]["number"], 16) == 0}
    assert len(zeros) == 1, zeros
