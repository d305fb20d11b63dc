"""ModelFactory: the Studio's models. Base models and fine-tuned versions, training jobs (prepared
here, run in a subprocess by `studio model _run`), eval, export, registration and inference.

One concept per module: `versions` (list, get, load, generate), `jobs` (prepare, run, start,
cancel), `evaluation`, `export` (merged model); registration on chain lives in
`studio.chain.model_registration`.

Layout in the data home:
  models/base/<dirname>/       converted starter model and other bundled bases
  models/ft/<id>/adapter/      finished LoRA adapter (safetensors), appears only by atomic rename
  models/ft/<id>/card.json|md  model card
  jobs/<id>/spec.json          training settings + provenance; records.jsonl: the frozen snapshot
  jobs/<id>/checkpoints/       step-NNNNNNN/ (adapter, optimizer, scheduler, RNG, data position)
  jobs/<id>/events.jsonl       every event the job emitted (the GUI's curve can replay it)
"""

from __future__ import annotations

from typing import Any

from studio.core.changes import Changes
from studio.core.errors import StudioError
from studio.train.evaluation import Evaluation
from studio.train.export import MergedExport
from studio.train.jobs import TrainingJobs
from studio.train.versions import (
    RESUMABLE,
    ModelVersion,
    ModelVersions,
    parse_datanet_spec,
    record_to_dict,
)


class ModelFactory(TrainingJobs, Evaluation, MergedExport):
    """The Studio's models: every operation on them, one object."""

    def register(
        self, model_id: str, account: Any, *, metadata_uri: str = "", price_wei: int = 0
    ) -> dict[str, Any]:
        """Register a fine-tuned version on chain (the chain layer does it; see module doc)."""
        try:
            from studio.chain.model_registration import register_version
        except ImportError as e:
            raise StudioError(
                "Model registration is not available in this build (the chain registry module is missing).",
                hint="Update OpenLedger Studio; the adapter and card are ready to register later.",
            ) from e
        if self.on_chain is None:
            raise StudioError(
                "This ModelFactory was built without a chain connection, so it cannot register.",
                hint="Register from the studio (its ModelFactory has the chain).",
            )
        with self.events.operation("model register"):
            result = register_version(
                self.on_chain,
                self.get(model_id),
                account,
                metadata_uri=metadata_uri,
                price_wei=price_wei,
            )
            self.events.changed(Changes.of(models=[model_id]), job=model_id)
        return result


__all__ = [
    "RESUMABLE",
    "ModelFactory",
    "ModelVersion",
    "ModelVersions",
    "parse_datanet_spec",
    "record_to_dict",
]
