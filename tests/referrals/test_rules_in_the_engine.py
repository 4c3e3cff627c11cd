"""Rules that live in the engine, not in an adapter: the bot-subscription mode, pausing when
the bot loses its rights, the default join mode, managers deciding held referrals,
deleting a program, forgetting a person, and receipts of the through-the-bot mode."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from referrals.clock import FakeClock
from referrals.models import (
    JoinStatus,
    NotAllowed,
    PlatformUser,
    ProgramNotFound,
    RememberStatus,
)
from referrals.service import ReferralService
from storage import outbox as db_outbox
from storage.database import Database
from storage.schema import events, links, members, people, programs, referrals
from tests.helpers.factories import CHANNEL_ID, join, make_program, person
from tests.helpers.ports import FakePlatform
from tests.helpers.rows import counts_row, referral_rows

READER = 1001
OTHER_READER = 1002
FRIEND = 2002
ADMIN = 42
BOT_ID = 777


async def outbox(db: Database, template: str) -> list[dict[str, object]]:
    async with db.read() as conn:
        return [r for r in await db_outbox.outbox_rows(conn) if r["template"] == template]


async def rows(db: Database, table: object) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_through_the_bot_is_the_default_join_mode_for_every_chat(
    service: ReferralService,
) -> None:
    private = await service.create_program("telegram", -100, "supergroup", "Private")
    public = await service.create_program(
        "telegram", -200, "channel", "Public", username="public_news"
    )
    assert (private.join_mode, public.join_mode) == ("bot", "bot")


async def test_starting_a_newsletter_bot_subscribes_and_blocking_it_leaves(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service, destination_id=BOT_ID, kind="bot", hold_hours=0)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    outcome = await service.remember(link.code, person(FRIEND))
    assert outcome.status is RememberStatus.SUBSCRIBED
    row = (await referral_rows(db, program.id))[FRIEND]
    assert (row["referrer_id"], row["state"]) == (READER, "confirmed")
    # starting again (a plain /start) changes nothing
    await service.started("telegram", person(FRIEND), clock.now())
    assert len(await referral_rows(db, program.id)) == 1
    clock.advance(days=1)
    await service.blocked("telegram", FRIEND, clock.now())
    row = (await referral_rows(db, program.id))[FRIEND]
    assert row["left_at"] == clock.now()
    async with db.read() as conn:
        contact = (
            (await conn.execute(select(people).where(people.c.user_id == FRIEND))).mappings().one()
        )
    assert contact["blocked_at"] == clock.now()
    clock.advance(days=1)
    await service.unblocked("telegram", person(FRIEND), clock.now(), event_key="u1")
    await service.unblocked("telegram", person(FRIEND), clock.now(), event_key="u1")
    row = (await referral_rows(db, program.id))[FRIEND]
    assert row["left_at"] is None
    counts = await counts_row(db, program.id, READER)
    assert counts is not None and (counts["confirmed"], counts["counted"]) == (1, 1)


async def test_a_plain_start_subscribes_to_the_bot_but_not_to_chats(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    bot = await make_program(service, destination_id=BOT_ID, kind="bot")
    chat = await make_program(service)
    await service.started("telegram", person(FRIEND), clock.now())
    assert list(await referral_rows(db, bot.id)) == []  # nobody referred them
    async with db.read() as conn:
        member = (
            (await conn.execute(select(members).where(members.c.program_id == bot.id)))
            .mappings()
            .one()
        )
        in_chat = (
            await conn.execute(select(func.count()).where(members.c.program_id == chat.id))
        ).scalar_one()
    assert (member["user_id"], member["is_member"], in_chat) == (FRIEND, True, 0)


async def test_losing_the_rights_pauses_and_their_return_resumes(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await service.create_program(
        "telegram", CHANNEL_ID, "channel", "Daily Brief", created_by=ADMIN
    )
    paused = await service.rights_changed("telegram", CHANNEL_ID, can_run=False, actor_id=7)
    assert paused is not None and (paused.paused, paused.paused_reason) == (True, "lost_rights")
    again = await service.rights_changed("telegram", CHANNEL_ID, can_run=False, actor_id=7)
    assert again is not None and again.paused
    notices = await outbox(db, "program_notice")
    assert sorted(n["target_id"] for n in notices) == [7, ADMIN]  # told once, both
    assert all(n["context"]["paused"] is True for n in notices)
    resumed = await service.rights_changed("telegram", CHANNEL_ID, can_run=True, actor_id=None)
    assert resumed is not None and not resumed.paused
    assert len(await outbox(db, "program_notice")) == 3
    # a manager's own pause is not undone by rights coming back
    await service.set_paused(program.id, True, "paused by a manager")
    kept = await service.rights_changed("telegram", CHANNEL_ID, can_run=True, actor_id=None)
    assert kept is not None and kept.paused
    assert await service.rights_changed("telegram", -1, can_run=True, actor_id=None) is None


async def test_a_manager_decides_every_held_referral_of_one_reader_and_they_are_told(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program = await make_program(service, hold_hours=0, burst_limit=1)
    platform.admins[CHANNEL_ID] = {ADMIN}
    link = (await service.get_or_create_link(program.id, person(READER))).link
    outcomes = await service.record_joins(
        [join(program, FRIEND + n, clock.now(), link.code, f"k{n}") for n in range(4)]
    )
    assert [o.status for o in outcomes].count(JoinStatus.HELD) == 3
    page = await service.review_queue(program.id)
    assert (page.total, len(page.items)) == (3, 3)
    with pytest.raises(NotAllowed):
        await service.review_reader(program.id, READER, READER, approve=True)
    decided = await service.review_reader(program.id, READER, ADMIN, approve=True)
    assert [d.state for d in decided] == ["confirmed"] * 3
    counts = await counts_row(db, program.id, READER)
    assert counts is not None and (counts["held"], counts["counted"]) == (0, 4)
    assert (await service.review_queue(program.id)).total == 0
    notices = await outbox(db, "notify_reviewed")
    assert [(n["target_id"], n["context"]["approved_count"]) for n in notices] == [(READER, 3)]
    assert notices[0]["context"]["counted"] == 4
    async with db.read() as conn:
        decisions = list(
            (
                await conn.execute(
                    select(events.c.actor_id, events.c.data).where(
                        events.c.kind == "referral.confirmed", events.c.actor_id == ADMIN
                    )
                )
            ).all()
        )
    assert len(decisions) == 3 and all(json.loads(d)["manual"] for _, d in decisions)


async def test_deleting_a_program_takes_its_data_and_only_a_manager_may(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program = await make_program(service, hold_hours=0)
    other = await make_program(service, destination_id=-55)
    platform.admins[CHANNEL_ID] = {ADMIN}
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code))
    await service.get_or_create_link(other.id, person(READER))
    with pytest.raises(NotAllowed):
        await service.delete_program(program.id, READER)
    deleted = await service.delete_program(program.id, ADMIN)
    assert deleted.totals["confirmed"] == 1
    assert await service.find_program_by_id(program.id) is None
    async with db.read() as conn:
        left = {
            name: (
                await conn.execute(
                    select(func.count()).select_from(table).where(table.c.program_id == program.id)
                )
            ).scalar_one()
            for name, table in (("links", links), ("referrals", referrals), ("members", members))
        }
        audit = (
            (await conn.execute(select(events).where(events.c.kind == "program.deleted")))
            .mappings()
            .one()
        )
    assert left == {"links": 0, "referrals": 0, "members": 0}
    assert (audit["actor_id"], json.loads(audit["data"])["program_id"]) == (ADMIN, program.id)
    assert await rows(db, programs) == 1  # the other program is untouched
    with pytest.raises(ProgramNotFound):
        await service.delete_program(program.id, None)


async def test_forgetting_a_manager_keeps_their_decisions_with_the_bare_id(
    service: ReferralService, db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    program = await make_program(service, referrer_cap=1)
    platform.admins[CHANNEL_ID] = {ADMIN}
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code))
    await service.record_join(join(program, FRIEND + 1, clock.now(), link.code))
    await service.review(program.id, FRIEND + 1, ADMIN, approve=False, note="spam")
    await service.get_or_create_link(program.id, person(ADMIN))  # the manager is a reader too
    await service.forget(PlatformUser("telegram", ADMIN))
    async with db.read() as conn:
        kept = list(
            (
                await conn.execute(
                    select(events.c.kind, events.c.user_id).where(events.c.actor_id == ADMIN)
                )
            ).all()
        )
    assert kept == [("referral.rejected", FRIEND + 1)]


async def test_a_counted_friend_opening_another_readers_link_shows_on_that_receipt(
    service: ReferralService, db: Database, clock: FakeClock
) -> None:
    program = await make_program(service)
    first = (await service.get_or_create_link(program.id, person(READER))).link
    second = (await service.get_or_create_link(program.id, person(OTHER_READER))).link
    await service.remember(first.code, person(FRIEND))
    await service.record_join(join(program, FRIEND, clock.now()))
    clock.advance(hours=1)
    outcome = await service.remember(second.code, person(FRIEND))
    assert outcome.status is RememberStatus.ALREADY_MEMBER
    again = await service.remember(second.code, person(FRIEND))  # the same link twice
    assert again.status is RememberStatus.ALREADY_MEMBER
    receipt = await service.receipt(program.id, OTHER_READER)
    assert [(i.kind, i.state, i.reason) for i in receipt.items] == [
        ("attempt", "not_counted", "counted_for_other")
    ]
    assert receipt.not_counted == 1
    # the first reader's own link opened again by their counted friend: a rejoin there
    await service.remember(first.code, person(FRIEND))
    mine = await service.receipt(program.id, READER)
    assert sorted((i.kind, i.reason) for i in mine.items) == [
        ("attempt", "rejoin"),
        ("referral", None),
    ]


async def test_a_join_mode_the_platform_cannot_do_is_refused(
    service: ReferralService, platform: FakePlatform
) -> None:
    from referrals.models import SettingsError

    platform.supported_join_modes = frozenset({"bot"})
    with pytest.raises(SettingsError) as refused:
        await service.create_program("telegram", -300, "channel", "Only bot", join_mode="direct")
    assert (refused.value.key, refused.value.options) == ("join_mode", ("bot",))
    program = await service.create_program("telegram", -300, "channel", "Only bot")
    with pytest.raises(SettingsError):
        await service.update_settings(program.id, None, join_mode="direct")


async def test_a_program_paused_while_its_members_are_asked_confirms_nothing(
    db: Database, clock: FakeClock
) -> None:
    """confirm_due asks the platform outside any transaction; a program paused meanwhile
    (the bot lost its rights) must not confirm what was asked about."""
    from delivery.port import Membership, MembershipResult
    from referrals.service import ReferralService as Service

    class PausingPlatform(FakePlatform):
        service: Service | None = None

        async def get_membership(self, destination, user_id):  # type: ignore[no-untyped-def]
            assert self.service is not None
            found = await self.service.find_program("telegram", destination.destination_id)
            if found is not None and not found.paused:
                await self.service.set_paused(found.id, True, "lost_rights")
            return MembershipResult(Membership.MEMBER)

    platform = PausingPlatform()
    service = Service(db, clock, {"telegram": platform})
    platform.service = service
    program = await make_program(service, hold_hours=1)
    link = (await service.get_or_create_link(program.id, person(READER))).link
    await service.record_join(join(program, FRIEND, clock.now(), link.code))
    clock.advance(hours=2)
    result = await service.confirm_due()
    assert result.confirmed == 0
    assert (await referral_rows(db, program.id))[FRIEND]["state"] == "pending"
