"""Queries of the rewards tables: ``milestones``, ``reward_pools``/``reward_codes``,
``grants``, ``reward_progress``, ``reward_referrals`` and ``flows``. Functions take an open
connection; the rewards service owns the transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import (
    flows,
    grants,
    links,
    milestones,
    people,
    programs,
    referrer_counts,
    reward_codes,
    reward_pools,
    reward_progress,
    reward_referrals,
)
from storage.sql import chunks, dialect_insert, execute_many, pair_filters, rows_by_pairs

CODES_AT_ONCE = 1000

# --- milestones ---------------------------------------------------------------------------


async def insert_milestone(conn: AsyncConnection, values: Mapping[str, Any]) -> int:
    result = await conn.execute(milestones.insert().values(**values).returning(milestones.c.id))
    return int(result.scalar_one())


async def update_milestone(
    conn: AsyncConnection, milestone_id: int, values: Mapping[str, Any]
) -> None:
    await conn.execute(update(milestones).where(milestones.c.id == milestone_id).values(**values))


async def milestone_by_id(conn: AsyncConnection, milestone_id: int) -> RowMapping | None:
    query = select(milestones).where(milestones.c.id == milestone_id)
    return (await conn.execute(query)).mappings().first()


async def milestones_of(
    conn: AsyncConnection, program_ids: Iterable[int], *, live_only: bool = False
) -> list[RowMapping]:
    """The rules of these programs (not removed ones; with ``live_only`` not paused ones
    either), friend rewards and milestones, lowest count first."""
    ids = sorted(set(program_ids))
    if not ids:
        return []
    query = select(milestones).where(
        milestones.c.program_id.in_(ids), milestones.c.removed_at.is_(None)
    )
    if live_only:
        query = query.where(milestones.c.paused.is_(False))
    query = query.order_by(milestones.c.program_id, milestones.c.count, milestones.c.id)
    return list((await conn.execute(query)).mappings())


# --- pools and codes ----------------------------------------------------------------------


async def insert_pool(conn: AsyncConnection, program_id: int, name: str, now: datetime) -> int:
    result = await conn.execute(
        reward_pools.insert()
        .values(program_id=program_id, name=name, created_at=now)
        .returning(reward_pools.c.id)
    )
    return int(result.scalar_one())


async def pool_by_id(conn: AsyncConnection, pool_id: int) -> RowMapping | None:
    query = select(reward_pools).where(reward_pools.c.id == pool_id)
    return (await conn.execute(query)).mappings().first()


async def pools_of(conn: AsyncConnection, program_id: int) -> list[RowMapping]:
    query = (
        select(reward_pools)
        .where(reward_pools.c.program_id == program_id)
        .order_by(reward_pools.c.id)
    )
    return list((await conn.execute(query)).mappings())


async def existing_codes(conn: AsyncConnection, pool_id: int, codes: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for part in chunks(list(codes)):
        query = select(reward_codes.c.code).where(
            reward_codes.c.pool_id == pool_id, reward_codes.c.code.in_(list(part))
        )
        found.update((await conn.execute(query)).scalars())
    return found


async def add_codes(
    conn: AsyncConnection, pool_id: int, codes: Sequence[str], now: datetime
) -> int:
    """Add codes the pool does not have; returns how many went in. In slices of
    ``CODES_AT_ONCE`` rows: SQLAlchemy prepares a whole executemany's parameters before it
    awaits the driver, so 200,000 codes at once held the event loop for about 0.7 s."""
    if not codes:
        return 0
    stmt = (
        dialect_insert(conn, reward_codes)
        .on_conflict_do_nothing(index_elements=["pool_id", "code"])
        .returning(reward_codes.c.id)
    )
    added = 0
    for part in chunks(list(codes), CODES_AT_ONCE):
        rows = [{"pool_id": pool_id, "code": code, "added_at": now} for code in part]
        added += len(await execute_many(conn, stmt, rows))
    return added


async def pool_stock(conn: AsyncConnection, pool_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(codes in all, codes still free) per pool."""
    ids = sorted(set(pool_ids))
    if not ids:
        return {}
    query = (
        select(
            reward_codes.c.pool_id,
            func.count(),
            func.count().filter(reward_codes.c.grant_id.is_(None)),
        )
        .where(reward_codes.c.pool_id.in_(ids))
        .group_by(reward_codes.c.pool_id)
    )
    stock = {pool_id: (0, 0) for pool_id in ids}
    for pool_id, total, free in (await conn.execute(query)).all():
        stock[pool_id] = (int(total), int(free))
    return stock


