"""Scoring one query under a method and building the report from the scores (the two steps
of Attributor.attribute; see service.py for the entry point)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.attribution import report as R
from studio.attribution.span import SpanConfig, default_min_len
from studio.core.cancel import check
from studio.core.errors import AttributionError

if TYPE_CHECKING:
    from studio.attribution.service import Attributor, ModelInfo


def _first(d: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if isinstance(d, dict) and d.get(k) is not None:
            return d[k]
    return default


def _pad_id(tok: Any) -> int:
    for t in (tok.pad_token_id, tok.eos_token_id, 0):
        if t is not None:
            return int(t)
    return 0


HYBRID_RULE = (
    "score = 0.5 * gradient share + 0.5 * span share, where a share is the record's clipped "
    "score divided by the sum over records; a method with no positive score gives its half "
    "to the other"
)
MAX_SPANS_PER_RECORD = 8  # in output order; the full list is in the report's "spans"


@dataclass
class Scored:
    """One query's per-record scores under a method, before the report is built."""

    method: str
    records: list[dict[str, Any]]  # datanet, version, record_id, contributor, leaf (sorted)
    scores: np.ndarray  # the method's score per record (rounded)
    gradient: np.ndarray | None  # the gradient (or exact) part, per record
    span: np.ndarray | None  # the span part, per record
    record_spans: dict[int, list[dict[str, Any]]]  # record index -> output spans it contains
    spans: list[dict[str, Any]]  # every output span found in the training data
    output_tokens: int
    params: dict[str, Any]


def score_query(
    att: Attributor,
    info: ModelInfo,
    ids: Sequence[int],
    labels: Sequence[int],
    *,
    method: str,
    span_min_len: int | None = None,
    exact_block: int | None = None,
    cancel: Any = None,
) -> Scored:
    """Per-record scores of one query (token ids + labels) under a method, with the spans
    of the output found in the training data (shown whatever the method)."""
    from studio.attribution import gradients as G

    model, tok = att.load(info.id)
    out_ids = [t for t, y in zip(ids, labels, strict=True) if y != G.IGNORE]
    gi, mods = att.gradient_parts(info) if method in ("gradient", "hybrid") else (None, [])
    rows: list[dict[str, Any]] = []
    grad_scores = span_scores = None
    params: dict[str, Any] = {}
    if gi is not None:
        cfg = gi.config
        qg = G.batch_gradients(model, mods, [(ids, labels)], _pad_id(tok))[0]
        grad_scores = gi.scores(qg)
        rows = gi.records
        params["gradient"] = {
            "seed": cfg.seed,
            "proj_dim": cfg.proj_dim,
            "damping": cfg.damping_for(gi.meta["sketch"]),
            "curvature": cfg.curvature,
            "examples": gi.meta["n"],
            "dim": gi.meta["dim"],
        }
    check(cancel)
    if method == "exact":
        from studio.attribution.replay import exact_scores

        rows, grad_scores, params["exact"] = exact_scores(
            att, info, [(ids, labels)], block=exact_block, cancel=cancel
        )
        grad_scores = grad_scores[0]
    si = att._span_index(info, tok)
    check(cancel)
    scfg = SpanConfig(min_len=span_min_len or default_min_len(len(tok)))
    spans = si.find_spans(out_ids, scfg)
    if method in ("span", "hybrid"):
        by_row = si.record_scores(spans, scfg)
        span_scores = np.zeros(len(si.records))
        for row_i, value in by_row.items():
            span_scores[row_i] = value
        rows = rows or si.records
        params["span"] = {
            **scfg.to_dict(),
            "weight": "sum of -log unigram p over span tokens / occurrences",
        }
        if gi is not None and [(x["datanet"], x["record_id"]) for x in gi.records] != [
            (x["datanet"], x["record_id"]) for x in si.records
        ]:
            raise AttributionError(
                "The gradient and span indexes cover different records.",
                hint=f"Rebuild them: studio attribution index {info.id}.",
            )
    if method == "hybrid":
        params["hybrid"] = HYBRID_RULE

    # Rows (examples) -> records: a long text record may have several windows.
    keys = sorted({(x["datanet"], x["version"], x["record_id"]) for x in rows})
    pos = {k: i for i, k in enumerate(keys)}
    first_row: dict[tuple[str, int, int], dict[str, Any]] = {}
    for x in rows:
        first_row.setdefault((x["datanet"], x["version"], x["record_id"]), x)
    recs = [first_row[k] for k in keys]

    def per_record(vals: np.ndarray | None) -> np.ndarray | None:
        if vals is None:
            return None
        acc = np.zeros(len(keys))
        for x, v in zip(rows, vals, strict=True):
            acc[pos[(x["datanet"], x["version"], x["record_id"])]] += v
        return np.array([R.rounded(x) for x in acc])

    g = per_record(grad_scores)
    sp_rec = per_record(span_scores)
    if method in ("gradient", "exact"):
        final = g
    elif method == "span":
        final = sp_rec
    else:
        final = _hybrid(g, sp_rec)
    assert final is not None

    # Which output spans each record contains (shown with the record, whatever the method).
    row_to_rec: dict[int, int] = {}
    for i, x in enumerate(si.records):
        key = (x["datanet"], x["version"], x["record_id"])
        if key in pos:
            row_to_rec[i] = pos[key]
    rec_spans: dict[int, list[dict[str, Any]]] = {}
    span_list = []
    for sp in spans:
        text = tok.decode(out_ids[sp.start : sp.end], skip_special_tokens=True)
        span_list.append(
            {
                "text": text,
                "output_tokens": [sp.start, sp.end],
                "occurrences": sp.count,
                "weight": R.rounded(sp.weight),
            }
        )
        for rec_i in sorted({row_to_rec[x] for x in sp.records if x in row_to_rec}):
            rec_spans.setdefault(rec_i, []).append(
                {"text": text, "output_tokens": [sp.start, sp.end], "occurrences": sp.count}
            )
    return Scored(method, recs, final, g, sp_rec, rec_spans, span_list, len(out_ids), params)


