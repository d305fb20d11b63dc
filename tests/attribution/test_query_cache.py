"""The Attributor keeps a model's query parts (model, index, LoRA modules with their
projections, span index) between queries, and drops them when the version's files change."""

from __future__ import annotations

import pytest
from attr_fixtures import CANARY

from studio.attribution import gradients as G
from studio.attribution import index as I
from studio.attribution.gradients import GradientConfig
from studio.core.errors import AttributionError

CFG = GradientConfig(proj_dim=8, chunk_size=5, batch_size=4)


def _counting(monkeypatch, owner, name):
    calls = []
    real = getattr(owner, name)

    def wrapped(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(owner, name, wrapped)
    return calls


def test_second_query_reuses_the_index_and_projections(att_studio, monkeypatch) -> None:
    a = att_studio.attribution
    a.build_index("tiny-ft", config=CFG)
    opens = _counting(monkeypatch, I.GradientIndex, "open")
    finds = _counting(monkeypatch, G, "find_lora_modules")
    loads = _counting(monkeypatch, att_studio.models, "load")
    first = a.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=3)
    assert (len(opens), len(finds)) == (1, 1)
    again = a.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=3)
    assert (len(opens), len(finds), len(loads)) == (1, 1, 0)  # nothing reopened or regenerated
    assert again == first  # and the same report


def test_a_changed_adapter_or_card_is_rechecked(att_studio, tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    a = att_studio.attribution
    a.build_index("tiny-ft", config=CFG)
    before = a.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=3)
    v = att_studio.models.versions["tiny-ft"]
    # The card edited in place: the cached identity check must not hide it.
    v.card["adapter_hash"] = "0x" + "99" * 32
    with pytest.raises(AttributionError, match="another adapter"):
        a.attribute("tiny-ft", "q?", CANARY)
    v.card["adapter_hash"] = "0x" + "22" * 32
    # The adapter's weights rewritten (same names, same size): the index no longer matches...
    f = v.adapter_dir / "adapter_model.safetensors"
    w = load_file(str(f))
    save_file({k: t * 1.5 if "lora_B" in k else t for k, t in w.items()}, str(f))
    with pytest.raises(AttributionError, match="cannot be used"):
        a.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=3)
    # ...and once rebuilt, the query runs on the new weights, not the model loaded before.
    a.build_index("tiny-ft", config=CFG)
    after = a.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=3)
    old = {r["record_id"]: r["score"] for r in before["top_records"]}
    new = {r["record_id"]: r["score"] for r in after["top_records"]}
    assert old != new


def test_scores_from_memory_equal_the_memory_mapped_ones(att_studio, monkeypatch) -> None:
    import numpy as np

    a = att_studio.attribution
    a.build_index("tiny-ft", config=CFG)
    path = a.gradient_dir(a.model_info("tiny-ft"))
    q = np.random.default_rng(0).standard_normal((3, I.GradientIndex.open(path).meta["dim"]))
    dense = I.GradientIndex.open(path)
    assert isinstance(dense.rows, np.ndarray) and not isinstance(dense.rows, np.memmap)
    monkeypatch.setattr(I, "DENSE_BYTES", 0)
    mapped = I.GradientIndex.open(path)
    assert isinstance(mapped.rows, np.memmap)
    assert np.array_equal(dense.scores(q), mapped.scores(q))
