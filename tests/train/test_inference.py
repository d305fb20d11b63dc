"""Inference: multi-adapter switching over one base, deterministic sampling, streaming, merged export."""

from __future__ import annotations

import pytest
import torch
from trainkit import train_tiny

from studio.core.errors import InvalidInput, StudioError

PROMPT = "How warm is proof 4?"


def test_adapters_share_one_base_and_switch(studio):
    a = train_tiny(studio, name="ad-a", seed=1)
    b = train_tiny(studio, name="ad-b", seed=2, learning_rate=5e-2)
    out_a = studio.models.generate(a, PROMPT, max_new_tokens=12)
    srv = studio.models.server(studio.models.get(a).base_dir)
    base_obj = srv.base
    out_b = studio.models.generate(b, PROMPT, max_new_tokens=12)
    assert studio.models.server(studio.models.get(b).base_dir) is srv  # one server per base
    assert srv.base is base_obj and set(srv.adapters) == {"ad-a", "ad-b"}  # base not reloaded
    assert studio.models.generate(a, PROMPT, max_new_tokens=12) == out_a  # switching back
    # each adapter's output equals a fresh, separately loaded model's greedy output
    for mid, out in ((a, out_a), (b, out_b)):
        model, tok = studio.models.load(mid)
        text = tok.apply_chat_template(
            [{"role": "user", "content": PROMPT}], tokenize=False, add_generation_prompt=True
        )
        ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            gen = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=12,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
        assert tok.decode(gen[0, ids.shape[1] :], skip_special_tokens=True) == out
    # the base model through the same server, adapters disabled
    base_out = studio.models.generate("tiny", PROMPT, max_new_tokens=12)
    assert isinstance(base_out, str)
    # unloading one adapter keeps the other serving, still on the same base
    srv.remove_adapter("ad-b")
    assert set(srv.adapters) == {"ad-a"}
    assert studio.models.generate(a, PROMPT, max_new_tokens=12) == out_a


def test_sampling_is_deterministic_for_a_seed_and_streams(studio):
    mid = train_tiny(studio)
    kw = dict(max_new_tokens=16, temperature=1.0, top_p=0.95)
    pieces: list[str] = []
    one = studio.models.generate(mid, PROMPT, seed=7, on_token=pieces.append, **kw)
    two = studio.models.generate(mid, PROMPT, seed=7, **kw)
    other = studio.models.generate(mid, PROMPT, seed=8, **kw)
    assert one == two and "".join(pieces) == one
    assert one != other
    with pytest.raises(InvalidInput):
        studio.models.generate(mid, "", max_new_tokens=4)
    with pytest.raises(InvalidInput, match="context"):
        studio.models.generate(mid, PROMPT, max_new_tokens=10_000)


def test_export_merged_loads_in_plain_transformers(studio, tmp_path):
    from transformers import AutoModelForCausalLM

    mid = train_tiny(studio)
    dest = studio.models.export_merged(mid, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(dest)
    peft_model, tok = studio.models.load(mid)
    ids = torch.tensor([tok("Tide log 3", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, peft_model(ids).logits, atol=1e-5)
    assert (dest / "studio_card.json").exists()
    with pytest.raises(StudioError, match="already exists"):
        studio.models.export_merged(mid, dest)