async def assign_codes(
    conn: AsyncConnection, pool_id: int, grant_ids: Sequence[int], now: datetime
) -> dict[int, tuple[int, str]]:
    """Give the oldest free codes of the pool to these grants, one each, in grant order;
    grants left out when the pool runs dry. The codes are read ``FOR UPDATE SKIP LOCKED``
    on PostgreSQL (another worker's are skipped, ours stay ours until commit) and written
    with ``grant_id IS NULL`` in the condition; a count that does not add up raises, so the
    transaction rolls back whole rather than give a code twice."""
    if not grant_ids:
        return {}
    pick = (
        select(reward_codes.c.id, reward_codes.c.code)
        .where(reward_codes.c.pool_id == pool_id, reward_codes.c.grant_id.is_(None))
        .order_by(reward_codes.c.id)
        .limit(len(grant_ids))
    )
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    free = list((await conn.execute(pick)).all())
    pairs = list(zip(grant_ids, free, strict=False))
    if not pairs:
        return {}
    stmt = (
        update(reward_codes)
        .where(reward_codes.c.id == bindparam("b_code"), reward_codes.c.grant_id.is_(None))
        .values(grant_id=bindparam("b_grant"), assigned_at=now)
    )
    result = await conn.execute(
        stmt, [{"b_code": code_id, "b_grant": grant_id} for grant_id, (code_id, _) in pairs]
    )
    if result.rowcount not in (-1, len(pairs)):
        raise RuntimeError("a coupon code was taken meanwhile; this batch is retried")
    return {grant_id: (int(code_id), str(code)) for grant_id, (code_id, code) in pairs}


async def mark_delivering(
    conn: AsyncConnection, items: Sequence[tuple[int, str, int | None]], now: datetime
) -> None:
    """Grants whose message was queued in this transaction: (grant, its outbox row's key,
    its code or None), one statement for all."""
    if not items:
        return
    stmt = (
        update(grants)
        .where(grants.c.id == bindparam("b_id"), grants.c.state == "unlocked")
        .values(
            state="delivering",
            delivery_key=bindparam("b_key"),
            code_id=func.coalesce(
                bindparam("b_code", type_=grants.c.code_id.type), grants.c.code_id
            ),
            next_attempt_at=None,
            updated_at=now,
        )
    )
    await conn.execute(
        stmt, [{"b_id": gid, "b_key": key, "b_code": code} for gid, key, code in items]
    )


async def reader_links(
    conn: AsyncConnection, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], str]:
    """Each reader's main live link (the unlabelled one, else their first label)."""
    found: dict[tuple[int, int], tuple[str, str]] = {}
    for condition in pair_filters(links.c.program_id, links.c.referrer_id, keys):
        query = select(links.c.program_id, links.c.referrer_id, links.c.label, links.c.url).where(
            condition, links.c.revoked_at.is_(None)
        )
        for pid, rid, label, url in (await conn.execute(query)).all():
            best = found.get((pid, rid))
            if best is None or label < best[0]:
                found[(pid, rid)] = (label, url)
    return {key: url for key, (_, url) in found.items()}


async def milestones_by_ids(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, RowMapping]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = select(milestones).where(milestones.c.id.in_(wanted))
    return {row["id"]: row for row in (await conn.execute(query)).mappings()}


