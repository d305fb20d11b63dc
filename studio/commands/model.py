"""studio model list | train | resume | cancel | eval | export | register | generate (+ hidden _run,
the job runner that `model train` starts as a subprocess of our own executable)."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from studio.commands import Context, arg, command
from studio.core.errors import Cancelled, InvalidInput, TrainingError


def _fmt_datanets(ds: list[dict[str, Any]]) -> str:
    return ", ".join(f"{d['name']}@{d['version']}" for d in ds) or "—"


@command("model list", "Base models and fine-tuned versions with their provenance (newest last).")
def model_list(ctx: Context, args: argparse.Namespace) -> Any:
    items = ctx.studio.models.list()
    for m in items:
        if m["kind"] == "base":
            ctx.say(
                f"  base  {m['id']:<28} {m['name']}{'' if m['ready'] else ' (converted on first use)'}"
            )
        else:
            prog = (
                f" {m['step']}/{m['total_steps']}"
                if m["status"] != "ready" and m["total_steps"]
                else ""
            )
            ctx.say(
                f"  tuned {m['id']:<28} {m['status']}{prog}  base {m['base']}  data {_fmt_datanets(m['datanets'])}"
            )
            if m["adapter_hash"]:
                ctx.say(
                    f"        adapter {m['adapter_hash'][:16]}…  config {m['config_hash'][:16]}…"
                )
    return items


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    s: dict[str, Any] = {}
    for key in (
        "rank",
        "alpha",
        "dropout",
        "learning_rate",
        "schedule",
        "warmup_ratio",
        "epochs",
        "max_steps",
        "batch_size",
        "grad_accum",
        "max_length",
        "val_split",
        "seed",
        "fmt",
        "device",
        "checkpoint_every",
        "eval_every",
        "weight_decay",
    ):
        v = getattr(args, key, None)
        if v is not None:
            s[key] = v
    if args.target_modules:
        s["target_modules"] = [t.strip() for t in args.target_modules.split(",") if t.strip()]
    for flag in ("packing", "gradient_checkpointing", "qlora"):
        if getattr(args, flag, False):
            s[flag] = True
    return s


def follow(ctx: Context, proc: Any, model_id: str) -> None:
    """Print a job's JSON-lines events as they arrive; Ctrl-C asks the job to stop cleanly."""

    def on_event(ev: Any) -> None:
        # In-process listeners see the job's stream; progress goes to stderr only in --json mode
        # (otherwise the step lines below show it).
        if ev.kind != "progress" or ctx.json:
            ctx.studio.events.emit(ev)
        if ev.kind == "train.step":
            ctx.say(f"  step {ev.step}/{ev.total}  {ev.message}")
        elif ev.kind == "train.eval":
            when = ev.data.get("when", "")
            ctx.say(
                f"  eval ({when}) loss {ev.data['eval_loss']:.4f}  perplexity {ev.data['perplexity']:.2f}"
            )
        # "log" events are printed by the context's own event listener (stderr).

    try:
        proc.follow(on_event)
    except KeyboardInterrupt:
        ctx.warn("stopping: saving a checkpoint (Ctrl-C again to kill)…")
        proc.cancel()
        try:
            proc.follow(on_event)
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()


def _finish(ctx: Context, model_id: str) -> Any:
    st = ctx.studio.models.status(model_id)
    if st["status"] == "ready":
        mv = ctx.studio.models.get(model_id)
        m = mv.card["metrics"]
        ctx.say(f"Model {model_id} ready.")
        if m.get("eval_loss_before") is not None:
            ctx.say(f"  validation loss {m['eval_loss_before']:.4f} → {m['eval_loss_after']:.4f}")
        ctx.say(f"  train loss {m['train_loss_first']:.4f} → {m['train_loss_last']:.4f}")
        ctx.say(f"  adapter  {mv.adapter_dir}")
        ctx.say(f"  card     {mv.dir / 'card.md'}")
        return {**st, "card": mv.card}
    if st["status"] == "cancelled":
        raise Cancelled(
            f"Training of {model_id} was cancelled at step {st['step']}.",
            hint=f"`studio model resume {model_id}` continues it.",
        )
    raise TrainingError(
        f"Training of {model_id} failed: {st['error'] or 'the job exited unexpectedly'}.",
        hint=f"See {ctx.studio.paths.jobs / model_id / 'run.log'}; "
        f"`studio model resume {model_id}` retries from the last checkpoint.",
    )


def _bundled_ready(ctx: Context, base: str) -> bool:
    from studio.train.catalog import list_bases

    return any(b["id"] == base and b["ready"] for b in list_bases(ctx.studio.paths.models))


