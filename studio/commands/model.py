"""studio model list | train | resume | cancel | eval | export | register | generate (+ hidden _run,
the job runner that `model train` starts as a subprocess of our own executable)."""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING, Annotated, Any, Literal

from studio.commands import arg, note, operation, warn
from studio.core.errors import Cancelled, InvalidInput, Suggestion, TrainingError
from studio.core.events import Event
from studio.train.results import (
    Evaluation,
    Generation,
    JobDone,
    MergedModel,
    ModelEntry,
    ModelRegistration,
    TrainingStarted,
    TrainingStatus,
)

if TYPE_CHECKING:
    from studio.app import Studio
    from studio.core.cancel import CancelToken


@operation("model list", "Base models and fine-tuned versions with their provenance (newest last).")
def model_list(studio: Studio) -> list[ModelEntry]:
    return [ModelEntry.from_dict(m) for m in studio.models.list()]


def follow(studio: Studio, proc: Any) -> None:
    """Pass a job's JSON-lines events on to the studio's listeners as they arrive; Ctrl-C asks
    the job to stop cleanly (it saves a checkpoint), a second Ctrl-C kills it."""
    emit = studio.events.emit
    try:
        proc.follow(emit)
    except KeyboardInterrupt:
        warn(studio, "stopping: saving a checkpoint (Ctrl-C again to kill)…")
        proc.cancel()
        try:
            proc.follow(emit)
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()


def _finish(studio: Studio, model_id: str) -> TrainingStatus:
    st = studio.models.status(model_id)
    if st["status"] == "ready":
        mv = studio.models.get(model_id)
        return TrainingStatus.from_dict(
            st, card=mv.card, adapter_dir=str(mv.adapter_dir) if mv.adapter_dir else None
        )
    resume = Suggestion("model resume", {"model": model_id})
    if st["status"] == "cancelled":
        raise Cancelled(
            f"Training of {model_id} was cancelled at step {st['step']}.",
            hint="Resuming continues it.",
            suggest=resume,
        )
    raise TrainingError(
        f"Training of {model_id} failed: {st['error'] or 'the job exited unexpectedly'}.",
        hint=f"See {studio.paths.jobs / model_id / 'run.log'}; resuming retries from the last "
        "checkpoint.",
        suggest=resume,
    )


def _bundled_ready(studio: Studio, base: str) -> bool:
    from studio.train.catalog import list_bases

    return any(b["id"] == base and b["ready"] for b in list_bases(studio.paths.models))


_SETTINGS = (
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
    "adam_eps",
)


