"""Milestones unlock on the schedule from the state machine's change records: every rung
is granted once, delivered once, and a count that goes down never takes anything back."""

from __future__ import annotations

import asyncio

import pytest

from delivery.port import Unreachable, UnreachableReason
from referrals.models import LeaveEvent, NotAllowed, PlatformUser
from rewards.models import BadMilestone, GrantState
from tests.helpers.factories import CHANNEL_ID
from tests.rewards.conftest import MANAGER, READER, Rig


async def test_a_reader_reaching_a_milestone_gets_its_message_once(rig: Rig) -> None:
    await rig.rewards.add_milestone(
        rig.program.id,
        MANAGER,
        count=3,
        title="Sticker pack",
        reward_kind="message",
        message="Thanks {{ name }}! Here: <a href='https://example.com/s'>stickers</a>",
    )
    await rig.refer(2)
    await rig.tick()
    assert await rig.grants() == []
    progress = await rig.rewards.progress(rig.program.id, READER)
    assert (progress.rewardable, progress.next_title, progress.missing) == (2, "Sticker pack", 1)

    await rig.refer(1)
    await rig.tick()
    await rig.tick()  # a second run finds nothing new
    [grant] = await rig.grants()
    assert (grant["state"], grant["rung"], grant["occurrence"]) == ("delivered", 3, 1)
    [sent] = rig.sender.to(READER, "reward_delivered")
    assert sent.context["title"] == "Sticker pack"
    assert (
        "Thanks User 1001!" in sent.context["custom_html"]
        or "Thanks Reader!" in (sent.context["custom_html"])
    )
    assert sent.context["link"]  # the reader's link, offered again at the moment of success


async def test_a_reader_name_cannot_inject_markup_into_a_reward(rig: Rig) -> None:
    await rig.people.seen("telegram", READER, display_name="<b>x</b>&", started=True)
    await rig.rewards.add_milestone(
        rig.program.id, MANAGER, count=1, title="T", reward_kind="message", message="Hi {{ name }}"
    )
    await rig.refer(1)
    await rig.tick()
    [sent] = rig.sender.to(READER, "reward_delivered")
    assert sent.context["custom_html"] == "Hi &lt;b&gt;x&lt;/b&gt;&amp;"


async def test_recurring_milestones_never_grant_a_rung_twice(rig: Rig) -> None:
    await rig.referrals.update_settings(rig.program.id, None, leave_policy="subtract")
    await rig.rewards.add_milestone(
        rig.program.id, MANAGER, step=2, title="Code", reward_kind="message", message="Yay"
    )
    friends = await rig.refer(5)
    await rig.tick()
    assert [g["occurrence"] for g in await rig.grants()] == [1, 2]

    # a friend leaves (subtracted): 4; back to 5 by another friend: nothing new
    rig.platform.leave(CHANNEL_ID, friends[0])
    await rig.referrals.record_leave(LeaveEvent(rig.program.id, friends[0], rig.clock.now()))
    await rig.tick()
    await rig.refer(1)
    await rig.tick()
    assert [g["occurrence"] for g in await rig.grants()] == [1, 2]
    assert all(g["state"] == "delivered" for g in await rig.grants())  # nothing revoked
    await rig.refer(1)  # 6
    await rig.tick()
    assert [g["occurrence"] for g in await rig.grants()] == [1, 2, 3]
    assert len(rig.sender.to(READER, "reward_delivered")) == 3


async def test_adding_a_milestone_grants_readers_who_already_reached_it(rig: Rig) -> None:
    await rig.refer(4)
    await rig.tick()
    preview = await rig.rewards.preview(rig.program.id, MANAGER, count=3)
    assert (preview.readers, preview.grants) == (1, 1)
    _, granted = await rig.rewards.add_milestone(
        rig.program.id, MANAGER, count=3, title="VIP", reward_kind="message", message="In!"
    )
    assert granted == 1
    await rig.tick()
    assert [g["state"] for g in await rig.grants()] == ["delivered"]


async def test_editing_a_count_never_grants_twice_and_lowering_grants_at_once(rig: Rig) -> None:
    milestone, _ = await rig.rewards.add_milestone(
        rig.program.id, MANAGER, count=2, title="A", reward_kind="message", message="A"
    )
    await rig.refer(2)
    await rig.tick()
    await rig.rewards.edit_milestone(milestone.id, MANAGER, count=1)
    await rig.tick()
    assert len(await rig.grants()) == 1
    other = await rig.rewards.add_milestone(
        rig.program.id, MANAGER, count=5, title="B", reward_kind="message", message="B"
    )
    preview = await rig.rewards.preview(rig.program.id, MANAGER, count=2, milestone_id=other[0].id)
    assert preview.grants == 1
    _, granted = await rig.rewards.edit_milestone(other[0].id, MANAGER, count=2)
    assert granted == 1


