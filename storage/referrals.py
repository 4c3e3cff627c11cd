"""Queries of the ``referrals`` table (a person counts once per program) and the reader's
receipt, which reads referrals with the join attempts through the reader's links."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    func,
    literal,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import (
    UTCDateTime,
    join_attempts,
    members,
    programs,
    referrals,
)
from storage.sql import (
    dialect_insert_for,
    execute_many,
    pair_filters,
    rows_by_pairs,
)


async def referrals_by_keys(
    conn: AsyncConnection, keys: Sequence[tuple[int, int]], columns: Sequence[str] = ()
) -> dict[tuple[int, int], RowMapping]:
    """Referrals by (program_id, referred_id): every column, or the keys and ``columns``."""
    return await rows_by_pairs(conn, referrals, "program_id", "referred_id", keys, columns)


async def referral(
    conn: AsyncConnection, program_id: int, referred_id: int, *, lock: bool = False
) -> RowMapping | None:
    """One referral; with ``lock`` the row is held until the transaction ends (PostgreSQL;
    on SQLite the one writer already keeps others out), so a decision taken from what was
    read cannot be overtaken by another instance."""
    query = select(referrals).where(
        referrals.c.program_id == program_id, referrals.c.referred_id == referred_id
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await conn.execute(query)).mappings().first()


async def insert_referrals(
    conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]
) -> set[tuple[int, int]]:
    """Insert referrals, skipping people already counted; returns the keys inserted.

    The caller has read, in this same transaction, that none of ``rows`` exists yet. On
    SQLite the transaction holds the only write lock, so every row goes in and a plain
    executemany is enough; on PostgreSQL another instance may have counted a person
    since, and RETURNING tells which rows went in.
    """
    if conn.dialect.name == "sqlite":
        await execute_many(conn, _insert_referrals_stmt(conn.dialect.name, False), rows)
        return {(row["program_id"], row["referred_id"]) for row in rows}
    stmt = _insert_referrals_stmt(conn.dialect.name, True)
    return {(pid, rid) for pid, rid in await execute_many(conn, stmt, rows)}


@functools.cache
def _insert_referrals_stmt(dialect: str, returning: bool) -> Any:
    stmt = dialect_insert_for(dialect, referrals).on_conflict_do_nothing(
        index_elements=["program_id", "referred_id"]
    )
    if returning:
        stmt = stmt.returning(referrals.c.program_id, referrals.c.referred_id)
    return stmt


# What a moved referral reports back (the state machine's move needs it).
_MOVED = (
    referrals.c.program_id,
    referrals.c.referred_id,
    referrals.c.referrer_id,
    referrals.c.joined_at,
    referrals.c.confirmed_at,
)


async def transition_referrals(
    conn: AsyncConnection,
    keys: Sequence[tuple[int, int]],
    from_states: Sequence[str],
    values: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Move referrals still in ``from_states`` to ``values``; returns the rows moved: keys,
    referrer_id, joined_at, confirmed_at and left_at after the move, and ``old_state`` and
    ``old_left_at`` before it."""
    # From one state that is never "away" (only a confirmed friend can have left), the old
    # state and left_at are known: no read is needed before the guarded UPDATE.
    known = from_states[0] if len(from_states) == 1 and from_states[0] != "confirmed" else None
    moved: list[dict[str, Any]] = []
    for condition in pair_filters(referrals.c.program_id, referrals.c.referred_id, keys):
        old: dict[tuple[int, int], tuple[str, Any]] = {}
        if known is None:
            # Read the old state first; the UPDATE's guard makes a concurrent move a no-op.
            read = select(
                referrals.c.program_id,
                referrals.c.referred_id,
                referrals.c.state,
                referrals.c.left_at,
            ).where(condition, referrals.c.state.in_(from_states))
            if conn.dialect.name == "postgresql":
                # Held until the transaction ends: what is read is what the update changes.
                read = read.with_for_update()
            before = await conn.execute(read)
            old = {(r.program_id, r.referred_id): (r.state, r.left_at) for r in before}
            if not old:
                continue
        result = await conn.execute(
            update(referrals)
            .where(condition, referrals.c.state.in_(from_states))
            .values(**values)
            .returning(*_MOVED, referrals.c.left_at)
        )
        for row in result.mappings():
            state, left_at = old.get((row["program_id"], row["referred_id"]), (known, None))
            moved.append({**row, "old_state": state, "old_left_at": left_at})
    return moved


async def set_left_at(
    conn: AsyncConnection, keys: Sequence[tuple[int, int]], left_at: datetime | None
) -> list[dict[str, Any]]:
    """Mark confirmed friends as away since ``left_at``, or (``None``) as back. Only rows
    that change move: a friend already away (or already back) is left alone. Returns the
    rows moved: keys, referrer_id, joined_at, confirmed_at."""
    moved: list[dict[str, Any]] = []
    guard = (
        referrals.c.left_at.is_(None) if left_at is not None else referrals.c.left_at.is_not(None)
    )
    for condition in pair_filters(referrals.c.program_id, referrals.c.referred_id, keys):
        result = await conn.execute(
            update(referrals)
            .where(condition, referrals.c.state == "confirmed", guard)
            .values(left_at=left_at)
            .returning(*_MOVED)
        )
        moved.extend(dict(row) for row in result.mappings())
    return moved


