"""Cancelling an attribution part-way raises Cancelled and leaves the store and the model's
attribution folder (the indexes) as they were; the run after it gives the same report."""

from __future__ import annotations

import sys
from pathlib import Path

from attr_fixtures import CANARY
from test_service import _index

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cancelkit import cancel_everywhere, folder_picture, store_picture  # noqa: E402


def test_cancelled_attribute_changes_nothing(att_studio) -> None:
    _index(att_studio)
    want = att_studio.attribution.attribute("tiny-ft", "What did the keeper log?", CANARY, top_k=3)
    folder = att_studio.attribution.model_info("tiny-ft").attribution_dir

    def pictures():
        return store_picture(att_studio.paths.db), folder_picture(folder)

    got = {}

    def call(tok):
        got["report"] = att_studio.attribution.attribute(
            "tiny-ft", "What did the keeper log?", CANARY, top_k=3, cancel=tok
        )

    n = cancel_everywhere(call, pictures, at_least=4)
    assert n >= 4
    assert got["report"]["report_hash"] == want["report_hash"]
