"""studio attribute MODEL ... and studio attribution index|verify."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from studio.attribution.results import (
    AttributionReport,
    ExactEstimate,
    ExactJobDone,
    IndexBuild,
    ReportCheck,
)
from studio.commands import arg, operation
from studio.core.errors import AttributionError, InvalidInput

if TYPE_CHECKING:
    from studio.app import Studio
    from studio.core.cancel import CancelToken


# GradientConfig().proj_dim, written out: importing studio.attribution.gradients here loads numpy
# for every command and before the GUI's first paint (tests/gui/test_startup.py keeps them equal).
DEFAULT_PROJ_DIM = 128


@operation(
    "attribute",
    "Which Datanet records and contributors shaped a model's answer (a report with weights).",
    wallet=True,
)
def attribute(
    studio: Studio,
    model: Annotated[str, arg("fine-tuned model id (studio model list)")],
    *,
    prompt: Annotated[str, arg("the question")],
    output: Annotated[str | None, arg("the answer to attribute (default: generate it)")] = None,
    method: Annotated[
        Literal["gradient", "span", "hybrid", "exact"],
        arg(
            "gradient: the fast index; exact: differentiate through the training run "
            "(slower; needs the version's replay record)"
        ),
    ] = "gradient",
    top: Annotated[int, arg("records named in the report (the rest are pooled)")] = 10,
    max_new_tokens: Annotated[int, arg("when generating the output")] = 64,
    save: Annotated[
        str | None, arg("write the report here (default: DATA_HOME/reports/)", metavar="PATH")
    ] = None,
    sign: Annotated[bool, arg("sign the report hash with the active wallet (EIP-191)")] = False,
    estimate: Annotated[
        bool, arg("with --method exact: show the memory and time it needs, then stop")
    ] = False,
    cancel: CancelToken | None = None,
) -> AttributionReport | ExactEstimate:
    if top < 1:
        raise InvalidInput("--top must be at least 1.")
    attributor = studio.attribution
    if method == "exact":
        if estimate:
            return ExactEstimate.from_dict(attributor.exact_estimate(model))
        signer = studio.wallet.unlock(None) if sign else None  # before the long run, not after
        rep = _exact_in_a_job(studio, model, prompt, output, top, max_new_tokens, cancel)
        if signer is not None:
            from studio.attribution.report import sign as sign_report

            rep = sign_report(rep, signer)
        path = attributor.save_report(rep, save)
        return AttributionReport(report=rep, path=str(path))
    if estimate:
        raise InvalidInput("--estimate goes with --method exact.")
    signer = studio.wallet.unlock(None) if sign else None  # the active account signs
    rep = attributor.attribute(
        model,
        prompt,
        output,
        method=method,
        top_k=top,
        signer=signer,
        max_new_tokens=max_new_tokens,
        cancel=cancel,
    )
    path = attributor.save_report(rep, save)
    return AttributionReport(report=rep, path=str(path))


def _exact_in_a_job(
    studio: Studio,
    model: str,
    prompt: str,
    output: str | None,
    top: int,
    max_new_tokens: int,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Exact attribution runs as a job subprocess, like training: the estimate is shown (or the
    refusal given) before it starts, progress streams, Ctrl-C (or the caller's cancel token)
    stops it with its place saved, and the same command again resumes it."""
    import threading

    from studio.commands.model import follow

    attributor = studio.attribution
    job = attributor.exact_job(model, prompt, output, top_k=top, max_new_tokens=max_new_tokens)
    studio.events.log("attribution.exact", f"Exact attribution: {job.estimate['summary']}")
    proc = attributor.start_exact_job(job)
    done = threading.Event()

    def watch() -> None:  # the GUI cancels from another thread: pass it on to the job
        while not done.wait(0.2):
            if cancel is not None and cancel.cancelled:
                proc.cancel()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        follow(studio, proc)
    finally:
        done.set()
        watcher.join()
    return attributor.exact_job_report(job)


@operation(
    "attribution _exact",
    "internal: the exact attribution job process that attribute --method exact starts",
    internal=True,
)
def exact_run_job(studio: Studio, job: str) -> ExactJobDone:
    """The job subprocess: JSON lines on stdout, SIGINT -> the reverse pass saves its place."""
    import signal
    import sys

    from studio.core.events import CancelToken
    from studio.core.jobs import JobStream

    token = CancelToken()
    signal.signal(signal.SIGINT, lambda *_: token.cancel())
    signal.signal(signal.SIGTERM, lambda *_: token.cancel())
    studio.events.subscribe(JobStream(sys.stdout, job="attribution.exact"))
    rep = studio.attribution.run_exact_job(job, cancel=token)
    return ExactJobDone(job=job, report_hash=rep["report_hash"])


@operation(
    "attribution index", "Build the attribution index of a fine-tuned model (gradients + spans)."
)
def index(
    studio: Studio,
    model: Annotated[str, arg("fine-tuned model id")],
    *,
    proj_dim: Annotated[
        int | None,
        arg(f"projection size per LoRA matrix side (default {DEFAULT_PROJ_DIM})"),
    ] = None,
    seed: Annotated[int, arg("projection seed")] = 0,
    force: Annotated[bool, arg("rebuild even if an up-to-date index exists")] = False,
    cancel: CancelToken | None = None,
) -> IndexBuild:
    from studio.attribution.gradients import GradientConfig

    cfg = GradientConfig(seed=seed, proj_dim=proj_dim) if proj_dim else GradientConfig(seed=seed)
    if cfg.proj_dim < 1:
        raise InvalidInput("--proj-dim must be at least 1.")
    return IndexBuild.from_dict(
        studio.attribution.build_index(model, config=cfg, force=force, cancel=cancel)
    )


@operation("attribution verify", "Re-run an attribution report and say whether it matches.")
def verify(
    studio: Studio, report: Annotated[str, arg("REPORT.json written by studio attribute")]
) -> ReportCheck:
    from studio.attribution.report import summarize_fields

    res = ReportCheck.from_dict(studio.attribution.verify(Path(report)))
    if res.match or res.match_within_tolerance:
        return res
    raise AttributionError(
        f"mismatch: {summarize_fields(list(res.differences))} differ from a re-run "
        f"(recomputed hash {res.recomputed_hash}).",
        result=res,
    )
