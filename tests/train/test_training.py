"""LoRA training in-process on the tiny model: output + card, exact resume, bad input."""

from __future__ import annotations

import errno
import hashlib
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from trainkit import FAST, PROVENANCE, make_records, train_tiny

from studio.core.errors import Cancelled, InvalidInput, NotFound, TrainingError
from studio.core.events import CancelToken
from studio.train.catalog import canonical_sha256
from studio.train.config import TrainConfig


def adapter_tensors(studio, model_id):
    return load_file(str(studio.models.get(model_id).adapter_dir / "adapter_model.safetensors"))


def test_train_writes_adapter_and_card(studio):
    events = []
    studio.events.subscribe(events.append)
    model_id = train_tiny(studio, name="notes-a")
    mv = studio.models.get(model_id)
    card = json.loads((mv.dir / "card.json").read_text())
    assert card == mv.card
    assert (mv.dir / "card.md").read_text().startswith("# notes-a")
    weights = mv.adapter_dir / "adapter_model.safetensors"
    assert card["adapter_hash"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    cfg = TrainConfig.from_dict(card["training_config"])
    assert card["config_hash"] == canonical_sha256(cfg.hashed_part())
    # The base model hash, computed independently: sha256 of the canonical JSON of
    # {file: sha256} over the weights, config and tokenizer files of the base folder.
    base = Path(card["base_dir"])
    manifest = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in base.iterdir()
        if p.suffix == ".safetensors"
        or p.name
        in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")
    }
    assert "model.safetensors" in manifest and "tokenizer.json" in manifest
    assert (
        card["base_model_hash"]
        == hashlib.sha256(
            json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
    )
    assert card["datanets"][0]["record_ids"] == list(range(1, 13))
    assert {"torch", "transformers", "peft"} <= set(card["library_versions"])
    m = card["metrics"]
    assert m["eval_loss_after"] < m["eval_loss_before"]  # it learned something
    assert len(m["loss_history"]) == 6
    # progress stream: step, loss, lr, tokens/s, ETA, eval loss
    steps = [e for e in events if e.kind == "train.step"]
    assert [e.step for e in steps] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "lr", "tokens_per_s", "eta_s"} <= set(steps[0].data)
    assert any(e.kind == "train.eval" for e in events)
    assert any(e.kind == "log" and e.message.startswith("device: cpu") for e in events)
    # listing: base models, then the fine-tune, newest last
    listed = studio.models.list()
    assert listed[-1]["id"] == "notes-a" and listed[-1]["status"] == "ready"
    assert listed[-1]["datanets"] == [
        {k: PROVENANCE[0][k] for k in ("name", "version", "root", "records")}
    ]
    assert {"smollm2-135m", "tiny"} <= {m["id"] for m in listed if m["kind"] == "base"}
    # no checkpoints or temp folders left behind
    assert not (Path(mv.dir).parent / ".notes-a.tmp").exists()
    assert [p.name for p in Path(mv.dir).parent.iterdir()] == ["notes-a"]