@operation("model train", "Fine-tune a base model with LoRA on Datanet snapshots (runs as a job).")
def model_train(
    studio: Studio,
    *,
    base: Annotated[
        str | None, arg("base model: smollm2-135m (default, bundled), tiny, a folder, or a hub id")
    ] = None,
    datanet: Annotated[
        list[str] | None,
        arg(
            "Datanet snapshot to train on (repeatable; NAME alone = its latest snapshot)",
            metavar="NAME[@VERSION]",
            repeat=True,
        ),
    ] = None,
    name: Annotated[
        str | None, arg("id for the fine-tuned model (default: <datanet>-lora-N)")
    ] = None,
    rank: Annotated[int | None, arg("LoRA rank (default 8)")] = None,
    alpha: Annotated[float | None, arg("LoRA alpha (default 16)")] = None,
    dropout: Annotated[float | None, arg("LoRA dropout (default 0.05)")] = None,
    target_modules: Annotated[
        str | None, arg("comma-separated module names (default: per architecture)")
    ] = None,
    learning_rate: Annotated[
        float | None, arg("default 2e-4", flags=("--learning-rate", "--lr"))
    ] = None,
    schedule: Literal["cosine", "linear", "constant"] | None = None,
    warmup_ratio: Annotated[
        float | None, arg("fraction of steps warming up (default 0.05)")
    ] = None,
    weight_decay: float | None = None,
    adam_eps: Annotated[
        float | None, arg("AdamW epsilon (default 1e-8)", flags="--adam-eps")
    ] = None,
    epochs: Annotated[float | None, arg("passes over the data (default 1)")] = None,
    max_steps: Annotated[int | None, arg("optimizer steps (overrides --epochs)")] = None,
    batch_size: Annotated[int | None, arg("rows per micro-batch (default 4)")] = None,
    grad_accum: Annotated[int | None, arg("micro-batches per optimizer step (default 1)")] = None,
    max_length: Annotated[int | None, arg("max tokens per row (default 512)")] = None,
    packing: Annotated[bool, arg("pack several examples into each row")] = False,
    val_split: Annotated[float | None, arg("fraction of records held out (default 0.1)")] = None,
    seed: int | None = None,
    fmt: Annotated[
        Literal["auto", "plain", "text"] | None,
        arg("auto: chat template for prompt/response and chat records (default)", flags="--format"),
    ] = None,
    device: Literal["auto", "cuda", "mps", "cpu"] | None = None,
    gradient_checkpointing: bool = False,
    qlora: Annotated[bool, arg("4-bit base (CUDA + bitsandbytes)")] = False,
    checkpoint_every: Annotated[int | None, arg("steps between checkpoints (default 50)")] = None,
    eval_every: Annotated[
        int | None, arg("steps between validation passes (default: before/after)")
    ] = None,
    detach: Annotated[bool, arg("start the job and return at once")] = False,
    no_index: Annotated[
        bool,
        arg("skip building the attribution index at the end (the first attribute call builds it)"),
    ] = False,
) -> TrainingStatus | TrainingStarted:
    from studio.train.catalog import CATALOG, DEFAULT_BASE

    given = dict(locals())
    settings: dict[str, Any] = {k: given[k] for k in _SETTINGS if given[k] is not None}
    if target_modules:
        settings["target_modules"] = [t.strip() for t in target_modules.split(",") if t.strip()]
    for flag in ("packing", "gradient_checkpointing", "qlora"):
        if given[flag]:
            settings[flag] = True
    models = studio.models
    datanets = list(datanet or [])
    if not datanets:
        raise InvalidInput(
            "No training data given.", hint="Pass --datanet NAME[@VERSION] (repeatable)."
        )
    base = base or DEFAULT_BASE
    if base in CATALOG and not _bundled_ready(studio, base):
        note(studio, f"Preparing the bundled base model {base} (once per data home)…")
    model_id = models.prepare(base=base, datanets=datanets, settings=settings, name=name)
    note(studio, f"Training {model_id} on {', '.join(datanets)} (base {base})")
    proc = models.start_job(model_id, index=not no_index)
    if detach:
        return TrainingStarted(id=model_id, pid=proc.pid)
    follow(studio, proc)
    return _finish(studio, model_id)


@operation(
    "model resume", "Continue a cancelled or interrupted training job from its last checkpoint."
)
def model_resume(
    studio: Studio,
    model: Annotated[str, arg("fine-tuned model id")],
    *,
    detach: Annotated[bool, arg("start the job and return at once")] = False,
) -> TrainingStatus | TrainingStarted:
    models = studio.models
    models.check_resumable(model)
    note(studio, f"Resuming {model}")
    proc = models.start_job(model, resume=True)
    if detach:
        return TrainingStarted(id=model, pid=proc.pid)
    follow(studio, proc)
    return _finish(studio, model)


@operation("model cancel", "Stop a training job cleanly (it saves a checkpoint first).")
def model_cancel(
    studio: Studio, model: Annotated[str, arg("fine-tuned model id")]
) -> TrainingStatus:
    return TrainingStatus.from_dict(studio.models.cancel(model))


