"""Which device trains and why: CUDA (bf16 where supported, else fp16 autocast), Apple MPS, CPU."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda", "mps", "cpu"
    dtype: str  # autocast dtype: "bf16", "fp16", or "fp32" (no autocast)
    reason: str
    qlora_available: bool = False

    def describe(self) -> str:
        return f"{self.device} ({self.dtype}): {self.reason}"


def choose_device(requested: str = "auto") -> DeviceChoice:
    import torch

    requested = (requested or "auto").lower()
    if requested not in ("auto", "cuda", "mps", "cpu"):
        from studio.core.errors import InvalidInput

        raise InvalidInput(f"Unknown device {requested!r}.", hint="Use auto, cuda, mps or cpu.")
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if requested == "cpu":
        return DeviceChoice("cpu", "fp32", "CPU requested")
    if requested in ("auto", "cuda") and cuda:
        name = torch.cuda.get_device_name(0)
        bf16 = torch.cuda.is_bf16_supported()
        qlora = importlib.util.find_spec("bitsandbytes") is not None
        return DeviceChoice(
            "cuda",
            "bf16" if bf16 else "fp16",
            f"CUDA GPU {name} found; {'bf16' if bf16 else 'fp16'} autocast"
            + ("; bitsandbytes present, QLoRA 4-bit available" if qlora else ""),
            qlora,
        )
    if requested in ("auto", "mps") and mps:
        return DeviceChoice("mps", "fp32", "Apple GPU (MPS) found; fp32 for stable LoRA training")
    if requested in ("cuda", "mps"):
        from studio.core.errors import TrainingError

        raise TrainingError(
            f"Device {requested} was requested but is not available to torch {torch.__version__}.",
            hint="Use the device auto or cpu, or install a torch build with that backend.",
        )
    threads = torch.get_num_threads()
    return DeviceChoice(
        "cpu",
        "fp32",
        f"no CUDA or MPS device visible to torch {torch.__version__}; CPU with {threads} thread(s)"
        + (
            f" (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})"
            if "OMP_NUM_THREADS" in os.environ
            else ""
        ),
    )


def describe_device() -> str:
    import torch

    return f"torch {torch.__version__}, " + choose_device().describe()
