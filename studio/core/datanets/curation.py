"""Curation: accept or reject records; an edit is a new pending record superseding the old one."""

from __future__ import annotations

import builtins
import hashlib
import json
import time
from typing import Any

from studio.core import quality
from studio.core.changes import Changes
from studio.core.datanets.duplicates import DuplicateChecks
from studio.core.errors import InvalidInput, NotFound
from studio.core.ingest import RawRecord, record_from_canonical


class Curation(DuplicateChecks):
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
                hint="Accept some records by id, accept all that score well enough, or reject some by id with a reason.",
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
                    raise InvalidInput(
                        "A rejection needs a reason.", hint="Say why the records are rejected."
                    )
                ids, below = self._ids(dn, reject), []
                status, why = "rejected", reason.strip()
            self.store.conn.executemany(
                "UPDATE records SET status = ?, status_reason = ? WHERE id = ?",
                [(status, why, i) for i in ids],
            )
        self.events.changed(Changes.of(datanets=[name], records=ids), job="curate")
        return {"datanet": name, "status": status, "changed": ids, "left_pending": below}

    def edit_record(self, name: str, record_id: int, new_text: str) -> dict[str, Any]:
        """An edit is a new pending record that supersedes the old one; the old one's content never
        changes (snapshots that hold it stay valid) and it is marked rejected ("replaced by edit")."""
        dn = self._row(name)
        old = self._record_row(name, dn, record_id)
        if old["kind"] == "text":
            rec = RawRecord("text", text=new_text.strip())
        else:
            fields = "prompt and response" if old["kind"] == "prompt_response" else "messages"
            try:
                obj = json.loads(new_text)
                rec = record_from_canonical(old["kind"], json.dumps(obj).encode())
            except (ValueError, KeyError, TypeError) as e:
                raise InvalidInput(
                    f"Record #{record_id} is {old['kind']}: give the edit as JSON with {fields}."
                ) from e
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
        self.events.changed(
            Changes.of(datanets=[name], records=[record_id, int(r["id"])]), job="curate"
        )
        return self._record_public(r)
