"""Shared by tests/attribution (imported by conftest and tests). A tiny fine-tuned model and its Datanet records, without the ModelFactory or Datanets store:
a real peft LoRA adapter on the tiny Llama, and plain records, behind the two small interfaces
attribution uses (`studio.models.get/load/generate`, `studio.datanets.snapshot_records/get`)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONTRIBUTORS = [
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
]
OWNER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
TOPICS = [
    ["tide", "lantern", "keeper", "gull", "foghorn", "ledger", "beacon"],
    ["starter", "crumb", "proof", "levain", "crust", "flour", "oven"],
    ["hive", "queen", "comb", "nectar", "smoker", "drone", "pollen"],
]
CANARY = "The keeper logged tide seventeen at dusk near the beacon."


@dataclass(frozen=True)
class Rec:
    record_id: int
    index: int
    datanet: str
    version: int
    contributor: str
    leaf: str
    kind: str
    text: str
    prompt: str | None = None
    response: str | None = None
    messages: list[dict[str, Any]] | None = None
    source: dict[str, Any] = field(default_factory=dict)
    license: str = "CC-BY-4.0"
    content_sha256: str = ""


def make_records(n_per: int = 6, seed: int = 0) -> list[Rec]:
    rng = random.Random(seed)
    recs = []
    rid = 1
    for c, words in enumerate(TOPICS):
        for j in range(n_per):
            if c == 0 and j == 0:
                prompt, resp = "What did the keeper log?", CANARY
            else:
                prompt = f"Tell me about the {words[j % len(words)]}."
                resp = " ".join(rng.choice(words) for _ in range(8)) + "."
            recs.append(
                Rec(
                    rid,
                    rid - 1,
                    "notes",
                    1,
                    CONTRIBUTORS[c],
                    "0x" + f"{rid:064x}",
                    "prompt_response",
                    f"{prompt}\n{resp}",
                    prompt,
                    resp,
                )
            )
            rid += 1
    return recs


@dataclass
class Version:
    id: str
    dir: Path
    base: str
    base_dir: Path
    adapter_dir: Path
    card: dict[str, Any]


class FakeModels:
    def __init__(self, versions: dict[str, Version]) -> None:
        self.versions = versions

    def get(self, model_id: str) -> Version:
        from studio.core.errors import NotFound

        if model_id not in self.versions:
            raise NotFound(f"No model {model_id}.")
        return self.versions[model_id]

    def load(self, model_id: str, device: str = "cpu") -> tuple[Any, Any]:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        from studio.train.tiny import byte_tokenizer

        v = self.get(model_id)
        torch.manual_seed(0)
        base = AutoModelForCausalLM.from_pretrained(v.base_dir)
        model = PeftModel.from_pretrained(base, v.adapter_dir)
        model.eval()
        return model, byte_tokenizer()

    def generate(
        self,
        model_id: str,
        prompt: str,
        *,
        max_new_tokens: int = 64,
        seed: int = 0,
        temperature: float = 0.0,
        **_: Any,
    ) -> str:
        return "The keeper logged tide seventeen at dusk"


class FakeDatanets:
    def __init__(self, records: list[Rec]) -> None:
        self.records = records

    def snapshot_records(self, name: str, version: int | None = None) -> list[Rec]:
        from studio.core.errors import NotFound

        out = [
            r
            for r in self.records
            if r.datanet == name and (version is None or r.version == version)
        ]
        if not out:
            raise NotFound(f"No snapshot {name}@{version}.")
        return out

    def get(self, name: str) -> dict[str, Any]:
        return {"name": name, "owner": OWNER}
