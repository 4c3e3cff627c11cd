"""Attribution and the hold rules of record_join, asserted on rows and counts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from referrals.clock import FakeClock
from referrals.models import JoinStatus, Reason, RememberStatus
from referrals.service import ReferralService
from storage.database import Database
from tests.helpers.factories import join, make_program, person
from tests.helpers.rows import attempt_rows, counts_row, event_kinds, referral_rows

READER = 1001
FRIEND = 2002


async def test_join_through_a_readers_link_is_pending_until_the_hold_ends(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service, hold_hours=48)
    link = (await service.get_or_create_link(program.id, person(READER))).link

    outcome = await service.record_join(join(program, FRIEND, clock.now(), link.code, "e1"))

    assert outcome.status is JoinStatus.PENDING
    assert outcome.referrer_id == READER
    assert outcome.hold_until == clock.now() + timedelta(hours=48)
    row = (await referral_rows(db, program.id))[FRIEND]
    assert (row["state"], row["referrer_id"], row["link_id"]) == ("pending", READER, link.id)
    counts = await counts_row(db, program.id, READER)
    assert counts is not None
    assert (counts["pending"], counts["confirmed"], counts["counted"]) == (1, 0, 0)
    assert [a["outcome"] for a in await attempt_rows(db, program.id)] == ["referral"]
    assert "referral.pending" in await event_kinds(db, program.id)


async def test_join_matched_by_url_as_well_as_code(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    outcome = await service.record_join(join(program, FRIEND, clock.now(), link.url))
    assert (outcome.status, outcome.referrer_id) == (JoinStatus.PENDING, READER)


async def test_zero_hold_confirms_at_once(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service, hold_hours=0)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    outcome = await service.record_join(join(program, FRIEND, clock.now(), link.code))
    assert outcome.status is JoinStatus.CONFIRMED
    row = (await referral_rows(db, program.id))[FRIEND]
    assert row["state"] == "confirmed" and row["confirmed_at"] == clock.now()
    counts = await counts_row(db, program.id, READER)
    assert counts is not None and (counts["confirmed"], counts["counted"]) == (1, 1)


async def test_remembered_friend_is_matched_by_user_id_without_a_link(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service)
    link = (await service.get_or_create_link(program.id, person(READER, "Ana"))).link

    remembered = await service.remember(link.code, person(FRIEND))
    assert remembered.status is RememberStatus.REMEMBERED
    assert remembered.program is not None and remembered.program.id == program.id
    assert remembered.referrer_name == "Ana"

    outcome = await service.record_join(join(program, FRIEND, clock.now()))
    assert (outcome.status, outcome.referrer_id) == (JoinStatus.PENDING, READER)
    assert (await referral_rows(db, program.id))[FRIEND]["link_id"] == link.id


async def test_the_first_reader_remembered_keeps_the_friend(
    service: ReferralService, clock: FakeClock
) -> None:
    program = await make_program(service)
    first = (await service.get_or_create_link(program.id, person(READER))).link
    second = (await service.get_or_create_link(program.id, person(READER + 1))).link
    assert (await service.remember(first.code, person(FRIEND))).status is RememberStatus.REMEMBERED
    again = await service.remember(second.code, person(FRIEND))
    assert again.status is RememberStatus.ALREADY_REMEMBERED
    outcome = await service.record_join(join(program, FRIEND, clock.now()))
    assert outcome.referrer_id == READER


async def test_remember_refuses_unknown_codes_self_and_members(
    service: ReferralService, clock: FakeClock
) -> None:
    program = await make_program(service)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    assert (await service.remember("nope", person(FRIEND))).status is RememberStatus.UNKNOWN_LINK
    assert (await service.remember("x" * 65, person(FRIEND))).status is RememberStatus.UNKNOWN_LINK
    assert (await service.remember(link.code, person(READER))).status is (
        RememberStatus.SELF_REFERRAL
    )
    await service.record_join(join(program, FRIEND, clock.now()))
    assert (await service.remember(link.code, person(FRIEND))).status is (
        RememberStatus.ALREADY_MEMBER
    )


@pytest.mark.parametrize(
    ("link", "reason"),
    [(None, Reason.NO_LINK), ("unknown-code", Reason.UNKNOWN_LINK)],
)
async def test_joins_without_a_known_link_are_unattributed_but_recorded(
    service: ReferralService, db: Database, clock: FakeClock, link: str | None, reason: Reason
) -> None:
    program = await make_program(service)
    outcome = await service.record_join(join(program, FRIEND, clock.now(), link))
    assert (outcome.status, outcome.reason) == (JoinStatus.UNATTRIBUTED, reason)
    assert await referral_rows(db, program.id) == {}
    attempts = await attempt_rows(db, program.id)
    assert [(a["outcome"], a["reason"]) for a in attempts] == [("unattributed", str(reason))]


async def test_revoked_link_does_not_count(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service)
    old = (await service.get_or_create_link(program.id, person(READER))).link
    new = await service.reset_link(program.id, person(READER))
    assert new.code != old.code
    outcome = await service.record_join(join(program, FRIEND, clock.now(), old.code))
    assert (outcome.status, outcome.reason) == (JoinStatus.UNATTRIBUTED, Reason.REVOKED_LINK)
    outcome = await service.record_join(join(program, FRIEND + 1, clock.now(), new.code))
    assert outcome.status is JoinStatus.PENDING


async def test_a_link_of_another_program_is_unknown_here(
    service: ReferralService, clock: FakeClock
) -> None:
    program = await make_program(service)
    other = await make_program(service, destination_id=-100999)
    link = (await service.get_or_create_link(other.id, person(READER))).link
    outcome = await service.record_join(join(program, FRIEND, clock.now(), link.code))
    assert (outcome.status, outcome.reason) == (JoinStatus.UNATTRIBUTED, Reason.UNKNOWN_LINK)


async def test_self_referral_is_rejected_and_takes_the_slot(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    outcome = await service.record_join(join(program, READER, clock.now(), link.code))
    assert (outcome.status, outcome.reason) == (JoinStatus.REJECTED, Reason.SELF_REFERRAL)
    counts = await counts_row(db, program.id, READER)
    assert counts is not None and (counts["rejected"], counts["pending"]) == (1, 0)


async def test_account_too_new_is_rejected_when_the_platform_tells_age(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service, min_account_age_days=30)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    young = await service.record_join(
        join(
            program,
            FRIEND,
            clock.now(),
            link.code,
            account_created_at=clock.now() - timedelta(days=2),
        )
    )
    old = await service.record_join(
        join(
            program,
            FRIEND + 1,
            clock.now(),
            link.code,
            account_created_at=clock.now() - timedelta(days=400),
        )
    )
    unknown_age = await service.record_join(join(program, FRIEND + 2, clock.now(), link.code))
    assert (young.status, young.reason) == (JoinStatus.REJECTED, Reason.ACCOUNT_TOO_NEW)
    assert old.status is JoinStatus.PENDING
    assert unknown_age.status is JoinStatus.PENDING


async def test_rejoin_after_leave_is_not_counted_twice(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    from referrals.models import LeaveEvent

    program = await make_program(service)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code, "j1"))
    await service.record_leave(LeaveEvent(program.id, FRIEND, clock.now()))
    clock.advance(hours=1)
    again = await service.record_join(join(program, FRIEND, clock.now(), link.code, "j2"))
    assert (again.status, again.reason) == (JoinStatus.NOT_COUNTED, Reason.REJOIN)
    counts = await counts_row(db, program.id, READER)
    assert counts is not None
    assert (counts["pending"], counts["rejected"], counts["confirmed"]) == (0, 1, 0)
    assert (await referral_rows(db, program.id))[FRIEND]["state"] == "rejected"


async def test_person_counted_for_one_reader_is_not_counted_for_another(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    from referrals.models import LeaveEvent

    program = await make_program(service)
    first = (await service.get_or_create_link(program.id, person(READER))).link
    second = (await service.get_or_create_link(program.id, person(READER + 1))).link
    await service.record_join(join(program, FRIEND, clock.now(), first.code))
    await service.record_leave(LeaveEvent(program.id, FRIEND, clock.now()))
    outcome = await service.record_join(join(program, FRIEND, clock.now(), second.code))
    assert (outcome.status, outcome.reason) == (JoinStatus.NOT_COUNTED, Reason.COUNTED_FOR_OTHER)
    assert outcome.referrer_id == READER + 1
    assert await counts_row(db, program.id, READER + 1) is not None
    counts = await counts_row(db, program.id, READER + 1)
    assert counts is not None and counts["pending"] == 0
    receipt = await service.receipt(program.id, READER + 1)
    assert [(i.kind, i.state, i.reason) for i in receipt.items] == [
        ("attempt", "not_counted", "counted_for_other")
    ]


async def test_unattributed_member_who_rejoins_through_a_link_is_not_counted(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    from referrals.models import LeaveEvent

    program = await make_program(service)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now()))
    await service.record_leave(LeaveEvent(program.id, FRIEND, clock.now()))
    outcome = await service.record_join(join(program, FRIEND, clock.now(), link.code))
    assert (outcome.status, outcome.reason) == (JoinStatus.NOT_COUNTED, Reason.REJOIN)
    assert await referral_rows(db, program.id) == {}


async def test_the_same_event_delivered_twice_changes_nothing(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    event = join(program, FRIEND, clock.now(), link.code, "update-77")
    first = await service.record_join(event)
    second = await service.record_join(event)
    both = await service.record_joins([event, event])
    assert first.status is JoinStatus.PENDING
    assert second.status is JoinStatus.DUPLICATE
    assert [o.status for o in both] == [JoinStatus.DUPLICATE, JoinStatus.DUPLICATE]
    assert len(await attempt_rows(db, program.id)) == 1
    counts = await counts_row(db, program.id, READER)
    assert counts is not None and counts["pending"] == 1


async def test_same_person_twice_in_one_batch_counts_once(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    outcomes = await service.record_joins(
        [
            join(program, FRIEND, clock.now(), link.code, "a"),
            join(program, FRIEND, clock.now(), link.code, "b"),
        ]
    )
    assert [o.status for o in outcomes] == [JoinStatus.PENDING, JoinStatus.NOT_COUNTED]
    counts = await counts_row(db, program.id, READER)
    assert counts is not None and counts["pending"] == 1


async def test_reader_over_the_cap_is_held_for_a_manager(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service, referrer_cap=2)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    outcomes = [
        await service.record_join(join(program, FRIEND + n, clock.now(), link.code))
        for n in range(3)
    ]
    assert [o.status for o in outcomes] == [
        JoinStatus.PENDING,
        JoinStatus.PENDING,
        JoinStatus.HELD,
    ]
    assert outcomes[2].reason is Reason.OVER_CAP
    counts = await counts_row(db, program.id, READER)
    assert counts is not None and (counts["pending"], counts["held"]) == (2, 1)


async def test_burst_through_one_readers_links_is_held(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service, burst_limit=3, burst_window_minutes=60)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    statuses = [
        (await service.record_join(join(program, FRIEND + n, clock.now(), link.code))).status
        for n in range(5)
    ]
    assert statuses == [JoinStatus.PENDING] * 3 + [JoinStatus.HELD] * 2
    clock.advance(minutes=61)
    later = await service.record_join(join(program, FRIEND + 10, clock.now(), link.code))
    assert later.status is JoinStatus.PENDING
    # the burst of one batch is judged the same way
    clock.advance(minutes=61)
    batch = await service.record_joins(
        [join(program, FRIEND + 20 + n, clock.now(), link.code) for n in range(5)]
    )
    assert [o.status for o in batch] == [JoinStatus.PENDING] * 3 + [JoinStatus.HELD] * 2


async def test_join_for_an_unknown_program_fails_alone(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    from referrals.models import JoinEvent, ProgramNotFound

    program = await make_program(service)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    good = join(program, FRIEND, clock.now(), link.code)
    bad = JoinEvent(program_id=9999, person=person(FRIEND), at=clock.now())
    import asyncio

    results = await asyncio.gather(
        service.record_join(good), service.record_join(bad), return_exceptions=True
    )
    assert isinstance(results[1], ProgramNotFound)
    assert not isinstance(results[0], BaseException) and results[0].status is JoinStatus.PENDING


async def test_hostile_names_are_cleaned_before_storage(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    from referrals.models import JoinEvent, Person

    program = await make_program(service)
    name = "<b>Eve</b>\u200b\u202e" + "x" * 10_000
    await service.record_join(
        JoinEvent(program.id, Person(FRIEND, name, "eve\u200d"), clock.now())
    )
    receipt_name = None
    from sqlalchemy import select

    from storage.schema import members

    async with db.read() as conn:
        row = (
            (await conn.execute(select(members).where(members.c.user_id == FRIEND)))
            .mappings()
            .one()
        )
        receipt_name = row["display_name"]
        assert row["username"] == "eve"
    assert receipt_name.startswith("<b>Eve</b>x")  # escaping is the templates' job
    assert "\u200b" not in receipt_name and "\u202e" not in receipt_name
    assert len(receipt_name) <= 64
