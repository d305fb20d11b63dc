"""Fixtures for attribution tests; the fakes and sample records live in attr_fixtures.py."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from attr_fixtures import FakeDatanets, FakeModels, Version, make_records


@pytest.fixture(scope="session")
def tiny_adapter(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny base model + a LoRA adapter with nonzero B (so LoRA gradients are informative)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from studio.train.tiny import build_tiny_model

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny")
    base = build_tiny_model(root / "base")
    torch.manual_seed(1)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    model.save_pretrained(root / "adapter")
    return {"base": base, "adapter": root / "adapter"}


@pytest.fixture
def att_studio(studio: Any, tiny_adapter: dict[str, Path], tmp_path: Path) -> Any:
    """A Studio whose models/datanets are the fakes above; model id "tiny-ft"."""
    recs = make_records()
    mdir = tmp_path / "models" / "tiny-ft"
    shutil.copytree(tiny_adapter["adapter"], mdir / "adapter")
    card = {
        "base": "tiny",
        "base_model_hash": "0x" + "11" * 32,
        "adapter_hash": "0x" + "22" * 32,
        "config_hash": "0x" + "33" * 32,
        "datanets": [
            {"name": "notes", "version": 1, "root": "0x" + "ab" * 32, "records": len(recs)}
        ],
        "training": {"fmt": "auto", "max_length": 128},
    }
    v = Version("tiny-ft", mdir, "tiny", tiny_adapter["base"], mdir / "adapter", card)
    base_v = Version("tiny", tiny_adapter["base"], "tiny", tiny_adapter["base"], None, {})  # type: ignore[arg-type]
    studio.__dict__["models"] = FakeModels({"tiny-ft": v, "tiny": base_v})
    studio.__dict__["datanets"] = FakeDatanets(recs)
    studio.__dict__.pop("attribution", None)
    return studio
