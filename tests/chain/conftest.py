"""Chain test fixtures: `anvil_node` (session: one real anvil on a free loopback port, the dev
mnemonic's 10 accounts with 100,000,000 OPEN each, killed at the end), `anvil` (per test: EVM
snapshot before, revert after) and `suite` (the four contracts deployed and wired by plain web3).
Helpers live in chain_kit.py (import them with `from chain_kit import ...`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from chain_kit import CHAIN_ID, TEST_PARAMS, Anvil, Suite, _dev_keys, terms


@pytest.fixture(scope="session")
def anvil_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    from studio.chain.devnet import anvil_command, find_anvil

    binary = find_anvil()
    keys = _dev_keys()
    from eth_account import Account

    accounts = [Account.from_key(k).address for k in keys]
    # Port 0: anvil binds a free port itself and prints it, so no other process can take it
    # between our choosing it and anvil binding it.
    log = tmp_path_factory.mktemp("anvil") / "anvil.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            anvil_command(0, CHAIN_ID, anvil=binary), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        port = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None and not port:
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("Listening on "):
                    port = int(line.rsplit(":", 1)[1])
            time.sleep(0.05)
        if not port:
            raise RuntimeError(f"anvil did not start: {log.read_text(errors='replace')[-2000:]}")
        node = Anvil(f"http://127.0.0.1:{port}", port, CHAIN_ID, accounts, keys, proc)
        assert node.w3.eth.chain_id == CHAIN_ID
        yield node
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def anvil(anvil_node: Anvil) -> Iterator[Anvil]:
    snap = anvil_node.rpc("evm_snapshot")
    try:
        yield anvil_node
    finally:
        anvil_node.rpc("evm_revert", snap)


@pytest.fixture
def suite(anvil: Anvil) -> Suite:
    """The contracts as deploy_all wires them, with account 0 (an EOA, not a Timelock, so tests
    can change parameters at once) as admin, pauser, arbiter and treasury."""
    p = TEST_PARAMS
    admin = anvil.accounts[0]
    delay = p["admin_delay_s"]
    datanets = anvil.deploy("DatanetRegistry", admin, admin, delay, admin, p["publish_fee"])
    models = anvil.deploy("ModelRegistry", admin, admin, delay, datanets.address)
    staking = anvil.deploy(
        "Staking",
        admin,
        admin,
        delay,
        p["min_node_stake"],
        p["min_validator_stake"],
        p["unstake_cooldown_s"],
    )
    ledger = anvil.deploy(
        "AttributionLedger",
        admin,
        admin,
        admin,
        delay,
        models.address,
        staking.address,
        admin,
        terms(p),
    )
    anvil.send(staking.functions.setLedger(ledger.address))
    return Suite(anvil, datanets, models, staking, ledger, p)
