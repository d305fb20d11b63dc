"""Training jobs: prepare (validate, freeze the snapshot into the job folder), run (inside the job
subprocess `studio model _run`, or in-process for tests), start, resume check and cancel."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from studio.core import atomic
from studio.core.changes import Changes
from studio.core.errors import AlreadyExists, InvalidInput, NotFound, StudioError
from studio.core.events import CancelToken, Event, EventBus
from studio.core.jobs import pid_alive
from studio.train import catalog
from studio.train.config import TrainConfig
from studio.train.versions import ModelVersions, record_to_dict

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class TrainingJobs(ModelVersions):
    def _job_row(self, model_id: str) -> dict[str, Any]:
        row = self._row(model_id)
        if row is None:
            raise NotFound(f"No training job {model_id!r}.", hint="See `studio model list`.")
        return row

    def _new_id(self, name: str | None, datanets: Sequence[dict[str, Any]]) -> str:
        if name:
            if not _NAME.match(name):
                raise InvalidInput(
                    f"Bad model name {name!r}.",
                    hint="Use lowercase letters, digits, '.', '_' or '-' (max 64), starting with a letter or digit.",
                )
            if (
                name in catalog.CATALOG
                or self._row(name) is not None
                or (self.ft_dir / name).exists()
            ):
                raise AlreadyExists(
                    f"A model named {name!r} already exists.", hint="Pick another name."
                )
            return name
        stem = re.sub(
            r"[^a-z0-9._-]+", "-", (datanets[0]["name"] if datanets else "model").lower()
        )[:48]
        n = 1
        while (
            self._row(f"{stem}-lora-{n}") is not None or (self.ft_dir / f"{stem}-lora-{n}").exists()
        ):
            n += 1
        return f"{stem}-lora-{n}"

    def prepare(
        self,
        *,
        base: str = catalog.DEFAULT_BASE,
        datanets: Sequence[str] = (),
        settings: dict[str, Any] | None = None,
        name: str | None = None,
        records: Sequence[Any] | None = None,
        provenance: Sequence[dict[str, Any]] | None = None,
    ) -> str:
        """Validate everything, freeze the data into the job folder and record the job. Returns the
        model id. `records` + `provenance` bypass the Datanets (tests and benchmarks)."""
        cfg = TrainConfig.from_dict({**(settings or {}), "base": base})
        cfg.validate()
        entries: list[dict[str, Any]] = []
        all_records: list[Any] = []
        if records is not None:
            all_records = list(records)
            entries = [dict(p) for p in (provenance or [])]
        else:
            if not datanets:
                raise InvalidInput(
                    "No training data.", hint="Name at least one Datanet (NAME or NAME@VERSION)."
                )
            for spec in datanets:
                entry, recs = self.snapshot(spec)
                entries.append(entry)
                all_records += recs
        if not all_records:
            raise InvalidInput(
                "The training snapshot has no records.",
                hint="Take a snapshot with accepted records.",
            )
        b = catalog.resolve_base(base, self.models_dir)
        config = catalog.check_causal_lm(b.dir)
        limit = catalog.context_limit(config)
        if cfg.max_length > limit:
            raise InvalidInput(
                f"A max length of {cfg.max_length} is above this model's context of {limit} tokens.",
                hint=f"Use a max length of {min(limit, 2048)} or less.",
            )
        if cfg.target_modules:
            from studio.train.trainer import check_target_modules

            check_target_modules(config, cfg.target_modules)
        cfg.datanets = [
            {k: e.get(k) for k in ("name", "version", "root", "records")} for e in entries
        ]
        model_id = self._new_id(name, entries)
        job_dir = self.jobs_dir / model_id
        out_dir = self.ft_dir / model_id
        if job_dir.exists():
            shutil.rmtree(job_dir)  # a leftover from a job that never got recorded
        job_dir.mkdir(parents=True)
        lines = "".join(
            json.dumps(record_to_dict(r), sort_keys=True, default=str) + "\n" for r in all_records
        )
        atomic.write_text(job_dir / "records.jsonl", lines)
        job_spec = {
            "model_id": model_id,
            "config": cfg.to_dict(),
            "base_dir": str(b.dir),
            "datanets": entries,
            "out_dir": str(out_dir),
        }
        atomic.write_json(job_dir / "spec.json", job_spec)
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO models(id, base, base_dir, dir, job_dir, status, datanets, created_at)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (
                    model_id,
                    b.id,
                    str(b.dir),
                    str(out_dir),
                    str(job_dir),
                    "queued",
                    json.dumps(entries),
                    time.time(),
                ),
            )
        self.events.changed(Changes.of(models=[model_id]), job=model_id)
        return model_id

    def run_job(
        self,
        model_id: str,
        *,
        resume: bool = False,
        cancel: CancelToken | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> dict[str, Any]:
        from studio.train.card import build_card, card_markdown
        from studio.train.trainer import TrainingRun

        row = self._job_row(model_id)
        job_dir = Path(row["job_dir"])
        spec = json.loads((job_dir / "spec.json").read_text("utf-8"))
        cfg = TrainConfig.from_dict(spec["config"])
        records = [
            json.loads(line)
            for line in (job_dir / "records.jsonl").read_text("utf-8").splitlines()
            if line
        ]
        base_dir = Path(spec["base_dir"])
        if not base_dir.exists():
            base_dir = catalog.resolve_base(row["base"], self.models_dir).dir
        bus = EventBus()
        log_file = open(job_dir / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115

        def record(ev: Event) -> None:
            log_file.write(json.dumps(ev.to_dict(), sort_keys=True, default=str) + "\n")
            log_file.flush()

        bus.subscribe(record)
        bus.subscribe(self.events.emit)
        if on_event:
            bus.subscribe(on_event)

        def finish(tmp: Path, metrics: dict[str, Any]) -> None:
            card = build_card(
                model_id=model_id,
                base=row["base"],
                base_model_hash=catalog.base_model_hash(base_dir),
                adapter_dir=tmp / "adapter",
                config_hash=catalog.canonical_sha256(cfg.hashed_part()),
                training_config=cfg.to_dict(),
                datanets=spec["datanets"],
                metrics=metrics,
            )
            card["base_dir"] = str(base_dir)
            atomic.write_json(tmp / "card.json", card)
            atomic.write_text(tmp / "card.md", card_markdown(card))
            finish.card = card  # type: ignore[attr-defined]

        def on_checkpoint(step: int, total: int) -> None:
            self._update(model_id, step=step, total_steps=total)

        self._update(model_id, status="training", pid=os.getpid(), error=None)
        run = TrainingRun(
            cfg,
            base_dir=base_dir,
            job_dir=job_dir,
            out_dir=Path(spec["out_dir"]),
            records=records,
            events=bus,
            job=model_id,
            cancel=cancel,
            on_checkpoint=on_checkpoint,
            finish=finish,
        )
        try:
            metrics = run.run(resume=resume)
        except StudioError as e:
            from studio.core.errors import Cancelled

            status = "cancelled" if isinstance(e, Cancelled) else "failed"
            self._update(model_id, status=status, error=str(e), pid=None)
            bus.changed(Changes.of(models=[model_id]), job=model_id)
            bus.emit(
                Event("error" if status == "failed" else "cancelled", job=model_id, message=str(e))
            )
            raise
        except BaseException as e:
            self._update(model_id, status="failed", error=f"{type(e).__name__}: {e}", pid=None)
            bus.changed(Changes.of(models=[model_id]), job=model_id)
            bus.emit(Event("error", job=model_id, message=f"{type(e).__name__}: {e}"))
            raise
        finally:
            log_file.close()
        card = finish.card  # type: ignore[attr-defined]
        self._update(
            model_id,
            status="ready",
            pid=None,
            step=metrics["steps"],
            total_steps=metrics["steps"],
            config_hash=card["config_hash"],
            adapter_hash=card["adapter_hash"],
            base_model_hash=card["base_model_hash"],
            finished_at=time.time(),
        )
        # The run is done: its checkpoints are no longer needed to resume.
        shutil.rmtree(job_dir / "checkpoints", ignore_errors=True)
        done = {
            "id": model_id,
            "dir": spec["out_dir"],
            "card": str(Path(spec["out_dir"]) / "card.md"),
            "metrics": metrics,
        }
        bus.emit(
            Event(
                "done",
                job=model_id,
                message=f"model {model_id} ready",
                data={"dir": spec["out_dir"]},
            )
        )
        bus.changed(Changes.of(models=[model_id]), job=model_id)
        return done

    # -- training: the subprocess ------------------------------------------------------------
    def start_job(self, model_id: str, *, resume: bool = False, index: bool = True) -> Any:
        from studio.core.jobs import JobProcess

        row = self._job_row(model_id)
        args = ["model", "_run", model_id, "--home", str(self.paths.home)]
        if resume:
            args.append("--resume")
        if not index:  # else the job builds the attribution index once the model is ready
            args.append("--no-index")
        env = (
            {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "")}
            if os.environ.get("OMP_NUM_THREADS")
            else None
        )
        proc = JobProcess(args, env=env, log_path=Path(row["job_dir"]) / "run.log")
        self._update(model_id, status="training", pid=proc.pid)
        return proc

    def check_resumable(self, model_id: str) -> None:
        row = self._job_row(model_id)
        status = self._status(row)
        if status == "ready":
            raise InvalidInput(f"Model {model_id!r} already finished training.")
        if status == "training":
            raise InvalidInput(
                f"Model {model_id!r} is training right now (pid {row['pid']}).",
                hint=f"Cancel it first: `studio model cancel {model_id}`.",
            )

    def cancel(self, model_id: str, *, wait: float = 120.0) -> dict[str, Any]:
        row = self._job_row(model_id)
        if self._status(row) != "training":
            raise InvalidInput(f"Model {model_id!r} is not training (status: {self._status(row)}).")
        pid = int(row["pid"])
        try:
            os.kill(pid, signal.SIGINT)  # the job saves a checkpoint and exits
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and pid_alive(pid):
            r = self._row(model_id)
            if r is not None and r["status"] != "training":
                break
            time.sleep(0.2)
        self.events.changed(Changes.of(models=[model_id]), job=model_id)
        return self.status(model_id)
