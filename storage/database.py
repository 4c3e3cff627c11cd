"""Engine setup for SQLite (aiosqlite) and PostgreSQL (asyncpg) behind one code path.

SQLite: WAL, foreign keys, a busy timeout, and transactions begun explicitly — pysqlite's
own transaction handling is switched off so DDL is transactional and writes start with
``BEGIN IMMEDIATE``. In one process, writers also queue on an ``asyncio.Lock`` so concurrent
callers wait their turn instead of meeting "database is locked".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30.0
SQLITE_CACHE_KIB = 64 * 1024  # per connection; a ceiling, filled only as pages are read
# WAL checkpoints (copying the log back into the database file, with an fsync) run in the
# background after this many write transactions, on a connection of their own, so a writer's
# commit never pays for one. The writer's own automatic checkpoint is only a safety net.
SQLITE_CHECKPOINT_EVERY = 16
SQLITE_AUTOCHECKPOINT_PAGES = 20_000
_BEGIN_OPTION = "inviteloop_begin"


class DatabaseURLError(ValueError):
    """The database URL names an engine we do not support."""


def normalise_url(url: str) -> str:
    """Pick the async driver for plain ``sqlite://`` / ``postgresql://`` URLs."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise DatabaseURLError(
        f"unsupported database {backend!r}: use sqlite:///path.db or postgresql://user@host/db"
    )


class Database:
    """An async engine plus the transaction discipline the services rely on."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._writes_since_checkpoint = 0
        self._checkpoint_task: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, **engine_kwargs: Any) -> Database:
        """Create the engine for ``url`` (SQLite file, or PostgreSQL through asyncpg)."""
        url = normalise_url(url)
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            connect_args = engine_kwargs.pop("connect_args", {})
            connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
            engine_kwargs.setdefault("pool_reset_on_return", None)
            engine = create_async_engine(url, connect_args=connect_args, **engine_kwargs)
            _configure_sqlite(engine)
        else:
            engine_kwargs.setdefault("pool_size", 10)
            engine_kwargs.setdefault("max_overflow", 10)
            engine_kwargs.setdefault("pool_pre_ping", True)
            engine = create_async_engine(url, **engine_kwargs)
        return cls(engine)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed on exit, rolled back on error."""
        if self._write_lock is not None:
            async with self._write_lock, self._transaction("IMMEDIATE") as conn:
                yield conn
            self._after_sqlite_write()
        else:
            async with self._transaction(None) as conn:
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot on both engines)."""
        async with self._transaction("DEFERRED", "REPEATABLE READ") as conn:
            yield conn

    @asynccontextmanager
    async def reads(self) -> AsyncIterator[AsyncConnection]:
        """A connection whose statements each run on their own, as their own snapshot: no
        BEGIN and COMMIT round trips (on SQLite through aiosqlite those are two thirds of a
        small query's time). For reads that are one statement, or whose statements need not
        agree with each other: a board page and the names on it."""
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                # The connection is in autocommit (``isolation_level = None``): without a
                # BEGIN each statement is its own read transaction.
                conn = await conn.execution_options(**{_BEGIN_OPTION: ""})
            else:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @asynccontextmanager
    async def _transaction(
        self, sqlite_mode: str | None, postgres_isolation: str | None = None
    ) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            if sqlite_mode is not None and self.is_sqlite:
                conn = await conn.execution_options(**{_BEGIN_OPTION: sqlite_mode})
            elif postgres_isolation is not None and not self.is_sqlite:
                # PostgreSQL's default, READ COMMITTED, gives each statement a new snapshot.
                conn = await conn.execution_options(isolation_level=postgres_isolation)
            async with conn.begin():
                yield conn

    def _after_sqlite_write(self) -> None:
        self._writes_since_checkpoint += 1
        if self._writes_since_checkpoint < SQLITE_CHECKPOINT_EVERY:
            return
        if self._checkpoint_task is None or self._checkpoint_task.done():
            self._writes_since_checkpoint = 0
            self._checkpoint_task = asyncio.get_running_loop().create_task(
                self._checkpoint(), name="inviteloop-sqlite-checkpoint"
            )

    async def _checkpoint(self) -> None:
        """A PASSIVE checkpoint: copies what it can without waiting for or blocking anyone."""
        try:
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                driver = raw.driver_connection
                if driver is None:
                    raise RuntimeError("the pooled SQLite connection has no driver connection")
                # The driver connection directly: no transaction may be open around it.
                cursor = await driver.execute("PRAGMA wal_checkpoint(PASSIVE)")
                await cursor.close()
        except Exception as exc:  # the writers' own checkpoint is the fallback
            logger.warning("background WAL checkpoint failed: %s", exc)

    async def dispose(self) -> None:
        if self._checkpoint_task is not None:
            await asyncio.gather(self._checkpoint_task, return_exceptions=True)
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to us: pysqlite would otherwise run DDL in autocommit
        # and begin DML transactions lazily (deferred), which upgrades can fail with BUSY.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # SQLite's default page cache is 2 MB: past a few hundred thousand referrals the
        # indexes no longer fit and every batch re-reads pages from the OS.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
        if mode:  # "" is Database.reads(): no transaction around its statements
            conn.exec_driver_sql(f"BEGIN {mode}")
