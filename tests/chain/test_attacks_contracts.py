"""Attacks on the contracts (issue 9), each performed on a real anvil: on the previous revision
every one of them succeeded; each test asserts that it now fails, and that honest use still works."""

from __future__ import annotations

from typing import Any

from chain_kit import (
    LICENSE,
    OPEN,
    Suite,
    events,
    expect_revert,
    publish_bound,
    record_hash,
    role,
    terms,
)
from eth_utils import keccak
from test_contracts_ledger import NODE, PRICE, conserved, contributors, pay, setup_market

from studio.chain.contributions import KeySigner, license_hash, sign_batch
from studio.core import merkle


def _record(s: Suite, inf: int, node: int = 3, who: tuple[int, ...] = (6,)) -> Any:
    bps = [10_000 // len(who)] * len(who)
    bps[-1] += 10_000 - sum(bps)
    return s.node.send(
        s.ledger.functions.recordAttribution(
            inf, keccak(text="r"), contributors(s, list(who)), bps
        ),
        sender=node,
    )


# ------------------------------------------------------------------ hijacked inference


def test_front_running_node_cannot_record_someone_elses_inference(suite: Suite) -> None:
    """Attack: another staked node (acc7) records the honest node's (acc3) paid inference first,
    naming itself as the contributor, and takes the fee."""
    s, led, acc = suite, suite.ledger, suite.node.accounts
    m = setup_market(s)
    s.node.send(s.staking.functions.stake(NODE), sender=7, value=1000 * OPEN)
    inf = pay(s, m["model"], node=3)
    hijack = led.functions.recordAttribution(inf, keccak(text="x"), [acc[7]], [10_000])
    expect_revert(led, hijack, "NotServingNode", sender=acc[7])
    # The honest node's record goes through.
    _record(s, inf, node=3)
    assert led.functions.getInference(inf).call()[2] == acc[3]


def test_node_cannot_pay_itself_or_strangers(suite: Suite) -> None:
    """Attack: the serving node names itself (or any address) as the only contributor."""
    s, led, acc = suite, suite.ledger, suite.node.accounts
    m = setup_market(s)  # bound contributors: accounts 6, 7, 8; Datanet owner: account 1
    inf = pay(s, m["model"])
    for who in (acc[3], acc[9]):
        expect_revert(
            led,
            led.functions.recordAttribution(inf, keccak(text="x"), [who], [10_000]),
            "NotAPayee",
            sender=acc[3],
        )
    # The Datanet owner (pooled tail) and bound contributors are payees.
    cs = sorted([acc[1], acc[6]], key=lambda a: int(a, 16))
    s.node.send(
        led.functions.recordAttribution(inf, keccak(text="r"), cs, [5_000, 5_000]), sender=3
    )


# ------------------------------------------------------------------ escape from slashing


def test_node_cannot_unstake_and_withdraw_before_its_record_settles(suite: Suite) -> None:
    """Attack: record, request unstake in the next block, withdraw as the window closes; a
    challenge raised inside the window is then upheld with nothing left to slash."""
    s, led, st, acc = suite, suite.ledger, suite.staking, suite.node.accounts
    m = setup_market(s)
    contested, unfinalized = pay(s, m["model"]), pay(s, m["model"])
    _record(s, contested)
    _record(s, unfinalized)
    s.node.send(st.functions.requestUnstake(NODE, 1000 * OPEN), sender=3)
    s.node.send(led.functions.challenge(contested), sender=4, value=s.params["challenge_bond"])
    rcpt = s.node.send(led.functions.resolve(contested, True), sender=0)
    assert events(led, "ChallengeResolved", rcpt)[0]["slashed"] == s.params["slash_amount"]
    # The cooldown is over, but an attribution the node recorded is still open: locked.
    s.node.increase_time(s.params["unstake_cooldown_s"])
    expect_revert(st, st.functions.withdraw(NODE), "StakeLocked", sender=acc[3])
    s.node.send(led.functions.finalize(unfinalized), sender=9)
    s.node.send(st.functions.withdraw(NODE), sender=3)
    assert st.functions.slashableOf(acc[3], NODE).call() == 0
    conserved(s)


def test_unresolved_challenge_settles_by_the_documented_rule(suite: Suite) -> None:
    """Attack (griefing): the arbiter never resolves, so fee, bond and the node's stake stay
    frozen forever. After the resolve period anyone settles: payer refunded, bond returned."""
    s, led, st, acc = suite, suite.ledger, suite.staking, suite.node.accounts
    m = setup_market(s)
    inf = pay(s, m["model"])
    _record(s, inf)
    bond = s.params["challenge_bond"]
    s.node.send(led.functions.challenge(inf), sender=9, value=bond)  # anyone may challenge
    expect_revert(
        led, led.functions.settleUnresolved(inf), "ResolveDeadlineNotReached", sender=acc[7]
    )
    s.node.increase_time(s.params["resolve_period_s"])
    expect_revert(led, led.functions.resolve(inf, True), "ResolveDeadlinePassed", sender=acc[0])
    s.node.send(led.functions.settleUnresolved(inf), sender=7)
    assert led.functions.claimable(acc[5]).call() == PRICE
    assert led.functions.claimable(acc[9]).call() == bond
    assert st.functions.positionOf(acc[3], NODE).call()[4] == 0  # unlocked
    assert st.functions.slashableOf(acc[3], NODE).call() == 1000 * OPEN  # not slashed
    conserved(s)


def test_cooldown_rule_is_enforced_on_chain(suite: Suite) -> None:
    """Attack (misconfiguration): a cooldown shorter than challenge window + resolve period."""
    s, led, st, acc = suite, suite.ledger, suite.staking, suite.node.accounts
    need = s.params["challenge_window_s"] + s.params["resolve_period_s"]
    assert led.functions.minUnstakeCooldown().call() == need
    expect_revert(st, st.functions.setCooldown(need - 1), "CooldownBelowWindows", sender=acc[0])
    expect_revert(
        led, led.functions.setParams(terms(window=need)), "CooldownTooShort", sender=acc[0]
    )
    s.node.send(st.functions.setCooldown(need), sender=0)


def test_raised_minimum_applies_to_new_stakes_only(suite: Suite) -> None:
    """Attack: raising the minimum un-stakes every node at once (their records revert)."""
    s, st, acc = suite, suite.staking, suite.node.accounts
    m = setup_market(s)  # acc3 staked 1,000 OPEN at the 1,000 OPEN minimum
    s.node.send(st.functions.setMinStake(NODE, 5_000 * OPEN), sender=0)
    assert st.functions.isStaked(acc[3], NODE).call()
    inf = pay(s, m["model"])
    _record(s, inf)
    expect_revert(st, st.functions.stake(NODE), "BelowMinimum", sender=acc[7], value=1000 * OPEN)


# ------------------------------------------------------------------ one key, every power


def test_parameter_change_does_not_touch_fees_already_paid(suite: Suite) -> None:
    """Attack: after a payment the admin moves the split (to 100% treasury, once possible)."""
    s, led, acc = suite, suite.ledger, suite.node.accounts
    m = setup_market(s)
    inf = pay(s, m["model"])
    expect_revert(
        led,
        led.functions.setParams(terms(protocol=10_000, owner=0, node=0)),
        "OutOfBounds",
        sender=acc[0],
    )
    s.node.send(led.functions.setParams(terms(protocol=1_000, owner=0, node=5_000)), sender=0)
    _record(s, inf)
    s.node.increase_time(s.params["challenge_window_s"])
    rcpt = s.node.send(led.functions.finalize(inf), sender=9)
    split = events(led, "FeeSplit", rcpt)[0]
    assert split["modelOwner"] == PRICE * 2_500 // 10_000  # the split in force at payment
    assert split["treasury"] == PRICE * 500 // 10_000


def test_admin_powers_wait_for_the_timelock(suite: Suite) -> None:
    """Attack: the admin key changes parameters (or hands itself the admin) at once. With a
    Timelock as admin, every change is public for `minDelay` first; the default admin can only
    move through AccessControlDefaultAdminRules' delayed two-step transfer."""
    s, acc = suite.node, suite.node.accounts
    delay = 3_600
    tl = s.deploy("Timelock", delay, [acc[0]], [acc[0]])
    st = s.deploy("Staking", tl.address, acc[0], 86_400, 1_000 * OPEN, 500 * OPEN, 7_200)
    expect_revert(
        st, st.functions.setCooldown(9_000), "AccessControlUnauthorizedAccount", sender=acc[0]
    )
    call = st.functions.setCooldown(9_000)._encode_transaction_data()
    salt = b"\x00" * 32
    s.send(tl.functions.schedule(st.address, 0, call, b"\x00" * 32, salt, delay), sender=0)
    expect_revert(
        tl,
        tl.functions.execute(st.address, 0, call, b"\x00" * 32, salt),
        "TimelockUnexpectedOperationState",
        sender=acc[0],
    )
    s.increase_time(delay)
    s.send(tl.functions.execute(st.address, 0, call, b"\x00" * 32, salt), sender=0)
    assert st.functions.cooldown().call() == 9_000
    # The default admin cannot be granted directly, only transferred with a delay.
    expect_revert(
        suite.ledger,
        suite.ledger.functions.grantRole(b"\x00" * 32, acc[1]),
        "AccessControlEnforcedDefaultAdminRules",
        sender=acc[0],
    )
    assert suite.ledger.functions.defaultAdminDelay().call() == suite.params["admin_delay_s"]


# ------------------------------------------------------------------ pause


def test_pause_never_freezes_users_money_and_extends_windows(suite: Suite) -> None:
    """Attack: a pause that locks claims, withdrawals and refunds, and lets a challenge window
    run out while nobody can challenge."""
    s, led, st, acc = suite, suite.ledger, suite.staking, suite.node.accounts
    m = setup_market(s)
    done = pay(s, m["model"])
    _record(s, done)
    s.node.increase_time(s.params["challenge_window_s"])
    s.node.send(led.functions.finalize(done), sender=9)
    refundable = pay(s, m["model"])
    s.node.send(st.functions.stake(2), sender=8, value=500 * OPEN)
    s.node.send(st.functions.requestUnstake(2, 500 * OPEN), sender=8)
    s.node.increase_time(max(s.params["record_timeout_s"], s.params["unstake_cooldown_s"]))
    open_ = pay(s, m["model"])
    _record(s, open_)
    s.node.send(led.functions.pause(), sender=0)
    s.node.send(st.functions.pause(), sender=0)
    s.node.send(led.functions.claim(), sender=6)  # claim works
    s.node.send(led.functions.cancelUnrecorded(refundable), sender=5)  # refund works
    s.node.send(st.functions.withdraw(2), sender=8)  # withdraw works
    # A long pause: the window of `open_` does not run while paused.
    s.node.increase_time(10 * s.params["challenge_window_s"])
    s.node.send(led.functions.unpause(), sender=0)
    expect_revert(led, led.functions.finalize(open_), "ChallengeWindowOpen", sender=acc[9])
    s.node.send(led.functions.challenge(open_), sender=4, value=s.params["challenge_bond"])
    conserved(s)


def test_paused_model_registry_stops_new_payments(suite: Suite) -> None:
    s, led, acc = suite, suite.ledger, suite.node.accounts
    m = setup_market(s)
    s.node.send(s.models.functions.pause(), sender=0)
    expect_revert(
        s.models,
        led.functions.payForInference(m["model"], acc[3]),
        "EnforcedPause",
        sender=acc[5],
        value=PRICE,
    )
    s.node.send(s.models.functions.unpause(), sender=0)
    pay(s, m["model"])


# ------------------------------------------------------------------ binding contributions


def test_curator_and_sock_puppet_cannot_fill_the_cap(suite: Suite) -> None:
    """Attack: a curator publishes a snapshot of real contributors' records, then binds a
    sock-puppet's signed batches over those same content hashes (and repeats its own) until
    the bound count reaches the record count, so the real contributors can never bind."""
    s, reg, acc, keys = suite, suite.datanets, suite.node.accounts, suite.node.keys
    real = [keys[6], keys[7]]
    snap = publish_bound(s, real, bind=False)  # curator: the Datanet owner, acc1
    did, leaves, rows = snap["datanet"], snap["leaves"], snap["rows"]
    puppet = KeySigner(keys[9])

    def batch(signer: KeySigner, hashes: list[bytes], idx: list[int], n: int = 0) -> Any:
        return sign_batch(
            signer,
            chain_id=s.node.chain_id,
            registry=reg.address,
            datanet_id=did,
            version=1,
            license_hash=license_hash(LICENSE),
            content_hashes=hashes,
            deadline=s.node.now() + 3_600 + n,
        ).with_proof(leaves, idx)

    stolen = batch(puppet, [c for c, _ in rows], [0, 1])
    expect_revert(
        reg,
        reg.functions.bindContributions(did, 1, [stolen.as_tuple()]),
        "NotInSnapshot",
        sender=acc[1],
    )
    # A real contributor binds; binding the same record again (a new signature) counts nothing.
    mine = KeySigner(keys[6])
    first = batch(mine, [rows[0][0]], [0])
    again = batch(mine, [rows[0][0]], [0], n=1)
    s.node.send(reg.functions.bindContributions(did, 1, [first.as_tuple()]), sender=1)
    s.node.send(reg.functions.bindContributions(did, 1, [again.as_tuple()]), sender=1)
    assert reg.functions.contributionCount(did, 1, acc[6]).call() == 1
    assert reg.functions.getSnapshot(did, 1).call()[3] == 1
    # The other real contributor can still bind.
    s.node.send(
        reg.functions.bindContributions(
            did, 1, [batch(KeySigner(keys[7]), [rows[1][0]], [1]).as_tuple()]
        ),
        sender=1,
    )
    assert reg.functions.getSnapshot(did, 1).call()[3] == 2


def test_multi_record_batches_prove_against_odd_trees(suite: Suite) -> None:
    """The studio's multiproof matches the contract's walk for any subset of an odd-sized tree."""
    s, reg, keys = suite, suite.datanets, suite.node.keys
    me = KeySigner(keys[6])
    extra = [(record_hash(me.address, 100 + i), me.address) for i in range(6)]
    snap = publish_bound(s, [keys[7]], extra=extra)  # 7 leaves: index 0 (acc7), 1..6 (acc6)
    did, leaves, rows = snap["datanet"], snap["leaves"], snap["rows"]
    for n, idx in enumerate(([1, 2, 5], [3, 6], [4])):
        b = sign_batch(
            me,
            chain_id=s.node.chain_id,
            registry=reg.address,
            datanet_id=did,
            version=1,
            license_hash=license_hash(LICENSE),
            content_hashes=[rows[i][0] for i in idx],
            deadline=s.node.now() + 3_600 + n,
        ).with_proof(leaves, idx)
        s.node.send(reg.functions.bindContributions(did, 1, [b.as_tuple()]), sender=1)
    assert reg.functions.contributionCount(did, 1, me.address).call() == 6
    assert merkle.merkle_root(leaves) == reg.functions.getSnapshot(did, 1).call()[0]
    _ = role
