"""Queries of the ``programs`` table. Functions take an open connection; the calling service
owns the transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import (
    events,
    join_attempts,
    programs,
    referrer_counts,
)
from storage.sql import (
    dialect_insert,
)


async def program_by_id(
    conn: AsyncConnection, program_id: int, *, lock: bool = False
) -> RowMapping | None:
    """A program; with ``lock`` its row is held for an update of its rules (PostgreSQL)."""
    query = select(programs).where(programs.c.id == program_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await conn.execute(query)).mappings().first()


async def programs_by_ids(
    conn: AsyncConnection, ids: Iterable[int], *, share: bool = False
) -> dict[int, RowMapping]:
    """Programs by id, ordered; with ``share`` their rows are held against a change of their
    rules (the leave policy, the pause) until the transaction ends (PostgreSQL): writers
    that count by those rules take them this way."""
    query = select(programs).where(programs.c.id.in_(list(ids))).order_by(programs.c.id)
    if share and conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    return {row["id"]: row for row in (await conn.execute(query)).mappings()}


async def program_by_destination(
    conn: AsyncConnection, platform: str, destination_id: int
) -> RowMapping | None:
    result = await conn.execute(
        select(programs).where(
            programs.c.platform == platform, programs.c.destination_id == destination_id
        )
    )
    return result.mappings().first()


async def list_programs(conn: AsyncConnection, platform: str | None) -> list[RowMapping]:
    query = select(programs).order_by(programs.c.id)
    if platform is not None:
        query = query.where(programs.c.platform == platform)
    return list((await conn.execute(query)).mappings())


async def insert_program(conn: AsyncConnection, values: Mapping[str, Any]) -> int | None:
    """Insert a program; None when its (platform, destination) already has one."""
    stmt = (
        dialect_insert(conn, programs)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["platform", "destination_id"])
        .returning(programs.c.id)
    )
    return (await conn.execute(stmt)).scalar()


async def update_program(
    conn: AsyncConnection, program_id: int, values: Mapping[str, Any]
) -> None:
    await conn.execute(update(programs).where(programs.c.id == program_id).values(**values))


async def move_destination(
    conn: AsyncConnection, platform: str, old_id: int, new_id: int, at: datetime
) -> int | None:
    """A Telegram group became a supergroup: the program follows the new chat id."""
    result = await conn.execute(
        update(programs)
        .where(programs.c.platform == platform, programs.c.destination_id == old_id)
        .values(destination_id=new_id, kind="supergroup", updated_at=at)
        .returning(programs.c.id)
    )
    return result.scalar()


async def program_totals(conn: AsyncConnection, program_id: int) -> dict[str, int]:
    sums = (
        await conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(referrer_counts.c.counted), 0),
                func.coalesce(func.sum(referrer_counts.c.pending), 0),
                func.coalesce(func.sum(referrer_counts.c.held), 0),
                func.coalesce(func.sum(referrer_counts.c.rejected), 0),
            ).where(referrer_counts.c.program_id == program_id)
        )
    ).one()
    unattributed = (
        await conn.execute(
            select(func.count()).where(
                join_attempts.c.program_id == program_id,
                join_attempts.c.outcome == "unattributed",
            )
        )
    ).scalar_one()
    return {
        "readers": int(sums[0]),
        "confirmed": int(sums[1]),
        "pending": int(sums[2]),
        "held": int(sums[3]),
        "rejected": int(sums[4]),
        "unattributed": int(unattributed),
    }


async def delete_program(
    conn: AsyncConnection, program_id: int, at: datetime, actor_id: int | None
) -> bool:
    """Delete a program; its members, links, referrals, counts, attempts, requests, change
    records, events and outbox rows go with it (foreign keys cascade). An event without a
    program keeps the fact. False if there was no such program."""
    row = await program_by_id(conn, program_id)
    if row is None:
        return False
    await conn.execute(delete(programs).where(programs.c.id == program_id))
    await conn.execute(
        events.insert().values(
            program_id=None,
            user_id=None,
            actor_id=actor_id,
            kind="program.deleted",
            at=at,
            data=json.dumps(
                {
                    "program_id": program_id,
                    "platform": row["platform"],
                    "destination_id": row["destination_id"],
                },
                sort_keys=True,
            ),
        )
    )
    return True
