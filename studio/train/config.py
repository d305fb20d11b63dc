"""Training settings: one dataclass, validated before anything is written, hashed canonically."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from studio.core.errors import InvalidInput

SCHEDULES = ("cosine", "linear", "constant")

# LoRA targets per architecture: attention and MLP projections (QLoRA-paper style), so a small
# rank still adapts the whole block. Unknown architectures fall back to peft's table, then to
# every linear layer except the output head.
TARGETS: dict[str, list[str]] = {
    **{
        t: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        for t in (
            "llama",
            "mistral",
            "mixtral",
            "qwen2",
            "qwen2_moe",
            "qwen3",
            "qwen3_moe",
            "gemma",
            "gemma2",
            "gemma3_text",
            "olmo",
            "olmo2",
            "granite",
            "smollm3",
            "cohere",
            "starcoder2_",
        )
    },
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "gptj": ["q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"],
}


@dataclass
class TrainConfig:
    base: str = "smollm2-135m"
    datanets: list[dict[str, Any]] = field(default_factory=list)  # name, version, root, records
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    target_modules: list[str] | None = None  # None: per-architecture default
    learning_rate: float = 2e-4
    schedule: str = "cosine"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    adam_eps: float = 1e-8  # AdamW's epsilon (torch's default)
    max_grad_norm: float = 1.0
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs when set
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 512
    packing: bool = False
    val_split: float = 0.1
    seed: int = 0
    fmt: str = "auto"
    device: str = "auto"
    gradient_checkpointing: bool = False
    qlora: bool = False
    checkpoint_every: int = 50
    eval_every: int = 0  # 0: only before and after

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InvalidInput(f"Unknown training setting(s): {', '.join(sorted(unknown))}.")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def hashed_part(self) -> dict[str, Any]:
        """What defines the result: everything but where it runs and how often it saves."""
        d = self.to_dict()
        for k in ("device", "checkpoint_every", "eval_every"):
            d.pop(k)
        if d["adam_eps"] == 1e-8:  # the value before it was a setting: those hashes stay valid
            d.pop("adam_eps")
        return d

    def validate(self) -> None:
        def bad(msg: str, hint: str | None = None) -> None:
            raise InvalidInput(msg, hint=hint)

        if not isinstance(self.rank, int) or self.rank <= 0:
            bad(f"LoRA rank must be a positive integer, got {self.rank}.", "Try rank 8 or 16.")
        if self.alpha <= 0:
            bad(f"LoRA alpha must be positive, got {self.alpha}.", "A common choice is 2 × rank.")
        if not 0 <= self.dropout < 1:
            bad(f"LoRA dropout must be in [0, 1), got {self.dropout}.")
        if self.learning_rate <= 0:
            bad(f"Learning rate must be positive, got {self.learning_rate}.")
        if self.schedule not in SCHEDULES:
            bad(f"Unknown schedule {self.schedule!r}.", f"Use one of: {', '.join(SCHEDULES)}.")
        if not 0 < self.adam_eps < 1:
            bad(
                f"AdamW epsilon must be in (0, 1), got {self.adam_eps}.", "The usual value is 1e-8."
            )
        if not 0 <= self.warmup_ratio < 1:
            bad(f"Warm-up ratio must be in [0, 1), got {self.warmup_ratio}.")
        if self.max_steps is not None and self.max_steps <= 0:
            bad(f"max steps must be positive, got {self.max_steps}.")
        if self.max_steps is None and self.epochs <= 0:
            bad(f"epochs must be positive, got {self.epochs}.")
        if self.batch_size < 1 or self.grad_accum < 1:
            bad("Batch size and gradient accumulation must be at least 1.")
        if self.max_length < 8:
            bad(f"Max sequence length must be at least 8 tokens, got {self.max_length}.")
        if not 0 <= self.val_split <= 0.5:
            bad(f"Validation split must be between 0 and 0.5, got {self.val_split}.")
        if self.checkpoint_every < 1:
            bad("checkpoint-every must be at least 1 step.")
        if self.fmt not in ("auto", "plain", "text"):
            bad(f"Unknown data format {self.fmt!r}.", "Use auto, plain or text.")
        if self.target_modules is not None and not self.target_modules:
            bad("Target modules list is empty.", "Leave it out for the per-architecture default.")


def default_targets(model_type: str) -> list[str] | str:
    if model_type in TARGETS:
        return TARGETS[model_type]
    try:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as M

        if model_type in M:
            return list(M[model_type])
    except ImportError:
        pass
    return "all-linear"