TRAIN_ARGS = (
    arg(
        "--base",
        default=None,
        help="base model: smollm2-135m (default, bundled), tiny, a folder, or a hub id",
    ),
    arg(
        "--datanet",
        action="append",
        default=[],
        metavar="NAME[@VERSION]",
        help="Datanet snapshot to train on (repeatable; NAME alone = its latest snapshot)",
    ),
    arg("--name", default=None, help="id for the fine-tuned model (default: <datanet>-lora-N)"),
    arg("--rank", type=int, default=None, help="LoRA rank (default 8)"),
    arg("--alpha", type=float, default=None, help="LoRA alpha (default 16)"),
    arg("--dropout", type=float, default=None, help="LoRA dropout (default 0.05)"),
    arg(
        "--target-modules",
        default=None,
        help="comma-separated module names (default: per architecture)",
    ),
    arg(
        "--learning-rate",
        "--lr",
        dest="learning_rate",
        type=float,
        default=None,
        help="default 2e-4",
    ),
    arg("--schedule", choices=("cosine", "linear", "constant"), default=None),
    arg(
        "--warmup-ratio",
        type=float,
        default=None,
        help="fraction of steps warming up (default 0.05)",
    ),
    arg("--weight-decay", type=float, default=None),
    arg("--epochs", type=float, default=None, help="passes over the data (default 1)"),
    arg("--max-steps", type=int, default=None, help="optimizer steps (overrides --epochs)"),
    arg("--batch-size", type=int, default=None, help="rows per micro-batch (default 4)"),
    arg(
        "--grad-accum", type=int, default=None, help="micro-batches per optimizer step (default 1)"
    ),
    arg("--max-length", type=int, default=None, help="max tokens per row (default 512)"),
    arg("--packing", action="store_true", help="pack several examples into each row"),
    arg("--val-split", type=float, default=None, help="fraction of records held out (default 0.1)"),
    arg("--seed", type=int, default=None),
    arg(
        "--format",
        dest="fmt",
        choices=("auto", "plain", "text"),
        default=None,
        help="auto: chat template for prompt/response and chat records (default)",
    ),
    arg("--device", choices=("auto", "cuda", "mps", "cpu"), default=None),
    arg("--gradient-checkpointing", action="store_true"),
    arg("--qlora", action="store_true", help="4-bit base (CUDA + bitsandbytes)"),
    arg(
        "--checkpoint-every", type=int, default=None, help="steps between checkpoints (default 50)"
    ),
    arg(
        "--eval-every",
        type=int,
        default=None,
        help="steps between validation passes (default: before/after)",
    ),
    arg("--detach", action="store_true", help="start the job and return at once"),
    arg(
        "--no-index",
        action="store_true",
        help="skip building the attribution index at the end (the first attribute call builds it)",
    ),
)


@command(
    "model train",
    "Fine-tune a base model with LoRA on Datanet snapshots (runs as a job).",
    *TRAIN_ARGS,
)
def model_train(ctx: Context, args: argparse.Namespace) -> Any:
    from studio.train.catalog import CATALOG, DEFAULT_BASE

    models = ctx.studio.models
    datanets = list(args.datanet)
    if not datanets:
        raise InvalidInput(
            "No training data given.", hint="Pass --datanet NAME[@VERSION] (repeatable)."
        )
    base = args.base or DEFAULT_BASE
    if base in CATALOG and not _bundled_ready(ctx, base):
        ctx.say(f"Preparing the bundled base model {base} (once per data home)…")
    model_id = models.prepare(
        base=base, datanets=datanets, settings=_settings(args), name=args.name
    )
    ctx.say(f"Training {model_id} on {', '.join(datanets)} (base {base})")
    proc = models.start_job(model_id, index=not args.no_index)
    if args.detach:
        ctx.say(
            f"  job running as pid {proc.pid}; follow with `studio model list`, stop with `studio model cancel {model_id}`"
        )
        return {"id": model_id, "pid": proc.pid, "status": "training"}
    follow(ctx, proc, model_id)
    return _finish(ctx, model_id)


@command(
    "model resume",
    "Continue a cancelled or interrupted training job from its last checkpoint.",
    arg("model", help="fine-tuned model id"),
    arg("--detach", action="store_true", help="start the job and return at once"),
)
def model_resume(ctx: Context, args: argparse.Namespace) -> Any:
    models = ctx.studio.models
    models.check_resumable(args.model)
    ctx.say(f"Resuming {args.model}")
    proc = models.start_job(args.model, resume=True)
    if args.detach:
        return {"id": args.model, "pid": proc.pid, "status": "training"}
    follow(ctx, proc, args.model)
    return _finish(ctx, args.model)


@command(
    "model cancel",
    "Stop a training job cleanly (it saves a checkpoint first).",
    arg("model", help="fine-tuned model id"),
)
def model_cancel(ctx: Context, args: argparse.Namespace) -> Any:
    st = ctx.studio.models.cancel(args.model)
    ctx.say(
        f"{args.model}: {st['status']} at step {st['step']}"
        + (f"; `studio model resume {args.model}` continues it" if st["status"] != "ready" else "")
    )
    return st


