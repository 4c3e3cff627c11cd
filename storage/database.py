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

from sqlalchemy import Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30.0
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

    def insert(self, table: Table) -> Any:
        """The dialect's ``insert`` (it has ``on_conflict_do_nothing``/``…_do_update``)."""
        if self.is_sqlite:
            return sqlite.insert(table)
        return postgresql.insert(table)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed on exit, rolled back on error."""
        if self._write_lock is not None:
            async with self._write_lock, self._transaction("IMMEDIATE") as conn:
                yield conn
        else:
            async with self._transaction(None) as conn:
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot on both engines)."""
        async with self._transaction("DEFERRED") as conn:
            yield conn

    @asynccontextmanager
    async def _transaction(self, sqlite_mode: str | None) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            if sqlite_mode is not None and self.is_sqlite:
                conn = await conn.execution_options(**{_BEGIN_OPTION: sqlite_mode})
            async with conn.begin():
                yield conn

    async def dispose(self) -> None:
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
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")
