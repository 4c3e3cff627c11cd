"""Queries of ``referrer_counts`` (per reader: pending, held, confirmed, rejected, left,
counted) and ``count_changes`` (one row per reader whose counted total moved)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import count_changes, referrer_counts
from storage.sql import (
    dialect_insert_for,
    execute_many,
    rows_by_pairs,
)

COUNT_FIELDS = ("pending", "held", "confirmed", "rejected", "left", "counted")


async def counts_by_keys(
    conn: AsyncConnection, keys: Sequence[tuple[int, int]], columns: Sequence[str] = ()
) -> dict[tuple[int, int], RowMapping]:
    """Referrer counts by (program_id, referrer_id): every column, or keys and ``columns``."""
    return await rows_by_pairs(conn, referrer_counts, "program_id", "referrer_id", keys, columns)


async def apply_count_deltas(
    conn: AsyncConnection,
    deltas: Mapping[tuple[int, int], Mapping[str, int]],
    now: datetime,
    windows: Mapping[tuple[int, int], tuple[datetime | None, int]] | None = None,
    *,
    returning: bool = True,
) -> dict[tuple[int, int], int]:
    """Add ``deltas`` to referrer counts atomically (one upsert per chunk, keys sorted so
    concurrent batches on PostgreSQL lock rows in the same order). ``windows`` sets the
    burst window of those keys. Returns each key's ``counted`` after the change (empty
    with ``returning=False``, which spares the hot join path a RETURNING)."""
    if not deltas:
        return {}
    rows = []
    for key in sorted(deltas):
        delta = deltas[key]
        row: dict[str, Any] = {"program_id": key[0], "referrer_id": key[1], "updated_at": now}
        for name in COUNT_FIELDS:
            row[name] = delta.get(name, 0)
        if windows is not None:
            started, joins = windows.get(key, (None, 0))
            row["window_started_at"] = started
            row["window_joins"] = joins
        rows.append(row)
    stmt = _count_deltas_stmt(conn.dialect.name, windows is not None, returning)
    found = await execute_many(conn, stmt, rows)
    return {(pid, rid): value for pid, rid, value in found}


@functools.cache
def _count_deltas_stmt(dialect: str, with_windows: bool, returning: bool) -> Any:
    stmt = dialect_insert_for(dialect, referrer_counts)
    changes: dict[str, Any] = {
        name: getattr(referrer_counts.c, name) + getattr(stmt.excluded, name)
        for name in COUNT_FIELDS
    }
    changes["updated_at"] = stmt.excluded.updated_at
    if with_windows:
        changes["window_started_at"] = stmt.excluded.window_started_at
        changes["window_joins"] = stmt.excluded.window_joins
    stmt = stmt.on_conflict_do_update(index_elements=["program_id", "referrer_id"], set_=changes)
    if returning:
        stmt = stmt.returning(
            referrer_counts.c.program_id, referrer_counts.c.referrer_id, referrer_counts.c.counted
        )
    return stmt


async def counts_of(conn: AsyncConnection, program_id: int, referrer_id: int) -> RowMapping | None:
    result = await conn.execute(
        select(referrer_counts).where(
            referrer_counts.c.program_id == program_id,
            referrer_counts.c.referrer_id == referrer_id,
        )
    )
    return result.mappings().first()


async def recompute_counted(
    conn: AsyncConnection, program_id: int, subtract_left: bool, now: datetime
) -> list[tuple[int, int, int]]:
    """Counted totals after a change of the leave policy: ``confirmed - left`` when leavers
    are subtracted, else ``confirmed``. Only readers with friends who left can move; returns
    (reader_id, before, after) for those whose total moved, readers in id order."""
    read = (
        select(referrer_counts.c.referrer_id, referrer_counts.c.counted)
        .where(referrer_counts.c.program_id == program_id, referrer_counts.c.left > 0)
        .order_by(referrer_counts.c.referrer_id)
    )
    if conn.dialect.name == "postgresql":
        read = read.with_for_update()  # the totals recorded as "before" stay true
    rows = (await conn.execute(read)).all()
    counted = (
        referrer_counts.c.confirmed - referrer_counts.c.left
        if subtract_left
        else referrer_counts.c.confirmed
    )
    result = await conn.execute(
        update(referrer_counts)
        .where(referrer_counts.c.program_id == program_id, referrer_counts.c.left > 0)
        .values(counted=counted, updated_at=now)
        .returning(referrer_counts.c.referrer_id, referrer_counts.c.counted)
    )
    after: dict[int, int] = {reader: counted for reader, counted in result.all()}
    return [
        (reader_id, before, after[reader_id])
        for reader_id, before in rows
        if reader_id in after and after[reader_id] != before
    ]


async def insert_count_changes(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append change records (one per reader whose counted total moved)."""
    await execute_many(conn, count_changes.insert(), rows)


CONSUMERS = ("milestones", "boards")


async def claim_count_changes(
    conn: AsyncConnection, consumer: str, now: datetime, limit: int = 500
) -> list[RowMapping]:
    """Mark up to ``limit`` change records ``consumer`` has not handled yet, oldest first, and
    return them. Call it in the transaction that writes the consumer's output: a rollback
    un-marks them, and on PostgreSQL a second instance skips rows another one holds."""
    if consumer not in CONSUMERS:
        raise ValueError(f"unknown change consumer {consumer!r}")
    mark = count_changes.c[f"{consumer}_at"]
    pick = select(count_changes.c.id).where(mark.is_(None)).order_by(count_changes.c.id)
    pick = pick.limit(limit)
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = list((await conn.execute(pick)).scalars())
    if not ids:
        return []
    await conn.execute(
        update(count_changes)
        .where(count_changes.c.id.in_(ids), mark.is_(None))
        .values({mark.name: now})
    )
    result = await conn.execute(
        select(count_changes).where(count_changes.c.id.in_(ids)).order_by(count_changes.c.id)
    )
    return list(result.mappings())


async def count_changes_of(
    conn: AsyncConnection, program_id: int, reader_id: int | None = None
) -> list[RowMapping]:
    """A program's change records (one reader's, when given), oldest first."""
    query = select(count_changes).where(count_changes.c.program_id == program_id)
    if reader_id is not None:
        query = query.where(count_changes.c.reader_id == reader_id)
    return list((await conn.execute(query.order_by(count_changes.c.id))).mappings())
