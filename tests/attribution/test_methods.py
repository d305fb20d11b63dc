"""The two methods' building blocks: exact per-example gradients, projection, spans."""

from __future__ import annotations

import random

import numpy as np
import pytest

from studio.attribution import gradients as G
from studio.attribution.span import SpanConfig, SpanIndex


def _peft(tiny_adapter):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    m = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_adapter["base"]), tiny_adapter["adapter"]
    )
    return m.eval()


def test_batched_per_example_gradients_equal_single_backward(tiny_adapter) -> None:
    import torch

    model = _peft(tiny_adapter)
    # No projection, both LoRA matrices: the exact gradient.
    mods = G.find_lora_modules(model, G.GradientConfig(proj_dim=10**6, lora_params="AB"))
    batch = [
        ([5, 6, 7, 8, 9], [-100, -100, 7, 8, 9]),
        ([10, 11, 12], [10, 11, 12]),
        ([1, 2, 3, 4, 5, 6, 7], [-100] * 3 + [4, 5, 6, 7]),
    ]
    rows = G.batch_gradients(model, mods, batch, pad_id=0)
    for i, (ids, labels) in enumerate(batch):
        for m in mods:
            m.lora_A.weight.requires_grad_(True)
            m.lora_B.weight.requires_grad_(True)
            m.lora_A.weight.grad = m.lora_B.weight.grad = None
        out = model(input_ids=torch.tensor([ids]))
        G.per_example_loss(out.logits, torch.tensor([labels]))[0].backward()
        ref = torch.cat(
            [
                t
                for m in mods
                for t in (m.lora_A.weight.grad.reshape(-1), m.lora_B.weight.grad.reshape(-1))
            ]
        )
        np.testing.assert_allclose(rows[i], ref.double().numpy(), atol=1e-6, rtol=1e-4)


def test_default_rows_hold_lora_b_only(tiny_adapter) -> None:
    """The default row is the lora_B part of the full (A, B) row, module by module."""
    model = _peft(tiny_adapter)
    full = G.find_lora_modules(model, G.GradientConfig(proj_dim=10**6, lora_params="AB"))
    only_b = G.find_lora_modules(model, G.GradientConfig(proj_dim=10**6))
    assert G.GradientConfig().lora_params == "B"
    assert all(not m.use_a and m.dim == m.rank * m.d_out for m in only_b)
    batch = [([5, 6, 7, 8, 9], [-100, -100, 7, 8, 9]), ([10, 11, 12], [10, 11, 12])]
    rf = G.batch_gradients(model, full, batch, 0)
    rb = G.batch_gradients(model, only_b, batch, 0)
    want = np.concatenate(
        [rf[:, a + m.a_dim : b] for m, (a, b) in zip(full, G.layout(full), strict=True)], 1
    )
    np.testing.assert_allclose(rb, want, rtol=1e-12, atol=0)
    with pytest.raises(Exception, match="Unknown LoRA parameter set"):
        G.find_lora_modules(model, G.GradientConfig(lora_params="A"))


def test_projection_is_seeded_and_deterministic(tiny_adapter) -> None:
    model = _peft(tiny_adapter)
    cfg = G.GradientConfig(proj_dim=8, seed=3)
    a = G.find_lora_modules(model, cfg)
    b = G.find_lora_modules(model, cfg)
    c = G.find_lora_modules(model, G.GradientConfig(proj_dim=8, seed=4))
    assert all(np.array_equal(x.p_in.numpy(), y.p_in.numpy()) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0].p_in.numpy(), c[0].p_in.numpy())
    batch = [([5, 6, 7, 8, 9], [5, 6, 7, 8, 9])]
    assert np.array_equal(
        G.batch_gradients(model, a, batch, 0), G.batch_gradients(model, b, batch, 0)
    )


def test_quantize_roundtrip_keeps_relative_precision() -> None:
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((5, 12)) * np.array([1e-7] * 6 + [1e3] * 6)
    blocks = [(0, 6), (6, 12)]
    q, s = G.quantize(rows, blocks)
    back = G.dequantize(q, s, blocks)
    np.testing.assert_allclose(back, rows, rtol=2e-3, atol=0)


def _naive_longest(corpus_docs, out, i):
    best = 0
    for d in corpus_docs:
        for s in range(len(d)):
            k = 0
            while s + k < len(d) and i + k < len(out) and d[s + k] == out[i + k]:
                k += 1
            best = max(best, k)
    return best


@pytest.mark.parametrize("vocab", [300, 70000])
def test_spans_match_naive_search(vocab: int) -> None:
    rng = random.Random(vocab)
    docs = [[rng.randrange(6) for _ in range(rng.randrange(5, 40))] for _ in range(12)]
    recs = [{"record_id": i} for i in range(len(docs))]
    si = SpanIndex.build(docs, recs, vocab)
    out = docs[3][4:20] + [rng.randrange(6) for _ in range(10)] + docs[7][:9]
    spans = si.find_spans(out, SpanConfig(min_len=1))
    # Every reported span is the longest match from its start and is not inside an earlier one.
    reach = 0
    for sp in spans:
        assert sp.end - sp.start == _naive_longest(docs, out, sp.start)
        assert sp.end > reach
        reach = sp.end
        pat = out[sp.start : sp.end]
        naive = sum(
            1 for d in docs for s in range(len(d) - len(pat) + 1) if d[s : s + len(pat)] == pat
        )
        assert sp.count == naive
        assert sorted({docs_i for docs_i in sp.records}) == sorted(
            {
                j
                for j, d in enumerate(docs)
                if any(d[s : s + len(pat)] == pat for s in range(len(d)))
            }
        )
    # Coverage: every output position inside some corpus match is covered by a span.
    covered = set()
    for sp in spans:
        covered.update(range(sp.start, sp.end))
    assert covered == {i for i in range(len(out)) if _naive_longest(docs, out, i) > 0} | covered


def test_span_index_rare_long_span_wins(tmp_path) -> None:
    docs = [[1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 9, 9], [1, 2, 3, 10, 11], [40, 41, 42, 43, 44, 45]]
    si = SpanIndex.build(docs, [{"record_id": i} for i in range(4)], 64)
    si.save(tmp_path / "span")
    si = SpanIndex.open(tmp_path / "span")
    cfg = SpanConfig(min_len=3)
    scores = si.record_scores(si.find_spans([0, 40, 41, 42, 43, 44, 1, 2, 3], cfg), cfg)
    assert max(scores, key=scores.get) == 3
    assert scores[3] > scores[0] == scores[1] == scores[2]
