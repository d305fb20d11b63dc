"""Verifying a report: check its hash and signature, re-run it, compare field by field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.attribution import report as R
from studio.core.errors import AttributionError, NotFound

if TYPE_CHECKING:
    from studio.attribution.service import Attributor


def verify_report(att: Attributor, report: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Re-run a report and compare: {"match", "differences", "report_hash", "recomputed_hash", ...}."""
    rep = load_report(report)
    claimed = rep.get("report_hash")
    content_hash = R.compute_hash(rep)
    problems: list[str] = []
    if claimed != content_hash:
        problems.append("report_hash")
    sig_state = "absent"
    if rep.get("signature"):
        try:
            who = R.recover_signer({**rep, "report_hash": claimed})
            ok = who is not None and who.lower() == str(rep["signature"].get("signer", "")).lower()
        except Exception:  # noqa: BLE001 - a malformed signature is simply invalid
            ok = False
        sig_state = "valid" if ok else "invalid"
        if not ok:
            problems.append("signature")
    try:
        method = rep["method"]["name"]
        params = rep["method"]["params"]
        rerun = att.attribute(
            rep["model"]["id"],
            rep["input"]["prompt"],
            rep["output"]["text"],
            method=method,
            top_k=int(params["top_k"]),
            span_min_len=(params.get("span") or {}).get("min_len"),
            owners=params.get("owners"),
            exact_block=(params.get("exact") or {}).get("block"),
        )
    except (KeyError, TypeError) as e:
        raise AttributionError(
            f"The report is missing a field needed to re-run it ({e}).",
            hint="Pass a report written by studio attribute.",
        ) from e
    rerun["output"]["generated"] = rep.get("output", {}).get(
        "generated", rerun["output"]["generated"]
    )
    rerun["report_hash"] = R.compute_hash(rerun)
    differences = R.diff(R.body(rep), R.body(rerun))
    problems += differences
    # Another CPU may round a float32 gradient differently in the last bit; a difference that
    # is only that (scores within 1e-4 relative, bps within 1) is reported as such.
    noise = [
        p for p in differences if R.within_tolerance(R.get_path(rep, p), R.get_path(rerun, p), p)
    ]
    return {
        "match": not problems,
        "match_within_tolerance": claimed == content_hash
        and sig_state != "invalid"
        and set(differences) == set(noise),
        "float_noise": noise,
        "differences": problems,
        "report_hash": claimed,
        "recomputed_hash": rerun["report_hash"],
        "signature": sig_state,
        "signer": (rep.get("signature") or {}).get("signer"),
    }


def load_report(report: str | Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(report, dict):
        return report
    p = Path(report)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise NotFound(f"No report at {p}.") from e
    except (OSError, ValueError) as e:
        raise AttributionError(
            f"{p} is not a readable report ({e}).",
            hint="Pass the JSON written by studio attribute.",
        ) from e
    if not isinstance(data, dict) or data.get("format") != R.FORMAT:
        raise AttributionError(
            f"{p} is not an attribution report.", hint="Pass the JSON written by studio attribute."
        )
    return data
