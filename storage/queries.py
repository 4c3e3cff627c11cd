"""Queries shared by the services. Functions take an open connection; the caller (a
service) owns the transaction. Multi-row statements keep round trips per batch constant."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    delete,
    func,
    literal,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import (
    UTCDateTime,
    events,
    job_claims,
    join_attempts,
    join_requests,
    links,
    members,
    outbox,
    programs,
    referrals,
    referrer_counts,
)

COUNT_FIELDS = ("pending", "held", "confirmed", "rejected", "left", "counted")
# Keep every statement's bound parameters under SQLite's and asyncpg's limits.
CHUNK = 500


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    return dialect_insert_for(conn.dialect.name, table)


def dialect_insert_for(dialect: str, table: Table) -> Any:
    if dialect == "sqlite":
        return sqlite.insert(table)
    return postgresql.insert(table)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def execute_many(
    conn: AsyncConnection, stmt: Any, rows: Sequence[Mapping[str, Any]]
) -> list[Any]:
    """Run ``stmt`` once per row as one executemany: the statement is compiled once (and
    cached), and SQLAlchemy's "insertmanyvalues" sends the rows as a few multi-row
    statements, so a batch costs a few round trips whatever its size. Returns the
    RETURNING rows, if any. Every row must have the same keys."""
    if not rows:
        return []
    result = await conn.execute(stmt, list(rows))
    return list(result.all()) if result.returns_rows else []


def pair_filters(first: Any, second: Any, keys: Iterable[tuple[Any, Any]]) -> Iterable[Any]:
    """``first = a AND second IN (...)`` per distinct ``a``, in chunks.

    SQLite answers a row-value ``(a, b) IN (...)`` with a full table scan; this form uses
    the composite index on both engines.
    """
    grouped: dict[Any, list[Any]] = {}
    for a, b in keys:
        grouped.setdefault(a, []).append(b)
    for a in sorted(grouped):
        for part in chunks(sorted(set(grouped[a]))):
            yield and_(first == a, second.in_(list(part)))


# --- programs ---------------------------------------------------------------------------


async def program_by_id(conn: AsyncConnection, program_id: int) -> RowMapping | None:
    result = await conn.execute(select(programs).where(programs.c.id == program_id))
    return result.mappings().first()


async def programs_by_ids(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, RowMapping]:
    result = await conn.execute(select(programs).where(programs.c.id.in_(list(ids))))
    return {row["id"]: row for row in result.mappings()}


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


async def recompute_counted(conn: AsyncConnection, program_id: int, subtract_left: bool) -> None:
    counted = (
        referrer_counts.c.confirmed - referrer_counts.c.left
        if subtract_left
        else referrer_counts.c.confirmed
    )
    await conn.execute(
        update(referrer_counts)
        .where(referrer_counts.c.program_id == program_id)
        .values(counted=counted)
    )


# --- members ----------------------------------------------------------------------------


async def member(conn: AsyncConnection, program_id: int, user_id: int) -> RowMapping | None:
    result = await conn.execute(
        select(members).where(members.c.program_id == program_id, members.c.user_id == user_id)
    )
    return result.mappings().first()


async def members_by_keys(
    conn: AsyncConnection, keys: Sequence[tuple[int, int]], columns: Sequence[str] = ()
) -> dict[tuple[int, int], RowMapping]:
    """Member rows by (program_id, user_id): every column, or the keys and ``columns``."""
    return await _rows_by_pairs(conn, members, "program_id", "user_id", keys, columns)


async def _rows_by_pairs(
    conn: AsyncConnection,
    table: Table,
    first: str,
    second: str,
    keys: Sequence[tuple[Any, Any]],
    columns: Sequence[str],
) -> dict[tuple[Any, Any], RowMapping]:
    # Naming the columns a hot path needs spares converting the others (datetimes above
    # all) for every row.
    selected = [table.c[name] for name in (first, second, *columns)] if columns else [table]
    found: dict[tuple[Any, Any], RowMapping] = {}
    for condition in pair_filters(table.c[first], table.c[second], keys):
        result = await conn.execute(select(*selected).where(condition))
        for row in result.mappings():
            found[(row[first], row[second])] = row
    return found


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


# --- links ------------------------------------------------------------------------------


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


# --- referrals, attempts, counts, events ------------------------------------------------


async def referrals_by_keys(
    conn: AsyncConnection, keys: Sequence[tuple[int, int]], columns: Sequence[str] = ()
) -> dict[tuple[int, int], RowMapping]:
    """Referrals by (program_id, referred_id): every column, or the keys and ``columns``."""
    return await _rows_by_pairs(conn, referrals, "program_id", "referred_id", keys, columns)


async def referral(conn: AsyncConnection, program_id: int, referred_id: int) -> RowMapping | None:
    result = await conn.execute(
        select(referrals).where(
            referrals.c.program_id == program_id, referrals.c.referred_id == referred_id
        )
    )
    return result.mappings().first()


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


async def transition_referrals(
    conn: AsyncConnection,
    keys: Sequence[tuple[int, int]],
    from_states: Sequence[str],
    values: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Move referrals still in ``from_states`` to ``values``; returns the rows moved
    (program_id, referred_id, referrer_id and the state they were in)."""
    moved: list[dict[str, Any]] = []
    for condition in pair_filters(referrals.c.program_id, referrals.c.referred_id, keys):
        # Read the old state first; the UPDATE's guard makes a concurrent move a no-op.
        before = await conn.execute(
            select(referrals.c.program_id, referrals.c.referred_id, referrals.c.state).where(
                condition, referrals.c.state.in_(from_states)
            )
        )
        old_state = {(r.program_id, r.referred_id): r.state for r in before}
        if not old_state:
            continue
        result = await conn.execute(
            update(referrals)
            .where(condition, referrals.c.state.in_(from_states))
            .values(**values)
            .returning(referrals.c.program_id, referrals.c.referred_id, referrals.c.referrer_id)
        )
        for row in result.mappings():
            moved.append({**row, "old_state": old_state[(row["program_id"], row["referred_id"])]})
    return moved


