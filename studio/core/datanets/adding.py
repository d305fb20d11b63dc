"""Adding files to a Datanet: parse, check and pack each file (core.ingest_plan, in a process pool),
then write its records in one transaction, with exact and near-duplicate detection."""

from __future__ import annotations

import builtins
import gc
import hashlib
import json
import time
from collections.abc import Callable
from itertools import chain, repeat
from pathlib import Path
from typing import Any

import numpy as np

from studio.core import ingest_plan, quality
from studio.core.cancel import CancelToken, check
from studio.core.changes import Changes
from studio.core.datanets.duplicates import DuplicateChecks
from studio.core.errors import InvalidInput, StudioError
from studio.core.ingest import display_name
from studio.core.ingest_plan import FileParts, PlannedTexts, plans_of, prepare_files
from studio.core.ingest_plan import plan_file as parse_file

_PROGRESS_EVERY = 5000  # records inserted between progress events
_WRITE_CACHE_KB = 64 * 1024  # SQLite page cache while adding files (bounded, whatever the size)


class AddingFiles(DuplicateChecks):
    def add_files(
        self,
        name: str,
        paths: Any,
        contributor: str | None = None,
        *,
        text_column: str | None = None,
        all_or_nothing: bool = True,
        cancel: CancelToken | None = None,
        follow_symlinks: bool = False,
    ) -> builtins.list[dict[str, Any]]:
        """Ingest files; one result per file: status added | duplicate | error.
        With all_or_nothing (the CLI), any unreadable file raises before anything is written.
        All files are written in one transaction: a cancel (or a crash) part-way leaves the
        Datanet, and the blobs folder, as they were before the call. Symbolic links are refused
        unless follow_symlinks. Files are parsed, split, scanned and signed in a process pool
        (core.ingest_plan); this process is the one SQLite writer."""
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
            with self.events.operation("datanet add"):
                prepared = prepare_files(
                    paths,
                    text_column,
                    self.config.ingest,
                    follow_symlinks=follow_symlinks,
                    cancel=cancel,
                )
                if all_or_nothing:  # a missing, linked or oversized file: before any parsing
                    for item in prepared:
                        if isinstance(item, StudioError):
                            raise _all_or_nothing(item, len(paths))
                # every blob the planning writes (each chunk's pack, by the worker that planned
                # it), so that a cancel or a failure takes back exactly those
                new_blobs: builtins.list[str] = []
                plans = plans_of(
                    prepared,
                    self.config.ingest,
                    cancel=cancel,
                    blobs=self.blobs.root,
                    written=new_blobs,
                )
                size = sum(item.size for item in prepared if not isinstance(item, StudioError))
                results = self._add_files(
                    dn, who, paths, plans, new_blobs, all_or_nothing, cancel, size
                )
                added = [r for r in results if r.get("status") == "added"]
                if added:
                    # (ranges of ints: chained in C, no Python step per record)
                    ids = frozenset(chain.from_iterable(r.pop("_ids") for r in added))
                    self.events.changed(
                        Changes(datanets=frozenset([name]), records=ids), job="ingest"
                    )
                return results
        finally:
            if gc_was_on:
                gc.enable()

    def _add_files(
        self,
        dn: dict[str, Any],
        who: str,
        paths: builtins.list[Path],
        plans: Any,
        new_blobs: builtins.list[str],
        all_or_nothing: bool,
        cancel: CancelToken | None,
        size: int = 0,
    ) -> builtins.list[dict[str, Any]]:
        """Each file is written, in one transaction, as soon as its plan is ready, while the
        pool plans the next ones. With all_or_nothing an unreadable file rolls the transaction
        back, and progress is held back until the last file's plan is in: such a failure is
        one line, with nothing changed."""
        results: builtins.list[dict[str, Any]] = []
        held: builtins.list[tuple[Any, ...]] = []
        live = [not all_or_nothing]

        def progress(*event: Any, **data: Any) -> None:
            if live[0]:
                self.events.progress(*event, **data)
            else:
                held.append((event, data))

        # A bigger page cache for the bulk insert (SQLite's default is 2 MB): the two record
        # indexes take random inserts, and a page evicted mid-transaction is written twice.
        conn = self.store.conn
        cache_size = conn.execute("PRAGMA cache_size").fetchone()[0]
        conn.execute(f"PRAGMA cache_size = -{_WRITE_CACHE_KB}")
        bulk = BulkIndexes(conn, size)
        try:
            with self.store.transaction():

                def go_live() -> None:
                    if not live[0]:
                        live[0] = True  # every file is planned and readable: report as we go
                        for event, data in held:
                            self.events.progress(*event, **data)

                for i, (p, plan) in enumerate(zip(paths, plans, strict=True)):
                    if not isinstance(plan, StudioError):
                        last = i == len(paths) - 1
                        outcome = self._ingest(
                            dn, plan, who, cancel, progress, bulk, go_live if last else None
                        )
                        if not isinstance(outcome, StudioError):
                            results.append(outcome)
                            continue
                        plan = outcome  # (refused once all its chunks were planned)
                    if all_or_nothing:
                        raise _all_or_nothing(plan, len(paths))
                    else:
                        results.append(
                            {
                                "file": display_name(p.name),
                                "path": display_name(str(p)),
                                "status": "error",
                                "error": str(plan),
                            }
                        )
                bulk.rebuild()  # (inside the transaction: a crash or a cancel loses nothing)
                check(cancel)  # the last safe point: after it, the transaction commits
        except BaseException:
            self._dedupe_cache.pop(dn["id"], None)  # it may hold ids that were rolled back
            plans.close()  # the pool stops; new_blobs then holds every blob it wrote
            # ... and the markers name those a worker wrote but died before reporting
            mine = self.blobs.pending_mine()
            self._discard_unreferenced(sorted({*new_blobs, *mine}))
            for d in mine:
                self.blobs.discard_partial(d)  # (a worker killed mid-write)
            raise
        else:  # packs of files that were duplicates or refused after planning
            used = {d for r in results for d in r.pop("_packs", ())}
            self._discard_unreferenced([d for d in new_blobs if d not in used])
        finally:
            self.blobs.settle_mine()  # committed or rolled back: nothing of ours is pending now
            conn.execute(f"PRAGMA cache_size = {int(cache_size)}")
        return results

    def _discard_unreferenced(self, digests: builtins.list[str]) -> None:
        """Remove packs this call wrote and no row points at (after a rollback): the blobs folder
        is left as it was. A pack another process committed meanwhile is kept."""
        for d in digests:
            if not self.store.one(
                "SELECT 1 FROM datanet_files WHERE pack = ? UNION ALL "
                "SELECT 1 FROM records WHERE pack = ? LIMIT 1",
                (d, d),
            ):
                self.blobs.discard(d)

    def _ingest(
        self,
        dn: dict[str, Any],
        file: FileParts,
        who: str,
        cancel: CancelToken | None = None,
        progress: Callable[..., Any] | None = None,
        bulk: BulkIndexes | None = None,
        when_planned: Callable[[], None] | None = None,
    ) -> dict[str, Any] | StudioError:
        """Write one file's records, chunk by chunk as the planning hands them over, inside a
        savepoint: a file refused once all its chunks are seen (a malformed line in its last
        chunk, too many records) is taken back whole, and the add goes on with the next.
        when_planned is called once all its chunks are planned and it is not refused, before
        its last chunk is written."""
        progress = progress or self.events.progress
        cfg = self.config.ingest
        head = file.head
        base = {"file": head["name"], "path": head["stored_path"], "sha256": head["sha256"]}
        prior = self.store.one(
            "SELECT id, added_at, records FROM datanet_files WHERE datanet_id = ? AND sha256 = ?",
            (dn["id"], head["sha256"]),
        )
        if prior:
            file.drain()
            return {
                **base,
                "status": "duplicate",
                "records": 0,
                "message": f"already added (file #{prior['id']}, {prior['records']} records): nothing added",
            }
        seen: builtins.list[Any] = []  # every part, as file_error wants them (no plans kept)
        written = _FileWritten()
        conn = self.store.conn
        # (inside the add's transaction: BEGIN IMMEDIATE, so nobody else writes meanwhile)
        conn.execute("SAVEPOINT add_file")
        try:
            for group in file.groups():
                check(cancel)
                for part in group:
                    ok = isinstance(part, dict) and "bad" not in part
                    seen.append(
                        {"kinds": part["kinds"], "refused": part["refused"]} if ok else part  # type: ignore[index]
                    )
                if ingest_plan.file_error(head, seen, cfg) is not None:
                    continue  # (refused in any case: the rest is only looked at)
                if len(seen) == file.count and when_planned is not None:
                    when_planned()
                plan = ingest_plan.combine(head, group)  # type: ignore[arg-type]
                self._write_part(dn, plan, who, written, cancel, progress, bulk)
                if len(seen) < file.count:  # (its end is reported below)
                    done = plan["byte_base"] + plan["bytes"]
                    progress("ingest", done, head["size"], head["name"], unit="bytes")
            failed = ingest_plan.file_error(head, seen, cfg)
            if failed is not None:
                conn.execute("ROLLBACK TO add_file")
                self._dedupe_cache.pop(dn["id"], None)  # it holds the ids taken back
                return failed
            if written.file_id is None:  # every record refused: the file is noted all the same
                self._file_row(dn, head, hashlib.sha256(b"").hexdigest(), who, written)
            conn.execute(
                "UPDATE datanet_files SET records = ?, refused = ? WHERE id = ?",
                (written.records, len(written.refused), written.file_id),
            )
        except BaseException:
            self._dedupe_cache.pop(dn["id"], None)  # it may hold ids that were rolled back
            raise
        finally:
            conn.execute("RELEASE add_file")
        progress("ingest", head["size"], head["size"], head["name"], unit="bytes")
        first = written.first_id
        return {
            **base,
            "status": "added",
            "records": written.records,
            "refused": written.refused,
            "flags": written.flags,
            "file_id": written.file_id,
            "_ids": range(first, first + written.records),  # for the Changes; add_files removes it
            "_packs": written.packs,  # in use now (_add_files removes it)
        }

    def _file_row(
        self, dn: dict[str, Any], head: dict[str, Any], pack: str, who: str, written: _FileWritten
    ) -> None:
        cur = self.store.execute(
            "INSERT INTO datanet_files(datanet_id, name, path, sha256, size, format, contributor, pack,"
            " records, refused, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                dn["id"],
                head["name"],
                head["stored_path"],
                head["sha256"],
                head["size"],
                head["format"],
                who,
                pack,
                0,  # (both counts are set once every chunk is in: _ingest)
                0,
                written.now,
            ),
        )
        written.file_id = cur.lastrowid
        written.packs.add(pack)
        row = self.store.one("SELECT COALESCE(MAX(id), 0) AS m FROM records")
        written.first_id = written.next_id = (row["m"] if row else 0) + 1

    def _write_part(
        self,
        dn: dict[str, Any],
        plan: dict[str, Any],
        who: str,
        written: _FileWritten,
        cancel: CancelToken | None,
        progress: Callable[..., Any],
        bulk: BulkIndexes | None,
    ) -> None:
        """One planned chunk's records: duplicates found, scored and inserted."""
        cfg = self.config.ingest
        # Everything per record comes computed by the planning workers, as flat lists and numpy
        # arrays; the texts are decoded from the pack only for the few records scored or compared.
        kinds: builtins.list[str] = plan["kinds"]
        texts = PlannedTexts(plan)
        hashes: builtins.list[str] = plan["hashes"]
        sigs = plan["sigs"]
        pii_found: dict[int, tuple[str, ...]] = plan["pii"]
        # The packs (one per chunk) were written by the planning, inside the transaction that
        # will reference them, marked pending: a rollback discards them (add_files), and if the
        # process is killed before COMMIT the next open sweeps them (sweep_abandoned_blobs). No
        # row ever points at a blob that is not on disk.
        now = written.now
        total = len(kinds)
        written.refused += plan["refused"]
        if not total:
            return
        # Inside BEGIN IMMEDIATE nobody else writes, so the ids we hand out are the ones we get.
        seen, index = self._dedupe_state(dn["id"])
        if written.file_id is None:  # (its pack: the first chunk's with records)
            self._file_row(dn, plan, plan["pack"], who, written)
        file_id = written.file_id
        next_id = written.next_id
        written.packs.update(plan["packs"])
        ids = range(next_id, next_id + total)
        empty = quality.empty_rows(sigs)
        # Exact duplicates (rare): the first record with the same content, in an earlier
        # file or chunk (`seen`) or earlier in this one, found with bulk dict and numpy operations.
        earlier = list(map(seen.get, hashes))
        first_here = dict(zip(reversed(hashes), reversed(ids), strict=True))  # lowest id
        firsts = np.fromiter(map(first_here.__getitem__, hashes), np.int64, total)
        # index in this chunk -> id of the first record with that content
        exact = {i: e for i, e in enumerate(earlier) if e is not None}
        is_dup = firsts != np.arange(next_id, next_id + total)
        is_dup[list(exact)] = True
        for i in np.flatnonzero(is_dup).tolist():
            exact.setdefault(i, int(firsts[i]))
        # (not keys() - seen.keys(): that walks all of `seen`, once per chunk)
        seen.update({h: i for h, i in first_here.items() if h not in seen})
        # The others (with a signature) go into the near-duplicate index in id order,
        # each checked against those before it.
        indexed = np.flatnonzero(~(empty | is_dup)).tolist()
        near: dict[int, tuple[int, float]] = {}
        # (band keys from the planning, unless made for another threshold's bands)
        keys = plan["bands"][indexed] if plan["banding"] == (index.b, index.r) else None
        ranked = index.check_and_add_many([ids[i] for i in indexed], sigs[indexed], keys)
        for rid, cands in sorted(ranked.items()):
            found = self._confirm(
                dn["id"], texts[rid - next_id], cands, batch_texts=(next_id, texts)
            )
            if found:
                near[rid] = found
        # Scores: assess() for records with something to say, (1.0, []) for the others.
        ratios = plan["ratios"]
        has_pii = np.zeros(total, dtype=bool)
        has_pii[list(pii_found)] = True
        plain = quality.unflagged_ok(plan["lengths"], ratios, cfg)
        plain &= ~(is_dup | has_pii)
        plain[[rid - next_id for rid in near]] = False
        scores = [1.0] * total
        reasons_json = ["[]"] * total
        pii_json = ["[]"] * total
        for i in np.flatnonzero(~plain).tolist():
            nd = near.get(next_id + i)
            pii = pii_found.get(i, ())
            scores[i], reasons = quality.assess(
                texts[i],
                cfg,
                pii=pii,
                exact_duplicate_of=exact.get(i),
                near_duplicate_of=nd[0] if nd else None,
                similarity=nd[1] if nd else 0.0,
                ratio=float(ratios[i]),
            )
            reasons_json[i] = json.dumps(reasons) if reasons else "[]"
            pii_json[i] = json.dumps(pii) if pii else "[]"
        flags = written.flags
        flags["exact_duplicate"] += len(exact)
        flags["near_duplicate"] += len(near)
        flags["pii"] += int(np.count_nonzero(has_pii))
        flags["low_score"] += sum(1 for sc in scores if sc < 0.5)
        width = quality.NUM_PERM * 4
        sig_bytes = np.ascontiguousarray(sigs).tobytes()
        rows = list(
            zip(
                ids,
                repeat(dn["id"]),
                repeat(file_id),
                kinds,
                hashes,
                plan["packs"],
                plan["offsets"].tolist(),
                plan["sizes"].tolist(),
                repeat(who),
                repeat(dn["license"]),
                scores,
                reasons_json,
                pii_json,
                plan["sources"],
                plan["previews"],
                [
                    None if e else sig_bytes[j : j + width]
                    for e, j in zip(empty.tolist(), range(0, len(sig_bytes), width), strict=True)
                ],
                repeat(now),
            )
        )
        if bulk is not None:
            bulk.before_insert(total, plan["bytes"], next_id - 1)
        # progress in bytes of the file (its number of records is known only at its end)
        start, span = plan["byte_base"], plan["bytes"]
        for lo in range(0, total, _PROGRESS_EVERY):
            check(cancel)
            chunk = rows[lo : lo + _PROGRESS_EVERY]
            self.store.conn.executemany(_INSERT_RECORD, chunk)
            if len(chunk) == _PROGRESS_EVERY:  # (the file's end is reported by _ingest)
                done = lo + len(chunk)
                progress(
                    "ingest", start + span * done // total, plan["size"], plan["name"], unit="bytes"
                )
        written.next_id = next_id + total
        written.records += total
        self._dedupe_cache[dn["id"]] = (seen, index, next_id + total - 1)


