"""Attribution reports: records -> contributions -> contributors and Datanets, basis points,
canonical JSON, keccak hash, EIP-191 signature, and field-by-field comparison.

Rules (a validator re-running a report must reach the same bytes):

* Scores are rounded to 6 significant digits before anything is derived from them; every
  weight below is then computed exactly with fractions, so float noise in the last bits of a
  gradient cannot move a basis point.
* Negative influence is clipped to 0 (a record that made the answer less likely earns nothing).
* Records are ranked by score, ties by (Datanet, version, record id). The top K records with a
  positive score pay their own contributor. **Pooling rule:** the positive score of every record
  ranked below K is pooled per Datanet and paid to that Datanet's owner; when a Datanet has no
  owner on record, its pooled score goes to the contributors of its lower-ranked records in
  proportion to their scores (i.e. no pooling).
* When no record has a positive score there is no evidence for anyone: the fee goes in equal
  parts to the Datanets' owners (or, without owners, to every contributor of the snapshots).
* Basis points: floor(10,000 * w / W) for each payee, then the remaining points go one each to
  the largest remainders, ties to the lower address (lower-case hex); they always sum to 10,000.
  Payees with 0 bps are dropped; the list is sorted by bps descending, then address.
* The report hash is keccak256 of the canonical JSON (sorted keys, no whitespace, UTF-8) of the
  report without ``report_hash`` and ``signature``; the signature is EIP-191 (personal_sign) over
  the 32 hash bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

from studio.core.errors import AttributionError

FORMAT = "openledger.attribution-report/1"
TOTAL_BPS = 10_000
UNSIGNED_FIELDS = ("report_hash", "signature")


def rounded(x: float) -> float:
    """The fixed rounding applied to every score that enters a report (6 significant digits)."""
    x = float(x)
    if x != x or x in (float("inf"), float("-inf")):
        return 0.0
    r = float(f"{x:.6g}")
    return 0.0 if r == 0 else r


def canonical_json(obj: Any) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def keccak_hex(data: bytes) -> str:
    from eth_hash.auto import keccak

    return "0x" + keccak(data).hex()


def body(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in UNSIGNED_FIELDS}


def compute_hash(report: dict[str, Any]) -> str:
    return keccak_hex(canonical_json(body(report)))


def largest_remainder(weights: dict[str, Fraction], total: int = TOTAL_BPS) -> list[dict[str, Any]]:
    """Split `total` points by weight; exact, deterministic, sums to total (see module doc)."""
    items = {k: Fraction(v) for k, v in weights.items() if v > 0}
    w_sum = sum(items.values(), Fraction(0))
    if w_sum <= 0:
        raise AttributionError("Nothing to split: every weight is zero.")
    base: dict[str, int] = {}
    rema: list[tuple[Fraction, str]] = []
    for k, v in items.items():
        share = v * total / w_sum
        base[k] = int(share)  # floor (share >= 0)
        rema.append((share - base[k], k))
    left = total - sum(base.values())
    rema.sort(key=lambda t: (-t[0], t[1].lower()))
    for _, k in rema[:left]:
        base[k] += 1
    pairs = sorted(((k, v) for k, v in base.items() if v > 0), key=lambda t: (-t[1], t[0].lower()))
    return [{"contributor": k, "bps": v} for k, v in pairs]


def rank_records(
    rows: Sequence[dict[str, Any]], scores: Sequence[float]
) -> list[tuple[int, float]]:
    """(row, rounded clipped score) for rows with a positive score, best first, fixed tie-break."""
    scored = [(i, max(0.0, rounded(s))) for i, s in enumerate(scores)]
    scored = [(i, s) for i, s in scored if s > 0]
    scored.sort(
        key=lambda t: (-t[1], rows[t[0]]["datanet"], rows[t[0]]["version"], rows[t[0]]["record_id"])
    )
    return scored


def split_weights(
    rows: Sequence[dict[str, Any]],
    ranked: Sequence[tuple[int, float]],
    top_k: int,
    owners: dict[str, str | None],
) -> tuple[dict[str, Fraction], dict[str, Fraction], list[dict[str, Any]]]:
    """Contributor weights, Datanet weights and the pooled amounts, per the module's rules."""
    payees: dict[str, Fraction] = {}
    per_datanet: dict[str, Fraction] = {}
    pooled: dict[str, Fraction] = {}
    for rank, (i, s) in enumerate(ranked):
        row, w = rows[i], Fraction(s)
        per_datanet[row["datanet"]] = per_datanet.get(row["datanet"], Fraction(0)) + w
        owner = owners.get(row["datanet"])
        if rank < top_k or not owner:
            payees[row["contributor"]] = payees.get(row["contributor"], Fraction(0)) + w
        else:
            pooled[row["datanet"]] = pooled.get(row["datanet"], Fraction(0)) + w
            payees[owner] = payees.get(owner, Fraction(0)) + w
    if not ranked:
        who = sorted({o for o in owners.values() if o}) or sorted({r["contributor"] for r in rows})
        payees = {a: Fraction(1) for a in who}
        per_datanet = {d: Fraction(1) for d in sorted({r["datanet"] for r in rows})}
    pool = [
        {"datanet": d, "owner": owners.get(d), "score": float(v)} for d, v in sorted(pooled.items())
    ]
    return payees, per_datanet, pool