def build_report(
    att: Attributor,
    info: ModelInfo,
    scored: Scored,
    *,
    prompt: str,
    output: str,
    generated: bool,
    top_k: int,
    owners: dict[str, str | None] | None = None,
    signer: Any = None,
) -> dict[str, Any]:
    """The report (records -> contributors -> bps), hashed and optionally signed."""
    method, recs, g, sp_rec = scored.method, scored.records, scored.gradient, scored.span
    ranked = R.rank_records(recs, list(scored.scores))
    params = dict(scored.params)
    names = [d["datanet"] for d in att.snapshots(info)]
    if owners is None:
        owners = att._owners(names)
    owners = {n: owners.get(n) for n in names}
    params["owners"] = owners
    payees, per_datanet, pool = R.split_weights(recs, ranked, top_k, owners)
    top = []
    for rank, (i, sc) in enumerate(ranked[:top_k], start=1):
        rec = recs[i]
        entry = {
            "rank": rank,
            "record_id": rec["record_id"],
            "datanet": rec["datanet"],
            "version": rec["version"],
            "contributor": rec["contributor"],
            "leaf": rec.get("leaf"),
            "score": sc,
            "spans": scored.record_spans.get(i, [])[:MAX_SPANS_PER_RECORD],
        }
        if method == "hybrid":
            entry["gradient_score"] = float(max(0.0, g[i])) if g is not None else 0.0
            entry["span_score"] = float(sp_rec[i]) if sp_rec is not None else 0.0
        top.append(entry)
    datanet_w = R.largest_remainder({k: v for k, v in per_datanet.items()})
    snaps = {d["datanet"]: d for d in att.snapshots(info)}
    rep: dict[str, Any] = {
        "format": R.FORMAT,
        "model": {
            "id": info.id,
            "base": _first(info.card, "base_model", "base"),
            "base_model_hash": info.card.get("base_model_hash"),
            "adapter_hash": info.card.get("adapter_hash"),
            "config_hash": info.card.get("config_hash"),
        },
        "snapshots": att.snapshots(info),
        "method": {"name": method, "params": params},
        "input": {"prompt": prompt, "prompt_hash": R.keccak_hex(prompt.encode("utf-8"))},
        "output": {
            "text": output,
            "output_hash": R.keccak_hex(output.encode("utf-8")),
            "tokens": scored.output_tokens,
            "generated": generated,
        },
        "records_scored": len(recs),
        "records_positive": len(ranked),
        "top_records": top,
        "spans": scored.spans,
        "pool": {"rule": R.POOL_RULE, "pooled": pool},
        "datanets": [
            {
                "datanet": d["contributor"],
                "version": snaps[d["contributor"]]["version"],
                "bps": d["bps"],
            }
            for d in datanet_w
        ],
        "weights": R.largest_remainder(payees),
    }
    rep["report_hash"] = R.compute_hash(rep)
    if signer is not None:
        rep = R.sign(rep, signer)
    return rep


def _hybrid(g: np.ndarray | None, s: np.ndarray | None) -> np.ndarray:
    parts = []
    for v in (g, s):
        if v is None:
            continue
        c = np.clip(v, 0, None)
        tot = float(c.sum())
        if tot > 0:
            parts.append(c / tot)
    if not parts:
        return np.zeros(len(g if g is not None else s))  # type: ignore[arg-type]
    return np.array([R.rounded(x) for x in sum(parts) / len(parts)])
