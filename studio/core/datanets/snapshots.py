"""Snapshots of a Datanet: immutable versions over the accepted records with a Merkle root, the
records of a version, inclusion proofs, and export."""

from __future__ import annotations

import builtins
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from studio.core import merkle
from studio.core.cancel import CancelToken, check
from studio.core.changes import Changes
from studio.core.datanets.records import DatanetRecords
from studio.core.errors import InvalidInput, NotFound, Suggestion


@dataclass(frozen=True)
class SnapshotRecord:
    """One record of one snapshot version: what training and attribution consume."""

    record_id: int
    index: int
    datanet: str
    version: int
    content_sha256: str
    contributor: str
    license: str
    leaf: str
    kind: str
    text: str
    prompt: str | None
    response: str | None
    messages: list[dict[str, Any]] | None
    source: dict[str, Any]


class DatanetSnapshots(DatanetRecords):
    def snapshot(self, name: str, *, cancel: CancelToken | None = None) -> dict[str, Any]:
        """A new immutable version over the accepted records (id order), with its Merkle root.
        If nothing changed since the latest version, that version is returned (unchanged: true).
        Cancelled part-way, nothing is written (the manifest blob included)."""
        dn = self._row(name)
        with self.events.operation("datanet snapshot"):
            made = self._snapshot(name, dn, cancel)
            if "unchanged" not in made:
                self.events.changed(
                    Changes.of(datanets=[name], snapshots=[(name, made["version"])]),
                    job="snapshot",
                )
        return made

    def _snapshot(
        self, name: str, dn: dict[str, Any], cancel: CancelToken | None
    ) -> dict[str, Any]:
        new_blob = ""
        try:
            with self.store.transaction():
                rows = self.store.query(
                    "SELECT id, content_sha256, contributor, license FROM records"
                    " WHERE datanet_id = ? AND status = 'accepted' ORDER BY id",
                    (dn["id"],),
                )
                if not rows:
                    raise InvalidInput(
                        f"'{name}' has no accepted records to snapshot.",
                        hint="Accept some first.",
                        suggest=Suggestion("datanet curate", {"name": name, "accept_all": True}),
                    )
                leaves = []
                for r in rows:
                    check(cancel)
                    leaves.append(
                        merkle.leaf_hash(r["content_sha256"], r["contributor"], r["license"])
                    )
                root = merkle.to_hex(merkle.merkle_root(leaves))
                latest = self.store.one(
                    "SELECT * FROM snapshots WHERE datanet_id = ? ORDER BY version DESC LIMIT 1",
                    (dn["id"],),
                )
                if latest and latest["root"] == root and latest["records"] == len(rows):
                    return {
                        "version": latest["version"],
                        "root": root,
                        "records": len(rows),
                        "unchanged": True,
                    }
                version = (latest["version"] if latest else 0) + 1
                manifest = _manifest(name, version, root, rows, leaves)
                check(cancel)
                manifest_hash, created = self.blobs.add(manifest)
                new_blob = manifest_hash if created else ""
                cur = self.store.execute(
                    "INSERT INTO snapshots(datanet_id, version, root, records, manifest_hash, created_at)"
                    " VALUES (?,?,?,?,?,?)",
                    (dn["id"], version, root, len(rows), manifest_hash, time.time()),
                )
                self.store.conn.executemany(
                    "INSERT INTO snapshot_records(snapshot_id, idx, record_id, leaf) VALUES (?,?,?,?)",
                    [
                        (cur.lastrowid, i, r["id"], merkle.to_hex(leaf))
                        for i, (r, leaf) in enumerate(zip(rows, leaves, strict=True))
                    ],
                )
                check(cancel)  # the last safe point before COMMIT
        except BaseException:
            if new_blob and not self.store.one(
                "SELECT 1 FROM snapshots WHERE manifest_hash = ?", (new_blob,)
            ):
                self.blobs.discard(new_blob)
            raise
        return {"version": version, "root": root, "records": len(rows)}

    def _snapshot_row(self, name: str, version: int | None) -> dict[str, Any]:
        dn = self._row(name)
        if version is None:
            s = self.store.one(
                "SELECT * FROM snapshots WHERE datanet_id = ? ORDER BY version DESC LIMIT 1",
                (dn["id"],),
            )
        else:
            s = self.store.one(
                "SELECT * FROM snapshots WHERE datanet_id = ? AND version = ?",
                (dn["id"], int(version)),
            )
        if s is None:
            have = [
                r["version"]
                for r in self.store.query(
                    "SELECT version FROM snapshots WHERE datanet_id = ? ORDER BY version",
                    (dn["id"],),
                )
            ]
            which = f"version {version}" if version is not None else "snapshot"
            hint = (
                "Existing versions: " + ", ".join(f"v{v}" for v in have)
                if have
                else f"Create one: studio datanet snapshot {name}"
            )
            raise NotFound(f"'{name}' has no {which}.", hint=hint)
        return s

    def get_snapshot(self, name: str, version: int | None = None) -> dict[str, Any]:
        return _snapshot_public(name, self._snapshot_row(name, version))

    def snapshots(self, name: str) -> builtins.list[dict[str, Any]]:
        dn = self._row(name)
        return [
            _snapshot_public(name, s)
            for s in self.store.query(
                "SELECT * FROM snapshots WHERE datanet_id = ? ORDER BY version", (dn["id"],)
            )
        ]

    def snapshot_records(
        self, name: str, version: int | None = None, *, cancel: CancelToken | None = None
    ) -> builtins.list[SnapshotRecord]:
        s = self._snapshot_row(name, version)
        rows = self.store.query(
            "SELECT sr.idx, sr.leaf, r.* FROM snapshot_records sr JOIN records r ON r.id = sr.record_id"
            " WHERE sr.snapshot_id = ? ORDER BY sr.idx",
            (s["id"],),
        )
        cache: dict[str, bytes] = {}
        out = []
        for r in sorted(rows, key=lambda r: (r["pack"], r["idx"])):  # read each pack once
            check(cancel)
            rec = self._load(r, cache)
            out.append(
                SnapshotRecord(
                    record_id=r["id"],
                    index=r["idx"],
                    datanet=name,
                    version=s["version"],
                    content_sha256=r["content_sha256"],
                    contributor=r["contributor"],
                    license=r["license"],
                    leaf=r["leaf"],
                    kind=r["kind"],
                    text=rec.plain_text(),
                    prompt=rec.prompt,
                    response=rec.response,
                    messages=rec.messages,
                    source=rec.source,
                )
            )
        out.sort(key=lambda x: x.index)
        return out

    def proof(self, name: str, record_id: int, version: int | None = None) -> builtins.list[str]:
        s = self._snapshot_row(name, version)
        leaves = [
            merkle.from_hex(r["leaf"])
            for r in self.store.query(
                "SELECT leaf FROM snapshot_records WHERE snapshot_id = ? ORDER BY idx", (s["id"],)
            )
        ]
        hit = self.store.one(
            "SELECT idx FROM snapshot_records WHERE snapshot_id = ? AND record_id = ?",
            (s["id"], int(record_id)),
        )
        if hit is None:
            raise NotFound(
                f"Record #{record_id} is not in '{name}' version {s['version']}.",
                hint="Only accepted records at snapshot time are in it.",
            )
        return [merkle.to_hex(p) for p in merkle.merkle_proof(leaves, hit["idx"])]

    # -- export -----------------------------------------------------------------------------------
    def export(
        self,
        name: str,
        out: str | os.PathLike[str],
        format: str = "jsonl",
        version: int | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> dict[str, Any]:
        """Write a snapshot version to a file (temp-then-rename: a cancel leaves no partial file)."""
        from studio.core.export import export_records

        with self.events.operation("datanet export"):
            recs = self.snapshot_records(name, version, cancel=cancel)
            check(cancel)
            snap = self.get_snapshot(name, version)
            path = export_records(
                recs, out, format, default_name=f"{name}-v{snap['version']}"
            ).resolve()
        return {
            "datanet": name,
            "version": snap["version"],
            "root": snap["root"],
            "records": len(recs),
            "format": format,
            "path": str(path),
        }


def _snapshot_public(name: str, s: dict[str, Any]) -> dict[str, Any]:
    keys = ("version", "root", "records", "created_at", "manifest_hash")
    return {"datanet": name, **{k: s[k] for k in keys}}


def _manifest(
    name: str,
    version: int,
    root: str,
    rows: builtins.list[dict[str, Any]],
    leaves: builtins.list[bytes],
) -> bytes:
    doc = {
        "datanet": name,
        "version": version,
        "root": root,
        "leaf": "keccak256(keccak256(abi.encode(bytes32 contentHash, address contributor, bytes32 keccak256(license))))",
        "records": [
            {
                "record_id": r["id"],
                "content_sha256": r["content_sha256"],
                "contributor": r["contributor"],
                "license": r["license"],
                "leaf": merkle.to_hex(leaf),
            }
            for r, leaf in zip(rows, leaves, strict=True)
        ],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")
