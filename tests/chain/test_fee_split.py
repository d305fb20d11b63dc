"""Fee split conservation, as properties checked against the deployed AttributionLedger.

Rule (contract NatSpec): owner/node/protocol shares are floors of fee·bps/10⁴, the contributors'
pool is the rest, contributor i gets floor(pool·bps_i/10⁴), and every remainder goes to the
treasury — so the credits sum to the fee exactly, for any fee, split and weights."""

from __future__ import annotations

from typing import Any

from chain_kit import OPEN, Suite, events, publish_bound, terms
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_contracts_ledger import NODE, PRICE, conserved, pay

BPS = 10_000


def fixture_settings(n: int) -> settings:
    return settings(
        suppress_health_check=[HealthCheck.function_scoped_fixture],
        deadline=None,
        derandomize=True,
        max_examples=n,
        database=None,
    )


@st.composite
def weights(draw: Any, max_n: int = 64) -> list[int]:
    """n positive basis-point weights summing to exactly 10,000."""
    n = draw(st.integers(1, max_n))
    cuts = sorted(
        draw(st.lists(st.integers(1, BPS - 1), min_size=n - 1, max_size=n - 1, unique=True))
    )
    bounds = [0, *cuts, BPS]
    return [bounds[i + 1] - bounds[i] for i in range(n)]


@st.composite
def splits(draw: Any) -> tuple[int, int, int]:
    """Every split the ledger's bounds allow (protocol ≤ 10%, owner and node ≤ 50%, contributors
    ≥ 20%)."""
    p = draw(st.integers(0, 1_000))
    o = draw(st.integers(0, min(5_000, 8_000 - p)))
    n = draw(st.integers(0, min(5_000, 8_000 - p - o)))
    return p, o, n


def set_split(s: Suite, split: tuple[int, int, int], window: int = 3_600) -> None:
    p, o, n = split
    s.node.send(
        s.ledger.functions.setParams(terms(protocol=p, owner=o, node=n, window=window)), sender=0
    )


CONTRIBUTOR_KEYS = ["0x" + keccak(text=f"fee-split contributor {i}").hex() for i in range(8)]


def expected(
    fee: int, split: tuple[int, int, int], bps: list[int]
) -> tuple[int, int, int, list[int]]:
    p, o, n = split
    owner, node, base = fee * o // BPS, fee * n // BPS, fee * p // BPS
    pool = fee - owner - node - base
    cs = [pool * b // BPS for b in bps]
    return base + pool - sum(cs), owner, node, cs


@fixture_settings(60)
@given(fee=st.integers(1, 10**30), split=splits(), bps=weights())
def test_preview_split_conserves_every_wei(
    suite: Suite, fee: int, split: tuple[int, int, int], bps: list[int]
) -> None:
    led = suite.ledger
    set_split(suite, split)
    t, o, n, cs = led.functions.previewSplit(fee, bps).call()
    assert t + o + n + sum(cs) == fee
    assert (t, o, n, list(cs)) == expected(fee, split, bps)
    # The treasury's rounding extra is under one wei per contributor.
    base = fee * split[0] // BPS
    assert 0 <= t - base < len(bps)


@fixture_settings(12)
@given(fee=st.integers(1, 10**24), bps=weights(max_n=8), split=splits())
def test_finalized_credits_sum_to_fee_and_balance_is_backed(
    suite: Suite, fee: int, bps: list[int], split: tuple[int, int, int]
) -> None:
    s, led = suite, suite.ledger
    if not hasattr(s, "_market"):
        # Eight contributors bound in one snapshot, a model on it, a staked node (acc3).
        snap = publish_bound(s, CONTRIBUTOR_KEYS)
        rcpt = s.node.send(
            s.models.functions.registerModel(
                keccak(text="b"),
                keccak(text="a"),
                keccak(text="c"),
                [(snap["datanet"], 1)],
                "",
                PRICE,
            ),
            sender=2,
        )
        s.node.send(s.staking.functions.stake(NODE), sender=3, value=1000 * OPEN)
        s._market = {"model": events(s.models, "ModelRegistered", rcpt)[0]["modelId"]}  # type: ignore[attr-defined]
        s._bound = [a for _, a in snap["rows"]]  # type: ignore[attr-defined]
    set_split(s, split, window=60)
    cs = sorted(s._bound[: len(bps)], key=lambda a: int(a, 16))  # type: ignore[attr-defined]
    # The fee is the model's price: set it to the drawn fee first (the model owner, acc2).
    s.node.send(s.models.functions.setPrice(s._market["model"], fee), sender=2)  # type: ignore[attr-defined]
    inf = pay(s, s._market["model"], fee)  # type: ignore[attr-defined]
    s.node.send(led.functions.recordAttribution(inf, b"\x01" * 32, cs, bps), sender=3)
    s.node.increase_time(60)
    rcpt = s.node.send(led.functions.finalize(inf), sender=9)
    credited = [e for e in events(led, "Credited", rcpt) if e["inferenceId"] == inf]
    assert sum(e["amount"] for e in credited) == fee
    conserved(s)
