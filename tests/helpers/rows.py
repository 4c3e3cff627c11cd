"""Read rows straight from the database for assertions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from storage.database import Database
from storage.schema import events, join_attempts, referrals, referrer_counts


async def counts_row(db: Database, program_id: int, referrer_id: int) -> dict[str, Any] | None:
    async with db.read() as conn:
        row = (
            (
                await conn.execute(
                    select(referrer_counts).where(
                        referrer_counts.c.program_id == program_id,
                        referrer_counts.c.referrer_id == referrer_id,
                    )
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def referral_rows(db: Database, program_id: int) -> dict[int, dict[str, Any]]:
    async with db.read() as conn:
        rows = (
            await conn.execute(select(referrals).where(referrals.c.program_id == program_id))
        ).mappings()
        return {row["referred_id"]: dict(row) for row in rows}


async def attempt_rows(db: Database, program_id: int) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(join_attempts)
                .where(join_attempts.c.program_id == program_id)
                .order_by(join_attempts.c.id)
            )
        ).mappings()
        return [dict(row) for row in rows]


async def event_kinds(db: Database, program_id: int) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(events.c.kind).where(events.c.program_id == program_id).order_by(events.c.id)
        )
        return [row[0] for row in rows]