async def due_referrals(
    conn: AsyncConnection,
    now: datetime,
    limit: int,
    after: tuple[datetime, int, int] | None = None,
) -> list[RowMapping]:
    """Pending referrals past their hold in programs that are not paused, oldest first;
    ``after`` (hold_until, program_id, referred_id) continues from an earlier page."""
    query = (
        select(
            referrals.c.program_id,
            referrals.c.referred_id,
            referrals.c.referrer_id,
            referrals.c.hold_until,
        )
        .join(programs, programs.c.id == referrals.c.program_id)
        .where(
            referrals.c.state == "pending",
            referrals.c.hold_until <= now,
            programs.c.paused.is_(False),
        )
        .order_by(referrals.c.hold_until, referrals.c.program_id, referrals.c.referred_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            tuple_(referrals.c.hold_until, referrals.c.program_id, referrals.c.referred_id)
            > tuple_(literal(after[0], UTCDateTime()), literal(after[1]), literal(after[2]))
        )
    return list((await conn.execute(query)).mappings())


async def held_referrals(
    conn: AsyncConnection,
    program_id: int,
    limit: int,
    offset: int = 0,
    referrer_id: int | None = None,
) -> list[RowMapping]:
    """Referrals a rule held for a manager, oldest first, with the people's names (one
    reader's, when ``referrer_id`` is given)."""
    referred = members.alias("referred")
    referrer = members.alias("referrer")
    where = [referrals.c.program_id == program_id, referrals.c.state == "held"]
    if referrer_id is not None:
        where.append(referrals.c.referrer_id == referrer_id)
    result = await conn.execute(
        select(
            referrals.c.referred_id,
            referrals.c.referrer_id,
            referrals.c.reason,
            referrals.c.joined_at,
            referred.c.display_name.label("referred_name"),
            referrer.c.display_name.label("referrer_name"),
        )
        .outerjoin(
            referred,
            and_(
                referred.c.program_id == referrals.c.program_id,
                referred.c.user_id == referrals.c.referred_id,
            ),
        )
        .outerjoin(
            referrer,
            and_(
                referrer.c.program_id == referrals.c.program_id,
                referrer.c.user_id == referrals.c.referrer_id,
            ),
        )
        .where(*where)
        .order_by(referrals.c.joined_at, referrals.c.referred_id)
        .limit(limit)
        .offset(offset)
    )
    return list(result.mappings())


async def held_count(conn: AsyncConnection, program_id: int) -> int:
    """How many referrals of a program wait for a manager."""
    result = await conn.execute(
        select(func.count()).where(
            referrals.c.program_id == program_id, referrals.c.state == "held"
        )
    )
    return int(result.scalar_one())


async def held_keys_of(conn: AsyncConnection, program_id: int, referrer_id: int) -> list[int]:
    """The people whose referral by ``referrer_id`` waits for a manager."""
    result = await conn.execute(
        select(referrals.c.referred_id)
        .where(
            referrals.c.program_id == program_id,
            referrals.c.referrer_id == referrer_id,
            referrals.c.state == "held",
        )
        .order_by(referrals.c.referred_id)
    )
    return list(result.scalars())


async def receipt_page(
    conn: AsyncConnection, program_id: int, referrer_id: int, limit: int, offset: int
) -> tuple[list[RowMapping], int]:
    """A reader's referrals and not-counted join attempts, newest first, and their total."""
    referral_rows = select(
        referrals.c.referred_id.label("user_id"),
        literal("referral").label("kind"),
        referrals.c.state.label("state"),
        referrals.c.reason.label("reason"),
        referrals.c.joined_at.label("at"),
        referrals.c.hold_until.label("hold_until"),
        referrals.c.confirmed_at.label("confirmed_at"),
        referrals.c.left_at.label("left_at"),
    ).where(referrals.c.program_id == program_id, referrals.c.referrer_id == referrer_id)
    attempt_rows = select(
        join_attempts.c.user_id.label("user_id"),
        literal("attempt").label("kind"),
        join_attempts.c.outcome.label("state"),
        join_attempts.c.reason.label("reason"),
        join_attempts.c.at.label("at"),
        literal(None).label("hold_until"),
        literal(None).label("confirmed_at"),
        literal(None).label("left_at"),
    ).where(
        join_attempts.c.program_id == program_id,
        join_attempts.c.referrer_id == referrer_id,
        join_attempts.c.outcome == "not_counted",
    )
    combined = union_all(referral_rows, attempt_rows).subquery()
    total = (await conn.execute(select(func.count()).select_from(combined))).scalar_one()
    page = await conn.execute(
        select(combined, members.c.display_name)
        .outerjoin(
            members,
            and_(members.c.program_id == program_id, members.c.user_id == combined.c.user_id),
        )
        .order_by(combined.c.at.desc(), combined.c.user_id)
        .limit(limit)
        .offset(offset)
    )
    return list(page.mappings()), int(total)
