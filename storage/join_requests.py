"""Queries of the ``join_requests`` table (the direct-link mode and its human check)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    or_,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import (
    join_requests,
)
from storage.sql import (
    dialect_insert,
    execute_many,
    pair_filters,
)


async def decide_join_request(
    conn: AsyncConnection, program_id: int, user_id: int, state: str, at: datetime
) -> bool:
    """Move an awaiting request to ``state``; False if it was not awaiting."""
    result = await conn.execute(
        update(join_requests)
        .where(
            join_requests.c.program_id == program_id,
            join_requests.c.user_id == user_id,
            join_requests.c.state == "awaiting_check",
        )
        .values(state=state, decided_at=at)
    )
    return bool(result.rowcount)


async def join_request(conn: AsyncConnection, program_id: int, user_id: int) -> RowMapping | None:
    """A person's recorded join request of a program (the latest one), or None."""
    result = await conn.execute(
        select(join_requests).where(
            join_requests.c.program_id == program_id, join_requests.c.user_id == user_id
        )
    )
    return result.mappings().first()


async def reopen_join_request(
    conn: AsyncConnection, program_id: int, user_id: int, values: Mapping[str, Any]
) -> None:
    """A new request of someone whose earlier request was settled: it replaces that one."""
    await conn.execute(
        update(join_requests)
        .where(join_requests.c.program_id == program_id, join_requests.c.user_id == user_id)
        .values(**values)
    )


async def unsettled_join_requests(
    conn: AsyncConnection, now: datetime, young_since: datetime, limit: int = 500
) -> list[RowMapping]:
    """Requests awaiting a human check that are due (``check_until <= now``) or young
    (requested after ``young_since``: their check may already have failed)."""
    result = await conn.execute(
        select(join_requests)
        .where(
            join_requests.c.state == "awaiting_check",
            or_(join_requests.c.check_until <= now, join_requests.c.requested_at > young_since),
        )
        .order_by(join_requests.c.check_until, join_requests.c.program_id, join_requests.c.user_id)
        .limit(limit)
    )
    return list(result.mappings())


async def postpone_join_request(
    conn: AsyncConnection, program_id: int, user_id: int, until: datetime
) -> None:
    """Look at an awaiting request again only at ``until``."""
    await conn.execute(
        update(join_requests)
        .where(
            join_requests.c.program_id == program_id,
            join_requests.c.user_id == user_id,
            join_requests.c.state == "awaiting_check",
        )
        .values(check_until=until)
    )


async def join_requests_by_keys(
    conn: AsyncConnection, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], RowMapping]:
    found: dict[tuple[int, int], RowMapping] = {}
    for condition in pair_filters(join_requests.c.program_id, join_requests.c.user_id, keys):
        for row in (await conn.execute(select(join_requests).where(condition))).mappings():
            found[(row["program_id"], row["user_id"])] = row
    return found


async def insert_join_requests(
    conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]
) -> set[tuple[int, int]]:
    """Record new join requests; returns the keys that went in (the caller read, in this
    transaction, that none existed: on SQLite all of them, see :func:`insert_referrals`)."""
    if not rows:
        return set()
    ordered = sorted(rows, key=lambda r: (r["program_id"], r["user_id"]))
    stmt = dialect_insert(conn, join_requests).on_conflict_do_nothing(
        index_elements=["program_id", "user_id"]
    )
    if conn.dialect.name == "sqlite":
        await execute_many(conn, stmt, ordered)
        return {(row["program_id"], row["user_id"]) for row in ordered}
    returned = stmt.returning(join_requests.c.program_id, join_requests.c.user_id)
    return {(pid, uid) for pid, uid in await execute_many(conn, returned, ordered)}
