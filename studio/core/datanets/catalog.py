"""The Datanet catalog: create, look up, list; owner and contributor addresses."""

from __future__ import annotations

import builtins
import json
import re
import time
from typing import Any

from studio.core import quality
from studio.core.address import checksum_address
from studio.core.blobs import BlobStore
from studio.core.changes import Changes
from studio.core.config import Config
from studio.core.errors import AlreadyExists, InvalidInput, NotFound
from studio.core.events import EventBus
from studio.core.store import Store

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
SPDX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$|^LicenseRef-[A-Za-z0-9.-]+$")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
STATUSES = ("pending", "accepted", "rejected")


def datanet_row(store: Store, name: str) -> dict[str, Any]:
    """The `datanets` row named `name`, or the one NotFound every layer gives for a missing one."""
    row = store.one("SELECT * FROM datanets WHERE name = ?", (name,))
    if row is None:
        raise NotFound(
            f"No Datanet named '{name}'.",
            hint="See `studio datanet list`, or create it with `studio datanet create NAME`.",
        )
    return row


class DatanetCatalog:
    """Rows of the `datanets` table; the base the other Datanet parts build on."""

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
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):  # "$" accepts a final newline
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
        for what, text in (("summary", summary), ("description", description)):
            refused = quality.scan(text).refused if text else None
            if refused:  # published with the Datanet: scanned like a record, never stored
                raise InvalidInput(
                    f"The {what} {refused}: it cannot be stored.",
                    hint=f"Remove the secret from the {what} and create the Datanet again.",
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
            if owner_addr:
                self.store.execute(
                    "UPDATE datanets SET owner = ? WHERE name = ?", (owner_addr, name)
                )
        self.events.changed(Changes.of(datanets=[name]), job="datanet")
        return self.get(name)

    def set_owner_if_missing(self, name: str, address: str) -> dict[str, Any]:
        """Record `address` as the owner of a Datanet that has none (publish calls this); an
        existing owner is kept. Returns the Datanet."""
        addr = self._address(address, "owner")
        self._row(name)
        with self.store.transaction():
            cur = self.store.execute(
                "UPDATE datanets SET owner = ? WHERE name = ? AND owner IS NULL", (addr, name)
            )
        if cur.rowcount:
            self.events.changed(Changes.of(datanets=[name]), job="datanet")
        return self.get(name)

    def _row(self, name: str) -> dict[str, Any]:
        return datanet_row(self.store, name)

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
                "no contributor: create a wallet (studio wallet create) or name the contributor's address"
            )
        return checksum_address(addr)

    @staticmethod
    def _address(addr: str, what: str) -> str:
        try:
            return checksum_address(addr)
        except InvalidInput as e:
            raise InvalidInput(f"Invalid {what}: {e.args[0]}", hint=e.hint) from e
