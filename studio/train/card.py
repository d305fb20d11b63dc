"""The model card: JSON (what the chain and attribution rely on) and markdown (for people),
written next to the adapter."""

from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path
from typing import Any

from studio.core.hashing import file_sha256

CARD_FORMAT = "openledger-model-card/1"


def adapter_hash(adapter_dir: Path) -> str:
    """sha256 of the adapter weights file (safetensors serialises deterministically)."""
    return file_sha256(Path(adapter_dir) / "adapter_model.safetensors")


def library_versions() -> dict[str, str]:
    import peft
    import safetensors
    import torch
    import transformers

    from studio import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "safetensors": safetensors.__version__,
        "studio": __version__,
    }


def build_card(
    *,
    model_id: str,
    base: str,
    base_model_hash: str,
    adapter_dir: Path,
    config_hash: str,
    training_config: dict[str, Any],
    datanets: list[dict[str, Any]],
    metrics: dict[str, Any],
) -> dict[str, Any]:
    return {
        "format": CARD_FORMAT,
        "model_id": model_id,
        "base_model": base,
        "base_model_hash": base_model_hash,
        "adapter_hash": adapter_hash(adapter_dir),
        "config_hash": config_hash,
        "datanets": datanets,  # name, version, root, records, record_ids
        "metrics": metrics,
        "training_config": training_config,
        # Whether this version can be attributed exactly (a replay record beside the adapter).
        "exact_attribution": _exact_summary(Path(adapter_dir).parent),
        "library_versions": library_versions(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _exact_summary(model_dir: Path) -> dict[str, Any]:
    from studio.train.replay_record import REPLAY_DIR, summary

    return summary(model_dir / REPLAY_DIR)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "—" if v is None else str(v)


def card_markdown(card: dict[str, Any]) -> str:
    m = card.get("metrics", {})
    cfg = card.get("training_config", {})
    lines = [
        f"# {card['model_id']}",
        "",
        f"LoRA fine-tune of **{card['base_model']}** made with OpenLedger Studio ModelFactory.",
        "",
        "## Provenance",
        "",
        f"- Base model hash: `{card['base_model_hash']}`",
        f"- Adapter hash: `{card['adapter_hash']}`",
        f"- Config hash: `{card['config_hash']}`",
        "",
        "| Datanet | Version | Snapshot root | Records |",
        "|---|---|---|---|",
    ]
    for d in card.get("datanets", []):
        lines.append(
            f"| {d.get('name')} | {d.get('version')} | `{d.get('root')}` | {d.get('records')} |"
        )
    lines += [
        "",
        "## Metrics",
        "",
        f"- Validation loss: {_fmt(m.get('eval_loss_before'))} → {_fmt(m.get('eval_loss_after'))}",
        f"- Perplexity: {_fmt(m.get('perplexity_before'))} → {_fmt(m.get('perplexity_after'))}",
        f"- Training loss (first → last step): {_fmt(m.get('train_loss_first'))} → {_fmt(m.get('train_loss_last'))}",
        f"- Steps: {m.get('steps')}, examples: {m.get('examples')}, tokens: {m.get('tokens_trained')}",
        f"- Device: {m.get('device')}",
        f"- Exact attribution: {_exact_line(card.get('exact_attribution') or {})}",
        "",
        "## Training settings",
        "",
    ]
    for k in sorted(cfg):
        if k != "datanets":
            lines.append(f"- {k}: {cfg[k]}")
    lines += ["", "## Libraries", ""]
    for k, v in sorted(card.get("library_versions", {}).items()):
        lines.append(f"- {k} {v}")
    return "\n".join(lines) + "\n"


def _exact_line(ex: dict[str, Any]) -> str:
    if ex.get("exact"):
        return f"yes (replay record of {ex.get('steps')} steps over {ex.get('records')} records)"
    return f"no ({ex.get('why_not') or 'no replay record'})"


def short_hash(h: str) -> str:
    return h[:12] if h else ""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
