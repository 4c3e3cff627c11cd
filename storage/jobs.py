"""Claims of scheduled-job slots (``job_claims``): one run per period, across instances."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import (
    job_claims,
)
from storage.sql import (
    dialect_insert,
)


async def claim_slot(conn: AsyncConnection, job: str, slot: str, at: datetime) -> bool:
    """Claim one run of ``job`` for ``slot``; False if another run already claimed it."""
    stmt = (
        dialect_insert(conn, job_claims)
        .values(job=job, slot=slot, claimed_at=at)
        .on_conflict_do_nothing(index_elements=["job", "slot"])
        .returning(job_claims.c.job)
    )
    return (await conn.execute(stmt)).scalar() is not None
