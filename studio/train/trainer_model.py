"""The LoRA model helpers the trainer, attribution and the benches share: which linear layers a
model has, which of them LoRA targets, the adapter's state, and quieter transformers logging."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from studio.core.errors import InvalidInput
from studio.train.config import TrainConfig, default_targets


def quiet_transformers() -> None:
    import warnings

    import transformers

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


# -- model -------------------------------------------------------------------------------------


def linear_module_names(model: Any) -> set[str]:
    import torch

    names = set()
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) or type(mod).__name__ in (
            "Linear4bit",
            "Linear8bitLt",
            "Conv1D",
        ):
            names.add(name.rsplit(".", 1)[-1])
    return names


def resolve_targets(model: Any, cfg: TrainConfig) -> list[str] | str:
    available = linear_module_names(model)
    if cfg.target_modules:
        unknown = [t for t in cfg.target_modules if t not in available]
        if unknown:
            raise InvalidInput(
                f"Unknown LoRA target module(s) {', '.join(unknown)} for this "
                f"{model.config.model_type} model.",
                hint=f"Available linear layers: {', '.join(sorted(available))}.",
            )
        return list(cfg.target_modules)
    targets = default_targets(model.config.model_type)
    if isinstance(targets, list):
        present = [t for t in targets if t in available]
        return present or "all-linear"
    return targets


def check_target_modules(model_config: Any, targets: Sequence[str] | None) -> None:
    """Refuse unknown LoRA target modules from the model's config alone (the layers are built on
    the meta device: no weights are loaded), so a bad --target-modules fails before a job exists."""
    if not targets:
        return
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(model_config)
    resolve_targets(model, TrainConfig(target_modules=list(targets)))


def lora_state(model: Any) -> dict[str, Any]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
