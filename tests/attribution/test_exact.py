"""Exact attribution: the replay follows the trainer, and its metagradient is the true
derivative of the deterministic run (checked against finite differences in float64)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from attr_fixtures import make_records


def _train(
    root: Path,
    base: Path,
    *,
    dropout: float,
    steps: int = 5,
    packing: bool = False,
    **extra: Any,
) -> Path:
    from studio.train.config import TrainConfig
    from studio.train.trainer import TrainingRun

    cfg = TrainConfig(
        base="tiny",
        rank=4,
        alpha=8,
        dropout=dropout,
        target_modules=["q_proj", "v_proj"],
        learning_rate=5e-3,
        max_steps=steps,
        batch_size=4,
        grad_accum=2,
        max_length=64,
        val_split=0.0,
        warmup_ratio=0.2,
        device="cpu",
        packing=packing,
        **extra,
    )
    out = root / "out"
    TrainingRun(
        cfg, base_dir=base, job_dir=root / "job", out_dir=out, records=make_records(n_per=4)
    ).run()
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import torch

    from studio.train.tiny import build_tiny_model

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("exact")
    base = build_tiny_model(root / "base")
    return {"base": base, "plain": _train(root / "plain", base, dropout=0.0)}


def _adapter_params(rep: Any, out: Path) -> list[Any]:
    from safetensors.torch import load_file

    saved = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    # peft saves without the adapter name: ...lora_A.weight for ...lora_A.default.weight
    return [saved[n.replace(".default", "")] for n in rep.names]


def test_replay_record_written_and_card_flag(trained: dict[str, Any]) -> None:
    from studio.train.replay_record import ReplayRecord, summary

    rec = ReplayRecord.load(trained["plain"] / "replay")
    assert rec.exact and rec.total_steps == 5
    assert len(rec.records) == 12 and all(len(s) == 2 for s in rec.steps)
    assert summary(trained["plain"] / "replay")["exact"] is True


def test_adam_eps_is_trained_with_and_replayed(trained: dict[str, Any], tmp_path: Path) -> None:
    from studio.attribution import exact as X
    from studio.train.replay_record import ReplayRecord

    out = _train(tmp_path, trained["base"], dropout=0.0, steps=3, adam_eps=1e-3)
    rec = ReplayRecord.load(out / "replay")
    assert rec.optimizer["eps"] == 1e-3
    final, _ = X.train(X.load_replay(rec, trained["base"]))
    rep = X.load_replay(rec, trained["base"])
    for got, want in zip(final, _adapter_params(rep, out), strict=True):
        np.testing.assert_allclose(
            got.double().numpy(), want.double().numpy(), rtol=1e-4, atol=2e-6
        )


def test_adam_eps_setting_validated_and_old_hashes_kept() -> None:
    from studio.core.errors import InvalidInput
    from studio.train.config import TrainConfig

    assert "adam_eps" not in TrainConfig().hashed_part()  # hashes from before the setting
    assert TrainConfig(adam_eps=1e-3).hashed_part()["adam_eps"] == 1e-3
    with pytest.raises(InvalidInput, match="epsilon"):
        TrainConfig(adam_eps=0.0).validate()


def test_replay_follows_the_trainer(trained: dict[str, Any]) -> None:
    from studio.attribution import exact as X
    from studio.train.replay_record import ReplayRecord

    rep = X.load_replay(ReplayRecord.load(trained["plain"] / "replay"), trained["base"])
    final, _ = X.train(rep)
    for got, want in zip(final, _adapter_params(rep, trained["plain"]), strict=True):
        np.testing.assert_allclose(
            got.double().numpy(), want.double().numpy(), rtol=1e-4, atol=2e-6
        )
    # A wrong step (no clipping) would not: the check can fail.
    rep.record.optimizer["max_grad_norm"] = 0.0
    rep.record.lrs = [x * 1.5 for x in rep.record.lrs]
    off, _ = X.train(rep)
    assert max(float((a - b).abs().max()) for a, b in zip(off, final, strict=True)) > 1e-3


def test_metagradient_matches_finite_differences(trained: dict[str, Any]) -> None:
    import torch

    from studio.attribution import exact as X
    from studio.train.replay_record import ReplayRecord

    rep = X.load_replay(ReplayRecord.load(trained["plain"] / "replay"), trained["base"])
    tok = [5, 40, 41, 42, 43, 44, 45, 46, 47]
    queries = [(tok, [-100, -100, *tok[2:]]), (tok[::-1], tok[::-1])]
    grads, losses = X.metagradients(rep, queries, block=2)
    grads1, _ = X.metagradients(rep, queries, block=5)  # block spacing changes memory, not result
    np.testing.assert_allclose(grads, grads1, rtol=1e-10, atol=1e-14)

    def loss_at(w: np.ndarray, q: int) -> float:
        final, _ = X.train(rep, w)
        return float(X.query_loss(rep, final, queries[q]))

    assert abs(loss_at(np.ones(rep.n_records), 0) - losses[0]) < 1e-12
    # Adam's normalisation makes the run curved at the scale of 1e-3 in a weight, so the
    # finite differences take small steps (float64 keeps their rounding near 1e-10).
    h = 1e-6
    rng = np.random.default_rng(0)
    for q in range(2):
        for i in (0, 5, 11):
            e = np.ones(rep.n_records)
            e[i] += h
            up = loss_at(e, q)
            e[i] -= 2 * h
            fd = (up - loss_at(e, q)) / (2 * h)
            assert abs(fd - grads[q, i]) <= 1e-4 * abs(grads[q, i]) + 1e-9, (q, i, fd, grads[q, i])
        u = rng.standard_normal(rep.n_records)  # a direction moving every weight at once
        fd = (loss_at(1 + h * u, q) - loss_at(1 - h * u, q)) / (2 * h)
        assert abs(fd - grads[q] @ u) <= 1e-4 * abs(grads[q] @ u) + 1e-9
    assert torch.get_num_threads() == 1


def test_metagradient_at_other_weights_matches_finite_differences(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    """At weights other than 1 (a record left out at 0, one halved): the derivative of that run,
    and a record at 0 gets the effect of adding it. Resume files of other weights are not used."""
    from studio.attribution import exact as X
    from studio.train.replay_record import ReplayRecord

    rep = X.load_replay(ReplayRecord.load(trained["plain"] / "replay"), trained["base"])
    tok = [5, 40, 41, 42, 43, 44, 45, 46, 47]
    queries = [(tok, tok)]
    w0 = np.ones(rep.n_records)
    w0[[1, 5]] = 0.0
    w0[[2, 7]] = 0.5
    work = tmp_path / "w"
    ones, _ = X.metagradients(rep, queries, block=2, workdir=work)
    grads, losses = X.metagradients(rep, queries, block=2, weights=w0, workdir=work)
    assert not np.allclose(grads, ones)  # the resume files of weights 1 were not reused

    def loss_at(w: np.ndarray) -> float:
        final, _ = X.train(rep, w)
        return float(X.query_loss(rep, final, queries[0]))

    assert abs(loss_at(w0) - losses[0]) < 1e-12
    h = 1e-6
    for i in (1, 2, 5, 11):
        e = w0.copy()
        e[i] += h
        up = loss_at(e)
        e[i] -= 2 * h
        fd = (up - loss_at(e)) / (2 * h)
        assert abs(fd - grads[0, i]) <= 1e-4 * abs(grads[0, i]) + 1e-9, (i, fd, grads[0, i])
    again, _ = X.metagradients(rep, queries, block=2, weights=w0, workdir=work)
    np.testing.assert_array_equal(again, grads)


def test_cancelled_exact_run_resumes_to_the_same_numbers(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    from studio.attribution import exact as X
    from studio.core.errors import Cancelled
    from studio.train.replay_record import ReplayRecord

    class CancelAfter:
        def __init__(self, n: int) -> None:
            self.n = n

        @property
        def cancelled(self) -> bool:
            self.n -= 1
            return self.n < 0

    rep = X.load_replay(ReplayRecord.load(trained["plain"] / "replay"), trained["base"])
    q = [([5, 40, 41, 42, 43], [5, 40, 41, 42, 43])]
    whole, _ = X.metagradients(rep, q, block=1)
    with pytest.raises(Cancelled):  # 5 forward steps, then 2 of the 5 reverse blocks
        X.metagradients(rep, q, block=1, cancel=CancelAfter(7), workdir=tmp_path / "w")
    assert (tmp_path / "w" / "reverse.pt").exists()
    resumed, _ = X.metagradients(rep, q, block=1, workdir=tmp_path / "w")
    np.testing.assert_array_equal(resumed, whole)


@pytest.fixture
def exact_studio(studio: Any, trained: dict[str, Any]) -> Any:
    """A Studio whose model "tiny-exact" is the real training run above (replay record and all)."""
    from attr_fixtures import FakeDatanets, FakeModels, Version

    out = trained["plain"]
    card = {
        "base": "tiny",
        "base_model_hash": "0x" + "11" * 32,
        "adapter_hash": "0x" + "22" * 32,
        "config_hash": "0x" + "33" * 32,
        "datanets": [{"name": "notes", "version": 1, "root": "0x" + "ab" * 32, "records": 12}],
        "training_config": {"fmt": "auto", "max_length": 64, "val_split": 0.0},
        "metrics": {"tokens_per_s": 5000.0},
    }
    v = Version("tiny-exact", out, "tiny", trained["base"], out / "adapter", card)
    studio.__dict__["models"] = FakeModels({"tiny-exact": v})
    studio.__dict__["datanets"] = FakeDatanets(make_records(n_per=4))
    studio.__dict__.pop("attribution", None)
    return studio


def test_exact_report_verifies_and_names_the_method(exact_studio: Any) -> None:
    from attr_fixtures import CANARY

    from studio.attribution import replay

    att = exact_studio.attribution
    seen: list[Any] = []
    exact_studio.events.subscribe(seen.append)
    est = replay.estimate(att, "tiny-exact")
    assert est["fits"] and est["steps"] == 5 and est["memory_bytes"] > 0 and "MiB" in est["summary"]
    assert replay.choose_method(att, "tiny-exact") == "exact"
    rep = att.attribute("tiny-exact", "What did the keeper log?", CANARY, method="exact", top_k=3)
    assert rep["method"]["name"] == "exact" and rep["method"]["params"]["exact"]["steps"] == 5
    assert rep["records_scored"] == 12
    assert sum(w["bps"] for w in rep["weights"]) == 10_000
    assert any(getattr(e, "job", "") == replay.JOB for e in seen)  # progress was shown
    res = att.verify(rep)
    assert res["match"], res["differences"]
    # A tampered score is caught by the re-run.
    bad = json_copy(rep)
    bad["top_records"][0]["score"] *= 2
    bad["report_hash"] = __import__("studio.attribution.report", fromlist=["x"]).compute_hash(bad)
    assert not att.verify(bad)["match"]


def json_copy(d: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(d))


def test_exact_refuses_without_a_replay_record(att_studio: Any) -> None:
    from studio.attribution import replay
    from studio.core.errors import AttributionError

    with pytest.raises(AttributionError, match="no replay record"):
        att_studio.attribution.attribute("tiny-ft", "q?", "an answer", method="exact")
    assert replay.choose_method(att_studio.attribution, "tiny-ft") == "gradient"


def test_exact_refuses_when_memory_is_short(
    exact_studio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.attribution import exact as X
    from studio.core.errors import AttributionError

    monkeypatch.setattr(X, "available_memory", lambda: 1 << 20)  # a machine with 1 MiB free
    with pytest.raises(AttributionError, match="needs about"):
        exact_studio.attribution.attribute("tiny-exact", "q?", "an answer", method="exact")


def test_cli_shows_the_estimate_and_refuses_in_one_line(
    cli: Any, exact_studio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from attr_fixtures import FakeModels, Version

    from studio.app import Studio

    models, datanets = exact_studio.models, exact_studio.datanets
    monkeypatch.setattr(Studio, "models", property(lambda self: models))
    monkeypatch.setattr(Studio, "datanets", property(lambda self: datanets))
    argv = ["attribute", "tiny-exact", "--prompt", "q?", "--output", "an answer"]
    rc, out, err = cli(*argv, "--method", "exact", "--estimate")
    assert rc == 0, err
    assert "Exact attribution: exact replay of 5 steps over 12 records" in out and "MiB" in out
    rc, out, err = cli(*argv, "--method", "exact", "--estimate", "--json")
    assert rc == 0 and json.loads(out)["fits"] is True
    v = models.versions["tiny-exact"]
    models.versions["old"] = Version(
        "old", v.dir.parent / "old", "tiny", v.base_dir, v.adapter_dir, v.card
    )
    (v.dir.parent / "old").mkdir(exist_ok=True)
    rc, out, err = cli("attribute", "old", "--prompt", "q?", "--output", "x", "--method", "exact")
    assert rc == 1 and "no replay record" in err and err.strip().count("\n") == 0
    assert isinstance(models, FakeModels)


def test_queries_share_one_vmapped_product_only_where_its_graph_is_small() -> None:
    """Several queries go through one vmapped product only for a small model: on the starter
    model vmapping 4 queries took 13.8 GB where one at a time took 9.5 GB, and 12 were killed
    by the kernel at 22 GB though the estimate (which did not count the vmap) said 12.7 GB."""
    from types import SimpleNamespace as NS

    from studio.attribution import exact as X

    def record(hidden: int, layers: int, width: int, n: int = 16, bs: int = 8) -> Any:
        init = {f"{i}.{m}": NS(shape=(8, hidden)) for i in range(layers) for m in "qkvo"}
        steps = [[list(range(s, s + bs))] for s in range(0, n, bs)]
        rows = [{"input_ids": [1] * width} for _ in range(n)]
        return NS(init=init, total_steps=len(steps), steps=steps, rows=rows, records=[{}] * n)

    def config(hidden: int, inter: int, layers: int, heads: int, vocab: int) -> Any:
        return NS(
            hidden_size=hidden,
            intermediate_size=inter,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            vocab_size=vocab,
        )

    tiny, starter = config(64, 128, 2, 4, 256), config(576, 1536, 30, 9, 49152)
    roomy = 1 << 40
    one = X.estimate(record(64, 2, 24), tiny, queries=1, memory_limit=roomy)
    four = X.estimate(record(64, 2, 24), tiny, queries=4, memory_limit=roomy)
    assert not one["batched"] and four["batched"]
    assert four["memory_bytes"] > one["memory_bytes"]
    # a small graph whose vmapped product would not fit: one query at a time, and it fits
    tight = X.estimate(record(64, 2, 24), tiny, queries=4, memory_limit=four["memory_bytes"] - 1)
    assert not tight["batched"] and tight["fits"]
    assert tight["memory_bytes"] < four["memory_bytes"]
    # the starter model's graph: one query at a time however much memory there is
    assert not X.estimate(record(576, 30, 40), starter, queries=4, memory_limit=roomy)["batched"]
