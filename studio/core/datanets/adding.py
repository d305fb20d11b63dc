"""Adding files to a Datanet: parse and check each file (nothing written), then write its records
as one pack blob plus one transaction, with exact and near-duplicate detection."""

from __future__ import annotations

import builtins
import gc
import hashlib
import json
import time
from itertools import accumulate, repeat
from pathlib import Path
from typing import Any

import numpy as np

from studio.core import quality
from studio.core.cancel import CancelToken, check
from studio.core.changes import Changes
from studio.core.config import IngestConfig
from studio.core.datanets.duplicates import DuplicateChecks
from studio.core.errors import InvalidInput, StudioError
from studio.core.ingest import RawRecord, check_size, file_format, read_rows, render_text


def _pack(parts: list[bytes]) -> tuple[bytes, list[int]]:
    return b"".join(parts), [0, *accumulate(map(len, parts[:-1]))] if parts else []


_PROGRESS_EVERY = 5000  # records inserted between progress events


class AddingFiles(DuplicateChecks):
    def _plans(
        self,
        paths: builtins.list[Path],
        text_column: str | None,
        cancel: CancelToken | None = None,
    ) -> builtins.list[Any]:
        """parse_file for every path, in order: a plan dict or the StudioError it raised.
        (Parsing in worker processes was tried: shipping the parsed records back costs as much
        as it saves on two cores.)"""
        out: builtins.list[Any] = []
        for p in paths:
            check(cancel)
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
        cancel: CancelToken | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Ingest files; one result per file: status added | duplicate | error.
        With all_or_nothing (the CLI), any unreadable file raises before anything is written.
        All files are written in one transaction: a cancel (or a crash) part-way leaves the
        Datanet, and the blobs folder, as they were before the call."""
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
                results = self._add_files(dn, who, paths, text_column, all_or_nothing, cancel)
                added = [r for r in results if r.get("status") == "added"]
                if added:
                    self.events.changed(
                        Changes.of(
                            datanets=[name],
                            records=[i for r in added for i in r.pop("_ids")],
                        ),
                        job="ingest",
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
        text_column: str | None,
        all_or_nothing: bool,
        cancel: CancelToken | None,
    ) -> builtins.list[dict[str, Any]]:
        planned: builtins.list[dict[str, Any] | None] = []
        results: builtins.list[dict[str, Any]] = []
        for p, plan in zip(paths, self._plans(paths, text_column, cancel), strict=True):
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
        new_blobs: builtins.list[str] = []
        try:
            with self.store.transaction():
                for i, plan in enumerate(planned):
                    if plan is not None:
                        results[i] = self._ingest(dn, plan, who, cancel, new_blobs)
                check(cancel)  # the last safe point: after it, the transaction commits
        except BaseException:
            self._dedupe_cache.pop(dn["id"], None)  # it may hold ids that were rolled back
            self._discard_unreferenced(new_blobs)
            raise
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
        plan: dict[str, Any],
        who: str,
        cancel: CancelToken | None = None,
        new_blobs: builtins.list[str] | None = None,
    ) -> dict[str, Any]:
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
        # The pack is written before the transaction: if we die before COMMIT it is an orphan blob
        # (harmless, content-addressed); no row ever points at a blob that is not on disk.
        check(cancel)
        if pack_bytes:
            pack, created = self.blobs.add(pack_bytes)
            if created and new_blobs is not None:
                new_blobs.append(pack)
        else:
            pack = hashlib.sha256(b"").hexdigest()
        now = time.time()
        try:
            with self.store.transaction():
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
                for lo in range(0, total, _PROGRESS_EVERY):
                    check(cancel)
                    chunk = rows[lo : lo + _PROGRESS_EVERY]
                    self.store.conn.executemany(_INSERT_RECORD, chunk)
                    if len(chunk) == _PROGRESS_EVERY:
                        self.events.progress("ingest", lo + len(chunk), total, plan["name"])
                self._dedupe_cache[dn["id"]] = (seen, index, next_id + total - 1)
        except BaseException:
            self._dedupe_cache.pop(dn["id"], None)  # it may hold ids that were rolled back
            raise
        self.events.progress("ingest", total, total, plan["name"])
        return {
            **base,
            "status": "added",
            "records": total,
            "refused": plan["refused"],
            "flags": flagged,
            "file_id": file_id,
            "_ids": ids,  # for the Changes; add_files removes it
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
