"""Queries of the ``members`` table: a person per program (names, membership, the reader
remembered for a friend in the through-the-bot mode)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import (
    UTCDateTime,
    members,
)
from storage.sql import (
    dialect_insert_for,
    execute_many,
    rows_by_pairs,
)


async def member(conn: AsyncConnection, program_id: int, user_id: int) -> RowMapping | None:
    result = await conn.execute(
        select(members).where(members.c.program_id == program_id, members.c.user_id == user_id)
    )
    return result.mappings().first()


async def members_by_keys(
    conn: AsyncConnection, keys: Sequence[tuple[int, int]], columns: Sequence[str] = ()
) -> dict[tuple[int, int], RowMapping]:
    """Member rows by (program_id, user_id): every column, or the keys and ``columns``."""
    return await rows_by_pairs(conn, members, "program_id", "user_id", keys, columns)


async def upsert_people(
    conn: AsyncConnection, rows: Sequence[Mapping[str, Any]], *, joined: bool
) -> None:
    """Insert or refresh member rows (names); with ``joined`` also mark them as members.

    Each row: program_id, user_id, display_name, username, first_seen_at and, when
    ``joined``, last_joined_at. Keys must be unique within ``rows``.
    """
    if rows:
        await execute_many(conn, _upsert_people_stmt(conn.dialect.name, joined), rows)


@functools.cache
def _upsert_people_stmt(dialect: str, joined: bool) -> Any:
    # Built once per dialect: building ``excluded`` costs more than running the statement.
    stmt = dialect_insert_for(dialect, members)
    changes: dict[str, Any] = {
        "display_name": stmt.excluded.display_name,
        "username": stmt.excluded.username,
    }
    if joined:
        changes.update(
            is_member=True,
            last_joined_at=stmt.excluded.last_joined_at,
            first_joined_at=func.coalesce(
                members.c.first_joined_at, stmt.excluded.first_joined_at
            ),
        )
    return stmt.on_conflict_do_update(index_elements=["program_id", "user_id"], set_=changes)


async def set_member_left(
    conn: AsyncConnection, program_id: int, user_id: int, at: datetime
) -> None:
    await conn.execute(
        update(members)
        .where(members.c.program_id == program_id, members.c.user_id == user_id)
        .values(is_member=False, last_left_at=at)
    )


async def remember_referrer(
    conn: AsyncConnection,
    program_id: int,
    user_id: int,
    referrer_id: int,
    link_id: int,
    at: datetime,
) -> bool:
    """Remember ``referrer_id`` for a friend unless an earlier reader is remembered."""
    result = await conn.execute(
        update(members)
        .where(
            members.c.program_id == program_id,
            members.c.user_id == user_id,
            members.c.remembered_referrer_id.is_(None),
        )
        .values(remembered_referrer_id=referrer_id, remembered_link_id=link_id, remembered_at=at)
    )
    return bool(result.rowcount)


async def remember_referrers(
    conn: AsyncConnection, rows: Sequence[tuple[int, int, int, int, datetime]]
) -> None:
    """:func:`remember_referrer` for many friends at once: rows of (program_id, user_id,
    referrer_id, link_id, at); a friend with an earlier reader remembered keeps that one."""
    if rows:
        params = [
            {"b_program": p, "b_user": u, "b_referrer": r, "b_link": link, "b_at": at}
            for p, u, r, link, at in sorted(rows)
        ]
        await execute_many(conn, _REMEMBER_MANY, params)


_REMEMBER_MANY = (
    update(members)
    .where(
        members.c.program_id == bindparam("b_program"),
        members.c.user_id == bindparam("b_user"),
        members.c.remembered_referrer_id.is_(None),
    )
    .values(
        remembered_referrer_id=bindparam("b_referrer"),
        remembered_link_id=bindparam("b_link"),
        remembered_at=bindparam("b_at", type_=UTCDateTime()),
    )
)


async def member_by_username(
    conn: AsyncConnection, program_id: int, username: str
) -> RowMapping | None:
    """The member of a program with this username (case-insensitive), if any."""
    result = await conn.execute(
        select(members)
        .where(
            members.c.program_id == program_id,
            func.lower(members.c.username) == username.lower(),
        )
        .limit(1)
    )
    return result.mappings().first()
