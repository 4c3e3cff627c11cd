"""Queries of the ``people`` table: private contact per platform (the bot may DM someone
once they started it), blocks and language choices."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import outbox, people
from storage.sql import dialect_insert, dialect_insert_for, execute_many, pair_filters


async def upsert_person(
    conn: AsyncConnection,
    platform: str,
    user_id: int,
    now: datetime,
    *,
    display_name: str | None = None,
    username: str | None = None,
    platform_language: str | None = None,
    started: bool = False,
    language: str | None = None,
    unblocked: bool = False,
) -> None:
    values: dict[str, Any] = {
        "platform": platform,
        "user_id": user_id,
        "display_name": display_name or "",
        "username": username,
        "platform_language": platform_language,
        "language": language,
        "started_at": now if started else None,
        "updated_at": now,
    }
    stmt = dialect_insert(conn, people).values(**values)
    changes: dict[str, Any] = {"updated_at": stmt.excluded.updated_at}
    if display_name is not None:
        changes["display_name"] = stmt.excluded.display_name
        changes["username"] = stmt.excluded.username
    if platform_language is not None:
        changes["platform_language"] = stmt.excluded.platform_language
    if language is not None:
        changes["language"] = stmt.excluded.language
    if started:
        changes["started_at"] = func.coalesce(people.c.started_at, stmt.excluded.started_at)
    if unblocked or started:
        changes["blocked_at"] = None
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=["platform", "user_id"], set_=changes)
    )


async def person(conn: AsyncConnection, platform: str, user_id: int) -> dict[str, Any] | None:
    row = (
        (
            await conn.execute(
                select(people).where(people.c.platform == platform, people.c.user_id == user_id)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def mark_unreachable(
    conn: AsyncConnection, platform: str, user_ids: Sequence[int], now: datetime
) -> None:
    if user_ids:
        await conn.execute(
            update(people)
            .where(people.c.platform == platform, people.c.user_id.in_(list(user_ids)))
            .values(blocked_at=now, updated_at=now)
        )


async def delete_person_record(conn: AsyncConnection, platform: str, user_id: int) -> int:
    result = await conn.execute(
        delete(people).where(people.c.platform == platform, people.c.user_id == user_id)
    )
    await conn.execute(
        delete(outbox).where(
            outbox.c.platform == platform,
            outbox.c.target_kind == "user",
            outbox.c.target_id == user_id,
            outbox.c.state == "queued",
        )
    )
    return result.rowcount or 0


async def record_sightings(
    conn: AsyncConnection, rows: Sequence[Mapping[str, Any]], now: datetime
) -> None:
    """Upsert many people at once (what :func:`upsert_person` does for one). Each row:
    platform, user_id, display_name, username, platform_language (None = not told) and
    started; keys must be unique within ``rows``.

    One statement, rows in key order, so concurrent batches on PostgreSQL take their row
    locks in the same order. A name that is not told (or empty) keeps the stored one."""
    if not rows:
        return
    params = sorted(
        (
            {
                "platform": row["platform"],
                "user_id": row["user_id"],
                "display_name": row["display_name"] or "",
                "username": row["username"] if row["display_name"] else None,
                "platform_language": row["platform_language"],
                "language": None,
                "started_at": now if row["started"] else None,
                "blocked_at": None,
                "updated_at": now,
            }
            for row in rows
        ),
        key=lambda r: (r["platform"], r["user_id"]),
    )
    await execute_many(conn, _sighting_stmt(conn.dialect.name), params)


@functools.cache
def _sighting_stmt(dialect: str) -> Any:
    stmt = dialect_insert_for(dialect, people)
    told = stmt.excluded.display_name != ""
    started = stmt.excluded.started_at.is_not(None)
    changes: dict[str, Any] = {
        "updated_at": stmt.excluded.updated_at,
        "display_name": case((told, stmt.excluded.display_name), else_=people.c.display_name),
        "username": case((told, stmt.excluded.username), else_=people.c.username),
        "platform_language": func.coalesce(
            stmt.excluded.platform_language, people.c.platform_language
        ),
        "started_at": func.coalesce(people.c.started_at, stmt.excluded.started_at),
        # Writing to the bot again means it may DM them again: a block is over.
        "blocked_at": case((started, None), else_=people.c.blocked_at),
    }
    return stmt.on_conflict_do_update(index_elements=["platform", "user_id"], set_=changes)


async def people_by_keys(
    conn: AsyncConnection, keys: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], dict[str, Any]]:
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for condition in pair_filters(people.c.platform, people.c.user_id, keys):
        for row in (await conn.execute(select(people).where(condition))).mappings():
            found[(row["platform"], row["user_id"])] = dict(row)
    return found
