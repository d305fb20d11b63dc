"""Records of a Datanet: list, read (hash-checked), curate (accept / reject), edit."""

from __future__ import annotations

import builtins
import hashlib
import json
from typing import Any

from studio.core.datanets.catalog import STATUSES, DatanetCatalog
from studio.core.errors import IntegrityError, InvalidInput, NotFound
from studio.core.ingest import RawRecord, record_from_canonical


class DatanetRecords(DatanetCatalog):
    def _record_public(self, r: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": r["id"],
            "kind": r["kind"],
            "status": r["status"],
            "status_reason": r["status_reason"],
            "score": r["score"],
            "reasons": json.loads(r["reasons"]),
            "pii": json.loads(r["pii"]),
            "contributor": r["contributor"],
            "license": r["license"],
            "content_sha256": r["content_sha256"],
            "source": json.loads(r["source"]),
            "preview": r["preview"],
            "supersedes": r["supersedes"],
        }

    def records(self, name: str, status: str | None = None) -> builtins.list[dict[str, Any]]:
        dn = self._row(name)
        if status is not None and status not in STATUSES:
            raise InvalidInput(
                f"Unknown status '{status}'.", hint="Use pending, accepted or rejected."
            )
        sql = "SELECT * FROM records WHERE datanet_id = ?"
        params: builtins.list[Any] = [dn["id"]]
        if status:
            sql += " AND status = ?"
            params.append(status)
        return [self._record_public(r) for r in self.store.query(sql + " ORDER BY id", params)]

    def record_content(self, name: str, record_id: int) -> RawRecord:
        dn = self._row(name)
        return self._load(self._record_row(name, dn, record_id))

    def _record_row(self, name: str, dn: dict[str, Any], record_id: int) -> dict[str, Any]:
        r = self.store.one(
            "SELECT * FROM records WHERE id = ? AND datanet_id = ?", (record_id, dn["id"])
        )
        if r is None:
            raise NotFound(
                f"No record #{record_id} in '{name}'.", hint=f"See `studio datanet records {name}`."
            )
        return r

    def _read(self, r: dict[str, Any], cache: dict[str, bytes] | None = None) -> bytes:
        cache = {} if cache is None else cache
        if r["pack"] not in cache:
            cache.clear()  # one pack at a time keeps memory flat
            cache[r["pack"]] = self.blobs.get(r["pack"])
        return cache[r["pack"]][r["pack_offset"] : r["pack_offset"] + r["size"]]

    def _load(self, r: dict[str, Any], cache: dict[str, bytes] | None = None) -> RawRecord:
        data = self._read(r, cache)
        if hashlib.sha256(data).hexdigest() != r["content_sha256"]:
            raise IntegrityError(
                f"Record #{r['id']} does not match its content hash (modified on disk).",
                hint="Run `studio datanet verify NAME` for the full list.",
            )
        rec = record_from_canonical(r["kind"], data)
        rec.source = json.loads(r["source"])
        return rec