async def update_referral(
    conn: AsyncConnection, program_id: int, referred_id: int, values: Mapping[str, Any]
) -> None:
    await conn.execute(
        update(referrals)
        .where(referrals.c.program_id == program_id, referrals.c.referred_id == referred_id)
        .values(**values)
    )


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


async def held_referrals(conn: AsyncConnection, program_id: int, limit: int) -> list[RowMapping]:
    """Referrals a rule held for a manager, oldest first, with the people's names."""
    referred = members.alias("referred")
    referrer = members.alias("referrer")
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
        .where(referrals.c.program_id == program_id, referrals.c.state == "held")
        .order_by(referrals.c.joined_at, referrals.c.referred_id)
        .limit(limit)
    )
    return list(result.mappings())


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


async def counts_by_keys(
    conn: AsyncConnection, keys: Sequence[tuple[int, int]], columns: Sequence[str] = ()
) -> dict[tuple[int, int], RowMapping]:
    """Referrer counts by (program_id, referrer_id): every column, or keys and ``columns``."""
    return await _rows_by_pairs(conn, referrer_counts, "program_id", "referrer_id", keys, columns)


async def apply_count_deltas(
    conn: AsyncConnection,
    deltas: Mapping[tuple[int, int], Mapping[str, int]],
    now: datetime,
    windows: Mapping[tuple[int, int], tuple[datetime | None, int]] | None = None,
    *,
    returning: bool = True,
) -> dict[tuple[int, int], int]:
    """Add ``deltas`` to referrer counts atomically (one upsert per chunk, keys sorted so
    concurrent batches on PostgreSQL lock rows in the same order). ``windows`` sets the
    burst window of those keys. Returns each key's ``counted`` after the change (empty
    with ``returning=False``, which spares the hot join path a RETURNING)."""
    if not deltas:
        return {}
    rows = []
    for key in sorted(deltas):
        delta = deltas[key]
        row: dict[str, Any] = {"program_id": key[0], "referrer_id": key[1], "updated_at": now}
        for name in COUNT_FIELDS:
            row[name] = delta.get(name, 0)
        if windows is not None:
            started, joins = windows.get(key, (None, 0))
            row["window_started_at"] = started
            row["window_joins"] = joins
        rows.append(row)
    stmt = _count_deltas_stmt(conn.dialect.name, windows is not None, returning)
    found = await execute_many(conn, stmt, rows)
    return {(pid, rid): value for pid, rid, value in found}


