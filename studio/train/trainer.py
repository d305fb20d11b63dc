"""The LoRA training loop: deterministic data order, gradient accumulation, warm-up + schedule,
checkpoints that resume exactly (adapter + optimizer + scheduler + RNG + data position), a
clean stop on cancel, and a finished adapter that appears only by atomic rename.

The loop is plain torch over a peft model: no Trainer machinery, so per-step overhead is small
and every piece of state a resume needs is explicit."""

from __future__ import annotations

import errno
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from studio.core import atomic
from studio.core.errors import Cancelled, InvalidInput, TrainingError
from studio.core.events import CancelToken, Event, EventBus, EventKind, KindName
from studio.train.config import TrainConfig
from studio.train.data import examples_from_snapshot
from studio.train.plan import Plan as Plan  # re-exported: callers import these from here
from studio.train.plan import (
    Row,
    collate,
    loss_items,
    lr_lambda,
    make_plan,
    split_examples,
    to_rows,
)
from studio.train.plan import validation_record_ids as validation_record_ids
from studio.train.trainer_model import check_target_modules as check_target_modules
from studio.train.trainer_model import linear_module_names as linear_module_names
from studio.train.trainer_model import lora_state, quiet_transformers, resolve_targets
from studio.train.trainer_replay import save_replay_start, write_replay

OOM_HINT = (
    "Try a smaller batch size (with gradient accumulation to keep the effective batch), a shorter "
    "max length, gradient checkpointing, or QLoRA on a CUDA GPU with bitsandbytes."
)


# -- the run -----------------------------------------------------------------------------------


