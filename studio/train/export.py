"""Merged export: a full model folder with the adapter merged in, loadable by plain transformers."""

from __future__ import annotations

from pathlib import Path

from studio.core import atomic
from studio.core.cancel import CancelToken, check
from studio.core.errors import AlreadyExists, InvalidInput
from studio.train.versions import ModelVersions


class MergedExport(ModelVersions):
    def export_merged(
        self, model_id: str, out: Path | None = None, *, cancel: CancelToken | None = None
    ) -> Path:
        """A full model folder with the adapter merged in, loadable by plain transformers.
        Written into a temp folder and renamed: a cancel or a crash leaves no partial folder."""
        mv = self.get(model_id)
        if mv.adapter_dir is None:
            raise InvalidInput(f"{model_id} is a base model; there is no adapter to merge.")
        dest = Path(out).expanduser() if out else self.models_dir / "merged" / model_id
        if dest.exists() and any(dest.iterdir()):
            raise AlreadyExists(
                f"{dest} already exists and is not empty.", hint="Export to a new folder."
            )
        with self.events.operation("model export"):
            check(cancel)
            model, tokenizer = self.load(model_id)
            check(cancel)
            merged = model.merge_and_unload()
            check(cancel)
            with atomic.building_dir(dest) as tmp:
                merged.save_pretrained(tmp, safe_serialization=True)
                check(cancel)
                tokenizer.save_pretrained(tmp)
                atomic.write_json(tmp / "studio_card.json", mv.card)
                check(cancel)
        return dest
