"""ModelFactory: fine-tuned model versions and their training jobs."""

from __future__ import annotations

from typing import Any

VERSION = 3


def upgrade(store: Any) -> None:
    store.execute(
        """CREATE TABLE IF NOT EXISTS models (
            id TEXT PRIMARY KEY,
            base TEXT NOT NULL,
            base_dir TEXT NOT NULL,
            dir TEXT NOT NULL,
            job_dir TEXT NOT NULL,
            status TEXT NOT NULL,           -- queued, training, cancelled, failed, ready
            datanets TEXT NOT NULL,         -- JSON [{"name","version","root","records"}]
            config_hash TEXT,
            adapter_hash TEXT,
            base_model_hash TEXT,
            pid INTEGER,
            step INTEGER NOT NULL DEFAULT 0,
            total_steps INTEGER,
            error TEXT,
            registration TEXT,              -- JSON from the chain layer once registered
            created_at REAL NOT NULL,
            finished_at REAL
        )"""
    )
    store.execute("CREATE INDEX IF NOT EXISTS models_created ON models(created_at)")
