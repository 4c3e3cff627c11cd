"""Many joins at once: exact counts, no lock errors, no deadlocks, on both engines."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import func, select

from referrals.clock import FakeClock
from referrals.models import JoinStatus
from referrals.service import ReferralService
from storage.database import Database
from storage.schema import join_attempts, referrals
from tests.helpers.factories import join, make_program, person
from tests.helpers.ports import FakePlatform
from tests.helpers.rows import counts_row


async def _table_count(db: Database, table: object) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_200_concurrent_joins_for_one_referrer(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service)
    link = (await service.get_or_create_link(program.id, person(1))).link
    outcomes = await asyncio.gather(
        *(
            service.record_join(join(program, 10_000 + n, clock.now(), link.code, f"e{n}"))
            for n in range(200)
        )
    )
    assert all(o.status is JoinStatus.PENDING for o in outcomes)
    counts = await counts_row(db, program.id, 1)
    assert counts is not None and counts["pending"] == 200
    assert await _table_count(db, referrals) == 200
    assert await _table_count(db, join_attempts) == 200


async def test_joins_for_50_referrers_in_shuffled_order(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service)
    links = [(await service.get_or_create_link(program.id, person(r))).link for r in range(1, 51)]
    events = [
        join(program, 100_000 + n, clock.now(), links[n % 50].code, f"e{n}") for n in range(1000)
    ]
    # a re-delivery of some events and some rejoins mixed in
    events += events[:50]
    events += [join(program, 100_000 + n, clock.now(), links[0].code, f"r{n}") for n in range(20)]
    random.Random(7).shuffle(events)
    outcomes = await asyncio.gather(*(service.record_join(e) for e in events))
    statuses = [o.status for o in outcomes]
    assert statuses.count(JoinStatus.PENDING) == 1000
    assert statuses.count(JoinStatus.DUPLICATE) == 50
    assert statuses.count(JoinStatus.NOT_COUNTED) == 20
    # whichever of a person's two joins came first counted; counts match the rows exactly
    async with db.read() as conn:
        per_referrer = dict(
            (
                await conn.execute(
                    select(referrals.c.referrer_id, func.count()).group_by(referrals.c.referrer_id)
                )
            ).all()
        )
    assert sum(per_referrer.values()) == 1000
    for r in range(1, 51):
        counts = await counts_row(db, program.id, r)
        assert counts is not None and counts["pending"] == per_referrer[r], r
    assert await _table_count(db, referrals) == 1000
    assert await _table_count(db, join_attempts) == 1020


async def test_two_instances_on_one_database_never_double_count(
    db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    """Two bot processes (two services, two engines) racing on the same people."""
    first = ReferralService(db, clock, {"telegram": platform})
    url = db.engine.url.render_as_string(hide_password=False)
    connect_args = {}
    if not db.is_sqlite:
        search_path = await _search_path(db)
        connect_args = {"server_settings": {"search_path": search_path}}
    other_db = Database.from_url(url, connect_args=connect_args)
    try:
        second = ReferralService(other_db, clock, {"telegram": platform})
        program = await make_program(first)
        links = [
            (await first.get_or_create_link(program.id, person(r))).link for r in range(1, 11)
        ]
        # both instances see the same 300 joins (same people, same event keys) in
        # different orders, like two webhook workers handed overlapping updates
        events = [
            join(program, 500_000 + n, clock.now(), links[n % 10].code, f"e{n}")
            for n in range(300)
        ]
        mirrored = list(reversed(events))
        results = await asyncio.gather(
            *(first.record_join(e) for e in events),
            *(second.record_join(e) for e in mirrored),
        )
        counted = [o for o in results if o.status is JoinStatus.PENDING]
        assert len(counted) == 300
        for r in range(1, 11):
            counts = await counts_row(db, program.id, r)
            assert counts is not None and counts["pending"] == 30
        assert await _table_count(db, referrals) == 300
    finally:
        await other_db.dispose()


async def _search_path(db: Database) -> str:
    from sqlalchemy import text

    async with db.read() as conn:
        return str((await conn.execute(text("SHOW search_path"))).scalar_one())
