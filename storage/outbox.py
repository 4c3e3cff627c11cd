"""Outbox and inbox queries (the delivery side of storage)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import inbox, join_requests, outbox, people, programs
from storage.sql import (
    chunks,
    dialect_insert,
    execute_many,
)


async def enqueue(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert outbox rows (``context`` as a dict, ``payload`` as the JSON text
    ``delivery.actions`` made, or None); a repeated idempotency key is skipped. Returns how
    many rows were added."""
    if not rows:
        return 0
    prepared = [
        {
            "program_id": None,
            "locale": None,
            "action": "send",
            "expires_at": None,
            "idempotency_key": None,
            "payload": None,
            **row,
            "context": json.dumps(row.get("context") or {}, sort_keys=True, default=str),
        }
        for row in rows
    ]
    stmt = dialect_insert(conn, outbox).on_conflict_do_nothing(index_elements=["idempotency_key"])
    if conn.dialect.name == "sqlite":
        # sqlite3 sums an executemany's changes into rowcount (skipped rows change nothing);
        # sparing the RETURNING lets the rows go as one plain executemany.
        return (await conn.execute(stmt, prepared)).rowcount or 0
    return len(await execute_many(conn, stmt.returning(outbox.c.id), prepared))


async def expire_overdue(conn: AsyncConnection, now: datetime) -> int:
    result = await conn.execute(
        update(outbox)
        .where(outbox.c.state == "queued", outbox.c.expires_at.is_not(None))
        .where(outbox.c.expires_at <= now)
        .values(state="expired", last_error="expired before it could be sent")
    )
    return result.rowcount or 0


async def claim_due(
    conn: AsyncConnection, now: datetime, lease_until: datetime, limit: int, per_target: int
) -> list[dict[str, Any]]:
    """Lease up to ``limit`` due rows, most urgent first and at most ``per_target`` per
    chat (so one busy chat cannot starve the rest), with the locale candidates of their
    target (the person's chosen and app language, the program's locale)."""
    ranked = (
        select(
            outbox.c.id,
            outbox.c.priority,
            func.row_number()
            .over(
                partition_by=(outbox.c.platform, outbox.c.target_kind, outbox.c.target_id),
                order_by=(outbox.c.priority, outbox.c.id),
            )
            .label("rank"),
        )
        .where(
            outbox.c.state == "queued",
            outbox.c.next_attempt_at <= now,
            or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now),
        )
        .subquery()
    )
    candidates = list(
        (
            await conn.execute(
                select(ranked.c.id)
                .where(ranked.c.rank <= per_target)
                .order_by(ranked.c.priority, ranked.c.id)
                .limit(limit)
            )
        ).scalars()
    )
    if not candidates:
        return []
    lock = select(outbox.c.id).where(
        outbox.c.id.in_(candidates),
        outbox.c.state == "queued",
        or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now),
    )
    if conn.dialect.name == "postgresql":
        lock = lock.with_for_update(skip_locked=True)
    ids = list((await conn.execute(lock)).scalars())
    if not ids:
        return []
    await conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(lease_until=lease_until))
    rows = await conn.execute(
        select(
            outbox,
            people.c.language.label("person_language"),
            people.c.platform_language.label("person_platform_language"),
            programs.c.locale.label("program_locale"),
        )
        .outerjoin(
            people,
            and_(
                outbox.c.target_kind == "user",
                people.c.platform == outbox.c.platform,
                people.c.user_id == outbox.c.target_id,
            ),
        )
        .outerjoin(programs, programs.c.id == outbox.c.program_id)
        .where(outbox.c.id.in_(ids))
        .order_by(outbox.c.priority, outbox.c.id)
    )
    return [dict(row) for row in rows.mappings()]


async def settle(
    conn: AsyncConnection,
    retry: Sequence[tuple[int, datetime, bool, str]],
    failed: Sequence[tuple[int, str]],
) -> None:
    """Write the rest of one drain's outcome (sent rows: :func:`mark_sent`): ``retry`` (id,
    when, count_attempt, error); ``failed`` (id, error)."""
    for row_id, when, count_attempt, error in retry:
        await conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id)
            .values(
                next_attempt_at=when,
                lease_until=None,
                attempts=outbox.c.attempts + (1 if count_attempt else 0),
                last_error=error[:256],
            )
        )
    for row_id, error in failed:
        await conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id)
            .values(
                state="failed",
                lease_until=None,
                attempts=outbox.c.attempts + 1,
                last_error=error[:256],
            )
        )


async def release(conn: AsyncConnection, ids: Sequence[int]) -> None:
    if ids:
        await conn.execute(
            update(outbox).where(outbox.c.id.in_(list(ids))).values(lease_until=None)
        )


async def next_due_at(conn: AsyncConnection) -> datetime | None:
    result = await conn.execute(
        select(func.min(outbox.c.next_attempt_at)).where(outbox.c.state == "queued")
    )
    return result.scalar()


