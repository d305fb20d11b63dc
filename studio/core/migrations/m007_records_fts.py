"""Full-text search over record text: an FTS5 index whose rowid is the record id.

Contentless (content=''): the text lives in the content-addressed packs, so the index keeps only
its terms. Records are append-only (an edit is a new record), so `records_fts_state` remembers up
to which record id each Datanet is indexed; studio.core.datanets.search indexes the rest on
demand (the first search, or the GUI in the background). Nothing is backfilled here: a migration
must not read every pack of a large home.

Also two indexes for the record table's filters (the GUI filters 100k records in SQL): by score,
and by contributor prefix (case-insensitive, as people type addresses)."""

from __future__ import annotations

from typing import Any

VERSION = 7


def upgrade(store: Any) -> None:
    store.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS records_fts USING fts5("
        "text, content='', tokenize='unicode61 remove_diacritics 2')"
    )
    store.execute(
        "CREATE TABLE IF NOT EXISTS records_fts_state ("
        "datanet_id INTEGER PRIMARY KEY REFERENCES datanets(id), upto INTEGER NOT NULL)"
    )
    store.execute("CREATE INDEX IF NOT EXISTS records_datanet_score ON records(datanet_id, score)")
    store.execute(
        "CREATE INDEX IF NOT EXISTS records_datanet_contributor "
        "ON records(datanet_id, lower(contributor))"
    )
