"""Evaluation: loss and perplexity of a model, and of its base, on a snapshot's records."""

from __future__ import annotations

from typing import Any

from studio.core.cancel import CancelToken, check
from studio.core.errors import InvalidInput
from studio.train.versions import ModelVersions


class Evaluation(ModelVersions):
    def evaluate(
        self,
        model_id: str,
        datanet: str,
        *,
        max_length: int | None = None,
        batch_size: int = 4,
        device: str = "cpu",
        cancel: CancelToken | None = None,
    ) -> dict[str, Any]:
        """Loss and perplexity of the model, and of its base, on a snapshot's records (read only:
        a cancel just stops it)."""
        import math

        import torch

        from studio.train.data import examples_from_snapshot
        from studio.train.trainer import collate, loss_items, to_rows

        mv = self.get(model_id)
        entry, records = self.snapshot(datanet, cancel=cancel)
        cfg = mv.card.get("training_config", {})
        max_length = max_length or int(cfg.get("max_length", 512))
        model, tokenizer = self.load(model_id, device)
        examples = examples_from_snapshot(
            records, tokenizer, max_length=max_length, fmt=cfg.get("fmt", "auto")
        )
        if not examples:
            raise InvalidInput(f"No usable examples in {datanet}.")
        rows = to_rows(examples, max_length, False)

        def loss_of(disable: bool) -> float:
            import contextlib

            total, items = 0.0, 0
            ctx = (
                model.disable_adapter()
                if (disable and mv.adapter_dir is not None)
                else contextlib.nullcontext()
            )
            with torch.no_grad(), ctx:
                for i in range(0, len(rows), batch_size):
                    check(cancel)
                    chunk = rows[i : i + batch_size]
                    n = loss_items(chunk)
                    if not n:
                        continue
                    batch = {
                        k: v.to(device) for k, v in collate(chunk, tokenizer.pad_token_id).items()
                    }
                    total += float(model(**batch, use_cache=False, num_items_in_batch=1).loss)
                    items += n
            return total / max(1, items)

        loss = loss_of(False)
        base_loss = loss_of(True) if mv.adapter_dir is not None else loss
        return {
            "model": model_id,
            "datanet": {k: entry[k] for k in ("name", "version", "root", "records")},
            "examples": len(examples),
            "loss": loss,
            "perplexity": math.exp(min(loss, 50)),
            "base_loss": base_loss,
            "base_perplexity": math.exp(min(base_loss, 50)),
        }
