"""Queries of the ``join_attempts`` table: every join we saw, with its outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import (
    join_attempts,
)
from storage.sql import (
    dialect_insert,
    execute_many,
    pair_filters,
)


async def existing_event_keys(
    conn: AsyncConnection, keys: Sequence[tuple[int, str]]
) -> set[tuple[int, str]]:
    found: set[tuple[int, str]] = set()
    for condition in pair_filters(join_attempts.c.program_id, join_attempts.c.event_key, keys):
        result = await conn.execute(
            select(join_attempts.c.program_id, join_attempts.c.event_key).where(condition)
        )
        found.update((pid, key) for pid, key in result.all())
    return found


async def insert_join_attempts(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    stmt = dialect_insert(conn, join_attempts).on_conflict_do_nothing(
        index_elements=["program_id", "event_key"]
    )
    await execute_many(conn, stmt, rows)
