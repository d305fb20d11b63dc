"""What exact attribution needs to replay a training run (the replay record beside the adapter):
the LoRA initialisation and RNG state the loop starts from, and at the end the data order,
per-step batches, schedule and optimizer settings. See studio/train/replay_record.py."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from studio.train.plan import loss_items, lr_lambda

if TYPE_CHECKING:
    from studio.train.trainer import TrainingRun


def save_replay_start(run: TrainingRun) -> None:
    """The LoRA initialisation and the RNG state the loop starts from, kept in the job
    folder from the first start (a resumed run reuses them)."""
    import torch
    from safetensors.torch import save

    from studio.core.atomic import write_bytes

    init = run.job_dir / "replay-init.safetensors"
    if init.exists():
        return
    run.job_dir.mkdir(parents=True, exist_ok=True)
    named = {n: p.detach().cpu().contiguous() for n, p in run.model.named_parameters()}
    trainable = {n: named[n] for n, p in run.model.named_parameters() if p.requires_grad}
    write_bytes(init, save(trainable))
    torch.save(torch.get_rng_state(), run.job_dir / "replay-rng.pt")


def write_replay(run: TrainingRun, out: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from studio.train.replay_record import ReplayRecord

    cfg, plan = run.cfg, run.plan
    keys = sorted({(e.datanet, int(e.version), int(e.record_id)) for e in run.train_examples})
    index = {k: i for i, k in enumerate(keys)}
    who = {(e.datanet, int(e.version), int(e.record_id)): e.contributor for e in run.train_examples}
    if cfg.packing:
        from studio.train.data import pack_bins

        members = pack_bins(run.train_examples, cfg.max_length)
    else:
        members = [[i] for i in range(len(run.train_examples))]
    rows = []
    for (ids, labels, pos), mem in zip(run.train_rows, members, strict=True):
        recs: list[int] = []
        for i in mem:
            e = run.train_examples[i]
            recs += [index[(e.datanet, int(e.version), int(e.record_id))]] * len(e.input_ids)
        rows.append({"input_ids": ids, "labels": labels, "position_ids": pos, "records": recs})
    steps = [plan.micro_batches(s) for s in range(plan.total_steps)]
    scale = [
        float(max(1, sum(loss_items([run.train_rows[i] for i in m]) for m in micro)))
        for micro in steps
    ]
    f = lr_lambda(cfg.schedule, int(round(cfg.warmup_ratio * plan.total_steps)), plan.total_steps)
    why = None
    if run.choice.device != "cpu" and run.choice.dtype != "fp32":
        why = f"trained in {run.choice.dtype} mixed precision; a replay would not follow it"
    elif cfg.qlora:
        why = "trained with QLoRA (4-bit base weights)"
    group = run.optimizer.param_groups[0]
    rng = run.job_dir / "replay-rng.pt"
    ReplayRecord(
        lora={
            "r": cfg.rank,
            "alpha": cfg.alpha,
            "dropout": cfg.dropout,
            "targets": run.targets,
        },
        optimizer={
            "name": "adamw",
            "betas": list(group["betas"]),
            "eps": group["eps"],
            "weight_decay": group["weight_decay"],
            "max_grad_norm": cfg.max_grad_norm,
        },
        lrs=[cfg.learning_rate * f(s) for s in range(plan.total_steps)],
        steps=steps,
        step_scale=scale,
        rows=rows,
        records=[
            {"datanet": k[0], "version": k[1], "record_id": k[2], "contributor": who[k]}
            for k in keys
        ],
        pad_id=int(run.tokenizer.pad_token_id),
        exact=why is None,
        why_not=why,
        init=load_file(str(run.job_dir / "replay-init.safetensors")),
        rng_state=torch.load(rng, weights_only=True) if cfg.dropout > 0 and rng.exists() else None,
    ).save(out)