class _FileWritten:
    """What the chunks of one file written so far add up to."""

    def __init__(self) -> None:
        self.file_id: int | None = None
        self.first_id = self.next_id = 0
        self.records = 0
        self.refused: builtins.list[dict[str, str]] = []
        self.flags = {"exact_duplicate": 0, "near_duplicate": 0, "pii": 0, "low_score": 0}
        self.packs: set[str] = set()
        self.now = time.time()


class BulkIndexes:
    """The record table's index fed in random order (content hashes) dropped for a large add
    and built again (sorted, in one pass) before COMMIT, all in the add's transaction: a
    rollback or a crash restores it with everything else. Built once, it costs about a third of
    the same rows inserted one by one. The other indexes (Datanet with status, score or
    contributor) take new records at their end, as the table does: they are kept, so that
    their cost falls in the insert loop, while the pool still plans, rather than in the build
    after it, when only this process works. Worth it when the add brings at least as many
    records as the table holds (MIN_ROWS at least): the estimate is the records per byte of
    the first chunks written times the bytes of all files."""

    MIN_ROWS = 20_000
    RANDOM_ORDER = ("records_content",)

    def __init__(self, conn: Any, size: int) -> None:
        self.conn, self.size = conn, size
        self.decided = False
        self.dropped: builtins.list[str] = []

    def before_insert(self, rows: int, nbytes: int, existing: int) -> None:
        """`rows` records about to be inserted, parsed from `nbytes` bytes of input."""
        if self.decided or not rows:
            return
        self.decided = True
        expected = rows * max(self.size, nbytes) / max(nbytes, 1)
        if expected < max(self.MIN_ROWS, existing):
            return
        marks = ",".join("?" * len(self.RANDOM_ORDER))
        found = self.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'"
            f" AND sql IS NOT NULL AND name IN ({marks}) ORDER BY name",
            self.RANDOM_ORDER,
        ).fetchall()
        for name, sql in found:
            self.conn.execute(f'DROP INDEX "{name}"')
            self.dropped.append(sql)

    def rebuild(self) -> None:
        for sql in self.dropped:
            self.conn.execute(sql)
        self.dropped = []


def _all_or_nothing(error: StudioError, n_files: int) -> StudioError:
    others = f" ({n_files - 1} other file(s) not added either)" if n_files > 1 else ""
    return type(error)(f"{error}{others}")


_INSERT_RECORD = (
    "INSERT INTO records(id, datanet_id, file_id, kind, content_sha256, pack, pack_offset, size, contributor,"
    " license, score, reasons, pii, source, preview, minhash, created_at)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


__all__ = ["AddingFiles", "parse_file"]
