"""The light node's chain index and its request journal.

node_blocks: every header the node verified (hash recomputed from its fields, parent-linked), so a
restart resumes after the last one and a reorg is rolled back to the common ancestor.
node_events: the contract events taken from receipts checked against a verified receiptsRoot; the
node_* tables below are projections of these events, rebuilt from them after a reorg.
node_served / node_reports / node_validations: what the node served, the reports it signed and
the records it re-checked as a validator (the journal that makes "exactly once" survive kill -9)."""

from __future__ import annotations

from typing import Any

VERSION = 6


def upgrade(store: Any) -> None:
    x = store.execute
    x(
        """CREATE TABLE node_blocks (
            chain_id INTEGER NOT NULL, number INTEGER NOT NULL, hash TEXT NOT NULL,
            parent_hash TEXT NOT NULL, state_root TEXT NOT NULL, receipts_root TEXT NOT NULL,
            timestamp INTEGER NOT NULL, events INTEGER NOT NULL DEFAULT 0, verified_at REAL NOT NULL,
            PRIMARY KEY (chain_id, number))"""
    )
    x(
        """CREATE TABLE node_events (
            chain_id INTEGER NOT NULL, block_number INTEGER NOT NULL, block_hash TEXT NOT NULL,
            log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, contract TEXT NOT NULL,
            event TEXT NOT NULL, args TEXT NOT NULL,
            PRIMARY KEY (chain_id, block_number, log_index))"""
    )
    x("CREATE INDEX node_events_kind ON node_events(chain_id, contract, event)")
    x(
        """CREATE TABLE node_datanets (
            chain_id INTEGER NOT NULL, datanet_id INTEGER NOT NULL, owner TEXT,
            metadata_hash TEXT, metadata_uri TEXT, block_number INTEGER NOT NULL,
            PRIMARY KEY (chain_id, datanet_id))"""
    )
    x(
        """CREATE TABLE node_snapshots (
            chain_id INTEGER NOT NULL, datanet_id INTEGER NOT NULL, version INTEGER NOT NULL,
            root TEXT, records INTEGER, block_number INTEGER NOT NULL,
            PRIMARY KEY (chain_id, datanet_id, version))"""
    )
    x(
        """CREATE TABLE node_contributions (
            chain_id INTEGER NOT NULL, block_number INTEGER NOT NULL, log_index INTEGER NOT NULL,
            datanet_id INTEGER NOT NULL, version INTEGER NOT NULL, contributor TEXT NOT NULL,
            records INTEGER NOT NULL, PRIMARY KEY (chain_id, block_number, log_index))"""
    )
    x(
        """CREATE TABLE node_models (
            chain_id INTEGER NOT NULL, model_id INTEGER NOT NULL, owner TEXT,
            adapter_hash TEXT, price_wei TEXT, retired INTEGER NOT NULL DEFAULT 0,
            block_number INTEGER NOT NULL, PRIMARY KEY (chain_id, model_id))"""
    )
    x(
        """CREATE TABLE node_inferences (
            chain_id INTEGER NOT NULL, inference_id INTEGER NOT NULL, model_id INTEGER,
            payer TEXT, node TEXT, fee_wei TEXT, report_hash TEXT, contributors TEXT,
            status TEXT NOT NULL, challenger TEXT, slashed_wei TEXT,
            paid_block INTEGER, paid_tx TEXT, recorded_block INTEGER, updated_block INTEGER,
            PRIMARY KEY (chain_id, inference_id))"""
    )
    x(
        """CREATE TABLE node_stakes (
            chain_id INTEGER NOT NULL, account TEXT NOT NULL, role INTEGER NOT NULL,
            active_wei TEXT NOT NULL DEFAULT '0', slashed_wei TEXT NOT NULL DEFAULT '0',
            block_number INTEGER NOT NULL, PRIMARY KEY (chain_id, account, role))"""
    )
    x(
        """CREATE TABLE node_served (
            chain_id INTEGER NOT NULL, inference_id INTEGER NOT NULL, model TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('serving', 'served', 'recorded', 'failed')),
            report_id TEXT, report_hash TEXT, record_tx TEXT, error TEXT,
            created_at REAL NOT NULL, updated_at REAL NOT NULL,
            PRIMARY KEY (chain_id, inference_id))"""
    )
    x(
        """CREATE TABLE node_reports (
            report_id TEXT PRIMARY KEY, report_hash TEXT NOT NULL, model TEXT NOT NULL,
            chain_id INTEGER, inference_id INTEGER, report TEXT NOT NULL, created_at REAL NOT NULL)"""
    )
    x("CREATE INDEX node_reports_inference ON node_reports(chain_id, inference_id)")
    x(
        """CREATE TABLE node_validations (
            chain_id INTEGER NOT NULL, inference_id INTEGER NOT NULL, node TEXT,
            verdict TEXT NOT NULL, detail TEXT, challenge_tx TEXT, checked_at REAL NOT NULL,
            PRIMARY KEY (chain_id, inference_id))"""
    )
