"""Manager review, the reader's receipt, and deleting a person's data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from referrals.clock import FakeClock
from referrals.models import NotAllowed, NotReviewable, PlatformUser
from referrals.service import ReferralService
from storage.database import Database
from storage.schema import events, join_attempts, links, members
from tests.helpers.factories import CHANNEL_ID, join, make_program, person
from tests.helpers.ports import FakePlatform
from tests.helpers.rows import counts_row, referral_rows

READER = 1001
FRIEND = 2002
ADMIN = 42


async def test_manager_approves_a_held_referral(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program = await make_program(service, referrer_cap=1)
    platform.admins[CHANNEL_ID] = {ADMIN}
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code))
    await service.record_join(join(program, FRIEND + 1, clock.now(), link.code))
    queue = await service.review_queue(program.id)
    assert [item.referred_id for item in queue.items] == [FRIEND + 1]
    assert (queue.items[0].reason, queue.items[0].referrer_id, queue.total) == (
        "over_cap",
        READER,
        1,
    )

    with pytest.raises(NotAllowed):
        await service.review(program.id, FRIEND + 1, READER, approve=True)
    outcome = await service.review(program.id, FRIEND + 1, ADMIN, approve=True, note="known fan")
    assert outcome.state == "confirmed"
    row = (await referral_rows(db, program.id))[FRIEND + 1]
    assert (row["state"], row["decided_by"]) == ("confirmed", ADMIN)
    counts = await counts_row(db, program.id, READER)
    assert counts is not None
    assert (counts["pending"], counts["held"], counts["confirmed"], counts["counted"]) == (
        1,
        0,
        1,
        1,
    )
    with pytest.raises(NotReviewable):
        await service.review(program.id, FRIEND + 1, ADMIN, approve=False)


async def test_manager_rejects_a_pending_referral_with_a_reason(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program = await make_program(service)
    platform.admins[CHANNEL_ID] = {ADMIN}
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code))
    outcome = await service.review(program.id, FRIEND, ADMIN, approve=False, note="<i>bot</i>")
    assert outcome.state == "rejected"
    row = (await referral_rows(db, program.id))[FRIEND]
    assert (row["state"], row["reason"]) == ("rejected", "manual")
    counts = await counts_row(db, program.id, READER)
    assert counts is not None and (counts["pending"], counts["rejected"]) == (0, 1)
    with pytest.raises(NotReviewable):
        await service.review(program.id, 31337, ADMIN, approve=True)


async def test_receipt_lists_every_referral_and_attempt_newest_first(
    service: ReferralService, clock: FakeClock, platform: FakePlatform
) -> None:
    program = await make_program(service, hold_hours=24)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    other = (await service.get_or_create_link(program.id, person(READER + 1))).link
    await service.record_join(join(program, FRIEND, clock.now(), other.code))  # theirs
    for n in range(12):
        clock.advance(minutes=1)
        await service.record_join(join(program, 3000 + n, clock.now(), link.code))
    clock.advance(minutes=1)
    await service.record_join(join(program, FRIEND, clock.now(), link.code))  # not counted

    receipt = await service.receipt(program.id, READER, page=1, per_page=5)
    assert (receipt.total, receipt.pages, receipt.page) == (13, 3, 1)
    assert receipt.counts.pending == 12
    first = receipt.items[0]
    assert (first.kind, first.state, first.reason) == (
        "attempt",
        "not_counted",
        "counted_for_other",
    )
    second = receipt.items[1]
    assert (second.user_id, second.state, second.display_name) == (3011, "pending", "Person 3011")
    assert second.hold_until == second.at + timedelta(hours=24)
    last_page = await service.receipt(program.id, READER, page=3, per_page=5)
    assert [i.user_id for i in last_page.items] == [3002, 3001, 3000]
    beyond = await service.receipt(program.id, READER, page=9, per_page=5)
    assert beyond.items == [] and beyond.total == 13


async def test_delete_user_data_forgets_the_reader_but_keeps_friends_slots(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program = await make_program(service, join_mode="direct")
    mine = (await service.get_or_create_link(program.id, person(READER))).link
    theirs = (await service.get_or_create_link(program.id, person(READER + 1))).link
    await service.record_join(join(program, FRIEND, clock.now(), mine.code))
    await service.record_join(join(program, READER, clock.now(), theirs.code))

    summary = await service.delete_user_data(PlatformUser("telegram", READER))
    assert summary.members == 1 and summary.links == 1 and summary.referrals_unlinked == 1
    assert mine.url in platform.revoked

    async with db.read() as conn:
        assert (
            await conn.execute(select(members).where(members.c.user_id == READER))
        ).first() is None
        assert (
            await conn.execute(select(links).where(links.c.referrer_id == READER))
        ).first() is None
        assert (
            await conn.execute(
                select(join_attempts).where(
                    (join_attempts.c.user_id == READER) | (join_attempts.c.referrer_id == READER)
                )
            )
        ).first() is None
        assert (
            await conn.execute(select(events).where(events.c.user_id == READER))
        ).first() is None
    assert await counts_row(db, program.id, READER) is None
    rows = await referral_rows(db, program.id)
    assert rows[FRIEND]["referrer_id"] is None  # the friend stays counted once, for nobody
    assert rows[READER]["referrer_id"] == READER + 1  # their own slot stays with its reader
    counts = await counts_row(db, program.id, READER + 1)
    assert counts is not None and counts["pending"] == 1
    # rejoining after being forgotten does not count again
    again = await service.record_join(join(program, READER, clock.now(), theirs.code))
    assert again.status == "not_counted"
