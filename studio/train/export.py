"""Merged export: a full model folder with the adapter merged in, loadable by plain transformers."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from studio.core import atomic
from studio.core.errors import AlreadyExists, InvalidInput
from studio.train.versions import ModelVersions


class MergedExport(ModelVersions):
    def export_merged(self, model_id: str, out: Path | None = None) -> Path:
        """A full model folder with the adapter merged in, loadable by plain transformers."""
        mv = self.get(model_id)
        if mv.adapter_dir is None:
            raise InvalidInput(f"{model_id} is a base model; there is no adapter to merge.")
        dest = Path(out).expanduser() if out else self.models_dir / "merged" / model_id
        if dest.exists() and any(dest.iterdir()):
            raise AlreadyExists(
                f"{dest} already exists and is not empty.", hint="Pass --out to a new folder."
            )
        model, tokenizer = self.load(model_id)
        merged = model.merge_and_unload()
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
        try:
            merged.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            atomic.write_json(tmp / "studio_card.json", mv.card)
            if dest.exists():
                dest.rmdir()
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest
