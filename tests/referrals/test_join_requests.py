"""Join requests (direct-link mode) through the engine, on both engines: who is remembered,
approve or check, re-deliveries — one at a time and many at once in one batch."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from referrals.clock import FakeClock
from referrals.models import RequestStatus
from referrals.service import ReferralService
from storage import people as people_store
from storage.database import Database
from storage.schema import join_requests, members
from tests.helpers.factories import make_program, person


async def _requests(db: Database) -> dict[int, dict[str, object]]:
    async with db.read() as conn:
        rows = (await conn.execute(select(join_requests))).mappings().all()
    return {row["user_id"]: dict(row) for row in rows}


async def _remembered(db: Database) -> dict[int, int | None]:
    async with db.read() as conn:
        rows = (await conn.execute(select(members))).mappings().all()
    return {row["user_id"]: row["remembered_referrer_id"] for row in rows}


async def _direct_program(service: ReferralService, **settings: object) -> object:
    return await make_program(service, kind="channel", join_mode="direct", **settings)


async def test_a_request_through_a_readers_link_remembers_the_reader_and_approves(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await _direct_program(service)
    link = (await service.get_or_create_link(program.id, person(1, "Ana"))).link
    outcome = await service.record_join_request(
        program.id, person(50, "Dewi"), clock.now(), link.url
    )
    assert outcome.status is RequestStatus.APPROVE
    assert (outcome.referrer_id, outcome.referrer_name) == (1, "Ana")
    assert (await _remembered(db))[50] == 1
    row = (await _requests(db))[50]
    assert (row["state"], row["referrer_id"], row["check_until"]) == ("approved", 1, None)


async def test_a_request_through_an_unknown_link_is_approved_for_nobody(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await _direct_program(service)
    outcome = await service.record_join_request(
        program.id, person(50), clock.now(), "https://t.me/+unknownunknown1"
    )
    assert (outcome.status, outcome.referrer_id, outcome.referrer_name) == (
        RequestStatus.APPROVE,
        None,
        None,
    )
    assert (await _requests(db))[50]["referrer_id"] is None
    assert (await _remembered(db))[50] is None


async def test_the_human_check_is_asked_only_while_it_can_reach_the_requester(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await _direct_program(service, human_check=True)
    link = (await service.get_or_create_link(program.id, person(1))).link
    fresh = await service.record_join_request(program.id, person(50), clock.now(), link.code)
    assert fresh.status is RequestStatus.CHECK
    late = await service.record_join_request(
        program.id, person(51), clock.now() - timedelta(minutes=10), link.code
    )
    assert late.status is RequestStatus.APPROVE
    async with db.write() as conn:
        await people_store.upsert_person(conn, "telegram", 52, clock.now())
        await people_store.mark_unreachable(conn, "telegram", [52], clock.now())
    blocked = await service.record_join_request(program.id, person(52), clock.now(), link.code)
    assert blocked.status is RequestStatus.APPROVE
    rows = await _requests(db)
    assert rows[50]["state"] == "awaiting_check" and rows[50]["check_until"] is not None
    assert rows[51]["state"] == rows[52]["state"] == "approved"


async def test_a_redelivered_request_gets_its_first_answer(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await _direct_program(service, human_check=True)
    link = (await service.get_or_create_link(program.id, person(1))).link
    at = clock.now()
    first = await service.record_join_request(program.id, person(50), at, link.code)
    clock.advance(minutes=1)
    again = await service.record_join_request(program.id, person(50), at, link.code)
    assert first.status is again.status is RequestStatus.CHECK
    assert len(await _requests(db)) == 1


async def test_many_requests_at_once_share_a_batch_and_are_each_decided(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await _direct_program(service)
    ana = (await service.get_or_create_link(program.id, person(1, "Ana"))).link
    budi = (await service.get_or_create_link(program.id, person(2, "Budi"))).link
    at = clock.now()
    calls = []
    for n in range(150):
        link = (ana, budi, None)[n % 3]
        calls.append(
            service.record_join_request(
                program.id, person(1000 + n), at, link.code if link else None
            )
        )
    # The same person twice in the batch (a re-delivered update) and a self-referral.
    calls.append(service.record_join_request(program.id, person(1000), at, ana.code))
    calls.append(service.record_join_request(program.id, person(1, "Ana"), at, ana.code))
    outcomes = await asyncio.gather(*calls)
    assert all(o.status is RequestStatus.APPROVE for o in outcomes)
    assert [o.referrer_name for o in outcomes[:3]] == ["Ana", "Budi", None]
    assert outcomes[150].referrer_id == 1  # the repeat got the first answer
    rows = await _requests(db)
    assert len(rows) == 151
    remembered = await _remembered(db)
    assert sum(1 for n in range(150) if remembered[1000 + n] == 1) == 50
    assert sum(1 for n in range(150) if remembered[1000 + n] == 2) == 50
    assert remembered[1] is None  # nobody is remembered as their own referrer
