"""Demo stage: Proof of Attribution on the model the train stage fine-tuned.

Builds the attribution index, asks a question whose answer lives in one contributor's data (the
lighthouse keeper's tide log in the sample Datanet), shows the model's own answer and who shaped
it, then attributes the answer as written in the Datanet, prints the top contributions with the
spans that matched and the fee weights, saves the report (signed when the chain stage left an
account) and verifies it by re-running it."""

from __future__ import annotations

import time
from typing import Any

from studio.commands import Context
from studio.core.errors import StudioError

QUESTION = "What does the keeper of Skerry Point do when the Hollow Bell rock goes under?"
# As written in resources/sample-datanet/tide-log.md (contributor 0x7099…79C8).
ANSWER = (
    "When the Hollow Bell goes under, the keeper rings the fog bell twice at dusk: "
    "that is the rule of Skerry Point, older than the tower itself."
)


def _signer(ctx: Context, state: dict[str, Any]) -> Any:
    if not state.get("account") or not state.get("password_file"):
        return None
    try:
        return ctx.studio.wallet.unlock(state["account"], password_file=state["password_file"])
    except Exception as e:  # noqa: BLE001 - the demo still shows an unsigned report
        ctx.say(f"(not signing the report: {e})")
        return None


def run_stage(ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
    from studio.commands.render import report_lines

    model_id = state.get("model")
    if not model_id:
        ctx.say("No fine-tuned model from the train stage: skipping attribution.")
        return {"skipped": True}
    att = ctx.studio.attribution
    t0 = time.monotonic()
    ctx.say(f"1. Attribution index for {model_id} (per-record LoRA gradients + suffix array)")
    res = att.build_index(model_id)
    ctx.say(
        f"   {res['records']} records, {res['dim']} projected gradient dims per record, "
        f"{res['span_tokens']} tokens in the span index ({time.monotonic() - t0:.1f}s)"
    )

    ctx.say(f"2. Ask: {QUESTION}")
    try:
        own = att.attribute(model_id, QUESTION, method="hybrid", top_k=3, max_new_tokens=40)
    except StudioError as e:  # e.g. a barely trained model that answers nothing
        ctx.say(f"   (the model's own answer cannot be attributed: {e})")
    else:
        ctx.say(f"   model says: {own['output']['text'].strip()}")
        ctx.say(
            "   weights for this answer: "
            + ", ".join(f"{w['contributor'][:10]}… {w['bps']} bps" for w in own["weights"])
        )

    ctx.say("3. The answer as the tide log has it, attributed (hybrid: gradients + spans)")
    signer = _signer(ctx, state)
    rep = att.attribute(model_id, QUESTION, ANSWER, method="hybrid", top_k=5, signer=signer)
    for line in report_lines(rep):
        ctx.say(line)
    path = att.save_report(rep, ctx.studio.paths.home / "reports" / "demo-attribution.json")
    ctx.say(f"   saved {path}")

    ctx.say("4. Verify: re-run the report from scratch and compare")
    ver = att.verify(path)
    if ver["match"]:
        ctx.say(f"   match: {ver['report_hash']} (signature {ver['signature']})")
    else:
        ctx.say(f"   MISMATCH: {', '.join(ver['differences'][:8])}")
    state["report"] = str(path)
    state["report_hash"] = rep["report_hash"]
    state["weights"] = rep["weights"]
    return {
        "model": model_id,
        "report": str(path),
        "report_hash": rep["report_hash"],
        "weights": rep["weights"],
        "verified": ver["match"],
        "seconds": round(time.monotonic() - t0, 1),
    }