async def test_removing_a_milestone_keeps_what_was_granted(rig: Rig) -> None:
    milestone, _ = await rig.rewards.add_milestone(
        rig.program.id, MANAGER, count=1, title="A", reward_kind="message", message="A"
    )
    await rig.refer(1)
    await rig.tick()
    await rig.rewards.remove_milestone(milestone.id, MANAGER)
    assert [g["state"] for g in await rig.grants()] == ["delivered"]
    assert await rig.rewards.milestones(rig.program.id) == []


async def test_a_paused_milestone_grants_nothing_until_resumed(rig: Rig) -> None:
    milestone, _ = await rig.rewards.add_milestone(
        rig.program.id, MANAGER, count=1, title="A", reward_kind="message", message="A"
    )
    await rig.rewards.set_milestone_paused(milestone.id, MANAGER, True)
    await rig.refer(1)
    await rig.tick()
    assert await rig.grants() == []
    await rig.rewards.set_milestone_paused(milestone.id, MANAGER, False)
    await rig.tick()
    assert [g["state"] for g in await rig.grants()] == ["delivered"]


async def test_only_managers_set_milestones_and_bad_ones_change_nothing(rig: Rig) -> None:
    with pytest.raises(NotAllowed):
        await rig.rewards.add_milestone(
            rig.program.id, READER, count=1, title="A", reward_kind="message", message="A"
        )
    for bad in [
        {"count": 0, "title": "A", "reward_kind": "message", "message": "A"},
        {"count": 3, "title": " ", "reward_kind": "message", "message": "A"},
        {"count": 3, "title": "A", "reward_kind": "message", "message": "{{ name"},
        {"count": 3, "title": "A", "reward_kind": "message", "message": "<div>x</div>"},
        {"count": 3, "title": "A", "reward_kind": "message", "message": "x" * 5000},
        {"count": 3, "title": "A", "reward_kind": "coupon"},
        {"count": 3, "title": "A", "reward_kind": "role", "role_id": 5},
        {"count": 3, "title": "A", "reward_kind": "chat", "chat_id": -100555},
        {"count": 3, "title": "A", "reward_kind": "gold"},
    ]:
        with pytest.raises(BadMilestone):
            await rig.rewards.add_milestone(rig.program.id, MANAGER, **bad)
    assert await rig.rewards.milestones(rig.program.id) == []


async def test_a_grant_whose_reader_fell_below_its_rung_waits_for_a_manager(rig: Rig) -> None:
    await rig.referrals.update_settings(rig.program.id, None, leave_policy="subtract")
    await rig.rewards.add_milestone(
        rig.program.id, MANAGER, count=2, title="A", reward_kind="message", message="A"
    )
    friends = await rig.refer(2)
    await rig.rewards.evaluate()  # granted, not delivered yet
    rig.platform.leave(CHANNEL_ID, friends[0])
    await rig.referrals.record_leave(LeaveEvent(rig.program.id, friends[0], rig.clock.now()))
    await rig.tick()
    [grant] = await rig.grants()
    assert grant["state"] == GrantState.BELOW_RUNG
    items, total = await rig.rewards.queue(rig.program.id, MANAGER, "approval")
    assert total == 1 and items[0].id == grant["id"]
    await rig.rewards.decide(grant["id"], MANAGER, approve=True)
    await rig.tick()
    assert [g["state"] for g in await rig.grants()] == ["delivered"]


async def test_manual_approval_and_rejection_are_audited(rig: Rig) -> None:
    await rig.rewards.add_milestone(
        rig.program.id,
        MANAGER,
        step=1,
        title="A",
        reward_kind="message",
        message="A",
        approval="manual",
    )
    await rig.refer(2)
    await rig.tick()
    grants = await rig.grants()
    assert [g["state"] for g in grants] == ["awaiting_approval"] * 2
    assert rig.sender.to(MANAGER, "grants_waiting")
    with pytest.raises(NotAllowed):
        await rig.rewards.decide(grants[0]["id"], READER, approve=True)
    await rig.rewards.decide(grants[0]["id"], MANAGER, approve=True)
    await rig.rewards.decide(grants[1]["id"], MANAGER, approve=False)
    await rig.tick()
    assert [g["state"] for g in await rig.grants()] == ["delivered", "rejected"]
    async with rig.db.read() as conn:
        from sqlalchemy import select

        from storage.schema import events

        rows = (
            await conn.execute(
                select(events.c.kind, events.c.actor_id).where(
                    events.c.kind.in_(["grant_approved", "grant_rejected"])
                )
            )
        ).all()
    assert sorted(rows) == [("grant_approved", MANAGER), ("grant_rejected", MANAGER)]


