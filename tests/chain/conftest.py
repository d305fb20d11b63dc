"""Chain test fixtures: `anvil_node` (session: one real anvil on a free loopback port, the dev
mnemonic's 10 accounts with 100,000,000 OPEN each, killed at the end), `anvil` (per test: EVM
snapshot before, revert after) and `suite` (the four contracts deployed and wired by plain web3).
Helpers live in chain_kit.py (import them with `from chain_kit import ...`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from chain_kit import TEST_PARAMS, Anvil, Suite, started_anvil, terms


@pytest.fixture(scope="session")
def anvil_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    with started_anvil(tmp_path_factory.mktemp("anvil") / "anvil.log") as node:
        yield node


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


@pytest.fixture
def sender(anvil: Anvil) -> Any:
    """A fresh account holding 10 OPEN on the test anvil, unlocked with no timeout."""
    from eth_account import Account
    from runtime_kit import fund

    from studio.chain.wallet import UnlockedAccount

    acct = Account.create()
    fund(anvil, acct.address, 10 * 10**18)
    return UnlockedAccount(bytes(acct.key), timeout_s=None)
