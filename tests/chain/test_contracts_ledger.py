"""AttributionLedger on a real anvil: payment, record, challenge window, arbiter, split, claim, reentrancy."""

from __future__ import annotations

from typing import Any

from chain_kit import OPEN, Suite, events, expect_revert, publish_bound, role, terms
from eth_utils import keccak

NODE, VALIDATOR = 1, 2
PRICE = 1 * OPEN


def setup_market(s: Suite, bound: tuple[int, ...] = (6, 7, 8)) -> dict[str, Any]:
    """A Datanet (owner acc1) whose snapshot binds dev accounts `bound`, a model on it (owner
    acc2, price 1 OPEN), a staked node (acc3) and a staked validator (acc4)."""
    mr, st = s.models, s.staking
    snap = publish_bound(s, [s.node.keys[i] for i in bound])
    did = snap["datanet"]
    rcpt = s.node.send(
        mr.functions.registerModel(
            keccak(text="b"), keccak(text="a"), keccak(text="c"), [(did, 1)], "", PRICE
        ),
        sender=2,
    )
    mid = events(mr, "ModelRegistered", rcpt)[0]["modelId"]
    s.node.send(st.functions.stake(NODE), sender=3, value=1000 * OPEN)
    s.node.send(st.functions.stake(VALIDATOR), sender=4, value=500 * OPEN)
    return {"model": mid, "datanet": did}


class PlainTransfer:
    """OPEN sent with no calldata (what hits receive()), in the shape expect_revert calls."""

    def __init__(self, s: Suite, to: str) -> None:
        self.w3, self.to = s.node.w3, to

    def call(self, tx: dict[str, Any]) -> Any:
        return self.w3.eth.call({**tx, "to": self.to})


def pay(s: Suite, model: int, value: int = PRICE, sender: int = 5, node: int = 3) -> int:
    rcpt = s.node.send(
        s.ledger.functions.payForInference(model, s.node.accounts[node]), sender=sender, value=value
    )
    return int(events(s.ledger, "InferencePaid", rcpt)[0]["inferenceId"])


def contributors(s: Suite, idx: list[int]) -> list[str]:
    return sorted((s.node.accounts[i] for i in idx), key=lambda a: int(a, 16))


def conserved(s: Suite) -> None:
    led = s.ledger
    total = (
        led.functions.totalEscrowed().call()
        + led.functions.totalBonds().call()
        + led.functions.totalClaimable().call()
    )
    assert s.node.balance(led.address) == total


