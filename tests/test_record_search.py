"""Full-text search over record text (FTS5, migration m007): the whole text, not the preview;
indexing resumes where it stopped; what the user types is words, never FTS5 syntax."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from studio.core.datanets import search

A1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
FILLER = " ".join(["the tide came in and went out again"] * 40)  # longer than any preview


def _ids(store: Any, did: int, text: str) -> list[int]:
    clause = search.where_clause(text)
    assert clause is not None
    rows = store.query(
        f"SELECT id FROM records WHERE datanet_id = ? AND {clause[0]} ORDER BY id",
        [did, *clause[1]],
    )
    return [r["id"] for r in rows]


def test_search_finds_words_beyond_the_preview_and_resumes(studio: Any, tmp_path: Path) -> None:
    dn, store = studio.datanets, studio.store
    dn.create("notes", summary="s", license="CC-BY-4.0")
    f1 = tmp_path / "a.jsonl"
    f1.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {"text": FILLER + " The keeper rang the Hollow Bell at dawn."},
                {"text": "Nothing but gulls and fog today, " + FILLER},
                {"prompt": "Who feeds the starter?", "response": "Old Brindle's baker, Zoë."},
            ]
        )
        + "\n"
    )
    dn.add_files("notes", [f1], contributor=A1)
    did = store.one("SELECT id FROM datanets WHERE name = 'notes'")["id"]
    ids = [r["id"] for r in store.query("SELECT id FROM records ORDER BY id")]
    assert len(ids) == 3
    bell = store.one("SELECT preview FROM records WHERE id = ?", (ids[0],))["preview"]
    assert "Hollow" not in bell  # the preview alone could not find it
    assert search.pending(store, did) == 3
    assert search.index_records(dn, did) == 3
    assert search.pending(store, did) == 0 and search.index_records(dn, did) == 0
    assert _ids(store, did, "hollow bell") == [ids[0]]
    assert _ids(store, did, "KEEP") == [ids[0]]  # word prefixes, any case
    assert _ids(store, did, "zoe") == [ids[2]]  # diacritics folded; prompt/response indexed
    assert _ids(store, did, "fog gulls") == [ids[1]]
    assert _ids(store, did, "tide") == ids[:2]
    # the user's quotes, stars and operators are words, not syntax (no FTS5 error, no injection)
    assert _ids(store, did, 'bell" AND "dawn') == [ids[0]]
    assert _ids(store, did, '"keeper*) NEAR(') == []  # "near" is a word here: no record has it
    assert _ids(store, did, "(keeper*") == [ids[0]]
    assert search.where_clause('"* :: ()') is None
    # new records: only they are indexed next time
    f2 = tmp_path / "b.txt"
    f2.write_text("A second file about the hollow lantern.\n")
    dn.add_files("notes", [f2], contributor=A1)
    assert search.pending(store, did) == 1
    assert search.index_records(dn, did) == 1
    assert len(_ids(store, did, "hollow")) == 2


def test_indexing_is_cancellable_and_keeps_what_it_did(
    studio: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.core.errors import Cancelled
    from studio.core.events import CancelToken

    dn, store = studio.datanets, studio.store
    dn.create("many", summary="s", license="CC-BY-4.0")
    f = tmp_path / "m.jsonl"
    f.write_text(
        "\n".join(json.dumps({"text": f"entry number {i} about lighthouse {i}"}) for i in range(30))
    )
    dn.add_files("many", [f], contributor=A1)
    did = store.one("SELECT id FROM datanets WHERE name = 'many'")["id"]
    monkeypatch.setattr(search, "BATCH", 10)
    token = CancelToken()
    seen: list[int] = []

    def progress(done: int, total: int, _text: str) -> None:
        seen.append(done)
        token.cancel()

    with pytest.raises(Cancelled):
        search.index_records(dn, did, cancel=token, progress=progress)
    assert seen == [10] and search.pending(store, did) == 20  # the first batch was kept
    assert search.index_records(dn, did) == 20
    assert len(_ids(store, did, "lighthouse")) == 30


def test_migration_adds_the_index_tables(studio: Any) -> None:
    names = {
        r["name"]
        for r in studio.store.query(
            "SELECT name FROM sqlite_master WHERE type IN ('table','index')"
        )
    }
    assert {"records_fts", "records_fts_state", "records_datanet_score"} <= names
    assert "records_datanet_contributor" in names


def test_a_home_upgraded_from_schema_6_searches_its_old_records(tmp_path: Path) -> None:
    from test_store import _load_fixture

    from studio.core.blobs import BlobStore
    from studio.core.config import Config
    from studio.core.datanets import Datanets
    from studio.core.events import EventBus
    from studio.core.store import Store

    path = _load_fixture(tmp_path, 6)
    store = Store(path)
    dn = Datanets(store, BlobStore(tmp_path / "blobs"), Config(), EventBus())
    did = store.one("SELECT id FROM datanets WHERE name = 'net-v6'")["id"]
    assert search.pending(store, did) == 1
    assert search.index_records(dn, did) == 1
    assert len(_ids(store, did, "seventh hour")) == 1
    store.close()
