"""Datanets: the owner's address (who publishes the Datanet and receives the pooled long tail of
attribution). Nullable: Datanets created before this version get one when first published."""

from __future__ import annotations

from typing import Any

VERSION = 5


def upgrade(store: Any) -> None:
    cols = {r[1] for r in store.conn.execute("PRAGMA table_info(datanets)").fetchall()}
    if "owner" not in cols:
        store.execute("ALTER TABLE datanets ADD COLUMN owner TEXT")
