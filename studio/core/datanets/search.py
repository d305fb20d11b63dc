"""Full-text search over the text of a Datanet's records (SQLite FTS5, migration m007).

The text is read from the packs (hash-checked) and indexed in batches; `upto` per Datanet says
how far. Records are append-only, so indexing what is newer than `upto` keeps the index whole.
Queries are the user's words, each matched as a term prefix, all required: `tide keep` finds
"the keeper of the tides". Quotes and FTS5 operators typed by the user are plain words."""

from __future__ import annotations

import re
from typing import Any

from studio.core.cancel import CancelToken

BATCH = 500
_WORD = re.compile(r"\w+", re.UNICODE)


def match_expression(text: str) -> str | None:
    """The FTS5 MATCH expression for what the user typed, or None when it has no word."""
    words = _WORD.findall(text)
    if not words:
        return None
    return " ".join(f'"{w}"*' for w in words)


def indexed_upto(store: Any, datanet_id: int) -> int:
    row = store.one("SELECT upto FROM records_fts_state WHERE datanet_id = ?", (datanet_id,))
    return int(row["upto"]) if row else 0


def pending(store: Any, datanet_id: int) -> int:
    """How many records of the Datanet are not indexed yet."""
    row = store.one(
        "SELECT COUNT(*) AS n FROM records WHERE datanet_id = ? AND id > ?",
        (datanet_id, indexed_upto(store, datanet_id)),
    )
    return int(row["n"]) if row else 0


def index_records(
    datanets: Any, datanet_id: int, *, cancel: CancelToken | None = None, progress: Any = None
) -> int:
    """Index every record of the Datanet newer than its `upto`; returns how many were added.
    One transaction per batch: a cancel or a crash keeps what was done, and re-running resumes."""
    store = datanets.store
    total = pending(store, datanet_id)
    done = 0
    cache: dict[str, bytes] = {}
    while True:
        upto = indexed_upto(store, datanet_id)
        rows = store.query(
            "SELECT id, kind, pack, pack_offset, size, content_sha256, source FROM records "
            "WHERE datanet_id = ? AND id > ? ORDER BY id LIMIT ?",
            (datanet_id, upto, BATCH),
        )
        if not rows:
            return done
        texts = [(r["id"], datanets._load(r, cache).plain_text()) for r in rows]
        with store.transaction():
            store.conn.executemany("INSERT INTO records_fts(rowid, text) VALUES (?, ?)", texts)
            store.execute(
                "INSERT INTO records_fts_state(datanet_id, upto) VALUES (?, ?) "
                "ON CONFLICT(datanet_id) DO UPDATE SET upto = excluded.upto",
                (datanet_id, rows[-1]["id"]),
            )
        done += len(rows)
        if progress is not None:
            progress(done, total, f"indexed {done:,} of {total:,} records for search")
        if cancel is not None:
            cancel.check()


def where_clause(text: str) -> tuple[str, list[Any]] | None:
    """A WHERE fragment on `records.id` for the text, or None when the text has no word."""
    expr = match_expression(text)
    if expr is None:
        return None
    return "id IN (SELECT rowid FROM records_fts WHERE records_fts MATCH ?)", [expr]
