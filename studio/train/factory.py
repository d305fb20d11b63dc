"""ModelFactory: the Studio's models. Base models and fine-tuned versions, training jobs (prepared
here, run in a subprocess by `studio model _run`), eval, export, registration and inference.

Layout in the data home:
  models/base/<dirname>/       converted starter model and other bundled bases
  models/ft/<id>/adapter/      finished LoRA adapter (safetensors), appears only by atomic rename
  models/ft/<id>/card.json|md  model card
  jobs/<id>/spec.json          training settings + provenance; records.jsonl: the frozen snapshot
  jobs/<id>/checkpoints/       step-NNNNNNN/ (adapter, optimizer, scheduler, RNG, data position)
  jobs/<id>/events.jsonl       every event the job emitted (the GUI's curve can replay it)
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.core import atomic
from studio.core.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    StudioError,
)
from studio.core.events import CancelToken, Event, EventBus
from studio.core.jobs import pid_alive
from studio.train import catalog
from studio.train.config import TrainConfig

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
RESUMABLE = ("cancelled", "failed", "interrupted", "queued")


@dataclass
class ModelVersion:
    id: str
    dir: Path
    base: str
    base_dir: Path
    adapter_dir: Path | None  # None for a base model
    card: dict[str, Any]

    @property
    def is_base(self) -> bool:
        return self.adapter_dir is None


def parse_datanet_spec(spec: str) -> tuple[str, int | None]:
    name, _, ver = spec.partition("@")
    if not name:
        raise InvalidInput(f"Bad Datanet {spec!r}.", hint="Use NAME or NAME@VERSION.")
    if ver:
        if not ver.isdigit():
            raise InvalidInput(
                f"Bad snapshot version in {spec!r}.", hint="Use NAME@VERSION, e.g. notes@2."
            )
        return name, int(ver)
    return name, None


def record_to_dict(rec: Any) -> dict[str, Any]:
    if isinstance(rec, dict):
        return dict(rec)
    if dataclasses.is_dataclass(rec) and not isinstance(rec, type):
        return dataclasses.asdict(rec)
    return dict(vars(rec))


class ModelFactory:
    def __init__(self, studio: Any) -> None:
        self.studio = studio
        self.models_dir: Path = studio.paths.models
        self.ft_dir = self.models_dir / "ft"
        self.jobs_dir: Path = studio.paths.jobs
        self._servers: dict[tuple[str, str], Any] = {}

    @classmethod
    def for_studio(cls, studio: Any) -> ModelFactory:
        return cls(studio)

    @property
    def store(self) -> Any:
        return self.studio.store

    @property
    def events(self) -> EventBus:
        return self.studio.events  # type: ignore[no-any-return]

    # -- listing -----------------------------------------------------------------------------
    def _row(self, model_id: str) -> dict[str, Any] | None:
        return self.store.one("SELECT * FROM models WHERE id = ?", (model_id,))

    def _status(self, row: dict[str, Any]) -> str:
        if row["status"] == "training" and not pid_alive(row.get("pid")):
            return "interrupted"
        return str(row["status"])

    def _public(self, row: dict[str, Any]) -> dict[str, Any]:
        datanets = json.loads(row["datanets"])
        return {
            "id": row["id"],
            "kind": "fine-tune",
            "base": row["base"],
            "datanets": [
                {k: d.get(k) for k in ("name", "version", "root", "records")} for d in datanets
            ],
            "status": self._status(row),
            "step": row["step"],
            "total_steps": row["total_steps"],
            "dir": row["dir"],
            "config_hash": row["config_hash"],
            "adapter_hash": row["adapter_hash"],
            "base_model_hash": row["base_model_hash"],
            "registration": json.loads(row["registration"]) if row["registration"] else None,
            "error": row["error"],
            "created_at": row["created_at"],
        }

    def list(self) -> list[dict[str, Any]]:
        """Base models first, then fine-tuned versions oldest → newest (newest last)."""
        rows = self.store.query("SELECT * FROM models ORDER BY created_at, rowid")
        return catalog.list_bases(self.models_dir) + [self._public(r) for r in rows]

    def status(self, model_id: str) -> dict[str, Any]:
        row = self._row(model_id)
        if row is None:
            raise NotFound(f"No fine-tuned model {model_id!r}.", hint="See `studio model list`.")
        return self._public(row)

    # -- one model ---------------------------------------------------------------------------
    def get(self, model_id: str) -> ModelVersion:
        row = self._row(model_id)
        if row is None:
            if model_id in catalog.CATALOG or Path(model_id).expanduser().exists():
                base = catalog.resolve_base(model_id, self.models_dir)
                return ModelVersion(base.id, base.dir, base.id, base.dir, None, {})
            raise NotFound(
                f"No model {model_id!r}.",
                hint="See `studio model list`, or pass a base model id or folder.",
            )
        status = self._status(row)
        out = Path(row["dir"])
        if status != "ready" or not (out / "card.json").exists():
            hint = (
                "Wait for training to finish (`studio model list`)."
                if status == "training"
                else f"Run `studio model resume {model_id}` to finish it."
            )
            raise NotFound(f"Model {model_id!r} is not finished (status: {status}).", hint=hint)
        card = json.loads((out / "card.json").read_text("utf-8"))
        base_dir = Path(card.get("base_dir") or row["base_dir"])
        return ModelVersion(row["id"], out, row["base"], base_dir, out / "adapter", card)

    def load(self, model_id: str, device: str = "cpu") -> tuple[Any, Any]:
        """(model, tokenizer): a fresh copy with the adapter attached, eval mode, deterministic."""
        from peft import PeftModel

        from studio.train.serving import load_base
        from studio.train.trainer import quiet_transformers

        quiet_transformers()
        mv = self.get(model_id)
        model, tokenizer = load_base(mv.base_dir, device)
        if mv.adapter_dir is not None:
            model = PeftModel.from_pretrained(model, str(mv.adapter_dir), is_trainable=False)
            model.to(device)
        model.eval()
        return model, tokenizer

    # -- inference ---------------------------------------------------------------------------
    def server(self, base_dir: Path, device: str = "cpu") -> Any:
        """One AdapterServer per (base, device): adapters of the same base share it."""
        from studio.train.serving import AdapterServer
        from studio.train.trainer import quiet_transformers

        quiet_transformers()
        key = (str(Path(base_dir).resolve()), device)
        if key not in self._servers:
            self._servers[key] = AdapterServer(Path(base_dir), device)
        return self._servers[key]

    def generate(
        self,
        model_id: str,
        prompt: str,
        *,
        max_new_tokens: int = 64,
        seed: int = 0,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        chat: bool = True,
        on_token: Callable[[str], None] | None = None,
        device: str = "cpu",
    ) -> str:
        from studio.train.serving import BASE

        if not prompt:
            raise InvalidInput("The prompt is empty.")
        mv = self.get(model_id)
        srv = self.server(mv.base_dir, device)
        name = BASE
        if mv.adapter_dir is not None:
            srv.add_adapter(mv.id, mv.adapter_dir)
            name = mv.id
        return str(
            srv.generate(
                name,
                prompt,
                max_new_tokens=max_new_tokens,
                seed=seed,
                temperature=temperature,
                top_p=top_p,
                top_k=top_k,
                chat=chat,
                on_token=on_token,
            )
        )

    # -- training: prepare -------------------------------------------------------------------
    def snapshot(self, spec: str) -> tuple[dict[str, Any], Sequence[Any]]:
        """NAME[@VERSION] → (provenance entry, snapshot records)."""
        name, version = parse_datanet_spec(spec)
        dn = self.studio.datanets
        try:
            snap = dn.get_snapshot(name, version)
        except NotFound as e:
            raise NotFound(
                f"Datanet {spec!r} has no such snapshot: {e}",
                hint=f"Take one with `studio datanet snapshot {name}`.",
            ) from e
        records = list(dn.snapshot_records(name, snap["version"]))
        if not records:
            raise InvalidInput(
                f"Snapshot {name}@{snap['version']} is empty.",
                hint="Accept records and take a new snapshot.",
            )
        entry = {
            "name": name,
            "version": int(snap["version"]),
            "root": snap["root"],
            "records": len(records),
            "record_ids": [int(record_to_dict(r)["record_id"]) for r in records],
        }
        return entry, records

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
                    f"A model named {name!r} already exists.", hint="Pick another --name."
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
                raise InvalidInput("No training data.", hint="Pass --datanet NAME[@VERSION].")
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
                f"--max-length {cfg.max_length} is above this model's context of {limit} tokens.",
                hint=f"Use --max-length {min(limit, 2048)} or less.",
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
        return model_id

    # -- training: run (inside the job process, or in-process for tests) ---------------------
    def _update(self, model_id: str, **cols: Any) -> None:
        if not cols:
            return
        sets = ", ".join(f"{k} = ?" for k in cols)
        with self.store.transaction():
            self.store.execute(f"UPDATE models SET {sets} WHERE id = ?", (*cols.values(), model_id))

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

        row = self._row(model_id)
        if row is None:
            raise NotFound(f"No training job {model_id!r}.", hint="See `studio model list`.")
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
            bus.emit(
                Event("error" if status == "failed" else "cancelled", job=model_id, message=str(e))
            )
            raise
        except BaseException as e:
            self._update(model_id, status="failed", error=f"{type(e).__name__}: {e}", pid=None)
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
        return done

    # -- training: the subprocess ------------------------------------------------------------
    def start_job(self, model_id: str, *, resume: bool = False) -> Any:
        from studio.core.jobs import JobProcess

        row = self._row(model_id)
        if row is None:
            raise NotFound(f"No training job {model_id!r}.", hint="See `studio model list`.")
        args = ["model", "_run", model_id, "--home", str(self.studio.paths.home)]
        if resume:
            args.append("--resume")
        env = (
            {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "")}
            if os.environ.get("OMP_NUM_THREADS")
            else None
        )
        proc = JobProcess(args, env=env, log_path=Path(row["job_dir"]) / "run.log")
        self._update(model_id, status="training", pid=proc.pid)
        return proc

    def check_resumable(self, model_id: str) -> None:
        row = self._row(model_id)
        if row is None:
            raise NotFound(f"No training job {model_id!r}.", hint="See `studio model list`.")
        status = self._status(row)
        if status == "ready":
            raise InvalidInput(f"Model {model_id!r} already finished training.")
        if status == "training":
            raise InvalidInput(
                f"Model {model_id!r} is training right now (pid {row['pid']}).",
                hint=f"Cancel it first: `studio model cancel {model_id}`.",
            )

    def cancel(self, model_id: str, *, wait: float = 120.0) -> dict[str, Any]:
        row = self._row(model_id)
        if row is None:
            raise NotFound(f"No training job {model_id!r}.", hint="See `studio model list`.")
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
        return self.status(model_id)

    # -- eval / export / register ------------------------------------------------------------
    def evaluate(
        self,
        model_id: str,
        datanet: str,
        *,
        max_length: int | None = None,
        batch_size: int = 4,
        device: str = "cpu",
    ) -> dict[str, Any]:
        """Loss and perplexity of the model, and of its base, on a snapshot's records."""
        import math

        import torch

        from studio.train.data import examples_from_snapshot
        from studio.train.trainer import collate, loss_items, to_rows

        mv = self.get(model_id)
        entry, records = self.snapshot(datanet)
        cfg = mv.card.get("training_config", {})
        max_length = max_length or int(cfg.get("max_length", 512))
        model, tokenizer = self.load(model_id, device)
        examples = examples_from_snapshot(
            records, tokenizer, max_length=max_length, fmt=cfg.get("fmt", "auto")
        )
        if not examples:
            raise InvalidInput(f"No usable examples in {datanet}.")
        rows = to_rows(examples, max_length, False)

        def loss_of(disable: bool) -> float:
            import contextlib

            total, items = 0.0, 0
            ctx = (
                model.disable_adapter()
                if (disable and mv.adapter_dir is not None)
                else contextlib.nullcontext()
            )
            with torch.no_grad(), ctx:
                for i in range(0, len(rows), batch_size):
                    chunk = rows[i : i + batch_size]
                    n = loss_items(chunk)
                    if not n:
                        continue
                    batch = {
                        k: v.to(device) for k, v in collate(chunk, tokenizer.pad_token_id).items()
                    }
                    total += float(model(**batch, use_cache=False, num_items_in_batch=1).loss)
                    items += n
            return total / max(1, items)

        loss = loss_of(False)
        base_loss = loss_of(True) if mv.adapter_dir is not None else loss
        return {
            "model": model_id,
            "datanet": {k: entry[k] for k in ("name", "version", "root", "records")},
            "examples": len(examples),
            "loss": loss,
            "perplexity": math.exp(min(loss, 50)),
            "base_loss": base_loss,
            "base_perplexity": math.exp(min(base_loss, 50)),
        }

    def export_merged(self, model_id: str, out: Path | None = None) -> Path:
        """A full model folder with the adapter merged in, loadable by plain transformers."""
        mv = self.get(model_id)
        if mv.adapter_dir is None:
            raise InvalidInput(f"{model_id} is a base model; there is no adapter to merge.")
        dest = Path(out).expanduser() if out else self.models_dir / "merged" / model_id
        if dest.exists() and any(dest.iterdir()):
            raise AlreadyExists(
                f"{dest} already exists and is not empty.", hint="Pass --out to a new folder."
            )
        model, tokenizer = self.load(model_id)
        merged = model.merge_and_unload()
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
        try:
            merged.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            atomic.write_json(tmp / "studio_card.json", mv.card)
            if dest.exists():
                dest.rmdir()
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest

    def register(
        self, model_id: str, account: Any, *, metadata_uri: str = "", price_wei: int = 0
    ) -> dict[str, Any]:
        try:
            from studio.chain.registry import register_model
        except ImportError as e:
            raise StudioError(
                "Model registration is not available in this build (the chain registry module is missing).",
                hint="Update OpenLedger Studio; the adapter and card are ready to register later.",
            ) from e
        mv = self.get(model_id)
        if mv.adapter_dir is None:
            raise InvalidInput(
                "Only fine-tuned models are registered; base models are referenced by hash."
            )
        card = mv.card
        snapshots = [{"datanet": d["name"], "version": d["version"]} for d in card["datanets"]]
        result = register_model(
            self.studio,
            account,
            base_model_hash=card["base_model_hash"],
            adapter_hash=card["adapter_hash"],
            config_hash=card["config_hash"],
            snapshots=snapshots,
            metadata_uri=metadata_uri or (mv.dir / "card.json").as_uri(),
            price_wei=price_wei,
            model_id=model_id,
        )
        result = result if isinstance(result, dict) else {"result": result}
        self._update(model_id, registration=json.dumps(result, default=str))
        return result
