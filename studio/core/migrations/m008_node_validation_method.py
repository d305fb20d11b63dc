"""Node validations: the attribution method a validator re-ran a report with (exact when the
version allows it, else the report's fast method) and the adapter hash it fetched and verified."""

from __future__ import annotations

from typing import Any

VERSION = 8


def upgrade(store: Any) -> None:
    cols = {r[1] for r in store.conn.execute("PRAGMA table_info(node_validations)").fetchall()}
    if "method" not in cols:
        store.execute("ALTER TABLE node_validations ADD COLUMN method TEXT")
    if "adapter_hash" not in cols:
        store.execute("ALTER TABLE node_validations ADD COLUMN adapter_hash TEXT")