@command(
    "model _run",
    "internal: the training job process that model train/resume start",
    arg("model"),
    arg("--resume", action="store_true"),
    arg("--no-index", action="store_true"),
)
def model_run_job(ctx: Context, args: argparse.Namespace) -> Any:
    """The job subprocess: JSON lines on stdout, SIGINT → checkpoint → exit."""
    from studio.core.events import CancelToken
    from studio.core.jobs import JobStream

    token = CancelToken()
    signal.signal(signal.SIGINT, lambda *_: token.cancel())
    signal.signal(signal.SIGTERM, lambda *_: token.cancel())
    ctx.quiet = True  # stdout carries only JSON lines
    stream = JobStream(sys.stdout, job=args.model)
    ctx.studio.events.subscribe(stream)
    result = ctx.studio.models.run_job(args.model, resume=args.resume, cancel=token)
    if not args.no_index:
        _index_after_training(ctx, args.model, token)
    return {"id": result["id"], "dir": result["dir"]}


def _index_after_training(ctx: Context, model_id: str, token: Any) -> None:
    """A model is ready to attribute right after training: build its attribution index in the
    same job (progress streams to the caller). A failure here leaves the model usable: the first
    attribute call builds the index instead."""
    from studio.core.errors import StudioError
    from studio.core.events import Event

    ctx.studio.events.emit(Event("log", job=model_id, message="building the attribution index"))
    try:
        ctx.studio.attribution.build_index(model_id, cancel=token)
    except StudioError as e:
        ctx.studio.events.emit(
            Event("warning", job=model_id, message=f"attribution index not built: {e}")
        )


@command(
    "model eval",
    "Loss and perplexity of a model (and its base) on a Datanet snapshot.",
    arg("model"),
    arg("--datanet", required=True, metavar="NAME[@VERSION]"),
    arg("--max-length", type=int, default=None),
    arg("--batch-size", type=int, default=4),
)
def model_eval(ctx: Context, args: argparse.Namespace) -> Any:
    r = ctx.studio.models.evaluate(
        args.model, args.datanet, max_length=args.max_length, batch_size=args.batch_size
    )
    d = r["datanet"]
    ctx.say(f"{args.model} on {d['name']}@{d['version']} ({r['examples']} examples)")
    ctx.say(f"  loss {r['loss']:.4f}  perplexity {r['perplexity']:.2f}")
    ctx.say(f"  base loss {r['base_loss']:.4f}  perplexity {r['base_perplexity']:.2f}")
    return r


@command(
    "model export",
    "Write a merged full model folder (base + adapter) that transformers loads.",
    arg("model"),
    arg(
        "--merged",
        action="store_true",
        required=True,
        help="merge the adapter into the base weights",
    ),
    arg("--out", default=None, help="destination folder (default: models/merged/<id>)"),
)
def model_export(ctx: Context, args: argparse.Namespace) -> Any:
    dest = ctx.studio.models.export_merged(args.model, args.out)
    ctx.say(f"Merged model written to {dest}")
    return {"id": args.model, "dir": str(dest)}


@command(
    "model register",
    "Record a fine-tuned model in the on-chain ModelRegistry with its hashes.",
    arg("model"),
    arg("--account", default=None, help="address (default: the active wallet account)"),
    arg("--metadata-uri", default="", help="where the card is published (default: file URI)"),
    arg("--price-wei", type=int, default=0, help="inference price in wei of OPEN"),
    network=True,
    wallet=True,
)
def model_register(ctx: Context, args: argparse.Namespace) -> Any:
    models = ctx.studio.models
    models.get(args.model)  # fail early on an unknown or unfinished model, before unlocking
    try:
        import studio.chain.registry  # noqa: F401
    except ImportError:
        models.register(args.model, None)  # raises the clear "not available" error
    account = ctx.studio.wallet.unlock(args.account, password_file=ctx.password_file)
    r = models.register(
        args.model, account, metadata_uri=args.metadata_uri, price_wei=args.price_wei
    )
    ctx.say(f"Registered {args.model}: {r}")
    return r


@command(
    "model generate",
    "Generate text with a model (streams tokens; deterministic for a seed).",
    arg("model", help="fine-tuned model id, or a base model (smollm2-135m, a folder)"),
    arg("--prompt", required=True),
    arg("--max-new-tokens", type=int, default=64),
    arg("--seed", type=int, default=0),
    arg("--temperature", type=float, default=0.0, help="0 = greedy (default)"),
    arg("--top-p", type=float, default=1.0),
    arg("--top-k", type=int, default=0),
    arg("--no-chat", action="store_true", help="raw prompt, no chat template"),
)
def model_generate(ctx: Context, args: argparse.Namespace) -> Any:
    def on_token(t: str) -> None:
        if not ctx.json and not ctx.quiet:
            print(t, end="", file=ctx.out, flush=True)

    text = ctx.studio.models.generate(
        args.model,
        args.prompt,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        chat=not args.no_chat,
        on_token=on_token,
    )
    ctx.say("")
    return {"model": args.model, "prompt": args.prompt, "output": text, "seed": args.seed}
