"""RecordsModel over a real store: filters in SQL, rows read lazily in pages."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest


def _fill(store: Any, n: int) -> int:
    """n records in one Datanet, straight into the store (the schema the Datanets code writes)."""
    with store.transaction():
        store.execute(
            "INSERT INTO datanets (name, summary, description, tags, license, kind, created_at) "
            "VALUES ('big', '', '', '[]', 'CC-BY-4.0', 'text', ?)",
            (time.time(),),
        )
        did = store.one("SELECT id FROM datanets WHERE name = 'big'")["id"]
        rows = []
        for i in range(n):
            status = ("pending", "accepted", "rejected")[i % 3]
            pii = json.dumps(["email"]) if i % 10 == 0 else "[]"
            reasons = json.dumps(["too short"]) if i % 7 == 0 else "[]"
            contributor = "0x" + ("ab" if i % 2 else "cd") * 20
            rows.append(
                (
                    did,
                    "text",
                    f"{i:064x}",
                    "p",
                    0,
                    1,
                    contributor,
                    "CC-BY-4.0",
                    status,
                    (i % 100) / 100,
                    reasons,
                    pii,
                    f"record {i} about tides" if i % 5 == 0 else f"record {i}",
                    time.time(),
                )
            )
        store.conn.executemany(
            "INSERT INTO records (datanet_id, kind, content_sha256, pack, pack_offset, size, contributor, license, status, score, reasons, pii, preview, created_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    return int(did)


@pytest.fixture
def model(qapp: Any, studio: Any) -> Any:
    from studio.ui.models import RecordsModel

    m = RecordsModel(studio.store)
    m.set_datanet(_fill(studio.store, 3000))
    return m


def test_filters_match_sql_counts(model: Any, studio: Any) -> None:
    from studio.ui.models import RecordFilter

    assert model.rowCount() == 3000
    model.set_filter(RecordFilter(status="accepted"))
    assert model.rowCount() == 1000
    model.set_filter(RecordFilter(status="accepted", min_score=0.5))
    expect = sum(1 for i in range(3000) if i % 3 == 1 and (i % 100) / 100 >= 0.5)
    assert model.rowCount() == expect
    model.set_filter(RecordFilter(flag="PII"))
    assert model.rowCount() == 300
    model.set_filter(RecordFilter(flag="too short"))
    assert model.rowCount() == len([i for i in range(3000) if i % 7 == 0])
    model.set_filter(RecordFilter(contributor="0xABAB"))
    assert model.rowCount() == 1500
    model.set_filter(RecordFilter(text="tides"))
    assert model.rowCount() == 600
    model.set_filter(RecordFilter(flag="clean"))
    assert model.rowCount() == len([i for i in range(3000) if i % 10 and i % 7])


def test_rows_are_read_lazily_in_pages(model: Any) -> None:
    from PySide6.QtCore import Qt

    from studio.ui.models import PAGE

    assert model.pages_loaded == 0
    idx = model.index(5, 0)
    assert model.data(idx, Qt.ItemDataRole.DisplayRole) == "6"
    assert model.pages_loaded == 1
    model.data(model.index(PAGE - 1, 5))
    assert model.pages_loaded == 1
    model.data(model.index(2999, 1))
    assert model.pages_loaded == 2
    assert model.data(model.index(2999, 2)) == f"{(2999 % 100) / 100:.2f}"
    assert "PII: email" in model.data(model.index(0, 3))


def test_table_view_scrolls_100k_records_reading_only_visible_pages(
    qtbot: Any, studio: Any
) -> None:
    from PySide6.QtWidgets import QTableView

    from studio.ui.models import RecordsModel

    m = RecordsModel(studio.store)
    m.set_datanet(_fill(studio.store, 100_000))
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(m)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    assert m.rowCount() == 100_000
    view.grab()  # paint the first screen
    first = m.pages_loaded
    assert first >= 1
    view.scrollToBottom()
    view.grab()  # paint the last screen
    assert m.pages_loaded >= first + 1
    assert m.pages_loaded <= 6  # first screen + last screen, never the 390 pages in between


def test_text_filter_searches_the_whole_text_once_indexed(studio: Any, tmp_path: Any) -> None:
    """Indexed records match on their full text (FTS5); newer ones not indexed yet still match
    on their preview, so a search never misses fresh records."""
    from studio.core.datanets import search
    from studio.ui.models import RecordFilter, RecordsModel

    dn = studio.datanets
    dn.create("notes", summary="s", license="CC-BY-4.0")
    long = " ".join(["waves on the shingle"] * 60) + " and a lantern called Brindle."
    f = tmp_path / "a.jsonl"
    f.write_text(json.dumps({"text": long}) + "\n" + json.dumps({"text": "fog bell"}) + "\n")
    addr = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    dn.add_files("notes", [f], contributor=addr)
    did = studio.store.one("SELECT id FROM datanets WHERE name = 'notes'")["id"]
    m = RecordsModel(studio.store)
    m.set_datanet(did)
    m.set_filter(RecordFilter(text="brindle"))
    assert m.rowCount() == 0  # not indexed yet: only the preview is searched
    search.index_records(dn, did)
    m.reload()
    assert m.rowCount() == 1 and "waves" in m.record(0)["preview"]
    (tmp_path / "b.txt").write_text("the brindle cat sleeps on the lamp\n")
    dn.add_files("notes", [tmp_path / "b.txt"], contributor=addr)
    m.reload()
    assert m.rowCount() == 2  # the new one by its preview, before any re-index
    assert m.query_ids(RecordFilter(text="brindle", status="accepted")) == []