async def code_of(conn: AsyncConnection, code_id: int) -> str | None:
    query = select(reward_codes.c.code).where(reward_codes.c.id == code_id)
    return (await conn.execute(query)).scalar()


async def codes_by_ids(conn: AsyncConnection, code_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(code_ids))
    found: dict[int, str] = {}
    for part in chunks(ids):
        query = select(reward_codes.c.id, reward_codes.c.code).where(
            reward_codes.c.id.in_(list(part))
        )
        found.update({int(i): str(c) for i, c in (await conn.execute(query)).all()})
    return found


async def set_pool_alerts(conn: AsyncConnection, pool_id: int, **values: Any) -> None:
    await conn.execute(update(reward_pools).where(reward_pools.c.id == pool_id).values(**values))


# --- progress ------------------------------------------------------------------------------


async def progress_by_keys(
    conn: AsyncConnection,
    keys: Sequence[tuple[int, int]],
    *,
    lock: bool = False,
    now: datetime | None = None,
) -> dict[tuple[int, int], RowMapping]:
    """Readers' reward progress. With ``lock`` (the milestone job, which adds to it) every
    key gets a row and the rows are held until the transaction ends on PostgreSQL, in key
    order: a second instance handling a later change of the same reader waits and then
    reads the total this one wrote, instead of both adding to the same old value."""
    if lock and conn.dialect.name == "postgresql" and keys:
        ordered = sorted(set(keys))
        stmt = dialect_insert(conn, reward_progress).on_conflict_do_nothing(
            index_elements=["program_id", "reader_id"]
        )
        await execute_many(
            conn,
            stmt,
            [
                {
                    "program_id": pid,
                    "reader_id": rid,
                    "rewardable": 0,
                    "highest": 0,
                    "updated_at": now,
                }
                for pid, rid in ordered
            ],
        )
        found: dict[tuple[int, int], RowMapping] = {}
        for condition in pair_filters(
            reward_progress.c.program_id, reward_progress.c.reader_id, ordered
        ):
            query = (
                select(
                    reward_progress.c.program_id,
                    reward_progress.c.reader_id,
                    reward_progress.c.rewardable,
                    reward_progress.c.highest,
                )
                .where(condition)
                .order_by(reward_progress.c.program_id, reward_progress.c.reader_id)
                .with_for_update()
            )
            for row in (await conn.execute(query)).mappings():
                found[(row["program_id"], row["reader_id"])] = row
        return found
    return await rows_by_pairs(
        conn, reward_progress, "program_id", "reader_id", keys, ("rewardable", "highest")
    )


