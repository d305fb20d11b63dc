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


FIXTURES = Path(__file__).parent / "fixtures" / "schema"


def _fixture_versions() -> list[int]:
    return sorted(int(p.stem[1:]) for p in FIXTURES.glob("v*.sql"))


def test_there_is_a_frozen_database_for_every_earlier_schema() -> None:
    """A new migration needs the database of the version before it frozen under tests/fixtures."""
    from studio.core.store import discover_migrations

    earlier = [0] + [m.VERSION for m in discover_migrations()][:-1]
    assert set(earlier) <= set(_fixture_versions())


def _load_fixture(tmp_path: Path, k: int) -> Path:
    """The database (raw SQL as a studio at schema k wrote it) and its blobs, on disk."""
    import json

    path = tmp_path / "db.sqlite"
    con = sqlite3.connect(path)
    con.executescript((FIXTURES / f"v{k}.sql").read_text())
    con.close()
    blobs = FIXTURES / f"v{k}.blobs.json"
    if blobs.exists():
        for digest, text in json.loads(blobs.read_text()).items():
            dest = tmp_path / "blobs" / digest[:2] / digest[2:]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)
    return path


@pytest.mark.parametrize("k", _fixture_versions())
def test_upgrade_from_every_earlier_schema(tmp_path: Path, k: int) -> None:
    path = _load_fixture(tmp_path, k)
    con = sqlite3.connect(path)
    old_root = con.execute("SELECT root FROM snapshots").fetchone()[0] if k >= 1 else None
    con.close()
    new = Store(path)
    assert new.version == Store.latest_version()
    backups = (
        list((tmp_path / "backups").glob(f"studio-v{k}-*.sqlite"))
        if (tmp_path / "backups").exists()
        else []
    )
    dn = Datanets(new, BlobStore(tmp_path / "blobs"), Config(), EventBus())
    if k >= 1:
        assert len(backups) == 1
        bak = sqlite3.connect(backups[0])
        assert bak.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == k
        bak.close()
        d = dn.get(f"net-v{k}")
        assert d["records"]["accepted"] == 1 and d["latest_snapshot"]["root"] == old_root
        assert dn.verify(f"net-v{k}")["ok"]
        assert dn.snapshot_records(f"net-v{k}")[0].text.startswith(
            f"Notes written while the schema was at version {k}"
        )
    # What the newer schema adds works on the upgraded database.
    made = dn.create("after-upgrade", owner=A1)
    assert dn.get("after-upgrade")["name"] == made["name"]
    row = new.one("SELECT owner FROM datanets WHERE name = 'after-upgrade'")
    assert row is not None and row["owner"] == A1
    new.close()


def test_migrations_are_numbered_once() -> None:
    from studio.core.store import discover_migrations

    versions = [m.VERSION for m in discover_migrations()]
    assert versions == sorted(set(versions)) and versions[0] == 1


def test_studio_facade_store(studio: Any) -> None:
    assert studio.store.version == Store.latest_version()
    assert studio.datanets.list() == []


def test_a_new_database_has_large_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    from studio.core import store as store_mod

    s = Store(tmp_path / "new.sqlite")
    assert s.one("PRAGMA page_size")["page_size"] == store_mod.PAGE_SIZE == 16384
    s.close()
    old = tmp_path / "old.sqlite"
    con = sqlite3.connect(old)
    con.execute("PRAGMA page_size=4096")
    con.execute("CREATE TABLE t(x)")  # (the page size is fixed by the first table)
    con.commit()
    con.close()
    s = Store(old)
    assert s.one("PRAGMA page_size")["page_size"] == 4096
    assert s.one("PRAGMA journal_mode")["journal_mode"] == "wal" and s.version >= 1
    s.close()
