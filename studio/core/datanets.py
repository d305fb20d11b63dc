"""Datanets: create, add files, curate, snapshot (Merkle root), prove, verify, export.

Storage: rows in SQLite (m001_datanets); record contents in content-addressed blobs. Each
ingested file's records are written back to back into one "pack" blob (one fsync per file
instead of one per record); a record points at (pack, offset, size) and carries the sha256 of its
own bytes, so verify can name exactly which records were tampered with."""

from __future__ import annotations

import builtins
import gc
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from itertools import accumulate, repeat
from pathlib import Path
from typing import Any

import numpy as np

from studio.core import merkle, quality
from studio.core.blobs import BlobStore
from studio.core.config import Config, IngestConfig
from studio.core.errors import AlreadyExists, IntegrityError, InvalidInput, NotFound, StudioError
from studio.core.events import EventBus
from studio.core.ingest import (
    RawRecord,
    check_size,
    file_format,
    read_rows,
    record_from_canonical,
    render_text,
)
from studio.core.store import Store

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
SPDX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$|^LicenseRef-[A-Za-z0-9.-]+$")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
STATUSES = ("pending", "accepted", "rejected")


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


_ADDRESS_RE = re.compile(r"^0[xX][0-9a-fA-F]{40}$")


def _eip55(body_lower: str) -> str:
    from eth_hash.auto import keccak  # eth_utils would cost ~0.3 s of imports per command

    digest = keccak(body_lower.encode("ascii")).hex()
    return "0x" + "".join(
        c.upper() if int(d, 16) >= 8 else c for c, d in zip(body_lower, digest, strict=False)
    )


def checksum_address(address: str) -> str:
    """Validate an Ethereum address (EIP-55 checksum when mixed case); return it checksummed."""
    a = (address or "").strip()
    if not _ADDRESS_RE.match(a):
        raise InvalidInput(
            f"'{address}' is not an Ethereum address.", hint="Use 0x followed by 40 hex characters."
        )
    body = a[2:]
    good = _eip55(body.lower())
    if body != body.lower() and body != body.upper() and "0x" + body != good:
        raise InvalidInput(
            f"'{address}' has a wrong EIP-55 checksum (mixed case that does not match).",
            hint="Copy the address again, or write it all in lower case.",
        )
    return good


def _pack(parts: list[bytes]) -> tuple[bytes, list[int]]:
    return b"".join(parts), [0, *accumulate(map(len, parts[:-1]))] if parts else []


_PROGRESS_EVERY = 5000  # records inserted between progress events


