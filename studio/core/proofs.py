"""A record's Merkle proof in a snapshot, with its leaf: what `datanet proof` shows and what a
verifier (GUI, node) checks against the published root."""

from __future__ import annotations

from typing import TYPE_CHECKING

from studio.core.results import RecordProof

if TYPE_CHECKING:
    from studio.core.datanets import Datanets
    from studio.core.store import Store


def record_proof(
    datanets: Datanets, store: Store, name: str, record_id: int, version: int | None = None
) -> RecordProof:
    snap = datanets.get_snapshot(name, version)
    proof = datanets.proof(name, record_id, version)  # NotFound when the record is not in it
    row = store.one(
        "SELECT sr.leaf FROM snapshot_records sr JOIN snapshots s ON s.id = sr.snapshot_id"
        " JOIN datanets d ON d.id = s.datanet_id"
        " WHERE d.name = ? AND s.version = ? AND sr.record_id = ?",
        (name, snap["version"], int(record_id)),
    )
    assert row is not None  # proof() found the record in this very snapshot (else NotFound)
    return RecordProof(
        version=snap["version"],
        root=snap["root"],
        record_id=int(record_id),
        leaf=row["leaf"],
        proof=tuple(proof),
    )
