"""Exact attribution as a job subprocess, like training and index builds.

    job = prepare(attributor, "my-model", prompt, output, top_k=10)  # refuses before anything runs
    proc = start(attributor, job)            # `studio attribution _exact KEY` in a subprocess
    proc.follow(events.emit)                 # JSON-line progress; proc.cancel() stops it cleanly
    report = result(attributor, job)         # the report the job wrote

The job folder (DATA_HOME/jobs/exact/KEY, KEY a hash of the model, its replay record and the
query) holds the query, the estimate and, when done, the report. The reverse pass saves its place
after every block in the model's exact-work folder, so a cancelled or killed job started again
with the same query resumes there and gives the same report (the same hash)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core import atomic
from studio.core.errors import AttributionError, Cancelled, NotFound

JOBS_DIR = ("jobs", "exact")


@dataclass(frozen=True)
class ExactJob:
    key: str
    dir: Path
    model: str
    estimate: dict[str, Any]

    @property
    def report_path(self) -> Path:
        return self.dir / "report.json"


def jobs_root(attributor: Any) -> Path:
    return Path(attributor.paths.home).joinpath(*JOBS_DIR)


def prepare(
    attributor: Any,
    model_id: str,
    prompt: str,
    output: str | None,
    *,
    top_k: int = 10,
    owners: dict[str, str | None] | None = None,
    max_new_tokens: int = 64,
) -> ExactJob:
    """Validate the query, check the version can be attributed exactly here (the estimate, or a
    refusal: no replay record, or more memory than this machine has), and write the job folder.
    Re-preparing the same query returns the same job (and so resumes it)."""
    from studio.attribution import replay

    attributor.check_query(prompt, output, top_k)
    info = attributor.model_info(model_id)
    est = replay.check_exact(attributor, info)
    spec = {
        "model": model_id,
        "prompt": prompt,
        "output": output,
        "top_k": int(top_k),
        "owners": owners,
        "max_new_tokens": int(max_new_tokens),
        "replay_hash": replay.record_hash(info),
    }
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]
    folder = jobs_root(attributor) / key
    folder.mkdir(parents=True, exist_ok=True)
    atomic.write_json(folder / "spec.json", spec)
    atomic.write_json(folder / "estimate.json", est)
    return ExactJob(key, folder, model_id, est)


def load(attributor: Any, key: str) -> tuple[ExactJob, dict[str, Any]]:
    folder = jobs_root(attributor) / key
    try:
        spec = json.loads((folder / "spec.json").read_text("utf-8"))
        est = json.loads((folder / "estimate.json").read_text("utf-8"))
    except FileNotFoundError as e:
        raise NotFound(
            f"No exact attribution job {key!r}.",
            hint="Start the exact attribution of this model first.",
        ) from e
    return ExactJob(key, folder, spec["model"], est), spec


def run(attributor: Any, key: str, cancel: Any = None) -> dict[str, Any]:
    """The job itself (inside `studio attribution _exact`, or in-process): the exact report,
    also written to the job folder. Cancelled: the reverse pass has saved its place."""
    job, spec = load(attributor, key)
    _status(job, "running", pid=os.getpid())
    try:
        rep = attributor.attribute(
            spec["model"],
            spec["prompt"],
            spec["output"],
            method="exact",
            top_k=spec["top_k"],
            owners=spec["owners"],
            max_new_tokens=spec["max_new_tokens"],
            cancel=cancel,
        )
    except Cancelled:
        _status(job, "cancelled")
        raise
    except BaseException as e:
        _status(job, "failed", error=f"{type(e).__name__}: {e}")
        raise
    atomic.write_json(job.report_path, rep)
    _status(job, "done", report_hash=rep["report_hash"])
    return rep


def start(attributor: Any, job: ExactJob) -> Any:
    """The job subprocess (`studio attribution _exact KEY`); events stream on its stdout."""
    from studio.core.jobs import JobProcess

    home = str(attributor.paths.home)
    env = (
        {"OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"]}
        if "OMP_NUM_THREADS" in os.environ
        else None
    )
    return JobProcess(
        ["attribution", "_exact", job.key, "--home", home],
        env=env,
        log_path=job.dir / "run.log",
    )


def result(attributor: Any, job: ExactJob) -> dict[str, Any]:
    """The finished job's report, or a plain-words error saying what happened and what to do."""
    if job.report_path.exists():
        return dict(json.loads(job.report_path.read_text("utf-8")))
    st = status(job)
    if st.get("state") == "cancelled":
        raise Cancelled(
            "Exact attribution cancelled; its progress is saved.",
            hint="Run the same command again to resume where it stopped.",
        )
    why = st.get("error") or "the job stopped before writing its report"
    raise AttributionError(
        f"Exact attribution of {job.model} failed: {why}.",
        hint=f"See {job.dir / 'run.log'}; running the same command again resumes it.",
    )


def status(job: ExactJob) -> dict[str, Any]:
    try:
        return dict(json.loads((job.dir / "status.json").read_text("utf-8")))
    except (FileNotFoundError, ValueError):
        return {}


def _status(job: ExactJob, state: str, **extra: Any) -> None:
    atomic.write_json(job.dir / "status.json", {"state": state, **extra})
