"""Fee split conservation, as properties checked against the deployed AttributionLedger.

Rule (contract NatSpec): owner/node/protocol shares are floors of fee·bps/10⁴, the contributors'
pool is the rest, contributor i gets floor(pool·bps_i/10⁴), and every remainder goes to the
treasury — so the credits sum to the fee exactly, for any fee, split and weights."""

from __future__ import annotations

from typing import Any

from chain_kit import OPEN, Suite, events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_contracts_ledger import conserved, pay, setup_market

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
    p = draw(st.integers(0, BPS))
    o = draw(st.integers(0, BPS - p))
    n = draw(st.integers(0, BPS - p - o))
    return p, o, n


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
    suite.node.send(led.functions.setParams(split, 3_600, 10 * OPEN, 100 * OPEN), sender=0)
    t, o, n, cs = led.functions.previewSplit(fee, bps).call()
    assert t + o + n + sum(cs) == fee
    assert (t, o, n, list(cs)) == expected(fee, split, bps)
    # The treasury's rounding extra is under one wei per contributor.
    base = fee * split[0] // BPS
    assert 0 <= t - base < len(bps)


@fixture_settings(12)
@given(fee=st.integers(1 * OPEN, 10**24), bps=weights(max_n=8), split=splits())
def test_finalized_credits_sum_to_fee_and_balance_is_backed(
    suite: Suite, fee: int, bps: list[int], split: tuple[int, int, int]
) -> None:
    s, led = suite, suite.ledger
    if not hasattr(s, "_market"):
        s._market = setup_market(s)  # type: ignore[attr-defined]
    s.node.send(led.functions.setParams(split, 60, 10 * OPEN, 100 * OPEN), sender=0)
    cs = sorted(
        (s.node.w3.to_checksum_address(f"0x{i + 1:040x}") for i in range(len(bps))),
        key=lambda a: int(a, 16),
    )
    inf = pay(s, s._market["model"], fee)  # type: ignore[attr-defined]
    s.node.send(led.functions.recordAttribution(inf, b"\x01" * 32, cs, bps), sender=3)
    s.node.increase_time(60)
    rcpt = s.node.send(led.functions.finalize(inf), sender=9)
    credited = [e for e in events(led, "Credited", rcpt) if e["inferenceId"] == inf]
    assert sum(e["amount"] for e in credited) == fee
    conserved(s)
