"""Leaves, the scheduled confirmation and the leave policy."""

from __future__ import annotations

from datetime import timedelta

from delivery.port import RetryAfter, Unreachable, UnreachableReason
from referrals.clock import FakeClock
from referrals.models import JoinStatus, LeaveEvent, LeaveStatus, Reason
from referrals.service import ReferralService
from storage.database import Database
from tests.helpers.factories import CHANNEL_ID, join, make_program, person
from tests.helpers.ports import FakePlatform
from tests.helpers.rows import counts_row, event_kinds, referral_rows

READER = 1001
FRIEND = 2002


async def _pending(service: ReferralService, clock: FakeClock, **settings: object) -> int:
    program = await make_program(service, **settings)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code))
    return program.id


async def test_leave_during_hold_rejects_the_referral(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program_id = await _pending(service, clock)
    outcome = await service.record_leave(LeaveEvent(program_id, FRIEND, clock.now()))
    assert (outcome.status, outcome.referrer_id) == (LeaveStatus.REJECTED, READER)
    row = (await referral_rows(db, program_id))[FRIEND]
    assert (row["state"], row["reason"]) == ("rejected", "left_during_hold")
    counts = await counts_row(db, program_id, READER)
    assert counts is not None and (counts["pending"], counts["rejected"]) == (0, 1)
    # the same leave again changes nothing
    again = await service.record_leave(LeaveEvent(program_id, FRIEND, clock.now()))
    assert again.status is LeaveStatus.NO_REFERRAL
    counts = await counts_row(db, program_id, READER)
    assert counts is not None and (counts["pending"], counts["rejected"]) == (0, 1)


async def test_removed_during_hold_has_its_own_reason(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program_id = await _pending(service, clock)
    await service.record_leave(LeaveEvent(program_id, FRIEND, clock.now(), removed=True))
    assert (await referral_rows(db, program_id))[FRIEND]["reason"] == "removed_during_hold"


async def test_confirm_due_confirms_members_past_their_hold(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program_id = await _pending(service, clock, hold_hours=48)
    platform.join(CHANNEL_ID, FRIEND)

    early = await service.confirm_due(clock.now() + timedelta(hours=47))
    assert early.confirmed == 0 and platform.membership_calls == 0

    clock.advance(hours=48)
    result = await service.confirm_due()
    assert (result.confirmed, result.rejected) == (1, 0)
    assert [(r.program_id, r.referrer_id, r.counted) for r in result.referrers] == [
        (program_id, READER, 1)
    ]
    row = (await referral_rows(db, program_id))[FRIEND]
    assert row["state"] == "confirmed" and row["confirmed_at"] == clock.now()
    counts = await counts_row(db, program_id, READER)
    assert counts is not None
    assert (counts["pending"], counts["confirmed"], counts["counted"]) == (0, 1, 1)
    assert "referral.confirmed" in await event_kinds(db, program_id)
    # a second tick finds nothing to do
    assert (await service.confirm_due()).confirmed == 0


async def test_confirm_due_rejects_someone_whose_leave_was_missed(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program_id = await _pending(service, clock)
    clock.advance(days=3)
    result = await service.confirm_due()
    assert (result.confirmed, result.rejected, result.referrers) == (0, 1, [])
    row = (await referral_rows(db, program_id))[FRIEND]
    assert (row["state"], row["reason"]) == ("rejected", "left_during_hold")
    counts = await counts_row(db, program_id, READER)
    assert counts is not None and (counts["pending"], counts["rejected"]) == (0, 1)


async def test_confirm_due_waits_when_the_platform_cannot_answer(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program_id = await _pending(service, clock)
    platform.join(CHANNEL_ID, FRIEND)
    platform.membership_failures[FRIEND] = RetryAfter(5)
    clock.advance(days=3)
    assert (await service.confirm_due()).deferred == 1
    platform.membership_failures[FRIEND] = Unreachable(UnreachableReason.BOT_REMOVED)
    assert (await service.confirm_due()).deferred == 1
    assert (await referral_rows(db, program_id))[FRIEND]["state"] == "pending"
    del platform.membership_failures[FRIEND]
    assert (await service.confirm_due()).confirmed == 1


async def test_nothing_confirms_in_a_paused_program(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program_id = await _pending(service, clock)
    platform.join(CHANNEL_ID, FRIEND)
    await service.set_paused(program_id, True, "bot lost invite rights")
    clock.advance(days=3)
    assert (await service.confirm_due()).confirmed == 0
    assert platform.membership_calls == 0
    await service.set_paused(program_id, False)
    assert (await service.confirm_due()).confirmed == 1


async def test_confirm_due_pages_through_many_due_referrals(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program = await make_program(service)
    links = [
        (await service.get_or_create_link(program.id, person(READER + r))).link for r in range(5)
    ]
    events = [
        join(program, 10_000 + n, clock.now(), links[n % 5].code, f"k{n}") for n in range(120)
    ]
    await service.record_joins(events)
    platform.join(CHANNEL_ID, *range(10_000, 10_100))  # 20 left without us noticing
    clock.advance(days=2)
    result = await service.confirm_due(limit=25)
    assert (result.confirmed, result.rejected) == (100, 20)
    for r in range(5):
        counts = await counts_row(db, program.id, READER + r)
        assert counts is not None
        assert (counts["pending"], counts["confirmed"], counts["rejected"]) == (0, 20, 4)


async def test_leave_after_confirmation_keeps_counting_by_default(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program_id = await _pending(service, clock)
    platform.join(CHANNEL_ID, FRIEND)
    clock.advance(days=3)
    await service.confirm_due()
    outcome = await service.record_leave(LeaveEvent(program_id, FRIEND, clock.now()))
    assert (outcome.status, outcome.still_counts) == (LeaveStatus.LEFT_AFTER_CONFIRM, True)
    row = (await referral_rows(db, program_id))[FRIEND]
    assert row["state"] == "confirmed" and row["left_at"] == clock.now()
    counts = await counts_row(db, program_id, READER)
    assert counts is not None and (counts["confirmed"], counts["left"], counts["counted"]) == (
        1,
        1,
        1,
    )


async def test_subtract_policy_uncounts_leavers_and_recounts_on_return(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program_id = await _pending(service, clock, leave_policy="subtract")
    platform.join(CHANNEL_ID, FRIEND)
    clock.advance(days=3)
    await service.confirm_due()
    outcome = await service.record_leave(LeaveEvent(program_id, FRIEND, clock.now()))
    assert outcome.still_counts is False
    counts = await counts_row(db, program_id, READER)
    assert counts is not None and (counts["left"], counts["counted"]) == (1, 0)

    program = await service.get_program(program_id)
    back = await service.record_join(join(program, FRIEND, clock.now(), None, "back"))
    assert (back.status, back.reason) == (JoinStatus.NOT_COUNTED, Reason.REJOIN)
    counts = await counts_row(db, program_id, READER)
    assert counts is not None and (counts["confirmed"], counts["left"], counts["counted"]) == (
        1,
        0,
        1,
    )
    assert (await referral_rows(db, program_id))[FRIEND]["left_at"] is None


async def test_changing_the_leave_policy_recounts_existing_referrers(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program_id = await _pending(service, clock)
    platform.join(CHANNEL_ID, FRIEND)
    clock.advance(days=3)
    await service.confirm_due()
    await service.record_leave(LeaveEvent(program_id, FRIEND, clock.now()))
    await service.update_settings(program_id, None, leave_policy="subtract")
    counts = await counts_row(db, program_id, READER)
    assert counts is not None and counts["counted"] == 0
    await service.update_settings(program_id, None, leave_policy="keep")
    counts = await counts_row(db, program_id, READER)
    assert counts is not None and counts["counted"] == 1
