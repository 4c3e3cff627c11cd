"""Queries of the ``links`` table: personal invite links."""

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
    links,
)
from storage.sql import (
    chunks,
    dialect_insert,
)


async def live_link(
    conn: AsyncConnection, program_id: int, referrer_id: int, label: str
) -> RowMapping | None:
    result = await conn.execute(
        select(links).where(
            links.c.program_id == program_id,
            links.c.referrer_id == referrer_id,
            links.c.label == label,
            links.c.revoked_at.is_(None),
        )
    )
    return result.mappings().first()


async def live_links_of(
    conn: AsyncConnection, program_id: int, referrer_id: int
) -> list[RowMapping]:
    result = await conn.execute(
        select(links)
        .where(
            links.c.program_id == program_id,
            links.c.referrer_id == referrer_id,
            links.c.revoked_at.is_(None),
        )
        .order_by(links.c.label)
    )
    return list(result.mappings())


async def insert_link(conn: AsyncConnection, values: Mapping[str, Any]) -> int | None:
    """Insert a live link; None if (program, referrer, label) already has one."""
    stmt = (
        dialect_insert(conn, links)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["program_id", "referrer_id", "label"],
            index_where=links.c.revoked_at.is_(None),
        )
        .returning(links.c.id)
    )
    return (await conn.execute(stmt)).scalar()


async def revoke_link(conn: AsyncConnection, link_id: int, at: datetime) -> bool:
    result = await conn.execute(
        update(links)
        .where(links.c.id == link_id, links.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return bool(result.rowcount)


async def link_by_code(conn: AsyncConnection, code: str) -> RowMapping | None:
    result = await conn.execute(select(links).where(links.c.code == code))
    return result.mappings().first()


async def links_by_code_or_url(
    conn: AsyncConnection, values: Sequence[str]
) -> dict[str, RowMapping]:
    """Links whose code or URL is among ``values``, keyed by both."""
    found: dict[str, RowMapping] = {}
    for part in chunks(values):
        result = await conn.execute(
            select(links).where(or_(links.c.code.in_(part), links.c.url.in_(part)))
        )
        for row in result.mappings():
            found[row["code"]] = row
            found[row["url"]] = row
    return found