async def outbox_rows(conn: AsyncConnection, state: str | None = None) -> list[dict[str, Any]]:
    """Every outbox row (for reports and tests), oldest first, ``context`` and ``payload``
    decoded."""
    query = select(outbox).order_by(outbox.c.id)
    if state is not None:
        query = query.where(outbox.c.state == state)
    return [
        {
            **row,
            "context": json.loads(row["context"]),
            "payload": json.loads(row["payload"]) if row["payload"] else None,
        }
        for row in (await conn.execute(query)).mappings()
    ]


async def purge_finished(conn: AsyncConnection, before: datetime) -> int:
    """Delete sent, failed and expired rows made (and sent) before ``before``. Queued rows
    stay, and so does every DM to a person whose join request still awaits a human check in
    that program: the scheduler decides such a request by the state of its check's row."""
    awaiting = exists().where(
        join_requests.c.state == "awaiting_check",
        join_requests.c.program_id == outbox.c.program_id,
        join_requests.c.user_id == outbox.c.target_id,
    )
    result = await conn.execute(
        delete(outbox).where(
            outbox.c.state != "queued",
            outbox.c.created_at < before,
            or_(outbox.c.sent_at.is_(None), outbox.c.sent_at < before),
            ~and_(outbox.c.target_kind == "user", awaiting),
        )
    )
    return result.rowcount or 0


# --- inbox ----------------------------------------------------------------------------


async def settle_update(
    conn: AsyncConnection,
    row_id: int,
    *,
    done: bool,
    error: str = "",
    retry_at: datetime | None,
    give_up: bool = False,
) -> None:
    values: dict[str, Any]
    if done:
        values = {"state": "done"}
    elif give_up:
        values = {"state": "dead", "last_error": error[:256], "attempts": inbox.c.attempts + 1}
    else:
        values = {
            "next_attempt_at": retry_at,
            "last_error": error[:256],
            "attempts": inbox.c.attempts + 1,
        }
    await conn.execute(update(inbox).where(inbox.c.id == row_id).values(**values))


async def inbox_rows(conn: AsyncConnection) -> list[dict[str, Any]]:
    return [
        dict(row) for row in (await conn.execute(select(inbox).order_by(inbox.c.id))).mappings()
    ]


async def mark_sent(
    conn: AsyncConnection, sent: Sequence[tuple[int, int | None]], now: datetime
) -> None:
    """Rows the platform accepted, with the message id it answered (``None``: the call
    made no message, e.g. an approval). The CASE is typed: on PostgreSQL a CASE whose
    branches are all NULL would be text, which a BIGINT column refuses."""
    from sqlalchemy import BigInteger, cast

    if not sent:
        return
    values: dict[str, Any] = {
        "state": "sent",
        "sent_at": now,
        "lease_until": None,
        "attempts": outbox.c.attempts + 1,
    }
    message_ids = {row_id: message_id for row_id, message_id in sent if message_id is not None}
    if message_ids:
        values["message_id"] = cast(case(message_ids, value=outbox.c.id, else_=None), BigInteger)
    await conn.execute(
        update(outbox).where(outbox.c.id.in_([row_id for row_id, _ in sent])).values(**values)
    )


async def queued_updates(conn: AsyncConnection, platform: str) -> list[dict[str, Any]]:
    """Every kept update still waiting to be handled, oldest update first (due or not):
    the bot keeps the updates of one chat and person in order behind a failing one."""
    rows = await conn.execute(
        select(inbox)
        .where(inbox.c.platform == platform, inbox.c.state == "queued")
        .order_by(inbox.c.update_id)
    )
    return [{**row, "payload": json.loads(row["payload"])} for row in rows.mappings()]


async def keep_update(
    conn: AsyncConnection,
    platform: str,
    update_id: int,
    payload: Mapping[str, Any],
    note: str,
    now: datetime,
    retry_at: datetime,
    *,
    failed: bool,
) -> bool:
    """Keep an update raw in the inbox (``failed``: its handler failed; else it waits
    behind an earlier kept update). False if this update was kept before."""
    stmt = (
        dialect_insert(conn, inbox)
        .values(
            platform=platform,
            update_id=update_id,
            payload=json.dumps(payload, default=str),
            state="queued",
            attempts=1 if failed else 0,
            next_attempt_at=retry_at,
            last_error=note[:256],
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["platform", "update_id"])
        .returning(inbox.c.id)
    )
    return (await conn.execute(stmt)).scalar() is not None


async def existing_keys(conn: AsyncConnection, keys: Sequence[str]) -> set[str]:
    """Which of these idempotency keys the outbox holds already."""
    found: set[str] = set()
    for part in chunks(sorted(set(keys))):
        result = await conn.execute(
            select(outbox.c.idempotency_key).where(outbox.c.idempotency_key.in_(list(part)))
        )
        found.update(result.scalars())
    return found


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


async def queued_payloads(conn: AsyncConnection, actions: Sequence[str]) -> list[str]:
    """The payloads of the queued rows of these actions (the spool's files still awaited)."""
    result = await conn.execute(
        select(outbox.c.payload).where(
            outbox.c.state == "queued",
            outbox.c.action.in_(list(actions)),
            outbox.c.payload.is_not(None),
        )
    )
    return [str(payload) for payload in result.scalars()]
