"""studio attribute MODEL ... and studio attribution index|verify."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from studio.attribution.gradients import GradientConfig
from studio.commands import Context, arg, command
from studio.core.errors import InvalidInput, WalletError


def _signer(ctx: Context) -> Any:
    """The active wallet's account, unlocked (the chain layer asks for the password)."""
    wallet = ctx.studio.wallet
    for name in ("unlock_active", "unlock"):
        fn = getattr(wallet, name, None)
        if fn is not None:
            try:
                return fn(password_file=ctx.password_file)
            except TypeError:
                return fn()
    raise WalletError(
        "This build cannot unlock a wallet to sign reports.", hint="Run without --sign."
    )


def _print_report(ctx: Context, rep: dict[str, Any]) -> None:
    out = rep["output"]
    ctx.say(f"Output{' (generated)' if out['generated'] else ''}: {out['text']}")
    ctx.say(
        f"Method: {rep['method']['name']}  ·  {rep['records_positive']} of {rep['records_scored']} "
        "records with positive influence"
    )
    ctx.say("Top contributions:")
    if not rep["top_records"]:
        ctx.say("  (none: no record had a positive score)")
    for r in rep["top_records"]:
        ctx.say(
            f"  #{r['rank']:<2} record {r['record_id']} in {r['datanet']}@{r['version']} by "
            f"{r['contributor']}  score {r['score']:.4g}"
        )
        for sp in r["spans"][:3]:
            ctx.say(f"        matched: “{sp['text'].strip()}”")
    ctx.say("Weights (basis points of the fee):")
    for w in rep["weights"]:
        ctx.say(f"  {w['contributor']}  {w['bps']:>5} bps")
    for p in rep["pool"]["pooled"]:
        ctx.say(f"  (pooled to {p['datanet']}'s owner {p['owner']}: score {p['score']:.4g})")
    ctx.say(f"Report hash: {rep['report_hash']}")
    if rep.get("signature"):
        ctx.say(f"Signed by {rep['signature']['signer']}")


@command(
    "attribute",
    "Which Datanet records and contributors shaped a model's answer (a report with weights).",
    arg("model", help="fine-tuned model id (studio model list)"),
    arg("--prompt", required=True, help="the question"),
    arg("--output", default=None, help="the answer to attribute (default: generate it)"),
    arg(
        "--method",
        default="gradient",
        choices=("gradient", "span", "hybrid", "exact"),
        help="gradient: the fast index; exact: differentiate through the training run "
        "(slower, needs the version's replay record)",
    ),
    arg(
        "--estimate",
        action="store_true",
        help="with --method exact: show the memory and time it needs, then stop",
    ),
    arg("--top", type=int, default=10, help="records named in the report (the rest are pooled)"),
    arg("--max-new-tokens", type=int, default=64, help="when generating the output"),
    arg(
        "--save",
        default=None,
        metavar="PATH",
        help="write the report here (default: DATA_HOME/reports/)",
    ),
    arg(
        "--sign", action="store_true", help="sign the report hash with the active wallet (EIP-191)"
    ),
    wallet=True,
)
def attribute(ctx: Context, args: argparse.Namespace) -> Any:
    if args.top < 1:
        raise InvalidInput("--top must be at least 1.")
    attributor = ctx.studio.attribution
    if args.method == "exact":
        est = attributor.exact_estimate(args.model)
        ctx.say(f"Exact attribution: {est['summary']}")
        if args.estimate:
            return est
    elif args.estimate:
        raise InvalidInput("--estimate goes with --method exact.")
    signer = _signer(ctx) if args.sign else None
    rep = attributor.attribute(
        args.model,
        args.prompt,
        args.output,
        method=args.method,
        top_k=args.top,
        signer=signer,
        max_new_tokens=args.max_new_tokens,
    )
    path = attributor.save_report(rep, args.save)
    _print_report(ctx, rep)
    ctx.say(f"Saved: {path}  (check it: studio attribution verify {path})")
    return rep


@command(
    "attribution index",
    "Build the attribution index of a fine-tuned model (gradients + spans).",
    arg("model", help="fine-tuned model id"),
    arg(
        "--proj-dim",
        type=int,
        default=None,
        help=f"projection size per LoRA matrix side (default {GradientConfig().proj_dim})",
    ),
    arg("--seed", type=int, default=0, help="projection seed"),
    arg("--force", action="store_true", help="rebuild even if an up-to-date index exists"),
)
def index(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.attribution.gradients import GradientConfig

    cfg = GradientConfig(seed=args.seed, **({"proj_dim": args.proj_dim} if args.proj_dim else {}))
    if cfg.proj_dim < 1:
        raise InvalidInput("--proj-dim must be at least 1.")
    res = ctx.studio.attribution.build_index(args.model, config=cfg, force=args.force)
    if res["reused"]:
        ctx.say(f"The index of {res['model']} is up to date (use --force to rebuild).")
    ctx.say(
        f"Indexed {res['records']} records ({res['examples']} examples, {res['dim']} gradient dims, "
        f"{res['span_tokens']} tokens for spans) in {res['path']}"
    )
    return res


@command(
    "attribution verify",
    "Re-run an attribution report and say whether it matches.",
    arg("report", help="REPORT.json written by studio attribute"),
)
def verify(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.attribution.report import summarize_fields
    from studio.core.errors import AttributionError

    res = ctx.studio.attribution.verify(Path(args.report))
    signed = " (signature valid)" if res["signature"] == "valid" else ""
    if res["match"]:
        ctx.say(f"match: {res['report_hash']}{signed}")
        return res
    if res["match_within_tolerance"]:
        # Same records, contributors and weights up to float rounding on another CPU.
        ctx.say(
            f"match within float tolerance: {res['report_hash']}{signed}; "
            f"last-digit differences in {summarize_fields(res['float_noise'])}"
        )
        return res
    if ctx.json:
        ctx.emit_result(res)
    raise AttributionError(
        f"mismatch: {summarize_fields(res['differences'])} differ from a re-run "
        f"(recomputed hash {res['recomputed_hash']})."
    )
