"""Chain: transaction journal, nonces, deployments, and the on-chain ids of local things.

chain_tx is written BEFORE a transaction is broadcast (status 'signed', with the signed raw
transaction, which is public data), so a crash between send and bookkeeping re-broadcasts the
same transaction with the same nonce instead of paying twice.
Statuses: signed → sent → mined | failed (reverted); replaced (another tx took its nonce);
abandoned (never broadcast, nonce given back)."""

from __future__ import annotations

from typing import Any

VERSION = 2


def upgrade(store: Any) -> None:
    store.execute(
        """CREATE TABLE chain_tx (
            id INTEGER PRIMARY KEY,
            chain_id INTEGER NOT NULL,
            sender TEXT NOT NULL,
            nonce INTEGER NOT NULL,
            tx_hash TEXT NOT NULL UNIQUE,
            raw_tx TEXT NOT NULL,
            to_address TEXT,
            value TEXT NOT NULL DEFAULT '0',
            gas_limit INTEGER NOT NULL,
            max_fee_per_gas TEXT NOT NULL,
            max_priority_fee_per_gas TEXT NOT NULL,
            purpose TEXT NOT NULL,
            idem_key TEXT,
            status TEXT NOT NULL CHECK (status IN
                ('signed', 'sent', 'mined', 'failed', 'replaced', 'abandoned')),
            replaces INTEGER REFERENCES chain_tx(id),
            block_number INTEGER,
            gas_used INTEGER,
            contract_address TEXT,
            error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    store.execute("CREATE INDEX chain_tx_open ON chain_tx(chain_id, sender, status, nonce)")
    store.execute("CREATE INDEX chain_tx_key ON chain_tx(chain_id, idem_key)")
    store.execute(
        """CREATE TABLE chain_nonces (
            chain_id INTEGER NOT NULL,
            address TEXT NOT NULL,
            next_nonce INTEGER NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (chain_id, address)
        )"""
    )
    # The genesis hash each chain id had when we first used it: a devnet reset behind our back
    # (or an RPC that is another chain with the same id) is noticed before anything is signed.
    store.execute(
        """CREATE TABLE chain_identity (
            chain_id INTEGER PRIMARY KEY,
            genesis_hash TEXT NOT NULL,
            recorded_at REAL NOT NULL
        )"""
    )
    store.execute(
        """CREATE TABLE deployments (
            chain_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            address TEXT NOT NULL,
            tx_hash TEXT,
            block_number INTEGER,
            source_hash TEXT,
            deployed_at REAL NOT NULL,
            PRIMARY KEY (chain_id, name)
        )"""
    )
    # Ids are untyped columns so they keep whatever type the owning area uses (int or text).
    store.execute(
        """CREATE TABLE onchain_datanets (
            datanet_id NOT NULL,
            chain_id INTEGER NOT NULL,
            onchain_id NOT NULL,
            tx_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (datanet_id, chain_id)
        )"""
    )
    store.execute(
        """CREATE TABLE onchain_snapshots (
            datanet_id NOT NULL,
            version INTEGER NOT NULL,
            chain_id INTEGER NOT NULL,
            root TEXT,
            tx_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (datanet_id, version, chain_id)
        )"""
    )
    # One row per contributor batch bound on chain, so a re-run of publish skips what is done.
    store.execute(
        """CREATE TABLE onchain_contributions (
            datanet_id NOT NULL,
            version INTEGER NOT NULL,
            chain_id INTEGER NOT NULL,
            contributor TEXT NOT NULL,
            records INTEGER NOT NULL,
            leaves_hash TEXT,
            tx_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (datanet_id, version, chain_id, contributor)
        )"""
    )
    store.execute(
        """CREATE TABLE onchain_models (
            model_id NOT NULL,
            chain_id INTEGER NOT NULL,
            onchain_id NOT NULL,
            tx_hash TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (model_id, chain_id)
        )"""
    )