POOL_RULE = (
    "top-K records pay their contributors; the positive score of lower-ranked records goes to "
    "their Datanet's owner (no owner: to those records' contributors); no positive score: equal "
    "parts to the Datanet owners"
)


def sign(report: dict[str, Any], signer: Any) -> dict[str, Any]:
    """Add an EIP-191 signature by `signer` (anything with .address and .sign_message(bytes))."""
    h = bytes.fromhex(report["report_hash"][2:])
    sig = signer.sign_message(h)
    sig = getattr(sig, "signature", sig)
    if isinstance(sig, bytes | bytearray):
        sig_hex = "0x" + bytes(sig).hex()
    else:
        sig_hex = str(sig) if str(sig).startswith("0x") else "0x" + str(sig)
    out = dict(report)
    out["signature"] = {"scheme": "eip191", "signer": str(signer.address), "signature": sig_hex}
    return out


def recover_signer(report: dict[str, Any]) -> str | None:
    sig = report.get("signature")
    if not sig:
        return None
    from eth_account import Account
    from eth_account.messages import encode_defunct

    msg = encode_defunct(primitive=bytes.fromhex(report["report_hash"][2:]))
    return str(Account.recover_message(msg, signature=sig["signature"]))


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Dotted paths where two JSON values differ (lists compared item by item)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            p = f"{path}.{k}" if path else k
            if k not in a or k not in b:
                out.append(p)
            else:
                out.extend(diff(a[k], b[k], p))
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = []
        for i in range(max(len(a), len(b))):
            p = f"{path}[{i}]"
            if i >= len(a) or i >= len(b):
                out.append(p)
            else:
                out.extend(diff(a[i], b[i], p))
        return out
    if type(a) is not type(b) and not (isinstance(a, int | float) and isinstance(b, int | float)):
        return [path]
    return [] if a == b else [path]


def get_path(obj: Any, path: str) -> Any:
    """The value at a dotted path as produced by diff() (None when absent)."""
    import re

    cur = obj
    for name, idx in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        try:
            cur = cur[int(idx)] if idx else cur[name]
        except (KeyError, IndexError, TypeError):
            return None
    return cur


def within_tolerance(a: Any, b: Any, path: str, rel: float = 1e-4) -> bool:
    """True when a and b are float scores that differ only as float noise would. Never for
    integers or basis points: those are payouts and counts, where one off is a real change."""
    if not (isinstance(a, float) and isinstance(b, float)) or path.endswith(".bps"):
        return False
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-12)


def summarize_fields(paths: Iterable[str], limit: int = 8) -> str:
    paths = list(paths)
    more = f" (+{len(paths) - limit} more)" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more