class Datanets:
    def __init__(self, store: Store, blobs: BlobStore, config: Config, events: EventBus) -> None:
        self.store = store
        self.blobs = blobs
        self.config = config
        self.events = events
        self._dedupe_cache: dict[int, tuple[dict[str, int], quality.DuplicateIndex, int]] = {}
        self.sweep_abandoned_blobs()

    def sweep_abandoned_blobs(self) -> builtins.list[str]:
        """Delete blobs an interrupted ingest wrote but never committed (cheap when there are none)."""
        if not self.blobs.has_abandoned():
            return []
        with self.store.transaction():  # the write lock: no live ingest is between put and COMMIT
            return self.blobs.sweep_abandoned(self._blob_in_use)

    def _blob_in_use(self, digest: str) -> bool:
        return (
            self.store.one(
                "SELECT 1 FROM datanet_files WHERE pack = ?1 UNION ALL SELECT 1 FROM records"
                " WHERE pack = ?1 UNION ALL SELECT 1 FROM snapshots WHERE manifest_hash = ?1",
                (digest,),
            )
            is not None
        )

    # -- datanets ---------------------------------------------------------------------------------
    def create(
        self,
        name: str,
        summary: str = "",
        description: str = "",
        tags: Any = (),
        license: str = "CC-BY-4.0",
        owner: str | None = None,
    ) -> dict[str, Any]:
        if not NAME_RE.match(name or ""):
            raise InvalidInput(
                f"'{name}' is not a valid Datanet name.",
                hint="Use 2-64 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit.",
            )
        if not SPDX_RE.match(license or ""):
            raise InvalidInput(
                f"'{license}' is not an SPDX license id.",
                hint="For example CC-BY-4.0, CC0-1.0, MIT.",
            )
        tag_list = [
            t.strip().lower()
            for t in (tags.split(",") if isinstance(tags, str) else tags)
            if t.strip()
        ]
        for t in tag_list:
            if not TAG_RE.match(t):
                raise InvalidInput(
                    f"Tag '{t}' is not valid.",
                    hint="Tags are lower-case words with '-', up to 32 characters.",
                )
        if len(summary) > 280:
            raise InvalidInput(
                "The summary is longer than 280 characters.",
                hint="Shorten it; put details in the description.",
            )
        # the owner defaults to the active wallet; none at all is allowed (set when published)
        owner_addr = owner or self.config.active_account
        owner_addr = self._address(owner_addr, "owner") if owner_addr else None
        with self.store.transaction():
            if self.store.one("SELECT 1 FROM datanets WHERE name = ?", (name,)):
                raise AlreadyExists(
                    f"A Datanet named '{name}' already exists.",
                    hint=f"Choose another name, or add files to it: studio datanet add {name} FILE…",
                )
            self.store.execute(
                "INSERT INTO datanets(name, summary, description, tags, license, kind, created_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (
                    name,
                    summary,
                    description,
                    json.dumps(sorted(set(tag_list))),
                    license,
                    "text",
                    time.time(),
                ),
            )
            if owner_addr and self._has_owner_column():
                self.store.execute(
                    "UPDATE datanets SET owner = ? WHERE name = ?", (owner_addr, name)
                )
        return self.get(name)

    def _has_owner_column(self) -> bool:
        # False only on a store kept at a schema before m005 (the upgrade tests build those)
        cols = self.store.conn.execute("PRAGMA table_info(datanets)").fetchall()
        return any(c[1] == "owner" for c in cols)

    def set_owner_if_missing(self, name: str, address: str) -> dict[str, Any]:
        """Record `address` as the owner of a Datanet that has none (publish calls this); an
        existing owner is kept. Returns the Datanet."""
        addr = self._address(address, "owner")
        self._row(name)
        with self.store.transaction():
            self.store.execute(
                "UPDATE datanets SET owner = ? WHERE name = ? AND owner IS NULL", (addr, name)
            )
        return self.get(name)

    def _row(self, name: str) -> dict[str, Any]:
        row = self.store.one("SELECT * FROM datanets WHERE name = ?", (name,))
        if row is None:
            raise NotFound(
                f"No Datanet named '{name}'.",
                hint="See `studio datanet list`, or create it with `studio datanet create NAME`.",
            )
        return row

    def _public(self, row: dict[str, Any]) -> dict[str, Any]:
        counts = {s: 0 for s in STATUSES}
        for r in self.store.query(
            "SELECT status, COUNT(*) AS n FROM records WHERE datanet_id = ? GROUP BY status",
            (row["id"],),
        ):
            counts[r["status"]] = r["n"]
        latest = self.store.one(
            "SELECT version, root, records FROM snapshots WHERE datanet_id = ? "
            "ORDER BY version DESC LIMIT 1",
            (row["id"],),
        )
        files = self.store.one(
            "SELECT COUNT(*) AS n FROM datanet_files WHERE datanet_id = ?", (row["id"],)
        )
        return {
            "name": row["name"],
            "summary": row["summary"],
            "description": row["description"],
            "tags": json.loads(row["tags"]),
            "license": row["license"],
            "kind": row["kind"],
            "created_at": row["created_at"],
            "owner": row.get("owner"),
            "files": files["n"] if files else 0,
            "records": counts,
            "latest_snapshot": latest,
        }

    def get(self, name: str) -> dict[str, Any]:
        return self._public(self._row(name))

    def list(self) -> builtins.list[dict[str, Any]]:
        return [self._public(r) for r in self.store.query("SELECT * FROM datanets ORDER BY name")]

    def files(self, name: str) -> builtins.list[dict[str, Any]]:
        dn = self._row(name)
        return self.store.query(
            "SELECT id, name, sha256, size, format, contributor, records, refused, added_at"
            " FROM datanet_files WHERE datanet_id = ? ORDER BY id",
            (dn["id"],),
        )

    # -- ingest -----------------------------------------------------------------------------------
    def _contributor(self, contributor: str | None) -> str:
        addr = contributor or self.config.active_account
        if not addr:
            raise InvalidInput(
                "no contributor: create a wallet (studio wallet create) or pass --contributor 0x…"
            )
        return checksum_address(addr)

    @staticmethod
    def _address(addr: str, what: str) -> str:
        try:
            return checksum_address(addr)
        except InvalidInput as e:
            raise InvalidInput(f"Invalid {what}: {e.args[0]}", hint=e.hint) from e

    def _plans(self, paths: builtins.list[Path], text_column: str | None) -> builtins.list[Any]:
        """parse_file for every path, in order: a plan dict or the StudioError it raised.
        (Parsing in worker processes was tried: shipping the parsed records back costs as much
        as it saves on two cores.)"""
        out: builtins.list[Any] = []
        for p in paths:
            try:
                out.append(parse_file(p, text_column, self.config.ingest))
            except StudioError as e:
                out.append(e)
        return out

    def add_files(
        self,
        name: str,
        paths: Any,
        contributor: str | None = None,
        *,
        text_column: str | None = None,
        all_or_nothing: bool = True,
    ) -> builtins.list[dict[str, Any]]:
        """Ingest files; one result per file: status added | duplicate | error.
        With all_or_nothing (the CLI), any unreadable file raises before anything is written."""
        dn = self._row(name)
        who = self._contributor(contributor)
        paths = [Path(p) for p in paths]
        if not paths:
            raise InvalidInput("No files given.", hint=f"studio datanet add {name} FILE…")
        # The bulk work allocates millions of small objects that never form cycles; the cyclic
        # GC would rescan them over and over. Off for the bulk part only, as it was before.
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            return self._add_files(dn, who, paths, text_column, all_or_nothing)
        finally:
            if gc_was_on:
                gc.enable()

    def _add_files(
        self,
        dn: dict[str, Any],
        who: str,
        paths: builtins.list[Path],
        text_column: str | None,
        all_or_nothing: bool,
    ) -> builtins.list[dict[str, Any]]:
        planned: builtins.list[dict[str, Any] | None] = []
        results: builtins.list[dict[str, Any]] = []
        for p, plan in zip(paths, self._plans(paths, text_column), strict=True):
            if not isinstance(plan, StudioError):
                planned.append(plan)
                results.append({})
                continue
            if all_or_nothing:
                others = (
                    f" ({len(paths) - 1} other file(s) not added either)" if len(paths) > 1 else ""
                )
                raise type(plan)(f"{plan}{others}") from plan
            planned.append(None)
            results.append({"file": p.name, "path": str(p), "status": "error", "error": str(plan)})
        for i, plan in enumerate(planned):
            if plan is not None:
                results[i] = self._ingest(dn, plan, who)
        return results

    def _ingest(self, dn: dict[str, Any], plan: dict[str, Any], who: str) -> dict[str, Any]:
        cfg = self.config.ingest
        base = {"file": plan["name"], "path": str(plan["path"]), "sha256": plan["sha256"]}
        prior = self.store.one(
            "SELECT id, added_at, records FROM datanet_files WHERE datanet_id = ? AND sha256 = ?",
            (dn["id"], plan["sha256"]),
        )
        if prior:
            return {
                **base,
                "status": "duplicate",
                "records": 0,
                "message": f"already added (file #{prior['id']}, {prior['records']} records): nothing added",
            }
        recs: builtins.list[_Planned] = plan["records"]
        texts: builtins.list[str] = plan["texts"]
        canon = [
            t.encode() if r[0] == "text" else RawRecord(*r[:5]).canonical()
            for t, r in zip(texts, recs, strict=True)
        ]
        hashes = [hashlib.sha256(c).hexdigest() for c in canon]
        sigs = plan["sigs"]
        pii_found: builtins.list[tuple[str, ...]] = plan["pii"]
        pack_bytes, offsets = _pack(canon)
        pack = hashlib.sha256(pack_bytes).hexdigest()
        slow = float(os.environ.get("STUDIO_TEST_INGEST_DELAY", "0") or 0)  # crash test only
        now = time.time()
        try:
            with self.store.transaction():
                # Written inside the transaction that references it (see BlobStore.put_pending):
                # a process killed before COMMIT leaves a blob the next open sweeps away.
                if pack_bytes:
                    self.blobs.put_pending(pack_bytes)
                # Inside BEGIN IMMEDIATE nobody else writes, so the ids we hand out are the ones we get.
                seen, index = self._dedupe_state(dn["id"])
                cur = self.store.execute(
                    "INSERT INTO datanet_files(datanet_id, name, path, sha256, size, format, contributor, pack,"
                    " records, refused, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        dn["id"],
                        plan["name"],
                        str(Path(plan["path"]).resolve()),
                        plan["sha256"],
                        plan["size"],
                        plan["format"],
                        who,
                        pack,
                        len(recs),
                        len(plan["refused"]),
                        now,
                    ),
                )
                file_id = cur.lastrowid
                row = self.store.one("SELECT COALESCE(MAX(id), 0) AS m FROM records")
                next_id = (row["m"] if row else 0) + 1
                total = len(recs)
                ids = range(next_id, next_id + total)
                empty = quality.empty_rows(sigs)
                # Exact duplicates (rare): the first record with the same content, in an earlier
                # file (`seen`) or earlier in this one, found with bulk dict and numpy operations.
                earlier = list(map(seen.get, hashes))
                first_here = dict(zip(reversed(hashes), reversed(ids), strict=True))  # lowest id
                firsts = np.fromiter(map(first_here.__getitem__, hashes), np.int64, total)
                # index in this file -> id of the first record with that content
                exact = {i: e for i, e in enumerate(earlier) if e is not None}
                is_dup = firsts != np.arange(next_id, next_id + total)
                is_dup[list(exact)] = True
                for i in np.flatnonzero(is_dup).tolist():
                    exact.setdefault(i, int(firsts[i]))
                seen.update({h: first_here[h] for h in first_here.keys() - seen.keys()})
                # The others (with a signature) go into the near-duplicate index in id order,
                # each checked against those before it.
                indexed = np.flatnonzero(~(empty | is_dup)).tolist()
                near: dict[int, tuple[int, float]] = {}
                ranked = index.check_and_add_many([ids[i] for i in indexed], sigs[indexed])
                for rid, cands in sorted(ranked.items()):
                    found = self._confirm(
                        dn["id"], texts[rid - next_id], cands, batch_texts=(next_id, texts)
                    )
                    if found:
                        near[rid] = found
                # Scores: assess() for records with something to say, (1.0, []) for the others.
                ratios = plan["ratios"]
                has_pii = np.fromiter(map(bool, pii_found), bool, total)
                plain = quality.unflagged_ok(
                    np.fromiter(map(len, texts), np.int64, total), ratios, cfg
                )
                plain &= ~(is_dup | has_pii)
                plain[[rid - next_id for rid in near]] = False
                scores = [1.0] * total
                reasons_json = ["[]"] * total
                pii_json = ["[]"] * total
                for i in np.flatnonzero(~plain).tolist():
                    nd = near.get(next_id + i)
                    scores[i], reasons = quality.assess(
                        texts[i],
                        cfg,
                        pii=pii_found[i],
                        exact_duplicate_of=exact.get(i),
                        near_duplicate_of=nd[0] if nd else None,
                        similarity=nd[1] if nd else 0.0,
                        ratio=float(ratios[i]),
                    )
                    reasons_json[i] = json.dumps(reasons) if reasons else "[]"
                    pii_json[i] = json.dumps(pii_found[i]) if pii_found[i] else "[]"
                flagged = {
                    "exact_duplicate": len(exact),
                    "near_duplicate": len(near),
                    "pii": int(np.count_nonzero(has_pii)),
                    "low_score": sum(1 for sc in scores if sc < 0.5),
                }
                width = quality.NUM_PERM * 4
                sig_bytes = np.ascontiguousarray(sigs).tobytes()
                rows = list(
                    zip(
                        ids,
                        repeat(dn["id"]),
                        repeat(file_id),
                        [r[0] for r in recs],
                        hashes,
                        repeat(pack),
                        offsets,
                        map(len, canon),
                        repeat(who),
                        repeat(dn["license"]),
                        scores,
                        reasons_json,
                        pii_json,
                        [r[5] for r in recs],
                        [t[:160] for t in texts],
                        [
                            None if e else sig_bytes[j : j + width]
                            for e, j in zip(
                                empty.tolist(), range(0, len(sig_bytes), width), strict=True
                            )
                        ],
                        repeat(now),
                    )
                )
                if slow:
                    for i, r in enumerate(rows):
                        self.store.execute(_INSERT_RECORD, r)
                        self.events.progress("ingest", i + 1, total, plan["name"])
                        time.sleep(slow)
                else:
                    for lo in range(0, total, _PROGRESS_EVERY):
                        chunk = rows[lo : lo + _PROGRESS_EVERY]
                        self.store.conn.executemany(_INSERT_RECORD, chunk)
                        if len(chunk) == _PROGRESS_EVERY:
                            self.events.progress("ingest", lo + len(chunk), total, plan["name"])
                self._dedupe_cache[dn["id"]] = (seen, index, next_id + total - 1)
        except BaseException:
            self._dedupe_cache.pop(dn["id"], None)  # it may hold ids that were rolled back
            if pack_bytes:
                with self.store.transaction():
                    self.blobs.settle(pack, keep=self._blob_in_use(pack))
            raise
        self.blobs.settle(pack)
        self.events.progress("ingest", total, total, plan["name"])
        return {
            **base,
            "status": "added",
            "records": total,
            "refused": plan["refused"],
            "flags": flagged,
            "file_id": file_id,
        }

    def _confirm(
        self,
        datanet_id: int,
        text: str,
        cands: builtins.list[tuple[int, float]],
        batch_texts: tuple[int, builtins.list[str]] | None = None,
    ) -> tuple[int, float] | None:
        """The first LSH candidate whose exact shingle Jaccard with `text` reaches the threshold."""
        threshold = self.config.ingest.near_duplicate_threshold
        for other, _est in cands:
            if batch_texts and 0 <= other - batch_texts[0] < len(batch_texts[1]):
                other_text = batch_texts[1][other - batch_texts[0]]
            else:
                r = self.store.one(
                    "SELECT * FROM records WHERE id = ? AND datanet_id = ?", (other, datanet_id)
                )
                if r is None:
                    continue
                try:
                    other_text = self._load(r).plain_text()
                except StudioError:
                    continue  # a damaged record is verify's business, not a reason to fail an ingest
            sim = quality.jaccard(text, other_text)
            if sim >= threshold:
                return other, sim
        return None

    def _dedupe_state(self, datanet_id: int) -> tuple[dict[str, int], quality.DuplicateIndex]:
        """Content hashes and the near-duplicate index of a Datanet's records, kept between calls
        and topped up with records added since (by any process)."""
        cached = self._dedupe_cache.get(datanet_id)
        if cached is None:
            seen: dict[str, int] = {}
            index = quality.DuplicateIndex(self.config.ingest.near_duplicate_threshold)
            last = 0
        else:
            seen, index, last = cached
        rows = self.store.conn.execute(
            "SELECT id, content_sha256, minhash FROM records WHERE datanet_id = ? AND id > ? ORDER BY id",
            (datanet_id, last),
        ).fetchall()
        if rows:
            # Exact duplicates of an indexed record add nothing to the near-duplicate index.
            with_sig = [r for r in rows if seen.setdefault(r[1], r[0]) == r[0] and r[2] is not None]
            if with_sig:
                sigs = np.frombuffer(b"".join(r[2] for r in with_sig), dtype=np.uint32).reshape(
                    -1, quality.NUM_PERM
                )
                index.add_many([r[0] for r in with_sig], sigs)
            last = rows[-1][0]
        self._dedupe_cache[datanet_id] = (seen, index, last)
        return seen, index

    # -- records and curation ---------------------------------------------------------------------
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

    def _ids(self, dn: dict[str, Any], ids: Any) -> builtins.list[int]:
        try:
            wanted = sorted({int(i) for i in ids})
        except (TypeError, ValueError) as e:
            raise InvalidInput(
                "Record ids must be numbers.", hint="See `studio datanet records NAME`."
            ) from e
        if not wanted:
            raise InvalidInput("No record ids given.")
        found = {
            r["id"]
            for r in self.store.query(
                f"SELECT id FROM records WHERE datanet_id = ? AND id IN ({','.join('?' * len(wanted))})",
                [dn["id"], *wanted],
            )
        }
        missing = [i for i in wanted if i not in found]
        if missing:
            raise NotFound(
                f"No record(s) {', '.join(f'#{i}' for i in missing)} in '{dn['name']}'.",
                hint=f"See `studio datanet records {dn['name']}`.",
            )
        return wanted

    def curate(
        self,
        name: str,
        accept: Any = None,
        *,
        accept_all: bool = False,
        min_score: float = 0.5,
        reject: Any = None,
        reason: str = "",
    ) -> dict[str, Any]:
        """Accept ids, accept every pending record scoring >= min_score, or reject ids with a reason."""
        dn = self._row(name)
        modes = sum([bool(accept), accept_all, bool(reject)])
        if modes != 1:
            raise InvalidInput(
                "Choose one of: accept IDs, accept-all, or reject IDs.",
                hint="studio datanet curate NAME (--accept ID… | --accept-all | --reject ID… --reason TEXT)",
            )
        if not 0.0 <= min_score <= 1.0:
            raise InvalidInput(f"min score {min_score} is outside 0..1.")
        with self.store.transaction():
            if accept_all:
                rows = self.store.query(
                    "SELECT id, score FROM records WHERE datanet_id = ? AND status = 'pending'"
                    " ORDER BY id",
                    (dn["id"],),
                )
                ids = [r["id"] for r in rows if r["score"] >= min_score]
                below = [r["id"] for r in rows if r["score"] < min_score]
                status, why = "accepted", f"accept-all (score >= {min_score:g})"
            elif accept:
                ids, below = self._ids(dn, accept), []
                status, why = "accepted", "accepted"
            else:
                if not reason.strip():
                    raise InvalidInput("A rejection needs a reason.", hint="Pass --reason TEXT.")
                ids, below = self._ids(dn, reject), []
                status, why = "rejected", reason.strip()
            self.store.conn.executemany(
                "UPDATE records SET status = ?, status_reason = ? WHERE id = ?",
                [(status, why, i) for i in ids],
            )
        return {"datanet": name, "status": status, "changed": ids, "left_pending": below}

    def edit_record(self, name: str, record_id: int, new_text: str) -> dict[str, Any]:
        """An edit is a new pending record that supersedes the old one; the old one's content never
        changes (snapshots that hold it stay valid) and it is marked rejected ("replaced by edit")."""
        dn = self._row(name)
        old = self._record_row(name, dn, record_id)
        if old["kind"] == "text":
            rec = RawRecord("text", text=new_text.strip())
        else:
            try:
                obj = json.loads(new_text)
            except ValueError as e:
                raise InvalidInput(
                    f"Record #{record_id} is {old['kind']}: give the edit as JSON."
                ) from e
            rec = record_from_canonical(old["kind"], json.dumps(obj).encode())
        if not rec.plain_text().strip():
            raise InvalidInput("The edited text is empty.")
        text = rec.plain_text()
        s = quality.scan(text)
        if s.refused:
            raise InvalidInput(
                f"The edited record {s.refused}: it cannot be stored.", hint="Remove the secret."
            )
        canon = rec.canonical()
        digest = hashlib.sha256(canon).hexdigest()
        pack = self.blobs.put(canon)
        sig = quality.signatures([text])[0]
        source = {**json.loads(old["source"]), "edited_from": record_id}
        with self.store.transaction():
            dup = self.store.one(
                "SELECT MIN(id) AS id FROM records WHERE datanet_id = ? AND content_sha256 = ?",
                (dn["id"], digest),
            )
            _, index = self._dedupe_state(dn["id"])
            near = None
            if not (dup and dup["id"]) and not quality.empty_rows(sig[None, :])[0]:
                cands = index.candidates(sig, index.band_keys(sig[None, :])[0], exclude=record_id)
                near = self._confirm(dn["id"], text, cands)
            score, reasons = quality.assess(
                text,
                self.config.ingest,
                pii=s.pii,
                exact_duplicate_of=dup["id"] if dup else None,
                near_duplicate_of=near[0] if near else None,
                similarity=near[1] if near else 0.0,
            )
            cur = self.store.execute(
                "INSERT INTO records(datanet_id, file_id, kind, content_sha256, pack, pack_offset, size, contributor,"
                " license, score, reasons, pii, source, preview, minhash, supersedes, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    dn["id"],
                    old["file_id"],
                    old["kind"],
                    digest,
                    pack,
                    0,
                    len(canon),
                    old["contributor"],
                    old["license"],
                    score,
                    json.dumps(reasons),
                    json.dumps(s.pii),
                    json.dumps(source, sort_keys=True),
                    text[:160],
                    None if quality.empty_rows(sig[None, :])[0] else sig.tobytes(),
                    record_id,
                    time.time(),
                ),
            )
            new_id = cur.lastrowid
            self.store.execute(
                "UPDATE records SET status = 'rejected', status_reason = ? WHERE id = ?",
                (f"replaced by edit #{new_id}", record_id),
            )
        r = self.store.one("SELECT * FROM records WHERE id = ?", (new_id,))
        assert r is not None
        return self._record_public(r)

    # -- snapshots --------------------------------------------------------------------------------
    def snapshot(self, name: str) -> dict[str, Any]:
        """A new immutable version over the accepted records (id order), with its Merkle root.
        If nothing changed since the latest version, that version is returned (unchanged: true)."""
        dn = self._row(name)
        with self.store.transaction():
            rows = self.store.query(
                "SELECT id, content_sha256, contributor, license FROM records"
                " WHERE datanet_id = ? AND status = 'accepted' ORDER BY id",
                (dn["id"],),
            )
            if not rows:
                raise InvalidInput(
                    f"'{name}' has no accepted records to snapshot.",
                    hint=f"Accept some first: studio datanet curate {name} --accept-all",
                )
            leaves = [
                merkle.leaf_hash(r["content_sha256"], r["contributor"], r["license"]) for r in rows
            ]
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
            manifest_hash = self.blobs.put(manifest)
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
        s = self._snapshot_row(name, version)
        return {
            "datanet": name,
            "version": s["version"],
            "root": s["root"],
            "records": s["records"],
            "created_at": s["created_at"],
            "manifest_hash": s["manifest_hash"],
        }

    def snapshots(self, name: str) -> builtins.list[dict[str, Any]]:
        dn = self._row(name)
        return [
            {
                "datanet": name,
                "version": s["version"],
                "root": s["root"],
                "records": s["records"],
                "created_at": s["created_at"],
                "manifest_hash": s["manifest_hash"],
            }
            for s in self.store.query(
                "SELECT * FROM snapshots WHERE datanet_id = ? ORDER BY version", (dn["id"],)
            )
        ]

    def snapshot_records(
        self, name: str, version: int | None = None
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

    # -- verify -----------------------------------------------------------------------------------
    def verify(self, name: str) -> dict[str, Any]:
        """Re-hash every record's bytes and rebuild every snapshot's leaves and root."""
        dn = self._row(name)
        problems: builtins.list[dict[str, Any]] = []
        rows = self.store.query(
            "SELECT * FROM records WHERE datanet_id = ? ORDER BY pack, id", (dn["id"],)
        )
        pack: bytes | None = None
        pack_id = None
        pack_missing = False
        for i, r in enumerate(rows):
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

    # -- export -----------------------------------------------------------------------------------
    def export(
        self,
        name: str,
        out: str | os.PathLike[str],
        format: str = "jsonl",
        version: int | None = None,
    ) -> dict[str, Any]:
        from studio.core.export import export_records

        recs = self.snapshot_records(name, version)
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


def parse_file(path: Path, text_column: str | None, cfg: IngestConfig) -> dict[str, Any]:
    """Read and check one file; nothing is written. Returns the planned records (a picklable
    dict, so worker processes can produce it)."""
    file_format(path)
    size = check_size(path, cfg)
    data = path.read_bytes()
    if len(data) != size:  # changed while we read it
        size = len(data)
    digest = hashlib.sha256(data).hexdigest()
    raw = read_rows(path, data, cfg, text_column=text_column)
    texts = [r[1] if r[0] == "text" else render_text(*r[:5]) for r in raw]
    stats = quality.analyze(texts)
    pii, why = quality.scan_many_flat(texts, stats.mnemonic.tolist(), stats.digits.tolist())
    refused = [{"where": _where(row[5]), "reason": w} for row, w in zip(raw, why, strict=True) if w]
    sigs, ratios = stats.sigs, stats.letter_ratio
    if refused:  # keep the others
        kept = [i for i, w in enumerate(why) if not w]
        raw, texts, pii = [raw[i] for i in kept], [texts[i] for i in kept], [pii[i] for i in kept]
        sigs, ratios = sigs[kept], ratios[kept]
    # Records as plain tuples of strings (see _Planned): the GC stops tracking those, so holding
    # every file's records until they are written costs no garbage-collection passes over them.
    file_json = json.dumps(path.name, ensure_ascii=False)
    records: list[_Planned] = [
        (kind, text if kind != "text" else "", p, r, m, _source_json(src, file_json))
        for kind, text, p, r, m, src in raw
    ]
    return {
        "path": path,
        "name": path.name,
        "sha256": digest,
        "size": size,
        "format": file_format(path),
        "records": records,
        "texts": texts,
        "sigs": sigs,
        "ratios": ratios,
        "pii": pii,
        "refused": refused,
    }


# A planned record: kind, text ("" for prose: the plan's texts hold it), prompt, response,
# messages, and its source as JSON.
_Planned = tuple[str, str, str | None, str | None, list[dict[str, str]] | None, str]

_INSERT_RECORD = (
    "INSERT INTO records(id, datanet_id, file_id, kind, content_sha256, pack, pack_offset, size, contributor,"
    " license, score, reasons, pii, source, preview, minhash, created_at)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


_INT_KEYS = frozenset({"row", "offset", "paragraph", "page"})


def _source_json(source: dict[str, Any], file_json: str) -> str:
    """json.dumps(source, sort_keys=True) for the usual {file, row|offset|page…: int} shape, fast."""
    if len(source) == 2:
        k = next(reversed(source))  # the reader's second key: row, offset or paragraph
        v = source[k]
        if type(v) is int and k in _INT_KEYS and "file" in source:  # all sort after "file"
            return f'{{"file": {file_json}, "{k}": {v}}}'
    parts = []
    for k in sorted(source):
        v = source[k]
        if k == "file":
            parts.append(f'"file": {file_json}')
        elif type(v) is int:
            parts.append(f'"{k}": {v}')
        else:
            return json.dumps(source, sort_keys=True, ensure_ascii=False)
    return "{" + ", ".join(parts) + "}"


def _where(source: dict[str, Any]) -> str:
    for k in ("row", "page", "paragraph", "offset"):
        if k in source:
            return f"{source.get('file', '')} {k} {source[k]}"
    return str(source.get("file", ""))


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


__all__ = ["Datanets", "SnapshotRecord", "checksum_address", "render_text"]
