"""Duplicate checks shared by adding files and editing records: the content hashes and the
near-duplicate (MinHash LSH) index of a Datanet, kept between calls, and the exact confirmation."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import numpy as np

from studio.core import quality
from studio.core.datanets.records import DatanetRecords
from studio.core.errors import StudioError


class DuplicateChecks(DatanetRecords):
    def _confirm(
        self,
        datanet_id: int,
        text: str,
        cands: builtins.list[tuple[int, float]],
        batch_texts: tuple[int, Sequence[str]] | None = None,
    ) -> tuple[int, float] | None:
        """The first LSH candidate whose exact shingle Jaccard with `text` reaches the threshold."""
        threshold = self.config.ingest.near_duplicate_threshold
        for other, _est in cands:
            if batch_texts and 0 <= other - batch_texts[0] < len(batch_texts[1]):
                other_text = batch_texts[1][other - batch_texts[0]]
            else:
                r = self.store.one(
                    "SELECT * FROM records WHERE id = ? AND datanet_id = ?", (other, datanet_id)
                )
                if r is None:
                    continue
                try:
                    other_text = self._load(r).plain_text()
                except StudioError:
                    continue  # a damaged record is verify's business, not a reason to fail an ingest
            sim = quality.jaccard(text, other_text)
            if sim >= threshold:
                return other, sim
        return None

    def _dedupe_state(self, datanet_id: int) -> tuple[dict[str, int], quality.DuplicateIndex]:
        """Content hashes and the near-duplicate index of a Datanet's records, kept between calls
        and topped up with records added since (by any process)."""
        cached = self._dedupe_cache.get(datanet_id)
        if cached is None:
            seen: dict[str, int] = {}
            index = quality.DuplicateIndex(self.config.ingest.near_duplicate_threshold)
            last = 0
        else:
            seen, index, last = cached
        # `+datanet_id`: a range of record ids, not every record of the Datanet (by an index on
        # datanet_id, then sorted): this runs for every chunk an add writes
        rows = self.store.conn.execute(
            "SELECT id, content_sha256, minhash FROM records WHERE +datanet_id = ? AND id > ?"
            " ORDER BY id",
            (datanet_id, last),
        ).fetchall()
        if rows:
            # Exact duplicates of an indexed record add nothing to the near-duplicate index.
            with_sig = [r for r in rows if seen.setdefault(r[1], r[0]) == r[0] and r[2] is not None]
            if with_sig:
                sigs = np.frombuffer(b"".join(r[2] for r in with_sig), dtype=np.uint32).reshape(
                    -1, quality.NUM_PERM
                )
                index.add_many([r[0] for r in with_sig], sigs)
            last = rows[-1][0]
        self._dedupe_cache[datanet_id] = (seen, index, last)
        return seen, index
