"""The local database: one SQLite file through sqlite-utils, WAL, foreign keys on, numbered
migrations recorded in `schema_version`, and a backup copy taken before any migration runs.

Transactions: use `with store.transaction():` and plain SQL (`store.execute`) inside it.
sqlite-utils' insert helpers commit on their own (`with conn:`), which would end an outer
transaction early, so they are for schema work and reads only."""

from __future__ import annotations

import importlib
import pkgutil
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from studio.core.errors import StoreError

if TYPE_CHECKING:
    import sqlite_utils

PAGE_SIZE = 16384  # bytes per page of a new database (an existing one keeps its own)


def _import_sqlite_utils() -> ModuleType:
    """sqlite_utils, imported on first use without pandas: sqlite-utils imports pandas (and
    pyarrow, ~0.7 s) at import only to map `pd.Timestamp` columns, which we never write. Every CLI
    command and the GUI's cold start paid for it. An already imported pandas is used as is."""
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        import sqlite_utils

        return sqlite_utils
    sys.modules["pandas"] = None  # type: ignore[assignment]  # makes `import pandas` fail
    try:
        import sqlite_utils
    finally:
        del sys.modules["pandas"]
    return sqlite_utils


def discover_migrations() -> list[ModuleType]:
    """Modules studio.core.migrations.mNNN_*; each has VERSION (int) and upgrade(db)."""
    from studio.core import migrations as pkg

    mods = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("m") and info.name[1:4].isdigit():
            mods.append(importlib.import_module(f"{pkg.__name__}.{info.name}"))
    mods.sort(key=lambda m: m.VERSION)
    versions = [m.VERSION for m in mods]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return mods


class Store:
    def __init__(
        self,
        path: Path,
        *,
        backups: Path | None = None,
        migrate: bool = True,
        target_version: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.backups = backups or self.path.parent / "backups"
        self._local = threading.local()
        self._lock = threading.RLock()
        if migrate:
            self.migrate(target_version)

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise StoreError(f"Cannot open the database {self.path}: {e}.") from e
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        self._enable_wal(conn)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @staticmethod
    def _enable_wal(conn: sqlite3.Connection) -> None:
        # WAL is persistent: set once. Switching needs an exclusive lock, and SQLite may answer
        # "database is locked" at once (no busy handler) while another process opens the same
        # new file, so retry briefly.
        delay = 0.01
        for _ in range(200):
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    # A new file: 16 KiB pages (SQLite's default is 4 KiB). A bulk add writes
                    # every page twice (WAL, then checkpoint), and with fewer, larger pages the
                    # insert, index build and commit of 100 MB of records cost about 30% less
                    # CPU (bench/ingest.py). It can only be set before the first table exists.
                    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
                    conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise StoreError(f"Cannot open the database: {e}.") from e
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        raise StoreError(
            "The database stayed locked by another studio process.",
            hint="Close other studio windows or commands using this data home, then retry.",
        )

    @property
    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._connect()
            self._local.conn = c
        return c

    @property
    def db(self) -> sqlite_utils.Database:
        d = getattr(self._local, "db", None)
        if d is None:
            sqlite_utils = _import_sqlite_utils()
            d = sqlite_utils.Database(self.conn)
            self._local.db = d
        return d

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None
            self._local.db = None

    # -- queries -----------------------------------------------------------------------------
    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, params).fetchall()]

    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        r = self.conn.execute(sql, params).fetchone()
        return dict(r) if r is not None else None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT; rolls back on any exception. Re-entrant (inner is a no-op)."""
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    # -- schema ------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        # Plain SQL, not sqlite_utils: opening a store must not import it (see _import_sqlite_utils).
        if (
            self.one(
                "SELECT 1 AS x FROM sqlite_master WHERE type='table' AND name='schema_version'"
            )
            is None
        ):
            return 0
        row = self.one("SELECT MAX(version) AS v FROM schema_version")
        return int(row["v"] or 0) if row else 0

    @staticmethod
    def latest_version() -> int:
        mods = discover_migrations()
        return mods[-1].VERSION if mods else 0

    def backup(self, label: str) -> Path | None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        self.backups.mkdir(parents=True, exist_ok=True)
        dest = (
            self.backups
            / f"studio-{label}-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9}.sqlite"
        )
        target = sqlite3.connect(dest)
        try:
            self.conn.backup(target)
        finally:
            target.close()
        return dest

    def migrate(self, target_version: int | None = None) -> list[int]:
        mods = discover_migrations()
        with self._lock:
            # In BEGIN IMMEDIATE: two processes opening a new data home at once take turns.
            with self.transaction():
                self.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version "
                    "(version INTEGER PRIMARY KEY, applied_at FLOAT, name TEXT)"
                )
            current = self.version
            latest = mods[-1].VERSION if mods else 0
            if current > latest:
                raise StoreError(
                    f"The database {self.path} is schema v{current}, newer than this studio (v{latest}).",
                    hint="Upgrade OpenLedger Studio, or use another data home.",
                )
            pending = [
                m
                for m in mods
                if m.VERSION > current and (target_version is None or m.VERSION <= target_version)
            ]
            if not pending:
                return []
            if current > 0:
                self.backup(f"v{current}")
            applied = []
            for m in pending:
                with self.transaction():
                    if self.version >= m.VERSION:
                        continue  # another process applied it while we waited for the lock
                    m.upgrade(self)
                    self.execute(
                        "INSERT INTO schema_version(version, applied_at, name) VALUES (?,?,?)",
                        (m.VERSION, time.time(), m.__name__.rsplit(".", 1)[-1]),
                    )
                applied.append(m.VERSION)
            return applied
