"""Text for the model and attribution operations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .base import renders, says

if TYPE_CHECKING:
    from studio.commands import Context


# -- models -------------------------------------------------------------------------------------


def _fmt_datanets(ds: Iterable[Mapping[str, Any]]) -> str:
    return ", ".join(f"{d['name']}@{d['version']}" for d in ds) or "—"


@renders("model list")
def _model_list(items: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    for m in items:
        if m.kind == "base":
            ready = "" if m.get("ready") else " (converted on first use)"
            ctx.say(f"  base  {m.id:<28} {m.get('name')}{ready}")
            continue
        total = m.get("total_steps")
        prog = f" {m.get('step')}/{total}" if m.status != "ready" and total else ""
        ctx.say(
            f"  tuned {m.id:<28} {m.status}{prog}  base {m.base}  data {_fmt_datanets(m.datanets)}"
        )
        if m.get("adapter_hash"):
            ctx.say(
                f"        adapter {m.get('adapter_hash')[:16]}…  config {m.get('config_hash')[:16]}…"
            )


def _training(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    from studio.train.results import TrainingStarted

    if isinstance(r, TrainingStarted):
        if "datanet" in kw:  # `model train --detach` says how to follow it
            ctx.say(
                f"  job running as pid {r.pid}; follow with `studio model list`, stop with `studio model cancel {r.id}`"
            )
        return
    m = (r.card or {}).get("metrics", {})
    ctx.say(f"Model {r.id} ready.")
    if m.get("eval_loss_before") is not None:
        ctx.say(f"  validation loss {m['eval_loss_before']:.4f} → {m['eval_loss_after']:.4f}")
    ctx.say(f"  train loss {m['train_loss_first']:.4f} → {m['train_loss_last']:.4f}")
    ctx.say(f"  adapter  {r.adapter_dir}")
    from pathlib import Path

    ctx.say(f"  card     {Path(r.dir) / 'card.md'}")


renders("model train")(_training)
renders("model resume")(_training)


@renders("model cancel")
def _model_cancel(st: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    model = kw["model"]
    ctx.say(
        f"{model}: {st.status} at step {st.get('step')}"
        + (f"; `studio model resume {model}` continues it" if st.status != "ready" else "")
    )


@renders("model eval")
def _model_eval(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    d = r.datanet
    ctx.say(f"{r.model} on {d['name']}@{d['version']} ({r.examples} examples)")
    ctx.say(f"  loss {r.loss:.4f}  perplexity {r.perplexity:.2f}")
    ctx.say(f"  base loss {r.base_loss:.4f}  perplexity {r.base_perplexity:.2f}")


says("model export", lambda r, kw: f"Merged model written to {r.dir}")


says("model register", lambda r, kw: f"Registered {r.local_id}: {r.to_dict()}")


@renders("model generate")
def _model_generate(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    ctx.end_line()  # the tokens streamed as they came


# -- attribution --------------------------------------------------------------------------------


def report_lines(rep: Mapping[str, Any]) -> list[str]:
    """An attribution report as text (the demo prints it too)."""
    out = rep["output"]
    lines = [
        f"Output{' (generated)' if out['generated'] else ''}: {out['text']}",
        f"Method: {rep['method']['name']}  ·  {rep['records_positive']} of {rep['records_scored']} "
        "records with positive influence",
        "Top contributions:",
    ]
    if not rep["top_records"]:
        lines.append("  (none: no record had a positive score)")
    for r in rep["top_records"]:
        lines.append(
            f"  #{r['rank']:<2} record {r['record_id']} in {r['datanet']}@{r['version']} by "
            f"{r['contributor']}  score {r['score']:.4g}"
        )
        for sp in r["spans"][:3]:
            lines.append(f"        matched: “{sp['text'].strip()}”")
    lines.append("Weights (basis points of the fee):")
    for w in rep["weights"]:
        lines.append(f"  {w['contributor']}  {w['bps']:>5} bps")
    for p in rep["pool"]["pooled"]:
        lines.append(f"  (pooled to {p['datanet']}'s owner {p['owner']}: score {p['score']:.4g})")
    lines.append(f"Report hash: {rep['report_hash']}")
    if rep.get("signature"):
        lines.append(f"Signed by {rep['signature']['signer']}")
    return lines


@renders("attribute")
def _attribute(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if not hasattr(r, "report"):  # --method exact --estimate: the cost, nothing run
        ctx.say(f"Exact attribution: {r.summary}" + ("" if r.fits else " (does not fit here)"))
        return
    for line in report_lines(r.report):
        ctx.say(line)
    ctx.say(f"Saved: {r.path}  (check it: studio attribution verify {r.path})")


@renders("attribution index")
def _index(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    if r.reused:
        ctx.say(f"The index of {r.model} is up to date (use --force to rebuild).")
    ctx.say(
        f"Indexed {r.records} records ({r.examples} examples, {r.dim} gradient dims, "
        f"{r.span_tokens} tokens for spans) in {r.path}"
    )


@renders("attribution verify")
def _attribution_verify(r: Any, kw: Mapping[str, Any], ctx: Context) -> None:
    from studio.attribution.report import summarize_fields

    signed = " (signature valid)" if r.signature == "valid" else ""
    if r.match:
        ctx.say(f"match: {r.report_hash}{signed}")
    elif r.match_within_tolerance:
        # Same records, contributors and weights up to float rounding on another CPU.
        ctx.say(
            f"match within float tolerance: {r.report_hash}{signed}; "
            f"last-digit differences in {summarize_fields(r.float_noise)}"
        )