@operation(
    "model _run",
    "internal: the training job process that model train/resume start",
    internal=True,
)
def model_run_job(
    studio: Studio, model: str, *, resume: bool = False, no_index: bool = False
) -> JobDone:
    """The job subprocess: JSON lines on stdout, SIGINT → checkpoint → exit."""
    from studio.core.events import CancelToken
    from studio.core.jobs import JobStream

    token = CancelToken()
    signal.signal(signal.SIGINT, lambda *_: token.cancel())
    signal.signal(signal.SIGTERM, lambda *_: token.cancel())
    studio.events.subscribe(JobStream(sys.stdout, job=model))  # stdout carries only JSON lines
    result = studio.models.run_job(model, resume=resume, cancel=token)
    if not no_index:
        _index_after_training(studio, model, token)
    return JobDone(id=result["id"], dir=str(result["dir"]))


def _index_after_training(studio: Studio, model_id: str, token: Any) -> None:
    """A model is ready to attribute right after training: build its attribution index in the
    same job (progress streams to the caller). A failure here leaves the model usable: the first
    attribute call builds the index instead."""
    from studio.core.errors import StudioError

    studio.events.log(model_id, "building the attribution index")
    try:
        studio.attribution.build_index(model_id, cancel=token)
    except StudioError as e:
        studio.events.warning(model_id, f"attribution index not built: {e}")


@operation("model eval", "Loss and perplexity of a model (and its base) on a Datanet snapshot.")
def model_eval(
    studio: Studio,
    model: str,
    *,
    datanet: Annotated[str, arg(metavar="NAME[@VERSION]")],
    max_length: int | None = None,
    batch_size: int = 4,
) -> Evaluation:
    r = studio.models.evaluate(model, datanet, max_length=max_length, batch_size=batch_size)
    return Evaluation.from_dict(r)


@operation(
    "model export", "Write a merged full model folder (base + adapter) that transformers loads."
)
def model_export(
    studio: Studio,
    model: str,
    *,
    merged: Annotated[bool, arg("merge the adapter into the base weights")],
    out: Annotated[str | None, arg("destination folder (default: models/merged/<id>)")] = None,
) -> MergedModel:
    from pathlib import Path

    dest = studio.models.export_merged(model, Path(out) if out else None)
    return MergedModel(id=model, dir=str(dest))


@operation(
    "model register",
    "Record a fine-tuned model in the on-chain ModelRegistry with its hashes.",
    network=True,
    wallet=True,
)
def model_register(
    studio: Studio,
    model: str,
    *,
    account: Annotated[str | None, arg("address (default: the active wallet account)")] = None,
    metadata_uri: Annotated[str, arg("where the card is published (default: file URI)")] = "",
    price_wei: Annotated[int, arg("inference price in wei of OPEN")] = 0,
) -> ModelRegistration:
    models = studio.models
    models.get(model)  # fail early on an unknown or unfinished model, before unlocking
    try:
        import studio.chain.registry as _registry  # noqa: F401
    except ImportError:
        models.register(model, None)  # raises the clear "not available" error
    unlocked = studio.wallet.unlock(account)
    r = models.register(model, unlocked, metadata_uri=metadata_uri, price_wei=price_wei)
    return ModelRegistration.from_dict(r, local_id=model)


@operation(
    "model generate", "Generate text with a model (streams tokens; deterministic for a seed)."
)
def model_generate(
    studio: Studio,
    model: Annotated[str, arg("fine-tuned model id, or a base model (smollm2-135m, a folder)")],
    *,
    prompt: str,
    max_new_tokens: int = 64,
    seed: int = 0,
    temperature: Annotated[float, arg("0 = greedy (default)")] = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    no_chat: Annotated[bool, arg("raw prompt, no chat template")] = False,
    cancel: CancelToken | None = None,
) -> Generation:
    def on_token(t: str) -> None:
        studio.events.emit(Event("token", job=model, message=t))
        if cancel is not None:
            cancel.check()  # raised inside the streamer: generation stops at this token

    text = studio.models.generate(
        model,
        prompt,
        max_new_tokens=max_new_tokens,
        seed=seed,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        chat=not no_chat,
        on_token=on_token,
    )
    return Generation(model=model, prompt=prompt, output=text, seed=seed)
