"""Datanets: files, records (content in blob packs), curation state, snapshots."""

from __future__ import annotations

from typing import Any

VERSION = 1

SCHEMA = """
CREATE TABLE datanets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    summary TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    license TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'text',
    created_at REAL NOT NULL
);
-- One row per ingested file. A file is identified by its sha256 within a Datanet: adding it twice adds nothing.
CREATE TABLE datanet_files (
    id INTEGER PRIMARY KEY,
    datanet_id INTEGER NOT NULL REFERENCES datanets(id),
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    format TEXT NOT NULL,
    contributor TEXT NOT NULL,
    pack TEXT NOT NULL,          -- sha256 of the blob holding this file's record contents back to back
    records INTEGER NOT NULL,
    refused INTEGER NOT NULL DEFAULT 0,
    added_at REAL NOT NULL,
    UNIQUE (datanet_id, sha256)
);
CREATE TABLE records (
    id INTEGER PRIMARY KEY,
    datanet_id INTEGER NOT NULL REFERENCES datanets(id),
    file_id INTEGER REFERENCES datanet_files(id),
    kind TEXT NOT NULL,                  -- text | prompt_response | chat
    content_sha256 TEXT NOT NULL,        -- sha256 of the canonical content bytes
    pack TEXT NOT NULL,                  -- blob holding the content …
    pack_offset INTEGER NOT NULL,        -- … at this byte offset
    size INTEGER NOT NULL,               -- … with this many bytes
    contributor TEXT NOT NULL,
    license TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'rejected')),
    status_reason TEXT NOT NULL DEFAULT '',
    score REAL NOT NULL,
    reasons TEXT NOT NULL DEFAULT '[]',  -- validation reasons (JSON list)
    pii TEXT NOT NULL DEFAULT '[]',      -- PII kinds found (JSON list)
    source TEXT NOT NULL DEFAULT '{}',   -- provenance: file, page / row / offset (JSON)
    preview TEXT NOT NULL DEFAULT '',
    minhash BLOB,                        -- datasketch affine32 signature, so later adds dedupe against it
    supersedes INTEGER REFERENCES records(id),
    created_at REAL NOT NULL
);
CREATE INDEX records_datanet_status ON records(datanet_id, status);
CREATE INDEX records_content ON records(datanet_id, content_sha256);
CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    datanet_id INTEGER NOT NULL REFERENCES datanets(id),
    version INTEGER NOT NULL,
    root TEXT NOT NULL,
    records INTEGER NOT NULL,
    manifest_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (datanet_id, version)
);
CREATE TABLE snapshot_records (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),
    idx INTEGER NOT NULL,
    record_id INTEGER NOT NULL REFERENCES records(id),
    leaf TEXT NOT NULL,
    PRIMARY KEY (snapshot_id, idx)
);
CREATE INDEX snapshot_records_record ON snapshot_records(record_id);
"""


def upgrade(store: Any) -> None:
    # Plain SQL: executescript would COMMIT the migration's transaction.
    for stmt in SCHEMA.split(";"):
        lines = [ln for ln in stmt.splitlines() if not ln.strip().startswith("--")]
        sql = "\n".join(lines).strip()
        if sql:
            store.execute(sql)