def test_load_is_deterministic_with_adapter(studio):
    model_id = train_tiny(studio)
    (m1, tok), (m2, _) = studio.models.load(model_id), studio.models.load(model_id)
    assert not m1.training and hasattr(m1, "peft_config")
    ids = torch.tensor([tok("tide log", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(m1(ids).logits, m2(ids).logits)
        with m1.disable_adapter():
            base = m1(ids).logits
    assert not torch.equal(base, m2(ids).logits)  # the adapter changes the output


def test_resume_equals_uninterrupted_run(studio):
    settings = dict(max_steps=6, checkpoint_every=2, dropout=0.1, grad_accum=2)
    full = train_tiny(studio, name="full", **settings)

    token = CancelToken()
    model_id = studio.models.prepare(
        base="tiny",
        records=make_records(),
        provenance=PROVENANCE,
        settings={**FAST, **settings},
        name="interrupted",
    )

    def stop_after_3(ev):
        if ev.kind == "train.step" and ev.step == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        studio.models.run_job(model_id, cancel=token, on_event=stop_after_3)
    st = studio.models.status(model_id)
    assert st["status"] == "cancelled" and st["step"] == 3
    with pytest.raises(NotFound, match="resume"):
        studio.models.get(model_id)  # no adapter where a finished one is expected
    ckpts = sorted(p.name for p in (studio.paths.jobs / model_id / "checkpoints").iterdir())
    assert ckpts == ["step-0000002", "step-0000003"]
    state = json.loads(
        (
            studio.paths.jobs / model_id / "checkpoints" / "step-0000003" / "trainer_state.json"
        ).read_text()
    )
    assert state["data_position"] == {"epoch": 0, "micro_batch": 6, "step": 3}

    resumed = []
    studio.models.run_job(model_id, resume=True, on_event=resumed.append)
    # It continued from the newest checkpoint: only the remaining steps ran, and it said so.
    assert [e.step for e in resumed if e.kind == "train.step"] == [4, 5, 6]
    logs = [e.message for e in resumed if e.kind == "log"]
    assert "resumed from step-0000003 (step 3/6)" in logs
    assert not any("starting from the beginning" in m for m in logs)
    assert not any(e.kind == "train.eval" and e.data["when"] == "before" for e in resumed)
    a, b = adapter_tensors(studio, full), adapter_tensors(studio, model_id)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ca, cb = studio.models.get(full).card, studio.models.get(model_id).card
    assert ca["adapter_hash"] == cb["adapter_hash"] and ca["config_hash"] == cb["config_hash"]


def test_packing_trains_and_is_recorded(studio):
    model_id = train_tiny(studio, packing=True, max_steps=3)
    card = studio.models.get(model_id).card
    assert card["training_config"]["packing"] is True
    assert card["metrics"]["train_rows"] < card["metrics"]["examples"]


@pytest.mark.parametrize(
    "settings, error, match",
    [
        (dict(rank=0), InvalidInput, "rank"),
        (dict(rank=-4), InvalidInput, "rank"),
        (dict(max_length=100_000), InvalidInput, "above this model's context"),
        (dict(schedule="zigzag"), InvalidInput, "schedule"),
        (dict(val_split=0.9), InvalidInput, "Validation split"),
    ],
)
def test_bad_settings_refused_before_anything_is_written(studio, settings, error, match):
    with pytest.raises(error, match=match):
        studio.models.prepare(
            base="tiny",
            records=make_records(),
            provenance=PROVENANCE,
            settings={**FAST, **settings},
        )
    assert [m for m in studio.models.list() if m["kind"] != "base"] == []
    assert not any(studio.paths.jobs.iterdir())


def test_unknown_target_module_is_refused_before_a_job_exists(studio):
    with pytest.raises(InvalidInput, match="qkv_magic") as e:
        studio.models.prepare(
            base="tiny",
            records=make_records(),
            provenance=PROVENANCE,
            settings={**FAST, "target_modules": ["q_proj", "qkv_magic"]},
        )
    assert "q_proj" in e.value.hint and "v_proj" in e.value.hint  # what the model does have
    assert [m for m in studio.models.list() if m["kind"] != "base"] == []
    assert not studio.paths.jobs.exists() or not any(studio.paths.jobs.iterdir())
    assert not (studio.paths.models / "ft").exists() or not any(
        (studio.paths.models / "ft").iterdir()
    )
    # Known modules are accepted and trained.
    model_id = train_tiny(studio, target_modules=["q_proj", "o_proj"], max_steps=2)
    assert sorted(studio.models.get(model_id).card["metrics"]["target_modules"]) == [
        "o_proj",
        "q_proj",
    ]


def test_packed_examples_see_only_themselves(tmp_path):
    """Packing puts several examples in one row; through the trainer's own forward pass each
    example's logits equal those it gets alone (attention never crosses into a neighbour)."""
    from studio.train.data import examples_from_snapshot, pack_examples
    from studio.train.tiny import build_tiny_model
    from studio.train.trainer import TrainingRun

    torch.set_num_threads(1)
    run = TrainingRun(
        TrainConfig(**{**FAST, "packing": True, "dropout": 0.0}),
        base_dir=build_tiny_model(tmp_path / "base"),
        job_dir=tmp_path / "job",
        out_dir=tmp_path / "out",
        records=make_records(),
    )
    run.prepare()
    run.model.eval()
    exs = examples_from_snapshot(make_records(), run.tokenizer, max_length=64, fmt="auto")[:2]
    (row,) = pack_examples(exs, 128)
    assert row[2].count(0) == 2  # two examples in one row, positions restarting at 0
    with torch.no_grad():
        packed = run.forward([row]).logits[0]
        alone = [
            run.forward([(e.input_ids, e.labels, list(range(len(e.input_ids))))]).logits[0]
            for e in exs
        ]
    n0 = len(exs[0].input_ids)
    assert torch.allclose(packed[:n0], alone[0], atol=1e-5)
    assert torch.allclose(packed[n0:], alone[1], atol=1e-5), (packed[n0:] - alone[1]).abs().max()


def test_empty_snapshot_and_not_a_causal_lm(studio, tmp_path):
    with pytest.raises(InvalidInput, match="no records"):
        studio.models.prepare(base="tiny", records=[], provenance=PROVENANCE, settings=FAST)
    from transformers import ViTConfig

    folder = tmp_path / "vision"
    ViTConfig().save_pretrained(folder)
    with pytest.raises(InvalidInput, match="not a causal language model"):
        studio.models.prepare(base=str(folder), records=make_records(), settings=FAST)
    with pytest.raises(InvalidInput, match="not a Hugging Face model folder"):
        studio.models.prepare(base=str(tmp_path), records=make_records(), settings=FAST)
    with pytest.raises(NotFound, match="offline"):
        studio.models.prepare(
            base="someone/not-cached-model", records=make_records(), settings=FAST
        )


def test_missing_snapshot(studio):
    with pytest.raises(NotFound):
        studio.models.prepare(base="tiny", datanets=["no-such-datanet"], settings=FAST)


def test_out_of_memory_is_reported_with_a_suggestion(studio, monkeypatch):
    from studio.train import trainer

    def boom(self, rows, n):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer.TrainingRun, "_micro_step", boom)
    model_id = studio.models.prepare(
        base="tiny", records=make_records(), provenance=PROVENANCE, settings=FAST
    )
    with pytest.raises(
        TrainingError, match="Out of memory.*batch size.*gradient checkpointing.*QLoRA"
    ):
        studio.models.run_job(model_id)
    assert studio.models.status(model_id)["status"] == "failed"
    assert not (studio.paths.models / "ft" / model_id).exists()


def test_disk_full_while_checkpointing_leaves_last_good_checkpoint(studio, monkeypatch):
    import safetensors.torch as st

    from studio.train import trainer

    real = st.save_file
    calls = {"n": 0}

    def save_file(tensors, path, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint hits a full disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, path, *a, **kw)

    monkeypatch.setattr(st, "save_file", save_file)
    model_id = studio.models.prepare(
        base="tiny", records=make_records(), provenance=PROVENANCE, settings=FAST
    )
    with pytest.raises(TrainingError, match="Disk full.*resume"):
        studio.models.run_job(model_id)
    ckroot = studio.paths.jobs / model_id / "checkpoints"
    assert sorted(p.name for p in ckroot.iterdir()) == ["step-0000002"]  # no half-written step-4
    assert not (studio.paths.models / "ft" / model_id).exists()
    monkeypatch.setattr(st, "save_file", real)
    resumed = []  # resume finishes from the good checkpoint: steps 3..6 only
    studio.models.run_job(model_id, resume=True, on_event=resumed.append)
    assert studio.models.status(model_id)["status"] == "ready"
    assert [e.step for e in resumed if e.kind == "train.step"] == [3, 4, 5, 6]
    assert "resumed from step-0000002 (step 2/6)" in [e.message for e in resumed]
    assert trainer.TrainingRun  # the module whose save_file was failed is the one that resumed


def test_gradient_checkpointing_and_device_report(studio):
    from studio.train.device import describe_device

    plain = train_tiny(studio, name="gc-off", dropout=0.0, max_steps=3)
    gc = train_tiny(studio, name="gc-on", dropout=0.0, max_steps=3, gradient_checkpointing=True)
    a, b = adapter_tensors(studio, plain), adapter_tensors(studio, gc)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    assert "cpu" in describe_device()
    with pytest.raises(TrainingError, match="QLoRA"):
        train_tiny(studio, name="q", qlora=True)


def test_device_choice_with_and_without_a_gpu(monkeypatch):
    """The GPU is the one thing that cannot run here: torch's CUDA probes are faked both ways."""
    from studio.train.device import choose_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(TrainingError, match="cuda was requested but is not available"):
        choose_device("cuda")
    assert choose_device("auto").device == "cpu"
    with pytest.raises(InvalidInput, match="Unknown device"):
        choose_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Fake H100")
    for bf16, dtype in ((True, "bf16"), (False, "fp16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda b=bf16: b)
        got = choose_device("auto")
        assert (got.device, got.dtype) == ("cuda", dtype) and "Fake H100" in got.reason
    assert choose_device("cpu").device == "cpu"  # an explicit CPU request wins over the GPU


def _run_alone(tmp_path, **settings):
    from studio.core.events import EventBus
    from studio.train.tiny import build_tiny_model
    from studio.train.trainer import TrainingRun

    torch.set_num_threads(1)
    bus, seen = EventBus(), []
    bus.subscribe(seen.append)
    base = tmp_path / "base"
    run = TrainingRun(
        TrainConfig(**{**FAST, "dropout": 0.0, **settings}),
        base_dir=base if base.exists() else build_tiny_model(base),
        job_dir=tmp_path / "job",
        out_dir=tmp_path / "out",
        records=make_records(),
        events=bus,
    )
    return run, seen


def test_reported_losses_are_the_models_own(tmp_path):
    """The numbers on the loss curve, computed again from the model outside the trainer: eval
    loss = summed token cross-entropy over the validation rows / their label tokens; a step's
    loss = what its micro-batches give before that step's update; history = those, rounded."""
    import torch.nn.functional as F

    fresh, _ = _run_alone(tmp_path, max_steps=2)
    fresh.prepare()
    fresh.model.eval()
    with torch.no_grad():
        total = 0.0
        for ids, labels, _pos in fresh.val_rows:
            logits = fresh.model(input_ids=torch.tensor([ids])).logits[0]
            total += float(F.cross_entropy(logits[:-1], torch.tensor(labels[1:]), reduction="sum"))
        want_eval = total / sum(sum(1 for x in r[1][1:] if x != -100) for r in fresh.val_rows)
        micro = [[fresh.train_rows[i] for i in idx] for idx in fresh.plan.micro_batches(0)]
        n = sum(sum(1 for x in r[1][1:] if x != -100) for m in micro for r in m)
        want_step1 = sum(float(fresh.forward(m, n).loss) for m in micro if m)

    run, seen = _run_alone(tmp_path, max_steps=2)
    metrics = run.run()
    steps = [e for e in seen if e.kind == "train.step"]
    assert metrics["eval_loss_before"] == pytest.approx(want_eval, rel=1e-5)
    assert steps[0].data["loss"] == pytest.approx(want_step1, rel=1e-5)
    assert metrics["loss_history"] == [round(e.data["loss"], 6) for e in steps]
    assert metrics["perplexity_before"] == pytest.approx(math.exp(want_eval))
    assert [(e.step, e.total) for e in steps] == [(1, 2), (2, 2)]
    # The replay record exact attribution re-runs the training from: the LoRA settings used.
    replay = json.loads((tmp_path / "out" / "replay" / "replay.json").read_text())
    cfg = run.cfg
    assert replay["lora"] == {
        "r": cfg.rank,
        "alpha": cfg.alpha,
        "dropout": 0.0,
        "targets": run.targets,
    }


def test_a_diverged_loss_does_not_overflow_the_perplexity(tmp_path, monkeypatch):
    from studio.train.trainer import TrainingRun

    monkeypatch.setattr(TrainingRun, "evaluate", lambda self, rows=None: 1000.0)
    run, seen = _run_alone(tmp_path, max_steps=3, checkpoint_every=2)
    metrics = run.run()  # exp(1000) would raise OverflowError
    evals = [e for e in seen if e.kind == "train.eval"]
    assert [e.data["when"] for e in evals] == ["before", "after"]
    assert {e.total for e in evals} == {3}
    assert {e.data["perplexity"] for e in evals} == {math.exp(50)}
    assert metrics["perplexity_before"] == metrics["perplexity_after"] == math.exp(50)
    # The job folder did not exist: the run made it (replay start), then the step-2 checkpoint.
    assert [p.name for p in (tmp_path / "job" / "checkpoints").iterdir()] == ["step-0000002"]
