from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from studio.attribution import report as R

ADDRS = [f"0x{i:040x}" for i in range(1, 40)]


def test_largest_remainder_ties_go_to_lower_address() -> None:
    w = {ADDRS[2]: Fraction(1), ADDRS[0]: Fraction(1), ADDRS[1]: Fraction(1)}
    out = R.largest_remainder(w)
    assert [d["bps"] for d in out] == [3334, 3333, 3333]
    assert out[0]["contributor"] == ADDRS[0]
    assert [d["contributor"] for d in out[1:]] == [ADDRS[1], ADDRS[2]]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=30))
def test_bps_always_sum_to_10000(vals: list[float]) -> None:
    w = {ADDRS[i]: Fraction(R.rounded(v)) for i, v in enumerate(vals)}
    if sum(w.values()) == 0:
        return
    out = R.largest_remainder(w)
    assert sum(d["bps"] for d in out) == 10_000
    assert all(d["bps"] > 0 for d in out)
    assert out == sorted(out, key=lambda d: (-d["bps"], d["contributor"]))
    # Order of insertion does not matter.
    assert R.largest_remainder(dict(reversed(list(w.items())))) == out


def test_rank_clips_negative_and_breaks_ties_by_record() -> None:
    rows = [
        {"datanet": "a", "version": 1, "record_id": i, "contributor": ADDRS[i]} for i in range(4)
    ]
    ranked = R.rank_records(rows, [0.5, -2.0, 0.5, 1.0])
    assert ranked == [(3, 1.0), (0, 0.5), (2, 0.5)]


def test_pooling_rule() -> None:
    rows = [
        {"datanet": "a", "version": 1, "record_id": i, "contributor": ADDRS[i]} for i in range(3)
    ]
    ranked = R.rank_records(rows, [3.0, 2.0, 1.0])
    payees, per_dn, pool = R.split_weights(rows, ranked, 1, {"a": ADDRS[9]})
    assert payees == {ADDRS[0]: 3, ADDRS[9]: 3}
    assert pool == [{"datanet": "a", "owner": ADDRS[9], "score": 3.0}]
    payees, _, pool = R.split_weights(rows, ranked, 1, {"a": None})
    assert payees == {ADDRS[0]: 3, ADDRS[1]: 2, ADDRS[2]: 1} and pool == []
    payees, _, _ = R.split_weights(rows, [], 1, {"a": ADDRS[9]})
    assert payees == {ADDRS[9]: 1}


def test_hash_ignores_signature_and_is_canonical() -> None:
    a = {"b": 1, "a": [1, 2, {"z": "é"}], "report_hash": "x"}
    b = {"a": [1, 2, {"z": "é"}], "b": 1, "signature": {"s": 1}}
    assert R.compute_hash(a) == R.compute_hash(b)
    assert R.compute_hash(a) != R.compute_hash({**a, "b": 2})


def test_diff_names_fields() -> None:
    a = {"weights": [{"bps": 1}, {"bps": 2}], "x": {"y": 1}}
    b = {"weights": [{"bps": 1}, {"bps": 3}], "x": {"y": 1, "z": 2}}
    assert R.diff(a, b) == ["weights[1].bps", "x.z"]


def test_tolerance_only_for_float_noise() -> None:
    rep = {"top_records": [{"score": 1.23456, "contributor": "a"}], "weights": [{"bps": 5000}]}
    assert R.get_path(rep, "top_records[0].score") == 1.23456
    assert R.get_path(rep, "missing[3].x") is None
    assert R.within_tolerance(1.23456, 1.23457, "top_records[0].score")
    assert not R.within_tolerance(1.2, 1.3, "top_records[0].score")
    # Basis points are payouts: any difference is a mismatch, never noise.
    assert not R.within_tolerance(5000, 5001, "weights[0].bps")
    assert not R.within_tolerance(5000.0, 5000.5, "weights[0].bps")
    assert not R.within_tolerance(18, 19, "records_positive")  # counts are not floats either
    assert not R.within_tolerance("a", "b", "top_records[0].contributor")