@functools.cache
def _count_deltas_stmt(dialect: str, with_windows: bool, returning: bool) -> Any:
    stmt = dialect_insert_for(dialect, referrer_counts)
    changes: dict[str, Any] = {
        name: getattr(referrer_counts.c, name) + getattr(stmt.excluded, name)
        for name in COUNT_FIELDS
    }
    changes["updated_at"] = stmt.excluded.updated_at
    if with_windows:
        changes["window_started_at"] = stmt.excluded.window_started_at
        changes["window_joins"] = stmt.excluded.window_joins
    stmt = stmt.on_conflict_do_update(index_elements=["program_id", "referrer_id"], set_=changes)
    if returning:
        stmt = stmt.returning(
            referrer_counts.c.program_id, referrer_counts.c.referrer_id, referrer_counts.c.counted
        )
    return stmt


async def counts_of(conn: AsyncConnection, program_id: int, referrer_id: int) -> RowMapping | None:
    result = await conn.execute(
        select(referrer_counts).where(
            referrer_counts.c.program_id == program_id,
            referrer_counts.c.referrer_id == referrer_id,
        )
    )
    return result.mappings().first()


async def insert_events(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append audit events. Each row: program_id, user_id, actor_id, kind, at, data."""
    if not rows:
        return
    prepared = [
        {**row, "data": json.dumps(row["data"], sort_keys=True) if row.get("data") else None}
        for row in rows
    ]
    await execute_many(conn, events.insert(), prepared)


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


# --- personal data ----------------------------------------------------------------------


async def delete_person(
    conn: AsyncConnection, program_ids: Sequence[int], user_id: int
) -> dict[str, int]:
    """Delete what identifies ``user_id`` in ``program_ids`` (see the engine's docs)."""
    if not program_ids:
        return {}
    in_programs = list(program_ids)
    done: dict[str, int] = {}

    async def run(name: str, stmt: Any) -> None:
        done[name] = done.get(name, 0) + ((await conn.execute(stmt)).rowcount or 0)

    await run(
        "referrals_unlinked",
        update(referrals)
        .where(referrals.c.program_id.in_(in_programs), referrals.c.referrer_id == user_id)
        .values(referrer_id=None, link_id=None),
    )
    await run(
        "join_attempts",
        delete(join_attempts).where(
            join_attempts.c.program_id.in_(in_programs),
            or_(join_attempts.c.user_id == user_id, join_attempts.c.referrer_id == user_id),
        ),
    )
    await run(
        "links",
        delete(links).where(links.c.program_id.in_(in_programs), links.c.referrer_id == user_id),
    )
    await run(
        "counts",
        delete(referrer_counts).where(
            referrer_counts.c.program_id.in_(in_programs),
            referrer_counts.c.referrer_id == user_id,
        ),
    )
    await run(
        "remembered",
        update(members)
        .where(members.c.program_id.in_(in_programs), members.c.remembered_referrer_id == user_id)
        .values(remembered_referrer_id=None, remembered_link_id=None, remembered_at=None),
    )
    await run(
        "members",
        delete(members).where(members.c.program_id.in_(in_programs), members.c.user_id == user_id),
    )
    await run(
        "events",
        delete(events).where(
            events.c.program_id.in_(in_programs),
            or_(events.c.user_id == user_id, events.c.actor_id == user_id),
        ),
    )
    return done


# --- scheduled jobs ---------------------------------------------------------------------


async def claim_slot(conn: AsyncConnection, job: str, slot: str, at: datetime) -> bool:
    """Claim one run of ``job`` for ``slot``; False if another run already claimed it."""
    stmt = (
        dialect_insert(conn, job_claims)
        .values(job=job, slot=slot, claimed_at=at)
        .on_conflict_do_nothing(index_elements=["job", "slot"])
        .returning(job_claims.c.job)
    )
    return (await conn.execute(stmt)).scalar() is not None


# --- join requests ----------------------------------------------------------------------


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


# --- join requests: re-requests and settling (membership events) ------------------------


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


async def outbox_states(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, str]:
    """The state of outbox rows by idempotency key (keys without a row are left out)."""
    found: dict[str, str] = {}
    for part in chunks(sorted(set(keys))):
        rows = await conn.execute(
            select(outbox.c.idempotency_key, outbox.c.state).where(
                outbox.c.idempotency_key.in_(list(part))
            )
        )
        found.update({key: state for key, state in rows})
    return found


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
