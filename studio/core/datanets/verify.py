"""Verify a Datanet: re-hash every record's bytes and rebuild every snapshot's leaves and root."""

from __future__ import annotations

import builtins
import hashlib
from typing import Any

from studio.core import merkle
from studio.core.cancel import CancelToken, check
from studio.core.datanets.records import DatanetRecords
from studio.core.errors import NotFound


class DatanetVerify(DatanetRecords):
    def verify(self, name: str, *, cancel: CancelToken | None = None) -> dict[str, Any]:
        """Re-hash every record's bytes and rebuild every snapshot's leaves and root (read only)."""
        with self.events.operation("datanet verify"):
            return self._verify(name, cancel)

    def _verify(self, name: str, cancel: CancelToken | None) -> dict[str, Any]:
        dn = self._row(name)
        problems: builtins.list[dict[str, Any]] = []
        rows = self.store.query(
            "SELECT * FROM records WHERE datanet_id = ? ORDER BY pack, id", (dn["id"],)
        )
        pack: bytes | None = None
        pack_id = None
        pack_missing = False
        for i, r in enumerate(rows):
            check(cancel)
            if r["pack"] != pack_id:
                pack_id, pack_missing = r["pack"], False
                try:
                    pack = self.blobs.get(r["pack"])
                except NotFound:
                    pack, pack_missing = None, True
            if pack_missing or pack is None:
                problems.append({"record_id": r["id"], "problem": "content blob is missing"})
            else:
                data = pack[r["pack_offset"] : r["pack_offset"] + r["size"]]
                if hashlib.sha256(data).hexdigest() != r["content_sha256"]:
                    problems.append(
                        {
                            "record_id": r["id"],
                            "problem": "content does not match its hash (modified)",
                        }
                    )
            if i and i % 5000 == 0:
                self.events.progress("verify", i, len(rows), "records")
        snaps = self.store.query(
            "SELECT * FROM snapshots WHERE datanet_id = ? ORDER BY version", (dn["id"],)
        )
        for s in snaps:
            members = self.store.query(
                "SELECT sr.idx, sr.leaf, r.id, r.content_sha256, r.contributor, r.license FROM snapshot_records sr"
                " JOIN records r ON r.id = sr.record_id WHERE sr.snapshot_id = ? ORDER BY sr.idx",
                (s["id"],),
            )
            leaves = []
            for m in members:
                check(cancel)
                leaf = merkle.leaf_hash(m["content_sha256"], m["contributor"], m["license"])
                leaves.append(leaf)
                if merkle.to_hex(leaf) != m["leaf"]:
                    problems.append(
                        {
                            "record_id": m["id"],
                            "version": s["version"],
                            "problem": "record metadata changed since the snapshot (leaf differs)",
                        }
                    )
            if len(members) != s["records"]:
                problems.append(
                    {
                        "version": s["version"],
                        "problem": f"snapshot lists {len(members)} records, "
                        f"expected {s['records']}",
                    }
                )
            if leaves and merkle.to_hex(merkle.merkle_root(leaves)) != s["root"]:
                problems.append(
                    {
                        "version": s["version"],
                        "problem": "rebuilt Merkle root differs from the stored root",
                    }
                )
            if not self.blobs.verify(s["manifest_hash"]):
                problems.append(
                    {
                        "version": s["version"],
                        "problem": "snapshot manifest blob missing or modified",
                    }
                )
        return {
            "datanet": name,
            "records_checked": len(rows),
            "snapshots_checked": len(snaps),
            "ok": not problems,
            "problems": problems,
        }