async def test_the_reward_cap_limits_what_is_rewardable_not_what_counts(rig: Rig) -> None:
    await rig.referrals.update_settings(
        rig.program.id, None, reward_cap=2, reward_cap_period="week"
    )
    await rig.rewards.add_milestone(
        rig.program.id, MANAGER, count=3, title="A", reward_kind="message", message="A"
    )
    await rig.refer(3)
    await rig.tick()
    counts = await rig.referrals.counts(rig.program.id, READER)
    assert counts.counted == 3
    assert await rig.grants() == []
    assert (await rig.rewards.progress(rig.program.id, READER)).rewardable == 2
    rig.later(days=7)
    await rig.refer(1)
    await rig.tick()
    assert [g["state"] for g in await rig.grants()] == ["delivered"]


async def test_a_blocked_reader_gets_the_reward_when_back(rig: Rig) -> None:
    await rig.rewards.add_milestone(
        rig.program.id, MANAGER, count=1, title="A", reward_kind="message", message="A"
    )
    rig.sender.outcomes[READER] = Unreachable(UnreachableReason.BLOCKED, "blocked")
    await rig.refer(1)
    await rig.tick()
    [grant] = await rig.grants()
    assert grant["state"] == "undeliverable"
    await rig.tick()
    assert (await rig.grants())[0]["state"] == "undeliverable"  # not retried while away
    del rig.sender.outcomes[READER]
    rig.later(minutes=1)
    await rig.started(READER)
    await rig.tick()
    assert [g["state"] for g in await rig.grants()] == ["delivered"]
    assert len(rig.sender.to(READER, "reward_delivered")) == 1


async def test_the_friend_reward_waits_unclaimed_until_the_friend_opens_the_bot(
    rig: Rig,
) -> None:
    await rig.rewards.add_milestone(
        rig.program.id,
        MANAGER,
        role="friend",
        title="Welcome gift",
        reward_kind="message",
        message="Welcome!",
    )
    [friend] = await rig.refer(1)
    await rig.tick()
    [grant] = await rig.grants(friend)
    assert (grant["state"], grant["source"]) == ("unclaimed", "friend")
    assert await rig.rewards.reader_returned("telegram", friend) == 1
    await rig.started(friend)
    await rig.tick()
    assert [g["state"] for g in await rig.grants(friend)] == ["delivered"]


async def test_forgetting_a_reader_keeps_grants_without_identity(rig: Rig) -> None:
    await rig.rewards.add_milestone(
        rig.program.id,
        MANAGER,
        count=1,
        title="Prize",
        reward_kind="manual",
        question="Your postal address?",
    )
    await rig.refer(1)
    await rig.tick()
    [grant] = await rig.grants()
    assert grant["state"] == "awaiting_answer"
    await rig.rewards.answer("telegram", READER, grant["id"], "1 Main St")
    summary = await rig.referrals.forget(PlatformUser("telegram", READER))
    assert summary.grants == 1
    assert await rig.grants() == []
    async with rig.db.read() as conn:
        from storage import rewards as db_rewards

        row = await db_rewards.grant_by_id(conn, grant["id"])
    assert row is not None and row["reader_id"] is None and row["answer"] is None


async def test_counting_leavers_again_shows_what_it_grants_before_it_does(rig: Rig) -> None:
    await rig.referrals.update_settings(rig.program.id, None, leave_policy="subtract")
    friends = await rig.refer(3)
    rig.platform.leave(CHANNEL_ID, friends[0])
    await rig.referrals.record_leave(LeaveEvent(rig.program.id, friends[0], rig.clock.now()))
    await rig.refer(1)  # back to 3 counted, with one friend who left
    await rig.rewards.evaluate()
    await rig.rewards.add_milestone(
        rig.program.id, MANAGER, count=4, title="A", reward_kind="message", message="A"
    )
    assert await rig.grants() == []
    # counting the friend who left again makes 4: one reward is owed
    preview = await rig.rewards.preview_leave_policy(rig.program.id, MANAGER, "keep")
    assert (preview.readers, preview.grants) == (1, 1)
    nothing = await rig.rewards.preview_leave_policy(rig.program.id, MANAGER, "subtract")
    assert (nothing.readers, nothing.grants) == (0, 0)
    with pytest.raises(NotAllowed):
        await rig.rewards.preview_leave_policy(rig.program.id, READER, "keep")
    await rig.referrals.update_settings(rig.program.id, None, leave_policy="keep")
    await rig.tick()
    assert [(g["rung"], g["state"]) for g in await rig.grants()] == [(4, "delivered")]


async def test_two_milestone_jobs_at_once_add_up_every_change(rig: Rig) -> None:
    """Two instances' milestone jobs on one database take disjoint change records; a
    reader's changes split between them still add up (no lost update of the total)."""
    readers = [READER + n for n in range(1, 6)]
    for reader in readers:
        await rig.refer(4, reader, confirm=False)
    rig.later(hours=rig.program.hold_hours + 1)
    await rig.referrals.confirm_due()
    await asyncio.gather(
        rig.rewards.evaluate(limit=3), rig.rewards.evaluate(limit=2), rig.rewards.evaluate(limit=3)
    )
    for reader in readers:
        progress = await rig.rewards.progress(rig.program.id, reader)
        assert progress.rewardable == 4, reader