def test_pay_record_finalize_claim(suite: Suite) -> None:
    s, led, acc = suite, suite.ledger, suite.node.accounts
    m = setup_market(s)
    expect_revert(
        led,
        led.functions.payForInference(m["model"], acc[3]),
        "PaymentBelowPrice",
        sender=acc[5],
        value=PRICE - 1,
    )
    expect_revert(
        led,
        led.functions.payForInference(m["model"], acc[6]),
        "NotStakedNode",
        sender=acc[5],
        value=PRICE,
    )
    # More than the price: the fee is the price, the rest comes back in the same transaction.
    before = s.node.balance(acc[5])
    h = led.functions.payForInference(m["model"], acc[3]).transact(
        {"from": acc[5], "value": PRICE + 12_345}
    )
    rcpt = s.node.w3.eth.wait_for_transaction_receipt(h)
    gas = rcpt["gasUsed"] * rcpt["effectiveGasPrice"]
    assert before - s.node.balance(acc[5]) - gas == PRICE
    inf = int(events(led, "InferencePaid", rcpt)[0]["inferenceId"])
    fee = PRICE
    cs = contributors(s, [6, 7, 8])
    bps = [3_333, 3_333, 3_334]
    rec = led.functions.recordAttribution(inf, keccak(text="report"), cs, bps)
    expect_revert(led, rec, "NotServingNode", sender=acc[6])
    expect_revert(
        led,
        led.functions.recordAttribution(inf, b"\0" * 32, cs, [3_333, 3_333, 3_333]),
        "WeightsDoNotSum",
        sender=acc[3],
    )
    expect_revert(
        led,
        led.functions.recordAttribution(inf, b"\0" * 32, cs[::-1], bps),
        "ContributorsNotAscending",
        sender=acc[3],
    )
    expect_revert(
        led,
        led.functions.recordAttribution(inf, b"\0" * 32, cs, bps[:2]),
        "LengthMismatch",
        sender=acc[3],
    )
    expect_revert(
        led,
        led.functions.recordAttribution(inf, b"\0" * 32, [], []),
        "NoContributors",
        sender=acc[3],
    )
    expect_revert(
        led,
        led.functions.recordAttribution(inf, b"\0" * 32, cs[:2], [10_000, 0]),
        "ZeroWeight",
        sender=acc[3],
    )
    expect_revert(
        led,
        led.functions.recordAttribution(99, b"\0" * 32, cs, bps),
        "UnknownInference",
        sender=acc[3],
    )
    rcpt = s.node.send(rec, sender=3)
    ev = events(led, "AttributionRecorded", rcpt)[0]
    assert list(ev["contributors"]) == cs and list(ev["bps"]) == bps
    expect_revert(led, rec, "WrongStatus", sender=acc[3])  # double record
    expect_revert(led, led.functions.finalize(inf), "ChallengeWindowOpen", sender=acc[9])
    s.node.increase_time(s.params["challenge_window_s"])
    expect_revert(
        led,
        led.functions.challenge(inf),
        "ChallengeWindowClosed",
        sender=acc[4],
        value=s.params["challenge_bond"],
    )
    rcpt = s.node.send(led.functions.finalize(inf), sender=9)
    split = events(led, "FeeSplit", rcpt)[0]
    credited = sum(e["amount"] for e in events(led, "Credited", rcpt))
    assert (
        credited
        == fee
        == split["treasury"] + split["modelOwner"] + split["node"] + split["contributors"]
    )
    assert split["modelOwner"] == fee * 2_500 // 10_000 and split["node"] == fee * 2_000 // 10_000
    conserved(s)
    # Pull payment: a contributor claims once.
    # Computed here from the documented rule: the pool is what protocol, owner and node (floors)
    # leave of the fee; contributor i gets pool * bps_i / 10^4 (floor).
    protocol_bps, owner_bps, node_bps = s.params["split_bps"]
    pool = fee - fee * protocol_bps // 10_000 - fee * owner_bps // 10_000 - fee * node_bps // 10_000
    expected = [pool * b // 10_000 for b in bps]
    assert [led.functions.claimable(c).call() for c in cs] == expected
    assert split["contributors"] == sum(expected)
    owed = expected[0]
    before = s.node.balance(cs[0])
    rcpt = s.node.send(led.functions.claim(), sender=cs[0])
    assert s.node.balance(cs[0]) - before + rcpt["gasUsed"] * rcpt["effectiveGasPrice"] == owed
    expect_revert(led, led.functions.claim(), "NothingToClaim", sender=cs[0])
    conserved(s)


def test_challenge_upheld_slashes_node(suite: Suite) -> None:
    s, led, st, acc = suite, suite.ledger, suite.staking, suite.node.accounts
    m = setup_market(s)
    inf = pay(s, m["model"])
    s.node.send(
        led.functions.recordAttribution(inf, keccak(text="r"), contributors(s, [6]), [10_000]),
        sender=3,
    )
    bond = s.params["challenge_bond"]
    expect_revert(led, led.functions.challenge(inf), "SelfChallenge", sender=acc[3], value=bond)
    expect_revert(led, led.functions.challenge(inf), "WrongBond", sender=acc[4], value=bond - 1)
    s.node.send(led.functions.challenge(inf), sender=4, value=bond)
    expect_revert(led, led.functions.challenge(inf), "WrongStatus", sender=acc[4], value=bond)
    expect_revert(led, led.functions.finalize(inf), "WrongStatus", sender=acc[9])
    expect_revert(
        led, led.functions.resolve(inf, True), "AccessControlUnauthorizedAccount", sender=acc[4]
    )
    conserved(s)
    rcpt = s.node.send(led.functions.resolve(inf, True), sender=0)
    slashed = events(led, "ChallengeResolved", rcpt)[0]["slashed"]
    assert slashed == s.params["slash_amount"]
    assert st.functions.slashableOf(acc[3], NODE).call() == 1000 * OPEN - slashed
    assert led.functions.claimable(acc[4]).call() == bond + slashed  # challenger
    assert led.functions.claimable(acc[5]).call() == PRICE  # payer refunded
    assert led.functions.claimable(acc[6]).call() == 0  # the contested attribution pays nobody
    conserved(s)


def test_challenge_rejected_forfeits_bond(suite: Suite) -> None:
    s, led, acc = suite, suite.ledger, suite.node.accounts
    m = setup_market(s)
    inf = pay(s, m["model"])
    s.node.send(
        led.functions.recordAttribution(inf, keccak(text="r"), contributors(s, [6]), [10_000]),
        sender=3,
    )
    bond = s.params["challenge_bond"]
    s.node.send(led.functions.challenge(inf), sender=4, value=bond)
    s.node.send(led.functions.resolve(inf, False), sender=0)
    node_cut = PRICE * 2_000 // 10_000
    assert led.functions.claimable(acc[3]).call() == bond + node_cut  # the bond goes to the node
    assert led.functions.claimable(acc[4]).call() == 0
    assert led.functions.claimable(acc[6]).call() == PRICE * 5_000 // 10_000
    conserved(s)


def test_unrecorded_payment_can_be_cancelled(suite: Suite) -> None:
    s, led, acc = suite, suite.ledger, suite.node.accounts
    m = setup_market(s)
    inf = pay(s, m["model"])
    expect_revert(
        led, led.functions.cancelUnrecorded(inf), "RecordTimeoutNotReached", sender=acc[5]
    )
    s.node.increase_time(s.params["record_timeout_s"])
    expect_revert(led, led.functions.cancelUnrecorded(inf), "NotPayer", sender=acc[6])
    s.node.send(led.functions.cancelUnrecorded(inf), sender=5)
    assert led.functions.claimable(acc[5]).call() == PRICE
    conserved(s)


def test_claim_reentrancy_and_rejecting_receiver(suite: Suite) -> None:
    s, led, acc = suite, suite.ledger, suite.node.accounts
    evil = s.node.deploy("test/ReentrantReceiver")
    rejecting = s.node.deploy("test/RejectingReceiver")
    # Both contracts own a Datanet (so they are payees: the owner gets the pooled tail).
    reg = s.datanets
    create = reg.functions.createDatanet(keccak(text="dn"), "")._encode_transaction_data()
    snaps = []
    for c in (evil, rejecting):
        rcpt = s.node.send(c.functions.call(reg.address, 0, create), sender=4)
        did = int(events(reg, "DatanetCreated", rcpt)[0]["datanetId"])
        pub = reg.functions.publishSnapshot(
            did, 1, keccak(text="root"), 3, keccak(text="m"), []
        )._encode_transaction_data()
        fee = s.params["publish_fee"]
        s.node.send(c.functions.call(reg.address, fee, pub), sender=4, value=fee)
        snaps.append((did, 1))
    rcpt = s.node.send(
        s.models.functions.registerModel(
            keccak(text="b"), keccak(text="a"), keccak(text="c"), snaps, "", 10 * OPEN
        ),
        sender=2,
    )
    model = events(s.models, "ModelRegistered", rcpt)[0]["modelId"]
    s.node.send(s.staking.functions.stake(NODE), sender=3, value=1000 * OPEN)
    cs = sorted([evil.address, rejecting.address], key=lambda a: int(a, 16))
    inf = pay(s, model, 10 * OPEN)
    s.node.send(
        led.functions.recordAttribution(inf, keccak(text="r"), cs, [5_000, 5_000]), sender=3
    )
    s.node.increase_time(s.params["challenge_window_s"])
    s.node.send(led.functions.finalize(inf), sender=9)
    owed = led.functions.claimable(evil.address).call()
    claim = led.functions.claim()._encode_transaction_data()
    s.node.send(evil.functions.arm(led.address, claim), sender=4)
    s.node.send(evil.functions.call(led.address, 0, claim), sender=4)
    assert evil.functions.reentryBlocked().call() == 1
    assert evil.functions.received().call() == owed  # paid exactly once
    assert led.functions.claimable(evil.address).call() == 0
    # A receiver that refuses the payout: the claim reverts and the balance stays claimable.
    owed_r = led.functions.claimable(rejecting.address).call()
    expect_revert(
        led, rejecting.functions.call(led.address, 0, claim), "TransferFailed", sender=acc[4]
    )
    assert led.functions.claimable(rejecting.address).call() == owed_r
    conserved(s)


def test_pause_and_params(suite: Suite) -> None:
    s, led, acc = suite, suite.ledger, suite.node.accounts
    m = setup_market(s)
    expect_revert(
        led, led.functions.setParams(terms()), "AccessControlUnauthorizedAccount", sender=acc[1]
    )
    for bad in (
        terms(protocol=1_001),
        terms(owner=5_001),
        terms(node=5_001),
        terms(protocol=1_000, owner=5_000, node=2_001),  # contributors keep at least 20%
        terms(window=59),
        terms(window=31 * 24 * 3600),
        terms(timeout=0),
        terms(resolve=59),
        terms(bond=0),
        terms(bond=10**6 * OPEN + 1),
        terms(slash=10**7 * OPEN + 1),
    ):
        expect_revert(led, led.functions.setParams(bad), "OutOfBounds", sender=acc[0])
    s.node.send(led.functions.pause(), sender=0)
    expect_revert(
        led,
        led.functions.payForInference(m["model"], acc[3]),
        "EnforcedPause",
        sender=acc[5],
        value=PRICE,
    )
    s.node.send(led.functions.unpause(), sender=0)
    pay(s, m["model"])
    # Only the staking contract may send OPEN to the ledger directly (its receive()).
    expect_revert(led, PlainTransfer(s, led.address), "UnexpectedSender", sender=acc[5], value=OPEN)
    expect_revert(led, led.functions.claim(), "NothingToClaim", sender=acc[5])
    assert led.functions.hasRole(role("ARBITER_ROLE"), acc[0]).call()
