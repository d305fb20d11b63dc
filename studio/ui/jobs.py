"""Training jobs seen from the window. A job is the existing `studio model _run` subprocess; the
window follows it by tailing its events.jsonl (so a reopened window re-attaches to a job started
before), shows "stalled" after 30 s without an event, and can leave it running on close.

The GUI starts the job with stdout to /dev/null (the events file carries the same lines), so
closing the window never breaks a pipe the job writes to."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from studio.core.events import Event

if TYPE_CHECKING:
    from studio.app import Studio

STALL_S = 30.0
TAIL_MS = 500


@dataclass
class JobView:
    model_id: str
    events_path: Path
    offset: int = 0
    last_event: float = field(default_factory=time.monotonic)
    step: int = 0
    total: int | None = None
    loss: list[tuple[int, float]] = field(default_factory=list)
    val_loss: list[tuple[int, float]] = field(default_factory=list)
    lines: int = 0  # log lines ever appended (the log keeps the last 500): views append the new
    log: list[str] = field(default_factory=list)
    state: str = "running"  # running | stalled | ready | failed | cancelled | interrupted
    started: float = field(default_factory=time.monotonic)
    proc: subprocess.Popen[bytes] | None = None
    tokens_per_s: float = 0.0
    eta: float | None = None

    @property
    def stalled(self) -> bool:
        return self.state == "running" and time.monotonic() - self.last_event > STALL_S

    def eta_s(self) -> float | None:
        if not self.total or self.step <= 0:
            return None
        rate = (time.monotonic() - self.started) / self.step
        return rate * (self.total - self.step)


def spawn(studio: Studio, model_id: str, *, resume: bool = False) -> subprocess.Popen[bytes]:
    """Start the job subprocess in its own session (it survives the window when asked to)."""
    from studio.core.jobs import own_executable

    studio.models.check_resumable(model_id) if resume else studio.models.status(model_id)
    job_dir = Path(
        studio.store.one("SELECT job_dir FROM models WHERE id = ?", (model_id,))["job_dir"]
    )
    args = [*own_executable(), "model", "_run", model_id, "--home", str(studio.paths.home)]
    if resume:
        args.append("--resume")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(job_dir / "run.log", "ab") as log:
        return subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )


class JobsTracker(QObject):
    """All training jobs of this data home that are running, with their live progress."""

    changed = Signal(str)  # model id
    finished = Signal(str, str)  # model id, final state

    def __init__(self, studio: Studio, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.studio = studio
        self.jobs: dict[str, JobView] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(TAIL_MS)
        self._timer.timeout.connect(self.tick)
        self._was_stalled: set[str] = set()

    def start(self) -> None:
        self.reattach()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def running(self) -> list[JobView]:
        return [j for j in self.jobs.values() if j.state == "running"]

    def _job_dir(self, model_id: str) -> Path:
        row = self.studio.store.one("SELECT job_dir FROM models WHERE id = ?", (model_id,))
        return Path(row["job_dir"])

    def reattach(self) -> None:
        """Follow every job the store says is training (started by an earlier window, the CLI…)."""
        rows = self.studio.store.query(
            "SELECT id, pid, status FROM models WHERE status = 'training'"
        )
        from studio.core.jobs import pid_alive

        for r in rows:
            if r["id"] not in self.jobs and pid_alive(r["pid"]):
                self.follow(r["id"], from_start=True)

    def follow(
        self, model_id: str, proc: subprocess.Popen[bytes] | None = None, from_start: bool = False
    ) -> JobView:
        path = self._job_dir(model_id) / "events.jsonl"
        offset = 0
        if not from_start and path.exists():
            offset = path.stat().st_size  # a new run: only what it writes from now on
        job = JobView(model_id, path, offset=offset, proc=proc)
        self.jobs[model_id] = job
        self.changed.emit(model_id)
        return job

    def tick(self) -> None:
        for job in list(self.jobs.values()):
            if job.state != "running":
                continue
            self._read(job)
            if job.proc is not None and job.proc.poll() is not None and job.state == "running":
                self._read(job)
                if job.state == "running":
                    job.state = self._final_state(job.model_id)
                    self.finished.emit(job.model_id, job.state)
            elif job.proc is None and job.state == "running" and job.stalled:
                st = self._final_state(job.model_id)
                if st != "running":
                    job.state = st
                    self.finished.emit(job.model_id, st)
            if job.stalled and job.model_id not in self._was_stalled:
                self._was_stalled.add(job.model_id)
                self.changed.emit(job.model_id)

    def _final_state(self, model_id: str) -> str:
        try:
            st = self.studio.models.status(model_id)["status"]
        except Exception:  # noqa: BLE001 - a deleted job simply ends
            return "failed"
        return "running" if st == "training" else str(st)

    def _read(self, job: JobView) -> None:
        try:
            with open(job.events_path, "rb") as f:
                f.seek(job.offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        if not chunk:
            return
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        job.offset += end + 1
        for line in chunk[: end + 1].splitlines():
            try:
                ev = Event.from_dict(json.loads(line))
            except (ValueError, TypeError):
                continue
            self._apply(job, ev)
        job.last_event = time.monotonic()
        self._was_stalled.discard(job.model_id)
        self.changed.emit(job.model_id)

    def _apply(self, job: JobView, ev: Event) -> None:
        if ev.step is not None:
            job.step = int(ev.step)
        if ev.total:
            job.total = int(ev.total)
        d = ev.data or {}
        if ev.kind == "train.step" and d.get("loss") is not None:
            job.loss.append((job.step, float(d["loss"])))
            job.tokens_per_s = float(d.get("tokens_per_s") or 0.0)
            job.eta = d.get("eta_s")
        if ev.kind == "train.eval" and d.get("eval_loss") is not None:
            job.val_loss.append((job.step, float(d["eval_loss"])))
        if ev.kind in ("log", "warning", "train.eval", "train.step"):
            if ev.message:
                job.log.append(ev.message)
                job.lines += 1
        if ev.kind == "done":
            job.state = "ready"
            self.finished.emit(job.model_id, "ready")
        elif ev.kind in ("error", "cancelled"):
            job.log.append(ev.message)
            job.lines += 1
            job.state = "failed" if ev.kind == "error" else "cancelled"
            self.finished.emit(job.model_id, job.state)
        del job.log[:-500]
