"""Queries of invite-use tracking: each program's last-seen invite counters (``invite_uses``,
``invite_sync``), the members the engine believes are in, and idle readers' invites."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import invite_sync, invite_uses, join_attempts, links, members
from storage.sql import dialect_insert


async def invite_uses_of(conn: AsyncConnection, program_id: int) -> list[RowMapping]:
    """Every invite counter last seen for the program (deleted ones not yet settled too)."""
    result = await conn.execute(select(invite_uses).where(invite_uses.c.program_id == program_id))
    return list(result.mappings())


async def sync_state(conn: AsyncConnection, program_id: int) -> RowMapping | None:
    result = await conn.execute(select(invite_sync).where(invite_sync.c.program_id == program_id))
    return result.mappings().first()


async def replace_invite_uses(
    conn: AsyncConnection,
    program_id: int,
    rows: Sequence[Mapping[str, Any]],
    vanity_uses: int | None,
    at: datetime,
) -> None:
    """Make ``rows`` (code, uses, max_uses, inviter_id) the program's whole baseline."""
    await conn.execute(delete(invite_uses).where(invite_uses.c.program_id == program_id))
    if rows:
        await conn.execute(
            invite_uses.insert(),
            [
                {
                    "program_id": program_id,
                    "code": row["code"],
                    "uses": row["uses"],
                    "max_uses": row["max_uses"],
                    "inviter_id": row.get("inviter_id"),
                    "seen_at": at,
                }
                for row in rows
            ],
        )
    stmt = dialect_insert(conn, invite_sync).values(
        program_id=program_id, vanity_uses=vanity_uses, synced_at=at
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["program_id"],
            set_={"vanity_uses": vanity_uses, "synced_at": at},
        )
    )


async def upsert_invite_use(
    conn: AsyncConnection, program_id: int, row: Mapping[str, Any], at: datetime
) -> None:
    """An invite created now (its counter starts where the platform says)."""
    values = {
        "program_id": program_id,
        "code": row["code"],
        "uses": row["uses"],
        "max_uses": row["max_uses"],
        "inviter_id": row.get("inviter_id"),
        "deleted_at": None,
        "seen_at": at,
    }
    stmt = dialect_insert(conn, invite_uses).values(**values)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["program_id", "code"],
            set_={k: v for k, v in values.items() if k not in ("program_id", "code", "uses")},
        )
    )


async def mark_invite_deleted(
    conn: AsyncConnection, program_id: int, code: str, at: datetime
) -> bool:
    result = await conn.execute(
        update(invite_uses)
        .where(
            invite_uses.c.program_id == program_id,
            invite_uses.c.code == code,
            invite_uses.c.deleted_at.is_(None),
        )
        .values(deleted_at=at)
    )
    return bool(result.rowcount)


async def current_member_ids(conn: AsyncConnection, program_id: int) -> set[int]:
    """The people the engine believes are members of the program's destination now."""
    result = await conn.execute(
        select(members.c.user_id).where(
            members.c.program_id == program_id, members.c.is_member.is_(True)
        )
    )
    return set(result.scalars())


async def live_links_by_url(
    conn: AsyncConnection, program_id: int, urls: Sequence[str]
) -> dict[str, RowMapping]:
    if not urls:
        return {}
    result = await conn.execute(
        select(links).where(
            links.c.program_id == program_id,
            links.c.url.in_(list(urls)),
            links.c.revoked_at.is_(None),
        )
    )
    return {row["url"]: row for row in result.mappings()}


async def idle_links(
    conn: AsyncConnection, program_id: int, idle_since: datetime, limit: int
) -> list[RowMapping]:
    """Live links made before ``idle_since`` whose reader brought nobody since then (no
    join attempt through any of their links), oldest first."""
    recent = (
        select(join_attempts.c.referrer_id)
        .where(
            join_attempts.c.program_id == program_id,
            join_attempts.c.at >= idle_since,
            join_attempts.c.referrer_id.is_not(None),
        )
        .scalar_subquery()
    )
    result = await conn.execute(
        select(links)
        .where(
            links.c.program_id == program_id,
            links.c.revoked_at.is_(None),
            links.c.created_at < idle_since,
            links.c.referrer_id.not_in(recent),
        )
        .order_by(links.c.created_at, links.c.id)
        .limit(limit)
    )
    return list(result.mappings())


async def live_link_count(conn: AsyncConnection, program_id: int) -> int:
    result = await conn.execute(
        select(func.count())
        .select_from(links)
        .where(links.c.program_id == program_id, links.c.revoked_at.is_(None))
    )
    return int(result.scalar() or 0)
