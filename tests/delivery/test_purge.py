"""The outbox does not grow forever: finished rows go after the retention period, once per
day across instances; queued rows and a waiting join request's human check stay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, update

from delivery.outbox import Outbox, Priority, message
from main import Application, Settings
from referrals.clock import FakeClock
from referrals.service import human_check_key
from storage import outbox as store
from storage.database import Database
from storage.migrate import upgrade
from storage.schema import job_claims, join_requests, outbox, programs

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def note(target: int, key: str, now: datetime, **options: Any) -> dict[str, Any]:
    return message(
        "telegram",
        "user",
        target,
        "program_notice",
        {"program_title": key, "paused": True, "reason": ""},
        priority=Priority.NOTIFY,
        now=now,
        key=key,
        **options,
    )


async def finish(db: Database, key: str, state: str, at: datetime | None = None) -> None:
    values: dict[str, Any] = {"state": state}
    if state == "sent":
        values["sent_at"] = at
    async with db.write() as conn:
        await conn.execute(update(outbox).where(outbox.c.idempotency_key == key).values(**values))


async def keys(db: Database) -> list[str]:
    async with db.read() as conn:
        return [row["idempotency_key"] for row in await store.outbox_rows(conn)]


async def program(db: Database) -> int:
    async with db.write() as conn:
        result = await conn.execute(
            insert(programs)
            .values(
                platform="telegram",
                destination_id=-100777,
                kind="channel",
                title="Daily Brief",
                created_at=START,
                updated_at=START,
            )
            .returning(programs.c.id)
        )
        return int(result.scalar_one())


async def test_finished_rows_go_after_the_retention_and_queued_ones_stay(db: Database) -> None:
    clock = FakeClock(START)
    box = Outbox(db, clock)
    old = START
    await box.add(
        [
            note(1, "sent-old", old),
            note(2, "failed-old", old),
            note(3, "expired-old", old),
            note(4, "queued-old", old),
            note(5, "sent-late", old),  # made long ago, sent only yesterday
            note(6, "sent-young", old + timedelta(days=6)),
        ]
    )
    await finish(db, "sent-old", "sent", old)
    await finish(db, "failed-old", "failed")
    await finish(db, "expired-old", "expired")
    await finish(db, "sent-late", "sent", old + timedelta(days=7))
    await finish(db, "sent-young", "sent", old + timedelta(days=6))

    clock.advance(days=8)
    assert await box.purge() == 3

    assert await keys(db) == ["queued-old", "sent-late", "sent-young"]


async def test_a_waiting_join_requests_check_is_kept_until_the_request_is_decided(
    db: Database,
) -> None:
    clock = FakeClock(START)
    box = Outbox(db, clock, retention=timedelta(days=2))
    program_id = await program(db)
    check = human_check_key(program_id, 42, START)
    await box.add([note(42, check, START, program_id=program_id), note(43, "other", START)])
    await finish(db, check, "sent", START)
    await finish(db, "other", "sent", START)
    async with db.write() as conn:
        await conn.execute(
            insert(join_requests).values(
                program_id=program_id,
                user_id=42,
                state="awaiting_check",
                requested_at=START,
                check_until=START + timedelta(days=1),
            )
        )

    clock.advance(days=3)
    assert await box.purge() == 1
    assert await keys(db) == [check]  # settle_join_requests still reads its state

    async with db.write() as conn:
        await conn.execute(update(join_requests).values(state="declined", decided_at=START))
    clock.advance(days=1)
    assert await box.purge() == 1
    assert await keys(db) == []


async def test_two_instances_purge_once_per_day(db: Database) -> None:
    clock = FakeClock(START)
    first, second = Outbox(db, clock), Outbox(db, clock)
    await first.add([note(1, "a", START)])
    await finish(db, "a", "sent", START)
    clock.advance(days=8)

    results = await asyncio.gather(first.purge(), second.purge())

    assert sorted(results, key=str) == [1, None]
    assert await second.purge() is None  # the same day: claimed already
    await first.add([note(2, "b", clock.now() - timedelta(days=8))])
    await finish(db, "b", "failed")
    clock.advance(days=1)
    assert await second.purge() == 1
    async with db.read() as conn:
        claims = (await conn.execute(job_claims.select())).mappings().all()
    assert sorted(c["slot"] for c in claims) == ["2026-03-10", "2026-03-11"]


def test_a_retention_shorter_than_two_days_is_refused(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ValueError, match="at least"):
        Outbox(db, FakeClock(START), retention=timedelta(hours=12))


async def test_two_applications_on_one_database_purge_once_per_slot(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'shared.db'}")
    clock = FakeClock(START)
    apps = [Application(settings, clock=clock), Application(settings, clock=clock)]
    await upgrade(apps[0].db)
    try:
        await apps[0].outbox.add([note(1, "a", START), note(2, "b", START)])
        await finish(apps[0].db, "a", "sent", START)
        await finish(apps[0].db, "b", "expired")
        clock.advance(days=8)

        reports = await asyncio.gather(*(app.tick() for app in apps))

        assert sorted(report["purged"] for report in reports) == [0, 2]
        assert [(await app.tick())["purged"] for app in apps] == [0, 0]
        assert await keys(apps[1].db) == []
    finally:
        for app in apps:
            await app.close()
