"""``Database.reads()``: statements outside any transaction, so a board read neither takes
SQLite's write lock nor holds one snapshot across its statements."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from storage.database import Database


async def test_reads_take_no_lock_and_see_each_commit(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE probe (n INTEGER)"))
        await conn.execute(text("INSERT INTO probe VALUES (1)"))
    async with db.reads() as reader:
        first = (await reader.execute(text("SELECT COUNT(*) FROM probe"))).scalar_one()
        # A writer gets in while the read connection is open (a BEGIN IMMEDIATE on it would
        # hold SQLite's write lock, a BEGIN DEFERRED would pin the first snapshot).
        async with asyncio.timeout(5):
            async with db.write() as conn:
                await conn.execute(text("INSERT INTO probe VALUES (2)"))
        second = (await reader.execute(text("SELECT COUNT(*) FROM probe"))).scalar_one()
    assert (first, second) == (1, 2)


async def test_read_keeps_one_snapshot(db: Database) -> None:
    """The transaction ``read()`` stays what it was: its statements agree."""
    async with db.write() as conn:
        await conn.execute(text("CREATE TABLE probe (n INTEGER)"))
        await conn.execute(text("INSERT INTO probe VALUES (1)"))
    async with db.read() as reader:
        first = (await reader.execute(text("SELECT COUNT(*) FROM probe"))).scalar_one()
        async with asyncio.timeout(5):
            async with db.write() as conn:
                await conn.execute(text("INSERT INTO probe VALUES (2)"))
        second = (await reader.execute(text("SELECT COUNT(*) FROM probe"))).scalar_one()
    assert (first, second) == (1, 1)