async def upsert_progress(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    stmt = dialect_insert(conn, reward_progress)
    stmt = stmt.on_conflict_do_update(
        index_elements=["program_id", "reader_id"],
        set_={
            "rewardable": stmt.excluded.rewardable,
            "highest": stmt.excluded.highest,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    await execute_many(conn, stmt, sorted(rows, key=lambda r: (r["program_id"], r["reader_id"])))


async def progress_of(conn: AsyncConnection, program_id: int, reader_id: int) -> RowMapping | None:
    query = select(reward_progress).where(
        reward_progress.c.program_id == program_id, reward_progress.c.reader_id == reader_id
    )
    return (await conn.execute(query)).mappings().first()


async def progress_of_program(
    conn: AsyncConnection, program_id: int, at_least: int = 1
) -> list[RowMapping]:
    """Every reader of the program whose highest rewardable total is ``at_least``."""
    query = (
        select(
            reward_progress.c.reader_id, reward_progress.c.rewardable, reward_progress.c.highest
        )
        .where(reward_progress.c.program_id == program_id, reward_progress.c.highest >= at_least)
        .order_by(reward_progress.c.reader_id)
    )
    return list((await conn.execute(query)).mappings())


async def readers_with_leavers(conn: AsyncConnection, program_id: int) -> list[RowMapping]:
    """Readers whose friends left after counting (what a leave-policy change moves), with
    their counts and reward progress."""
    query = (
        select(
            referrer_counts.c.referrer_id.label("reader_id"),
            referrer_counts.c.counted,
            referrer_counts.c.confirmed,
            referrer_counts.c.left,
            func.coalesce(reward_progress.c.rewardable, 0).label("rewardable"),
            func.coalesce(reward_progress.c.highest, 0).label("highest"),
        )
        .outerjoin(
            reward_progress,
            and_(
                reward_progress.c.program_id == referrer_counts.c.program_id,
                reward_progress.c.reader_id == referrer_counts.c.referrer_id,
            ),
        )
        .where(referrer_counts.c.program_id == program_id, referrer_counts.c.left > 0)
        .order_by(referrer_counts.c.referrer_id)
    )
    return list((await conn.execute(query)).mappings())


async def referral_marks(
    conn: AsyncConnection, keys: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], RowMapping]:
    """Whether each (program, referred) referral counts toward rewards, where decided."""
    return await rows_by_pairs(
        conn, reward_referrals, "program_id", "referred_id", keys, ("rewardable", "held")
    )


async def insert_referral_marks(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    stmt = dialect_insert(conn, reward_referrals).on_conflict_do_nothing(
        index_elements=["program_id", "referred_id"]
    )
    await execute_many(conn, stmt, rows)


async def rewardable_since(
    conn: AsyncConnection, program_id: int, reader_ids: Sequence[int], since: datetime
) -> dict[int, int]:
    """How many rewardable referrals each reader had confirmed since ``since``."""
    found: dict[int, int] = {}
    for part in chunks(sorted(set(reader_ids))):
        query = (
            select(reward_referrals.c.reader_id, func.count())
            .where(
                reward_referrals.c.program_id == program_id,
                reward_referrals.c.reader_id.in_(list(part)),
                reward_referrals.c.confirmed_at >= since,
                reward_referrals.c.rewardable.is_(True),
            )
            .group_by(reward_referrals.c.reader_id)
        )
        found.update({int(r): int(n) for r, n in (await conn.execute(query)).all()})
    return found


async def readers_with_held(
    conn: AsyncConnection, program_id: int, reader_ids: Sequence[int]
) -> set[int]:
    """Readers with a rewardable referral that was held or decided by hand."""
    found: set[int] = set()
    for part in chunks(sorted(set(reader_ids))):
        query = (
            select(reward_referrals.c.reader_id)
            .where(
                reward_referrals.c.program_id == program_id,
                reward_referrals.c.reader_id.in_(list(part)),
                reward_referrals.c.held.is_(True),
                reward_referrals.c.rewardable.is_(True),
            )
            .distinct()
        )
        found.update(int(r) for r in (await conn.execute(query)).scalars())
    return found


# --- grants --------------------------------------------------------------------------------


async def insert_grants(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert grants that do not exist yet (unique per program, reader, source, source id
    and occurrence); returns the ids of the new ones."""
    if not rows:
        return []
    stmt = (
        dialect_insert(conn, grants)
        .on_conflict_do_nothing(
            index_elements=["program_id", "reader_id", "source", "source_id", "occurrence"]
        )
        .returning(grants.c.id)
    )
    ordered = sorted(
        rows, key=lambda r: (r["program_id"], r["reader_id"], r["source_id"], r["occurrence"])
    )
    return [int(row[0]) for row in await execute_many(conn, stmt, ordered)]


async def existing_grant_keys(
    conn: AsyncConnection, program_id: int, source: str, source_id: int
) -> set[tuple[int, int]]:
    """(reader, occurrence) of every grant of one rule."""
    query = select(grants.c.reader_id, grants.c.occurrence).where(
        grants.c.program_id == program_id,
        grants.c.source == source,
        grants.c.source_id == source_id,
    )
    return {(int(r), int(o)) for r, o in (await conn.execute(query)).all() if r is not None}


GRANT_ROW = (grants, programs.c.platform, programs.c.destination_id)


async def claim_due_grants(
    conn: AsyncConnection, now: datetime, lease_until: datetime, limit: int
) -> list[dict[str, Any]]:
    """Lease up to ``limit`` grants due for delivery (unlocked, and not leased by another
    worker), oldest first, with their program's platform and the reader's reachability."""
    pick = (
        select(grants.c.id)
        .where(
            grants.c.state == "unlocked",
            or_(grants.c.next_attempt_at.is_(None), grants.c.next_attempt_at <= now),
        )
        .order_by(grants.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = list((await conn.execute(pick)).scalars())
    if not ids:
        return []
    await conn.execute(
        update(grants)
        .where(grants.c.id.in_(ids))
        .values(next_attempt_at=lease_until, attempts=grants.c.attempts + 1)
    )
    return await grants_with_people(conn, ids)


async def grants_with_people(conn: AsyncConnection, ids: Sequence[int]) -> list[dict[str, Any]]:
    query = (
        select(
            grants,
            programs.c.platform,
            people.c.display_name.label("reader_name"),
            people.c.started_at.label("person_started_at"),
            people.c.blocked_at.label("person_blocked_at"),
        )
        .join(programs, programs.c.id == grants.c.program_id)
        .outerjoin(
            people,
            and_(people.c.platform == programs.c.platform, people.c.user_id == grants.c.reader_id),
        )
        .where(grants.c.id.in_(list(ids)))
        .order_by(grants.c.id)
    )
    return [dict(row) for row in (await conn.execute(query)).mappings()]


async def set_grants(
    conn: AsyncConnection,
    ids: Sequence[int],
    values: Mapping[str, Any],
    *,
    expect: Sequence[str] | None = None,
) -> list[int]:
    """Change grants (only those in one of the ``expect`` states, when given); returns the
    ids changed."""
    if not ids:
        return []
    changed: list[int] = []
    for part in chunks(sorted(set(ids))):
        stmt = update(grants).where(grants.c.id.in_(list(part)))
        if expect is not None:
            stmt = stmt.where(grants.c.state.in_(list(expect)))
        result = await conn.execute(stmt.values(**values).returning(grants.c.id))
        changed.extend(int(i) for i in result.scalars())
    return changed


async def grant_by_id(conn: AsyncConnection, grant_id: int) -> dict[str, Any] | None:
    found = await grants_with_people(conn, [grant_id])
    return found[0] if found else None


async def grant_by_access_url(conn: AsyncConnection, url: str) -> RowMapping | None:
    query = select(grants).where(grants.c.access_url == url)
    return (await conn.execute(query)).mappings().first()


async def grants_of_reader(
    conn: AsyncConnection, program_id: int, reader_id: int
) -> list[RowMapping]:
    query = (
        select(grants)
        .where(grants.c.program_id == program_id, grants.c.reader_id == reader_id)
        .order_by(grants.c.id)
    )
    return list((await conn.execute(query)).mappings())


async def grants_of_person(
    conn: AsyncConnection, platform: str, reader_id: int, states: Sequence[str]
) -> list[RowMapping]:
    """A person's grants in these states, in every program of the platform."""
    query = (
        select(grants)
        .join(programs, programs.c.id == grants.c.program_id)
        .where(
            programs.c.platform == platform,
            grants.c.reader_id == reader_id,
            grants.c.state.in_(list(states)),
        )
        .order_by(grants.c.id)
    )
    return list((await conn.execute(query)).mappings())


async def grants_in_state(
    conn: AsyncConnection, program_id: int, states: Sequence[str], offset: int, limit: int
) -> tuple[list[RowMapping], int]:
    """One page of a program's grants in these states (oldest first), and how many."""
    where = and_(grants.c.program_id == program_id, grants.c.state.in_(list(states)))
    total = (await conn.execute(select(func.count()).select_from(grants).where(where))).scalar()
    query = select(grants).where(where).order_by(grants.c.id).offset(offset).limit(limit)
    return list((await conn.execute(query)).mappings()), int(total or 0)


async def grant_report(conn: AsyncConnection, program_id: int) -> dict[str, Any]:
    """Grants by state, and the cost of delivered grants."""
    query = (
        select(grants.c.state, func.count(), func.coalesce(func.sum(grants.c.cost_cents), 0))
        .where(grants.c.program_id == program_id)
        .group_by(grants.c.state)
    )
    by_state: dict[str, int] = {}
    cost = 0
    for state, count, cents in (await conn.execute(query)).all():
        by_state[str(state)] = int(count)
        if state in ("delivered", "fulfilled", "awaiting_answer", "fulfilling"):
            cost += int(cents)
    return {"by_state": by_state, "cost_cents": cost}


async def settle_deliveries(
    conn: AsyncConnection,
    delivered: Sequence[str],
    failed: Sequence[tuple[str, str]],
    now: datetime,
) -> None:
    """Write the outbox's outcome onto the grants whose message it settled (by the row's
    idempotency key): sent → delivered (a question: awaiting the answer); refused or given
    up → undeliverable, queued again when the reader is back."""
    for part in chunks(list(delivered)):
        keys = list(part)
        await conn.execute(
            update(grants)
            .where(
                grants.c.delivery_key.in_(keys),
                grants.c.state == "delivering",
                grants.c.reward_kind == "manual",
            )
            .values(state="awaiting_answer", delivered_at=now, updated_at=now)
        )
        await conn.execute(
            update(grants)
            .where(grants.c.delivery_key.in_(keys), grants.c.state == "delivering")
            .values(state="delivered", delivered_at=now, updated_at=now, delivery_error=None)
        )
    for key, error in failed:
        await conn.execute(
            update(grants)
            .where(grants.c.delivery_key == key, grants.c.state == "delivering")
            .values(state="undeliverable", delivery_error=error[:256], updated_at=now)
        )


async def return_reachable(conn: AsyncConnection, now: datetime) -> int:
    """Grants that waited for their reader (undeliverable, unclaimed) go back to delivery
    once the reader opened the bot again after the grant last changed (a season prize only
    while it may still be claimed)."""
    back = (
        select(people.c.user_id)
        .join(programs, programs.c.platform == people.c.platform)
        .where(
            programs.c.id == grants.c.program_id,
            people.c.user_id == grants.c.reader_id,
            people.c.started_at.is_not(None),
            people.c.blocked_at.is_(None),
            people.c.updated_at > grants.c.updated_at,
        )
        .exists()
    )
    result = await conn.execute(
        update(grants)
        .where(grants.c.state.in_(WAITING_FOR_PERSON), back, claimable(now))
        .values(state="unlocked", next_attempt_at=None, updated_at=now)
    )
    return int(result.rowcount or 0)


# --- season prizes -------------------------------------------------------------------------

# A grant waiting for its person to open the bot (a season prize: to claim it).
WAITING_FOR_PERSON = ("undeliverable", "unclaimed")


def claimable(now: datetime) -> Any:
    """A grant without a claim window, or one whose window is still open at ``now``."""
    return or_(grants.c.claim_expires_at.is_(None), grants.c.claim_expires_at > now)


async def prize_grant(
    conn: AsyncConnection, platform: str, season_id: int, reader_id: int
) -> dict[str, Any] | None:
    """A reader's grant of one season's prize (a reader wins one place), if any."""
    query = (
        select(grants)
        .join(programs, programs.c.id == grants.c.program_id)
        .where(
            programs.c.platform == platform,
            grants.c.source == "prize",
            grants.c.source_id == season_id,
            grants.c.reader_id == reader_id,
        )
    )
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row is not None else None


async def has_prize_grants(conn: AsyncConnection, platform: str, season_id: int) -> bool:
    """Whether a season of this platform granted prizes at all."""
    query = (
        select(grants.c.id)
        .join(programs, programs.c.id == grants.c.program_id)
        .where(
            programs.c.platform == platform,
            grants.c.source == "prize",
            grants.c.source_id == season_id,
        )
        .limit(1)
    )
    return (await conn.execute(query)).first() is not None


async def expire_prize_claims(
    conn: AsyncConnection, now: datetime, reason: str, limit: int = 500
) -> list[RowMapping]:
    """Mark season prizes still waiting for their winner past their claim window as
    unreachable (with ``reason``); returns the rows this call changed. The update itself
    decides, so two instances never both change one grant."""
    due = (
        select(grants.c.id)
        .where(
            grants.c.state.in_(WAITING_FOR_PERSON),
            grants.c.claim_expires_at.is_not(None),
            grants.c.claim_expires_at <= now,
        )
        .order_by(grants.c.id)
        .limit(limit)
    )
    ids = [int(i) for i in (await conn.execute(due)).scalars()]
    if not ids:
        return []
    result = await conn.execute(
        update(grants)
        .where(grants.c.id.in_(ids), grants.c.state.in_(WAITING_FOR_PERSON))
        .values(state="unreachable", delivery_error=reason, next_attempt_at=None, updated_at=now)
        .returning(
            grants.c.id,
            grants.c.program_id,
            grants.c.reader_id,
            grants.c.source_id,
            grants.c.occurrence,
            grants.c.title,
        )
    )
    return sorted(result.mappings(), key=lambda row: row["id"])


async def prize_report(conn: AsyncConnection, program_id: int) -> dict[str, int]:
    """A program's season prizes by state."""
    query = (
        select(grants.c.state, func.count())
        .where(grants.c.program_id == program_id, grants.c.source == "prize")
        .group_by(grants.c.state)
    )
    return {str(state): int(count) for state, count in (await conn.execute(query)).all()}


async def grants_waiting_for_pool(conn: AsyncConnection, pool_id: int) -> list[int]:
    query = (
        select(grants.c.id)
        .join(milestones, milestones.c.id == grants.c.milestone_id)
        .where(grants.c.state == "waiting_stock", milestones.c.pool_id == pool_id)
        .order_by(grants.c.id)
    )
    return [int(i) for i in (await conn.execute(query)).scalars()]


async def expired_access(conn: AsyncConnection, now: datetime, limit: int) -> list[RowMapping]:
    """Delivered one-time access links past their expiry, not used."""
    query = (
        select(grants)
        .where(
            grants.c.reward_kind == "chat",
            grants.c.access_url.is_not(None),
            grants.c.access_expires_at <= now,
            grants.c.fulfilled_at.is_(None),
        )
        .order_by(grants.c.id)
        .limit(limit)
    )
    return list((await conn.execute(query)).mappings())


# --- flows ---------------------------------------------------------------------------------


async def get_flow(
    conn: AsyncConnection, platform: str, user_id: int, now: datetime
) -> dict[str, Any] | None:
    query = select(flows).where(
        flows.c.platform == platform, flows.c.user_id == user_id, flows.c.expires_at > now
    )
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    found = dict(row)
    found["data"] = json.loads(found["data"] or "{}")
    return found


async def put_flow(
    conn: AsyncConnection,
    platform: str,
    user_id: int,
    kind: str,
    step: str,
    data: Mapping[str, Any],
    expires_at: datetime,
    now: datetime,
) -> None:
    values = {
        "platform": platform,
        "user_id": user_id,
        "kind": kind,
        "step": step,
        "data": json.dumps(dict(data), separators=(",", ":")),
        "expires_at": expires_at,
        "updated_at": now,
    }
    stmt = dialect_insert(conn, flows).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["platform", "user_id"],
        set_={k: stmt.excluded[k] for k in ("kind", "step", "data", "expires_at", "updated_at")},
    )
    await conn.execute(stmt)


async def delete_flow(conn: AsyncConnection, platform: str, user_id: int) -> None:
    await conn.execute(
        delete(flows).where(flows.c.platform == platform, flows.c.user_id == user_id)
    )
