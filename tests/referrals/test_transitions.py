"""The one state machine: change records per reader whose counted total moved, their
consumers' marks, and the rules every transition obeys."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from referrals import transitions
from referrals.clock import FakeClock
from referrals.models import JoinStatus, LeaveEvent, Reason
from referrals.service import ReferralService
from referrals.transitions import IllegalTransition, Move, Transition
from storage import counts as db_counts
from storage.database import Database
from storage.schema import count_changes, events
from tests.helpers.factories import CHANNEL_ID, join, make_program, person
from tests.helpers.ports import FakePlatform
from tests.helpers.rows import counts_row, referral_rows

READER = 1001
OTHER_READER = 1002
FRIEND = 2002
ADMIN = 42


async def changes(db: Database, program_id: int) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [dict(row) for row in await db_counts.count_changes_of(conn, program_id)]


def summary(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["reader_id"], r["before"], r["after"], r["transition"]) for r in rows]


async def test_a_join_with_no_hold_writes_one_change_record(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service, hold_hours=0)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    outcomes = await service.record_joins(
        [join(program, FRIEND + n, clock.now(), link.code, f"k{n}") for n in range(3)]
    )
    assert {o.status for o in outcomes} == {JoinStatus.CONFIRMED}
    rows = await changes(db, program.id)
    # one per referral, chained from the reader's total before to the total after
    assert summary(rows) == [
        (READER, 0, 1, "join"),
        (READER, 1, 2, "join"),
        (READER, 2, 3, "join"),
    ]
    assert {r["referred_id"] for r in rows} == {FRIEND, FRIEND + 1, FRIEND + 2}
    assert all(r["joined_at"] == clock.now() and r["confirmed_at"] == clock.now() for r in rows)
    assert not any(r["manual"] or r["held"] for r in rows)


async def test_pending_joins_write_no_change_record_until_confirmed(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program = await make_program(service, hold_hours=48)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    joined_at = clock.now()
    await service.record_join(join(program, FRIEND, joined_at, link.code))
    assert await changes(db, program.id) == []
    platform.join(CHANNEL_ID, FRIEND)
    clock.advance(hours=49)
    result = await service.confirm_due()
    assert result.confirmed == 1
    rows = await changes(db, program.id)
    assert summary(rows) == [(READER, 0, 1, "confirm")]
    assert (rows[0]["joined_at"], rows[0]["confirmed_at"]) == (joined_at, clock.now())


async def test_leaving_under_the_subtract_policy_and_coming_back_are_recorded(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service, hold_hours=0, leave_policy="subtract")
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code, "j1"))
    clock.advance(days=3)
    await service.record_leave(LeaveEvent(program.id, FRIEND, clock.now()))
    clock.advance(days=1)
    await service.record_join(join(program, FRIEND, clock.now(), None, "j2"))
    assert summary(await changes(db, program.id)) == [
        (READER, 0, 1, "join"),
        (READER, 1, 0, "leave"),
        (READER, 0, 1, "rejoin"),
    ]
    counts = await counts_row(db, program.id, READER)
    assert counts is not None and (counts["counted"], counts["left"]) == (1, 0)


async def test_a_leave_under_the_keep_policy_moves_no_count(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service, hold_hours=0)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code))
    await service.record_leave(LeaveEvent(program.id, FRIEND, clock.now()))
    assert summary(await changes(db, program.id)) == [(READER, 0, 1, "join")]


async def test_the_leave_policy_recount_writes_one_record_per_reader_it_changes(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service, hold_hours=0)
    first = (await service.get_or_create_link(program.id, person(READER))).link
    second = (await service.get_or_create_link(program.id, person(OTHER_READER))).link
    for n in range(3):
        await service.record_join(join(program, FRIEND + n, clock.now(), first.code))
    await service.record_join(join(program, FRIEND + 10, clock.now(), second.code))
    await service.record_leave(LeaveEvent(program.id, FRIEND, clock.now()))
    await service.record_leave(LeaveEvent(program.id, FRIEND + 1, clock.now()))
    await service.update_settings(program.id, None, leave_policy="subtract")
    recounts = [r for r in await changes(db, program.id) if r["transition"] == "recount"]
    # the second reader's friend stayed: their total did not move, no record
    assert summary(recounts) == [(READER, 3, 1, "recount")]
    assert recounts[0]["referred_id"] is None
    await service.update_settings(program.id, None, leave_policy="keep")
    recounts = [r for r in await changes(db, program.id) if r["transition"] == "recount"]
    assert summary(recounts)[-1] == (READER, 1, 3, "recount")


async def test_a_managers_decision_is_a_manual_record_and_says_it_was_held(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program = await make_program(service, hold_hours=0, referrer_cap=1)
    platform.admins[CHANNEL_ID] = {ADMIN}
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code))
    held = await service.record_join(join(program, FRIEND + 1, clock.now(), link.code))
    assert held.status is JoinStatus.HELD
    await service.review(program.id, FRIEND + 1, ADMIN, approve=True)
    rows = await changes(db, program.id)
    assert summary(rows) == [(READER, 0, 1, "join"), (READER, 1, 2, "review")]
    assert (rows[1]["manual"], rows[1]["held"]) == (True, True)


async def test_consumers_mark_what_they_handled_and_a_rollback_unmarks(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service, hold_hours=0)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_joins(
        [join(program, FRIEND + n, clock.now(), link.code, f"k{n}") for n in range(3)]
    )
    with pytest.raises(RuntimeError):
        async with db.write() as conn:
            taken = await db_counts.claim_count_changes(conn, "milestones", clock.now())
            assert len(taken) == 3
            raise RuntimeError("the consumer crashed before its output was written")
    async with db.write() as conn:
        first = await db_counts.claim_count_changes(conn, "milestones", clock.now(), limit=2)
    async with db.write() as conn:
        rest = await db_counts.claim_count_changes(conn, "milestones", clock.now())
        nothing_left = await db_counts.claim_count_changes(conn, "milestones", clock.now())
    assert [r["after"] for r in first] == [1, 2]
    assert [r["after"] for r in rest] == [3]
    assert nothing_left == []
    # another consumer has its own marks
    async with db.write() as conn:
        boards = await db_counts.claim_count_changes(conn, "boards", clock.now())
    assert len(boards) == 3
    with pytest.raises(ValueError, match="unknown change consumer"):
        async with db.write() as conn:
            await db_counts.claim_count_changes(conn, "nobody", clock.now())


async def test_a_pending_friend_who_joins_again_had_left(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service, hold_hours=48)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code, "j1"))
    clock.advance(hours=5)  # the leave update never arrived
    again = await service.record_join(join(program, FRIEND, clock.now(), link.code, "j2"))
    assert (again.status, again.reason) == (JoinStatus.NOT_COUNTED, Reason.REJOIN)
    row = (await referral_rows(db, program.id))[FRIEND]
    assert (row["state"], row["reason"]) == ("rejected", "left_during_hold")
    counts = await counts_row(db, program.id, READER)
    assert counts is not None and (counts["pending"], counts["rejected"]) == (0, 1)


async def test_undo_reverses_a_decision_with_an_audit_event_and_a_change_record(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program = await make_program(service, hold_hours=0)
    platform.admins[CHANNEL_ID] = {ADMIN}
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code))
    undone = await service.undo(program.id, FRIEND, ADMIN, note="a bot account")
    assert undone.state == "rejected"
    row = (await referral_rows(db, program.id))[FRIEND]
    assert (row["state"], row["reason"], row["decided_by"]) == ("rejected", "manual", ADMIN)
    redone = await service.undo(program.id, FRIEND, ADMIN)
    assert redone.state == "confirmed"
    rows = await changes(db, program.id)
    assert summary(rows) == [
        (READER, 0, 1, "join"),
        (READER, 1, 0, "undo"),
        (READER, 0, 1, "undo"),
    ]
    assert rows[1]["manual"] is True
    async with db.read() as conn:
        audit = (
            await conn.execute(select(events).where(events.c.kind == "referral.undone"))
        ).mappings()
        found = [(e["actor_id"], json.loads(e["data"])) for e in audit]
    assert [(actor, data["from"], data["to"]) for actor, data in found] == [
        (ADMIN, "confirmed", "rejected"),
        (ADMIN, "rejected", "confirmed"),
    ]
    assert found[0][1]["note"] == "a bot account"


async def test_illegal_moves_are_refused_with_a_message(db: Database, clock: FakeClock) -> None:
    move = Move(1, 2, 3, Transition.CONFIRM, "rejected", "confirmed", clock.now())
    with pytest.raises(IllegalTransition, match="rejected -> confirmed"):
        async with db.write() as conn:
            await transitions.record(conn, [move], subtract={}, now=clock.now())
    async with db.read() as conn:
        assert list(await conn.execute(select(count_changes))) == []


def test_what_counts_follows_the_leave_policy() -> None:
    assert transitions.contribution("confirmed", False, True) == {"confirmed": 1, "counted": 1}
    assert transitions.contribution("confirmed", True, False) == {
        "confirmed": 1,
        "left": 1,
        "counted": 1,
    }
    assert transitions.contribution("confirmed", True, True) == {"confirmed": 1, "left": 1}
    assert transitions.contribution("pending", False, True) == {"pending": 1}
    assert transitions.contribution(None, False, False) == {}


async def test_changes_stay_within_their_program_when_a_program_is_deleted(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program = await make_program(service, hold_hours=0)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code))
    clock.advance(timedelta(minutes=1))
    await service.delete_program(program.id, None)
    assert await changes(db, program.id) == []


async def test_a_confirmation_and_a_leave_in_one_change_both_have_records(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    """The scheduler was down: a friend who stayed the hold and left after it is confirmed
    as of the hold's end, then marked left, in one transaction. Under the subtract policy
    the reader's total ends where it began, yet they did reach 1 (a milestone's rung)."""
    program = await make_program(service, hold_hours=48, leave_policy="subtract")
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code))
    clock.advance(hours=50)
    await service.record_leave(LeaveEvent(program.id, FRIEND, clock.now()))
    assert summary(await changes(db, program.id)) == [
        (READER, 0, 1, "confirm"),
        (READER, 1, 0, "leave"),
    ]


async def test_undoing_back_to_counted_follows_whether_the_friend_is_still_in(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program = await make_program(service, hold_hours=0, leave_policy="subtract")
    platform.admins[CHANNEL_ID] = {ADMIN}
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code, "j1"))
    clock.advance(days=1)
    await service.record_leave(LeaveEvent(program.id, FRIEND, clock.now()))
    await service.undo(program.id, FRIEND, ADMIN)  # confirmed (away) -> rejected
    clock.advance(days=1)
    await service.record_join(join(program, FRIEND, clock.now(), None, "j2"))  # back in
    await service.undo(program.id, FRIEND, ADMIN)  # rejected -> confirmed: they are in
    row = (await referral_rows(db, program.id))[FRIEND]
    assert (row["state"], row["left_at"]) == ("confirmed", None)
    counts = await counts_row(db, program.id, READER)
    assert counts is not None and (counts["counted"], counts["left"]) == (1, 0)
