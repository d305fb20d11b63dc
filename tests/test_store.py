"""The SQLite store: WAL and foreign keys, transactions, and upgrades from every earlier schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from studio.core.blobs import BlobStore
from studio.core.config import Config
from studio.core.datanets import Datanets
from studio.core.errors import StoreError
from studio.core.events import EventBus
from studio.core.store import Store

A1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_wal_foreign_keys_and_version(tmp_path: Path) -> None:
    s = Store(tmp_path / "db.sqlite")
    assert s.one("PRAGMA journal_mode")["journal_mode"] == "wal"
    assert s.one("PRAGMA foreign_keys")["foreign_keys"] == 1
    assert s.version == Store.latest_version() >= 1
    with pytest.raises(sqlite3.IntegrityError):
        with s.transaction():
            s.execute(
                "INSERT INTO records(datanet_id, kind, content_sha256, pack, pack_offset, size, contributor,"
                " license, score, created_at) VALUES (999, 'text', 'x', 'x', 0, 1, ?, 'MIT', 1, 0)",
                (A1,),
            )
    s.close()


def test_transaction_rolls_back_everything(tmp_path: Path) -> None:
    s = Store(tmp_path / "db.sqlite")
    with pytest.raises(RuntimeError):
        with s.transaction():
            s.execute("INSERT INTO datanets(name, license, created_at) VALUES ('a', 'MIT', 0)")
            raise RuntimeError("boom")
    assert s.one("SELECT COUNT(*) AS n FROM datanets")["n"] == 0
    s.close()


def test_newer_database_is_refused(tmp_path: Path) -> None:
    s = Store(tmp_path / "db.sqlite")
    with s.transaction():
        s.execute("INSERT INTO schema_version(version, applied_at, name) VALUES (999, 0, 'future')")
    s.close()
    with pytest.raises(StoreError, match="newer than this studio"):
        Store(tmp_path / "db.sqlite")


def _fill(store: Store, tmp_path: Path, k: int) -> None:
    """Data written by a studio whose schema stopped at version k (k >= 1 has Datanets)."""
    dn = Datanets(store, BlobStore(tmp_path / f"blobs{k}"), Config(), EventBus())
    dn.create(f"net-v{k}", summary=f"written at schema v{k}")
    f = tmp_path / f"notes{k}.txt"
    f.write_text(
        f"Notes written while the schema was at version {k}: the tide rose to the ninth step.\n"
    )
    dn.add_files(f"net-v{k}", [f], contributor=A1)
    dn.curate(f"net-v{k}", accept_all=True, min_score=0.0)
    dn.snapshot(f"net-v{k}")


def _earlier_versions() -> list[int]:
    # the schema versions a store can stop at (a reserved number may not have a migration yet)
    from studio.core.store import discover_migrations

    return [0] + [m.VERSION for m in discover_migrations()][:-1]


@pytest.mark.parametrize("k", _earlier_versions())
def test_upgrade_from_every_earlier_schema(tmp_path: Path, k: int) -> None:
    path = tmp_path / "db.sqlite"
    old = Store(path, target_version=k)
    assert old.version == k
    if k >= 1:
        _fill(old, tmp_path, k)
        root = old.one("SELECT root FROM snapshots")["root"]
    old.close()
    new = Store(path)
    assert new.version == Store.latest_version()
    backups = (
        list((tmp_path / "backups").glob(f"studio-v{k}-*.sqlite"))
        if (tmp_path / "backups").exists()
        else []
    )
    if k >= 1:
        assert len(backups) == 1
        bak = sqlite3.connect(backups[0])
        assert bak.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == k
        bak.close()
        dn = Datanets(new, BlobStore(tmp_path / f"blobs{k}"), Config(), EventBus())
        d = dn.get(f"net-v{k}")
        assert d["records"]["accepted"] == 1 and d["latest_snapshot"]["root"] == root
        assert dn.verify(f"net-v{k}")["ok"]
        assert dn.snapshot_records(f"net-v{k}")[0].text.startswith("Notes written")
    new.close()


def test_migrations_are_numbered_once() -> None:
    from studio.core.store import discover_migrations

    versions = [m.VERSION for m in discover_migrations()]
    assert versions == sorted(set(versions)) and versions[0] == 1


def test_studio_facade_store(studio: Any) -> None:
    assert studio.store.version == Store.latest_version()
    assert studio.datanets.list() == []
