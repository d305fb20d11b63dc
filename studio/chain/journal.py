"""The transaction journal: every signed transaction is a row of `chain_tx` in the studio's
SQLite store, written (with its raw bytes) *before* it is broadcast. All of its SQL lives here.

Statuses: signed (journaled, maybe never sent) → sent → mined | failed; replaced (its nonce went
to a sibling or to another transaction); abandoned (the node refused it, or the user dropped a
signed-but-unsent row)."""

from __future__ import annotations

import time
from typing import Any

from eth_utils import to_checksum_address

OPEN_STATUSES = ("signed", "sent")

CHAIN_TABLES = (
    "chain_identity",
    "chain_tx",
    "chain_nonces",
    "deployments",
    "onchain_datanets",
    "onchain_snapshots",
    "onchain_contributions",
    "onchain_models",
)


def forget_chain(store: Any, chain_id: int) -> None:
    """Drop everything recorded about a chain (used when the devnet is reset to a fresh genesis)."""
    with store.transaction():
        for table in CHAIN_TABLES:
            store.execute(f"DELETE FROM {table} WHERE chain_id = ?", (int(chain_id),))


class Journal:
    def __init__(self, store: Any, chain_id: int) -> None:
        self.store = store
        self.chain_id = int(chain_id)

    # -- reads -------------------------------------------------------------------------------
    def row(self, tx_hash: str) -> dict[str, Any] | None:
        return self.store.one("SELECT * FROM chain_tx WHERE tx_hash = ?", (tx_hash.lower(),))

    def get(self, row_id: int) -> dict[str, Any] | None:
        return self.store.one("SELECT * FROM chain_tx WHERE id = ?", (int(row_id),))

    def history(self, sender: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if sender:
            return self.store.query(
                "SELECT * FROM chain_tx WHERE chain_id = ? AND sender = ? ORDER BY id DESC LIMIT ?",
                (self.chain_id, to_checksum_address(sender), limit),
            )
        return self.store.query(
            "SELECT * FROM chain_tx WHERE chain_id = ? ORDER BY id DESC LIMIT ?",
            (self.chain_id, limit),
        )

    def pending(
        self, sender: str | None = None, *, statuses: tuple[str, ...] = OPEN_STATUSES
    ) -> list[dict[str, Any]]:
        marks = ",".join("?" for _ in statuses)
        q = f"SELECT * FROM chain_tx WHERE chain_id = ? AND status IN ({marks})"
        params: list[Any] = [self.chain_id, *statuses]
        if sender:
            q += " AND sender = ?"
            params.append(to_checksum_address(sender))
        return self.store.query(q + " ORDER BY nonce, id", params)

    def by_key(self, key: str, since: float | None = None) -> dict[str, Any] | None:
        """The row (mined first, else the newest in flight) sent under an idempotency key; with
        `since`, only rows journaled at or after that time."""
        return self.store.one(
            "SELECT * FROM chain_tx WHERE chain_id = ? AND idem_key = ? AND status IN "
            "('mined','signed','sent') AND created_at >= ? "
            "ORDER BY (status = 'mined') DESC, id DESC LIMIT 1",
            (self.chain_id, key, float("-inf") if since is None else since),
        )

    def has_open_before(self, sender: str, nonce: int) -> bool:
        return (
            self.store.one(
                "SELECT 1 AS x FROM chain_tx WHERE chain_id = ? AND sender = ? AND nonce < ? "
                "AND status IN ('signed','sent') LIMIT 1",
                (self.chain_id, sender, int(nonce)),
            )
            is not None
        )

    def next_nonce(self, sender: str) -> int:
        """One past the highest nonce of the sender's open rows (0 when none)."""
        row = self.store.one(
            "SELECT MAX(nonce) AS n FROM chain_tx WHERE chain_id = ? AND sender = ? AND "
            "status IN ('signed','sent')",
            (self.chain_id, sender),
        )
        return int(row["n"]) + 1 if row and row["n"] is not None else 0

    def family(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """Every live row with the same sender and nonce as `row` (it and its replacements)."""
        return self.store.query(
            "SELECT * FROM chain_tx WHERE chain_id = ? AND sender = ? AND nonce = ? AND status IN "
            "('signed','sent','mined','failed') ORDER BY id DESC",
            (row["chain_id"], row["sender"], row["nonce"]),
        )

    def latest_open(self, sender: str, nonce: int) -> dict[str, Any] | None:
        return self.store.one(
            "SELECT * FROM chain_tx WHERE chain_id = ? AND sender = ? AND nonce = ? "
            "AND status IN ('signed','sent') ORDER BY id DESC LIMIT 1",
            (self.chain_id, sender, int(nonce)),
        )

    # -- writes ------------------------------------------------------------------------------
    def set(self, row_id: int, **cols: Any) -> None:
        cols["updated_at"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in cols)
        with self.store.transaction():
            self.store.execute(f"UPDATE chain_tx SET {sets} WHERE id = ?", (*cols.values(), row_id))

    def insert(
        self,
        tx: dict[str, Any],
        *,
        sender: str,
        tx_hash: str,
        raw: str,
        purpose: str,
        key: str | None,
        replaces: int | None,
    ) -> int:
        now = time.time()
        with self.store.transaction():
            cur = self.store.execute(
                "INSERT INTO chain_tx (chain_id, sender, nonce, tx_hash, raw_tx, to_address, value, gas_limit, "
                "max_fee_per_gas, max_priority_fee_per_gas, purpose, idem_key, status, replaces, created_at, "
                "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'signed',?,?,?)",
                (
                    self.chain_id,
                    sender,
                    int(tx["nonce"]),
                    tx_hash,
                    raw,
                    tx.get("to"),
                    str(tx["value"]),
                    int(tx["gas"]),
                    str(tx["maxFeePerGas"]),
                    str(tx["maxPriorityFeePerGas"]),
                    purpose,
                    key,
                    replaces,
                    now,
                    now,
                ),
            )
            self.store.execute(
                "INSERT INTO chain_nonces (chain_id, address, next_nonce, updated_at) VALUES (?,?,?,?) "
                "ON CONFLICT(chain_id, address) DO UPDATE SET next_nonce = MAX(next_nonce, excluded.next_nonce), "
                "updated_at = excluded.updated_at",
                (self.chain_id, sender, int(tx["nonce"]) + 1, now),
            )
        return int(cur.lastrowid or 0)

    def record_receipt(
        self,
        row: dict[str, Any],
        *,
        ok: bool,
        block: int,
        gas_used: int,
        contract: str | None,
        error: str | None,
    ) -> None:
        """Mark `row` mined/failed; its open siblings (same nonce) are marked replaced."""
        now = time.time()
        with self.store.transaction():
            self.store.execute(
                "UPDATE chain_tx SET status = ?, block_number = ?, gas_used = ?, contract_address = ?, "
                "error = ?, updated_at = ? WHERE id = ?",
                ("mined" if ok else "failed", block, gas_used, contract, error, now, row["id"]),
            )
            self.store.execute(
                "UPDATE chain_tx SET status = 'replaced', updated_at = ? WHERE chain_id = ? AND sender = ? "
                "AND nonce = ? AND id != ? AND status IN ('signed','sent')",
                (now, row["chain_id"], row["sender"], row["nonce"], row["id"]),
            )

    # -- chain identity ----------------------------------------------------------------------
    def genesis(self) -> str | None:
        row = self.store.one(
            "SELECT genesis_hash FROM chain_identity WHERE chain_id = ?", (self.chain_id,)
        )
        return str(row["genesis_hash"]) if row else None

    def set_genesis(self, genesis: str) -> None:
        with self.store.transaction():
            self.store.execute(
                "INSERT OR REPLACE INTO chain_identity (chain_id, genesis_hash, recorded_at) "
                "VALUES (?,?,?)",
                (self.chain_id, genesis, time.time()),
            )
