"""Cancelling the ModelFactory's long calls part-way (evaluate, merged export) leaves the store,
the blobs and the models folder as they were; training reports the model it changed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from trainkit import train_tiny

from studio.core.changes import Changes, track_changes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cancelkit import cancel_everywhere, folder_picture, store_picture  # noqa: E402

A1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_cancelled_evaluate_and_merged_export_change_nothing(studio, tmp_path: Path) -> None:
    with track_changes(studio.events) as t:
        mid = train_tiny(studio, name="cancel-me")
    assert t.changes == Changes.of(models=[mid])
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "".join(
            json.dumps({"prompt": f"How warm is proof {i}?", "response": f"{20 + i} degrees."})
            + "\n"
            for i in range(6)
        )
    )
    dn = studio.datanets
    dn.create("eval-set")
    dn.add_files("eval-set", [qa], contributor=A1)
    dn.curate("eval-set", accept_all=True)
    dn.snapshot("eval-set")

    def pictures():
        return (
            store_picture(studio.paths.db),
            folder_picture(studio.paths.blobs),
            folder_picture(studio.paths.models),
            folder_picture(tmp_path / "out"),
        )

    # checks: 6 records read, then 3 batches of the model and 3 of its base
    n = cancel_everywhere(
        lambda tok: studio.models.evaluate(mid, "eval-set", batch_size=2, cancel=tok),
        pictures,
        points=[0, 5, 6, 11],
    )
    assert n == 6 + 3 * 2
    dest = tmp_path / "out" / "merged"
    cancel_everywhere(
        lambda tok: studio.models.export_merged(mid, dest, cancel=tok),
        pictures,
        points=[0, 1, 2, 3, 4],  # before loading, merging, saving; inside the temp folder
    )
    assert (dest / "studio_card.json").exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["merged"]  # no temp folder left
