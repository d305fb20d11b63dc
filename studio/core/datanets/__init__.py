"""Datanets: create, add files, curate, snapshot (Merkle root), prove, verify, export.

Storage: rows in SQLite (m001_datanets); record contents in content-addressed blobs. Each
ingested file's records are written back to back into "pack" blobs, one per ~1 MB chunk of the
file, each written by the worker that planned that chunk (one fsync per pack instead of one per
record; a small file has one pack); a record points at (pack, offset, size) and carries the sha256 of its
own bytes, so verify can name exactly which records were tampered with.

One concept per module: `catalog` (the Datanets themselves), `adding` (adding files), `records`
(reading them back), `duplicates` (exact and near-duplicate checks), `curation` (accept, reject,
edit), `snapshots` (versions, proofs, export) and `verify`. `Datanets` joins them into the one
object the facade holds."""

from __future__ import annotations

from studio.core.address import checksum_address
from studio.core.datanets.adding import AddingFiles, parse_file
from studio.core.datanets.catalog import NAME_RE, SPDX_RE, STATUSES, TAG_RE
from studio.core.datanets.curation import Curation
from studio.core.datanets.snapshots import DatanetSnapshots, SnapshotRecord
from studio.core.datanets.verify import DatanetVerify
from studio.core.ingest import render_text


class Datanets(AddingFiles, Curation, DatanetSnapshots, DatanetVerify):
    """The Studio's Datanets: every operation on them, one object."""


__all__ = [
    "NAME_RE",
    "SPDX_RE",
    "STATUSES",
    "TAG_RE",
    "Datanets",
    "SnapshotRecord",
    "checksum_address",
    "parse_file",
    "render_text",
]
