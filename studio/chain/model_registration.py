"""Registering a fine-tuned model version on chain: its card's hashes and training snapshots go to
the ModelRegistry, and the result is remembered on the local model row (`models.registration`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from studio.core.errors import InvalidInput

if TYPE_CHECKING:
    from .context import OnChain


def register_version(
    studio: OnChain, version: Any, account: Any, *, metadata_uri: str = "", price_wei: int = 0
) -> dict[str, Any]:
    """`version`: a train.versions.ModelVersion (id, dir, card, adapter_dir)."""
    from studio.chain import registry  # looked up at call time: tests replace register_model

    if version.adapter_dir is None:
        raise InvalidInput(
            "Only fine-tuned models are registered; base models are referenced by hash."
        )
    card = version.card
    snapshots = [{"datanet": d["name"], "version": d["version"]} for d in card["datanets"]]
    result = registry.register_model(
        studio,
        account,
        base_model_hash=card["base_model_hash"],
        adapter_hash=card["adapter_hash"],
        config_hash=card["config_hash"],
        snapshots=snapshots,
        metadata_uri=metadata_uri or (version.dir / "card.json").as_uri(),
        price_wei=price_wei,
        model_id=version.id,
    )
    result = result if isinstance(result, dict) else {"result": result}
    with studio.store.transaction():
        studio.store.execute(
            "UPDATE models SET registration = ? WHERE id = ?",
            (json.dumps(result, default=str), version.id),
        )
    return result