class TrainingRun:
    """One fine-tuning job. `run()` trains from scratch or from the latest checkpoint in
    job_dir/checkpoints and writes the finished adapter to out_dir (atomic rename)."""

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        base_dir: Path,
        job_dir: Path,
        out_dir: Path,
        records: Sequence[Any],
        events: EventBus | None = None,
        job: str = "",
        cancel: CancelToken | None = None,
        on_checkpoint: Callable[[int, int], None] | None = None,
        finish: Callable[[Path, dict[str, Any]], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.base_dir = Path(base_dir)
        self.job_dir = Path(job_dir)
        self.out_dir = Path(out_dir)
        self.records = list(records)
        self.events = events or EventBus()
        self.job = job
        self.cancel = cancel or CancelToken()
        self.on_checkpoint = on_checkpoint
        self.finish = finish  # writes the model card into the temp output folder
        self.ckpt_root = self.job_dir / "checkpoints"

    # -- events --
    def emit(
        self,
        kind: EventKind | KindName,
        message: str = "",
        step: int | None = None,
        total: int | None = None,
        **data: Any,
    ) -> None:
        self.events.emit(
            Event(kind, job=self.job, message=message, step=step, total=total, data=data)
        )

    def log(self, message: str) -> None:
        self.emit("log", message)

    # -- setup --
    def prepare(self) -> None:
        import torch

        from studio.train.catalog import check_causal_lm, context_limit, load_tokenizer
        from studio.train.device import choose_device

        quiet_transformers()
        cfg = self.cfg
        cfg.validate()
        if not self.records:
            raise InvalidInput(
                "The training snapshot has no records.",
                hint="Accept records (studio datanet curate) and take a snapshot first.",
            )
        model_config = check_causal_lm(self.base_dir)
        limit = context_limit(model_config)
        if cfg.max_length > limit:
            raise InvalidInput(
                f"A max length of {cfg.max_length} is above this model's context of {limit} tokens.",
                hint=f"Use a max length of {min(limit, 2048)} or less.",
            )
        self.choice = choose_device(cfg.device)
        if cfg.qlora and not self.choice.qlora_available:
            raise TrainingError(
                "QLoRA needs a CUDA GPU and the bitsandbytes package.",
                hint="Train without QLoRA, or install bitsandbytes on a CUDA machine.",
            )
        self.log(f"device: {self.choice.describe()}")
        self.device = torch.device(self.choice.device)
        self.tokenizer = load_tokenizer(self.base_dir)
        examples = examples_from_snapshot(
            self.records, self.tokenizer, max_length=cfg.max_length, fmt=cfg.fmt
        )
        if not examples:
            raise InvalidInput(
                "No usable training examples in the snapshot (every record was empty or all prompt).",
                hint="Check the Datanet's records, or raise the max length.",
            )
        train, val = split_examples(examples, cfg.val_split, cfg.seed)
        self.train_examples = train  # the replay record maps row tokens back to records
        self.n_examples = len(examples)
        self.train_rows = to_rows(train, cfg.max_length, cfg.packing)
        self.val_rows = to_rows(val, cfg.max_length, False)
        self.plan = make_plan(len(self.train_rows), cfg)
        self.log(
            f"data: {len(examples)} examples from {len({e.record_id for e in examples})} records; "
            f"{len(self.train_rows)} training rows{' (packed)' if cfg.packing else ''}, "
            f"{len(self.val_rows)} validation rows; {self.plan.total_steps} steps"
        )
        self._load_model()

    def _load_model(self) -> None:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        cfg = self.cfg
        kwargs: dict[str, Any] = {}
        if self.choice.device == "cuda":
            kwargs["dtype"] = torch.bfloat16 if self.choice.dtype == "bf16" else torch.float16
            if cfg.qlora:
                from transformers import BitsAndBytesConfig

                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True,
                    bnb_4bit_quant_type="nf4",
                    bnb_4bit_compute_dtype=kwargs["dtype"],
                    bnb_4bit_use_double_quant=True,
                )
        else:
            kwargs["dtype"] = torch.float32
        try:
            model = AutoModelForCausalLM.from_pretrained(self.base_dir, **kwargs)
        except torch.OutOfMemoryError as e:
            raise TrainingError(
                f"Out of memory loading the base model on {self.choice.device}.", hint=OOM_HINT
            ) from e
        if cfg.qlora:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(
                model, use_gradient_checkpointing=cfg.gradient_checkpointing
            )
        else:
            model.to(self.device)
        if cfg.gradient_checkpointing:
            kw = {"use_reentrant": False}
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5
                model.activation_checkpointing_enable(activation_checkpointing_kwargs=kw)
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kw)
            model.enable_input_require_grads()
        model.config.use_cache = False
        self.targets = resolve_targets(model, cfg)
        lora = LoraConfig(
            r=cfg.rank,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=self.targets,
            bias="none",
            task_type="CAUSAL_LM",
        )
        torch.manual_seed(cfg.seed)  # LoRA A matrices are random: seed them
        self.model = get_peft_model(model, lora)
        self.model.to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self._save_replay_start()
        self.trainable = sum(p.numel() for p in self.params)
        self.optimizer = torch.optim.AdamW(
            self.params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, eps=cfg.adam_eps
        )
        warmup = int(round(cfg.warmup_ratio * self.plan.total_steps))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(cfg.schedule, warmup, self.plan.total_steps)
        )
        self.scaler = (
            torch.amp.GradScaler("cuda")
            if self.choice.device == "cuda" and self.choice.dtype == "fp16"
            else None
        )

    def autocast(self) -> Any:
        import contextlib

        import torch

        if self.choice.device == "cuda":
            dt = torch.bfloat16 if self.choice.dtype == "bf16" else torch.float16
            return torch.autocast("cuda", dtype=dt)
        return contextlib.nullcontext()

    # -- the replay record (exact attribution differentiates through this run) --
    def _save_replay_start(self) -> None:
        save_replay_start(self)

    def write_replay(self, out: Path) -> None:
        write_replay(self, out)

    # -- evaluation --
    def evaluate(self, rows: Sequence[Row] | None = None) -> float | None:
        import torch

        rows = self.val_rows if rows is None else rows
        if not rows:
            return None
        self.model.eval()
        total, items = 0.0, 0
        try:
            with torch.no_grad():
                for i in range(0, len(rows), self.cfg.batch_size):
                    chunk = rows[i : i + self.cfg.batch_size]
                    n = loss_items(chunk)
                    if n == 0:
                        continue
                    total += float(self.forward(chunk, 1).loss)
                    items += n
        finally:
            self.model.train()
        return total / items if items else None

    # -- checkpoints --
    def latest_checkpoint(self) -> Path | None:
        if not self.ckpt_root.exists():
            return None
        done = sorted(p for p in self.ckpt_root.glob("step-*") if p.is_dir())
        return done[-1] if done else None

    def save_checkpoint(self, step: int, state: dict[str, Any]) -> Path:
        self.ckpt_root.mkdir(parents=True, exist_ok=True)
        dest = self.ckpt_root / f"step-{step:07d}"
        try:
            with atomic.building_dir(dest) as tmp:
                self._write_checkpoint(tmp, step, state)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise TrainingError(
                    f"Disk full while saving the step-{step} checkpoint in {self.ckpt_root}.",
                    hint="Free some space, then `studio model resume` continues from the last good checkpoint.",
                ) from e
            raise TrainingError(f"Cannot write the step-{step} checkpoint: {e}.") from e
        # Keep the two newest: one good checkpoint survives a crash during the next save.
        for old in sorted(p for p in self.ckpt_root.glob("step-*") if p.is_dir())[:-2]:
            shutil.rmtree(old, ignore_errors=True)
        if self.on_checkpoint:
            self.on_checkpoint(step, self.plan.total_steps)
        return dest

    def _write_checkpoint(self, tmp: Path, step: int, state: dict[str, Any]) -> None:
        import numpy as np
        import torch
        from safetensors.torch import save_file

        save_file(lora_state(self.model), str(tmp / "adapter.safetensors"))
        torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(self.scheduler.state_dict(), tmp / "scheduler.pt")
        rng = {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        torch.save(rng, tmp / "rng.pt")
        if self.scaler is not None:
            torch.save(self.scaler.state_dict(), tmp / "scaler.pt")
        meta = {**state, "step": step, "data_position": self.plan.position(step)}
        (tmp / "trainer_state.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())

    def load_checkpoint(self, ckpt: Path) -> dict[str, Any]:
        import numpy as np
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        meta = json.loads((ckpt / "trainer_state.json").read_text())
        if meta.get("config_hash") != self.config_hash:
            raise TrainingError(
                f"Checkpoint {ckpt.name} was written with different training settings.",
                hint="Resume with the original settings, or start a new training run.",
            )
        set_peft_model_state_dict(
            self.model,
            {k: v.to(self.device) for k, v in load_file(str(ckpt / "adapter.safetensors")).items()},
        )
        self.optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=False))
        self.scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=False))
        if self.scaler is not None and (ckpt / "scaler.pt").exists():
            self.scaler.load_state_dict(torch.load(ckpt / "scaler.pt", weights_only=False))
        rng = torch.load(ckpt / "rng.pt", weights_only=False)
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        return meta

    # -- the loop --
    @property
    def config_hash(self) -> str:
        from studio.train.catalog import canonical_sha256

        return canonical_sha256(self.cfg.hashed_part())

    def forward(self, rows: Sequence[Row], n_items: int = 1) -> Any:
        """The forward pass training and evaluation share. No KV cache: with one the model
        ignores the packed position ids and attention crosses example boundaries."""
        batch = {
            k: v.to(self.device) for k, v in collate(rows, self.tokenizer.pad_token_id).items()
        }
        with self.autocast():
            return self.model(**batch, use_cache=False, num_items_in_batch=n_items)

    def _micro_step(self, rows: Sequence[Row], n_items: int) -> float:
        loss = self.forward(rows, n_items).loss
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        return float(loss.detach())

    def run(self, *, resume: bool = False) -> dict[str, Any]:
        import torch

        try:
            return self._run(resume=resume)
        except torch.OutOfMemoryError as e:
            raise TrainingError(
                f"Out of memory on {getattr(getattr(self, 'choice', None), 'device', 'the device')}.",
                hint=OOM_HINT,
            ) from e

    def _run(self, *, resume: bool) -> dict[str, Any]:
        import torch

        self.prepare()
        cfg, plan = self.cfg, self.plan
        state: dict[str, Any] = {"config_hash": self.config_hash, "history": [], "tokens": 0}
        start = 0
        ckpt = self.latest_checkpoint() if resume else None
        if resume and ckpt is None:
            self.log("no checkpoint found: starting from the beginning")
        if ckpt is not None:
            state = self.load_checkpoint(ckpt)
            start = int(state["step"])
            self.log(f"resumed from {ckpt.name} (step {start}/{plan.total_steps})")
        else:
            self.log(
                f"LoRA r={cfg.rank} alpha={cfg.alpha} on {self.targets}; {self.trainable:,} trainable parameters"
            )
            before = self.evaluate()
            state["eval_loss_before"] = before
            if before is not None:
                self.emit(
                    "train.eval",
                    f"eval loss {before:.4f}",
                    step=0,
                    total=plan.total_steps,
                    eval_loss=before,
                    perplexity=math.exp(min(before, 50)),
                    when="before",
                )
        self.model.train()
        t0, c0 = time.perf_counter(), time.process_time()
        tokens_run = 0
        for step in range(start, plan.total_steps):
            if self.cancel.cancelled:
                self.save_checkpoint(step, state)
                self.log(f"cancelled at step {step}; checkpoint saved")
                raise Cancelled(
                    f"Training cancelled at step {step}/{plan.total_steps}; `studio model resume` continues it."
                )
            micro = [[self.train_rows[i] for i in idx] for idx in plan.micro_batches(step)]
            n_items = max(1, sum(loss_items(m) for m in micro))
            step_loss = 0.0
            for rows in micro:
                if rows:
                    step_loss += self._micro_step(rows, n_items)
                    tokens_run += sum(len(r[0]) for r in rows)
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
            lr = self.scheduler.get_last_lr()[0]
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            done = step + 1
            elapsed = time.perf_counter() - t0
            tps = tokens_run / elapsed if elapsed > 0 else 0.0
            eta = elapsed / (done - start) * (plan.total_steps - done)
            state["history"].append({"step": done, "loss": step_loss, "lr": lr})
            state["tokens"] = int(state.get("tokens", 0)) + sum(len(r[0]) for m in micro for r in m)
            self.emit(
                "train.step",
                f"loss {step_loss:.4f} lr {lr:.2e} {tps:,.0f} tok/s ETA {eta:.0f}s",
                step=done,
                total=plan.total_steps,
                loss=step_loss,
                lr=lr,
                tokens_per_s=tps,
                eta_s=eta,
                epoch=plan.position(step)["epoch"],
            )
            # The generic progress event every long job emits (progress bars); train.step above
            # carries the numbers for the loss curve.
            self.events.progress(self.job, done, plan.total_steps, f"loss {step_loss:.4f}")
            if cfg.eval_every and done % cfg.eval_every == 0 and done < plan.total_steps:
                ev = self.evaluate()
                if ev is not None:
                    state.setdefault("evals", []).append({"step": done, "eval_loss": ev})
                    self.emit(
                        "train.eval",
                        f"eval loss {ev:.4f}",
                        step=done,
                        total=plan.total_steps,
                        eval_loss=ev,
                        perplexity=math.exp(min(ev, 50)),
                        when="during",
                    )
            if done % cfg.checkpoint_every == 0 and done < plan.total_steps:
                self.save_checkpoint(done, state)
        loop_s, loop_cpu_s = time.perf_counter() - t0, time.process_time() - c0
        after = self.evaluate()
        state["eval_loss_after"] = after
        if after is not None:
            self.emit(
                "train.eval",
                f"eval loss {after:.4f}",
                step=plan.total_steps,
                total=plan.total_steps,
                eval_loss=after,
                perplexity=math.exp(min(after, 50)),
                when="after",
            )
        metrics = self.metrics(state, tokens_run, loop_s, loop_cpu_s)
        self.write_output(metrics)
        return metrics

    def metrics(
        self, state: dict[str, Any], tokens_run: int, elapsed: float, cpu_s: float
    ) -> dict[str, Any]:
        hist = state.get("history", [])
        before, after = state.get("eval_loss_before"), state.get("eval_loss_after")
        return {
            "steps": self.plan.total_steps,
            "examples": self.n_examples,
            "train_rows": len(self.train_rows),
            "val_rows": len(self.val_rows),
            "tokens_trained": int(state.get("tokens", 0)),
            "train_loss_first": hist[0]["loss"] if hist else None,
            "train_loss_last": hist[-1]["loss"] if hist else None,
            "loss_history": [round(h["loss"], 6) for h in hist],
            "eval_loss_before": before,
            "eval_loss_after": after,
            "perplexity_before": math.exp(min(before, 50)) if before is not None else None,
            "perplexity_after": math.exp(min(after, 50)) if after is not None else None,
            # this session's loop only (a resumed run counts its own steps)
            "tokens_per_s": tokens_run / elapsed if elapsed > 0 else None,
            "tokens_per_cpu_s": tokens_run / cpu_s if cpu_s > 0 else None,
            "device": self.choice.describe(),
            "trainable_parameters": self.trainable,
            "target_modules": self.targets,
        }

    def write_output(self, metrics: dict[str, Any]) -> None:
        """adapter + card into a temp folder beside out_dir, then one rename."""
        if self.out_dir.exists():
            raise TrainingError(f"{self.out_dir} already exists; not overwriting a finished model.")
        try:
            with atomic.building_dir(self.out_dir) as tmp:
                self.model.save_pretrained(str(tmp / "adapter"), safe_serialization=True)
                self.write_replay(tmp / "replay")
                if self.finish:
                    self.finish(tmp, metrics)
                if self.out_dir.exists():  # appeared meanwhile: never replace a finished model
                    raise TrainingError(f"{self.out_dir} already exists; not overwriting it.")
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise TrainingError(
                    "Disk full while writing the finished adapter.",
                    hint="Free some space, then `studio model resume` finishes from the last checkpoint.",
                ) from e
            raise
