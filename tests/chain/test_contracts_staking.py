"""Staking and ModelRegistry on a real anvil: minimums, cooldown, slashing bounds, reentrancy, models."""

from __future__ import annotations

from chain_kit import OPEN, Suite, events, expect_revert, role
from eth_utils import keccak

NODE, VALIDATOR = 1, 2


def test_stake_minimums_cooldown_withdraw(suite: Suite) -> None:
    s, st, acc = suite, suite.staking, suite.node.accounts
    expect_revert(st, st.functions.stake(NODE), "BelowMinimum", sender=acc[1], value=999 * OPEN)
    expect_revert(st, st.functions.stake(3), "UnknownRole", sender=acc[1], value=1000 * OPEN)
    expect_revert(st, st.functions.stake(NODE), "ZeroAmount", sender=acc[1], value=0)
    s.node.send(st.functions.stake(NODE), sender=1, value=1500 * OPEN)
    assert st.functions.isStaked(acc[1], NODE).call()
    assert not st.functions.isStaked(acc[1], VALIDATOR).call()
    # Leaving less than the minimum (but not zero) is refused; more than the stake too.
    expect_revert(st, st.functions.requestUnstake(NODE, 600 * OPEN), "BelowMinimum", sender=acc[1])
    expect_revert(
        st, st.functions.requestUnstake(NODE, 1501 * OPEN), "InsufficientStake", sender=acc[1]
    )
    expect_revert(st, st.functions.withdraw(NODE), "NothingPending", sender=acc[1])
    rcpt = s.node.send(st.functions.requestUnstake(NODE, 500 * OPEN), sender=1)
    unlock = events(st, "UnstakeRequested", rcpt)[0]["unlockAt"]
    assert tuple(st.functions.positionOf(acc[1], NODE).call()) == (
        1000 * OPEN,
        500 * OPEN,
        unlock,
        1000 * OPEN,  # the minimum the position was opened under
        0,  # no open attributions
    )
    expect_revert(st, st.functions.withdraw(NODE), "CooldownNotOver", sender=acc[1])
    s.node.increase_time(s.params["unstake_cooldown_s"])
    before = s.node.balance(acc[1])
    rcpt = s.node.send(st.functions.withdraw(NODE), sender=1)
    gas = rcpt["gasUsed"] * rcpt["effectiveGasPrice"]
    assert s.node.balance(acc[1]) - before + gas == 500 * OPEN
    # Full exit is allowed below the minimum.
    s.node.send(st.functions.requestUnstake(NODE, 1000 * OPEN), sender=1)
    assert not st.functions.isStaked(acc[1], NODE).call()


def test_admin_cannot_make_itself_a_slasher(suite: Suite) -> None:
    """Attack: the admin grants itself the slasher role and takes a stake. The ledger, wired
    once at deployment, is the only slasher; no role makes anyone else one."""
    s, st, acc = suite, suite.staking, suite.node.accounts
    s.node.send(st.functions.stake(VALIDATOR), sender=2, value=600 * OPEN)
    s.node.send(st.functions.grantRole(role("SLASHER_ROLE"), acc[0]), sender=0)
    expect_revert(st, st.functions.slash(acc[2], VALIDATOR, 1), "NotLedger", sender=acc[0])
    expect_revert(st, st.functions.setLock(acc[2], VALIDATOR, True), "NotLedger", sender=acc[0])
    # The wiring cannot be changed afterwards, not even by the deployer.
    expect_revert(st, st.functions.setLedger(acc[0]), "LedgerAlreadySet", sender=acc[0])
    assert st.functions.ledger().call() == s.ledger.address
    assert st.functions.slashableOf(acc[2], VALIDATOR).call() == 600 * OPEN


def test_withdraw_reentrancy_is_blocked(suite: Suite) -> None:
    s, st, acc = suite, suite.staking, suite.node.accounts
    evil = s.node.deploy("test/ReentrantReceiver")
    stake = st.functions.stake(NODE)._encode_transaction_data()
    s.node.send(evil.functions.call(st.address, 2000 * OPEN, stake), sender=4, value=2000 * OPEN)
    req = st.functions.requestUnstake(NODE, 1000 * OPEN)._encode_transaction_data()
    s.node.send(evil.functions.call(st.address, 0, req), sender=4)
    s.node.increase_time(s.params["unstake_cooldown_s"])
    withdraw = st.functions.withdraw(NODE)._encode_transaction_data()
    # On receiving, the attacker calls withdraw again: the guard refuses, the payout happens once.
    s.node.send(evil.functions.arm(st.address, withdraw), sender=4)
    s.node.send(evil.functions.call(st.address, 0, withdraw), sender=4)
    assert evil.functions.reentryAttempts().call() == 1
    assert evil.functions.reentryBlocked().call() == 1
    assert evil.functions.received().call() == 1000 * OPEN
    assert s.node.balance(st.address) == 1000 * OPEN
    _ = acc


def test_model_registry(suite: Suite) -> None:
    s, mr, reg, acc = suite, suite.models, suite.datanets, suite.node.accounts
    rcpt = s.node.send(reg.functions.createDatanet(keccak(text="m"), ""), sender=1)
    did = events(reg, "DatanetCreated", rcpt)[0]["datanetId"]
    s.node.send(
        reg.functions.publishSnapshot(did, 1, keccak(text="root"), 5, keccak(text="man"), []),
        sender=1,
        value=s.params["publish_fee"],
    )
    h = keccak(text="base"), keccak(text="adapter"), keccak(text="cfg")
    expect_revert(
        mr, mr.functions.registerModel(*h, [], "uri", OPEN), "NoTrainingSnapshots", sender=acc[2]
    )
    expect_revert(
        mr,
        mr.functions.registerModel(b"\0" * 32, h[1], h[2], [(did, 1)], "uri", OPEN),
        "ZeroHash",
        sender=acc[2],
    )
    expect_revert(
        reg,
        mr.functions.registerModel(*h, [(did, 2)], "uri", OPEN),
        "UnknownSnapshot",
        sender=acc[2],
    )
    rcpt = s.node.send(
        mr.functions.registerModel(*h, [(did, 1)], "ipfs://card", 2 * OPEN), sender=2
    )
    ev = events(mr, "ModelRegistered", rcpt)[0]
    mid = ev["modelId"]
    assert ev["owner"] == acc[2] and ev["pricePerInference"] == 2 * OPEN
    assert [tuple(x) for x in mr.functions.getTrainingSnapshots(mid).call()] == [(did, 1)]
    assert tuple(mr.functions.priceOf(mid).call()) == (acc[2], 2 * OPEN)
    expect_revert(mr, mr.functions.setPrice(mid, 1), "NotModelOwner", sender=acc[3])
    s.node.send(mr.functions.setPrice(mid, 3 * OPEN), sender=2)
    assert mr.functions.getModel(mid).call()[5] == 3 * OPEN
    expect_revert(mr, mr.functions.retire(mid), "NotModelOwner", sender=acc[3])
    s.node.send(mr.functions.retire(mid), sender=2)
    expect_revert(mr, mr.functions.priceOf(mid), "ModelRetired", sender=acc[3])
    expect_revert(mr, mr.functions.retire(mid), "ModelRetired", sender=acc[2])
    expect_revert(mr, mr.functions.getModel(99), "UnknownModel", sender=acc[2])
