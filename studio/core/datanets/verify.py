"""Verify a Datanet (every blob, every record, every snapshot root) or the whole store."""

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
        """Re-hash every blob against its content address (naming the records in a damaged one),
        every record's bytes, and rebuild every snapshot's leaves and root (read only)."""
        with self.events.operation("datanet verify"):
            return self._verify(name, cancel)

    def _verify(self, name: str, cancel: CancelToken | None) -> dict[str, Any]:
        dn = self._row(name)
        problems: builtins.list[dict[str, Any]] = []
        rows = self.store.query(
            "SELECT * FROM records WHERE datanet_id = ? ORDER BY pack, id", (dn["id"],)
        )
        pack: bytes | None = None
        pack_id = ""
        pack_damaged = False
        blobs_checked = 0
        for i, r in enumerate(rows):
            check(cancel)
            if i and i % 5000 == 0:
                self.events.progress("verify", i, len(rows), "records")
            if r["pack"] != pack_id:
                pack_id = r["pack"]
                try:
                    pack = self.blobs.get(r["pack"])
                except NotFound:
                    pack = None
                # the whole blob against its content address: bytes appended to a pack, or
                # changed outside every record's slice, show here
                pack_damaged = pack is not None and hashlib.sha256(pack).hexdigest() != pack_id
                blobs_checked += 1
            if pack is None:
                problems.append({"record_id": r["id"], "problem": "content blob is missing"})
                continue
            if pack_damaged:
                problems.append(
                    {
                        "record_id": r["id"],
                        "blob": pack_id,
                        "problem": f"lives in blob {pack_id[:12]}…, which no longer matches its"
                        " content address (bytes changed, added or removed)",
                    }
                )
            data = pack[r["pack_offset"] : r["pack_offset"] + r["size"]]
            if hashlib.sha256(data).hexdigest() != r["content_sha256"]:
                problems.append(
                    {"record_id": r["id"], "problem": "content does not match its hash (modified)"}
                )
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
            "blobs_checked": blobs_checked + len(snaps),
            "snapshots_checked": len(snaps),
            "ok": not problems,
            "problems": problems,
        }

    def verify_store(self, *, cancel: CancelToken | None = None) -> dict[str, Any]:
        """Every Datanet verified, then every file under blobs/ re-hashed against its name
        (orphans, e.g. a pack left by an interrupted add, are counted, not a problem)."""
        datanets = [self.verify(d["name"], cancel=cancel) for d in self.list()]
        damaged: builtins.list[str] = []
        checked = 0
        root = self.blobs.root
        for sub in sorted(root.iterdir()) if root.exists() else ():
            if not sub.is_dir() or len(sub.name) != 2:
                continue
            for f in sorted(sub.iterdir()):
                check(cancel)
                if f.name.startswith(".tmp-") or not f.is_file():
                    continue
                checked += 1
                if not self.blobs.verify(sub.name + f.name):
                    damaged.append(sub.name + f.name)
        problems = [{"datanet": d["datanet"], **p} for d in datanets for p in d["problems"]] + [
            {"blob": b, "problem": "does not match its content address"} for b in damaged
        ]
        return {
            "datanets_checked": len(datanets),
            "blobs_checked": checked,
            "ok": not problems,
            "problems": problems,
        }
