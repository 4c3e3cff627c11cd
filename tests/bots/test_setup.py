"""Program setup, end to end: the bot added as an admin, /setup in a group, the checks of
the person and of the bot's rights, anonymous admins, the default join mode, the
bot-subscription mode, group migration, and rights lost and regained."""

from __future__ import annotations

from pathlib import Path

from sandbox import SimUser
from storage.schema import programs, referrals
from tests.bots.conftest import Harness, running_harness
from tests.helpers.telegram import (
    button_texts,
    program_row,
    set_up_chat,
    table_rows,
    url_in,
)

OWNER_ID = 7_000_001


async def test_adding_the_bot_to_a_channel_dms_a_setup_button_that_creates_the_program(
    harness: Harness, owner: SimUser
) -> None:
    world, bot = harness.world, harness.bot
    chat = world.add_chat("channel", "Daily Brief", owner=owner)
    await harness.say(owner, "/start")
    world.add_bot_to_chat(chat, bot, by=owner)
    await harness.settle()

    offer = harness.last_to(owner)
    assert "Thanks for adding me to <b>Daily Brief</b>" in (offer.raw_text or "")
    assert button_texts(offer) == ["Set up Daily Brief"]
    assert await program_row(harness, chat.id) is None  # nothing happens before the tap

    world.press_button(owner, offer, text="Set up Daily Brief")
    await harness.settle()
    assert "The referral program of Daily Brief is ready" in harness.last_to(owner).text
    row = await program_row(harness, chat.id)
    assert row is not None
    assert (row["kind"], row["title"], row["created_by"]) == ("channel", "Daily Brief", owner.id)
    assert row["paused"] is False


async def test_adding_the_bot_to_a_supergroup_offers_setup_to_whoever_added_it(
    harness: Harness, owner: SimUser
) -> None:
    world, bot = harness.world, harness.bot
    chat = world.add_chat("supergroup", "Readers Club", owner=owner)
    ada = world.add_user("Ada")
    world.add_member(chat, ada)
    world.promote(chat, ada, rights={"can_promote_members": True})
    await harness.say(ada, "/start")
    world.add_bot_to_chat(chat, bot, by=ada)
    await harness.settle()

    assert harness.texts_to(owner) == []  # the owner did not add it: nothing to them
    world.press_button(ada, harness.last_to(ada), text="Set up Readers Club")
    await harness.settle()
    row = await program_row(harness, chat.id)
    assert row is not None and row["created_by"] == ada.id


async def test_setup_typed_in_a_group_by_an_admin_sets_the_program_up(
    harness: Harness, owner: SimUser
) -> None:
    world, bot = harness.world, harness.bot
    chat = world.add_chat("supergroup", "Readers Club", owner=owner)
    world.add_bot_to_chat(chat, bot, by=owner)  # the owner never started the bot
    await harness.settle()
    ada = world.add_user("Ada")
    world.add_member(chat, ada)
    world.promote(chat, ada)

    await harness.say(ada, "/setup", to=chat)
    answer = harness.last_to(chat)
    assert "The referral program of Readers Club is ready" in answer.text
    row = await program_row(harness, chat.id)
    assert row is not None and row["created_by"] == ada.id

    # Typing it again is harmless: still one program, same settings.
    await harness.say(ada, "/setup@loopbot", to=chat)
    assert "is ready" in harness.last_to(chat).text
    assert [r["id"] for r in await table_rows(harness, programs)] == [row["id"]]


async def test_setup_by_a_member_who_is_not_an_admin_is_refused_and_changes_nothing(
    harness: Harness, owner: SimUser
) -> None:
    world, bot = harness.world, harness.bot
    chat = world.add_chat("supergroup", "Readers Club", owner=owner)
    world.add_bot_to_chat(chat, bot, by=owner)
    await harness.settle()
    mallory = world.add_user("Mallory")
    world.add_member(chat, mallory)

    await harness.say(mallory, "/setup", to=chat)
    assert "Only an admin of Readers Club can set up" in harness.last_to(chat).text
    assert await table_rows(harness, programs) == []

    # Once the program exists and a manager paused it, a member's /setup still changes
    # nothing (setting up again would resume it and refresh its title).
    await harness.say(owner, "/setup", to=chat)
    await harness.say(owner, "/pause", to=chat)
    before = await program_row(harness, chat.id)
    assert before is not None and before["paused"] is True
    world.chat(chat).title = "Renamed by nobody"
    await harness.say(mallory, "/setup", to=chat)
    assert "Only an admin" in harness.last_to(chat).text
    assert await program_row(harness, chat.id) == before


async def test_a_bot_without_the_invite_right_is_told_exactly_what_is_missing(
    harness: Harness, owner: SimUser
) -> None:
    world, bot = harness.world, harness.bot
    chat = world.add_chat("supergroup", "Readers Club", owner=owner)
    await harness.say(owner, "/start")
    world.add_bot_to_chat(chat, bot, by=owner, rights={"can_invite_users": False})
    await harness.settle()

    told = harness.last_to(owner)
    assert "I cannot run the referral program of Readers Club yet" in told.text
    assert "• Invite users via link" in told.text
    assert "Post messages" not in told.text  # only what is really missing
    assert told.inline_buttons == []  # no setup button that could not work

    await harness.say(owner, "/setup", to=chat)
    assert "• Invite users via link" in harness.last_to(chat).text
    assert await table_rows(harness, programs) == []


async def test_a_bot_added_as_a_plain_member_asks_to_be_made_an_administrator(
    harness: Harness, owner: SimUser
) -> None:
    world, bot = harness.world, harness.bot
    chat = world.add_chat("supergroup", "Readers Club", owner=owner)
    await harness.say(owner, "/start")
    world.add_bot_to_chat(chat, bot, by=owner, admin=False)
    await harness.settle()
    told = harness.last_to(owner)
    assert "Make me an administrator" in told.text and "• administrator" in told.text
    assert told.inline_buttons == []
    assert await table_rows(harness, programs) == []


async def test_a_channel_lists_every_missing_right_on_the_offer_and_on_setup(
    harness: Harness, owner: SimUser
) -> None:
    world, bot = harness.world, harness.bot
    chat = world.add_chat("channel", "Daily Brief", owner=owner)
    await harness.say(owner, "/start")
    world.add_bot_to_chat(
        chat, bot, by=owner, rights={"can_invite_users": False, "can_post_messages": False}
    )
    await harness.settle()
    told = harness.last_to(owner).text
    assert "• Invite users via link" in told and "• Post messages" in told

    world.set_admin_rights(chat, bot, by=owner, rights={"can_invite_users": True})
    await harness.settle()
    # The invite right is back but posting is still missing: the offer says so.
    told = harness.last_to(owner)
    assert "• Post messages" in told.text and "Invite users" not in told.text
    assert told.inline_buttons == []
    assert await table_rows(harness, programs) == []

    world.set_admin_rights(chat, bot, by=owner, rights={"can_post_messages": True})
    await harness.settle()
    world.press_button(owner, harness.last_to(owner), text="Set up Daily Brief")
    await harness.settle()
    assert await program_row(harness, chat.id) is not None


async def test_an_anonymous_admin_is_asked_to_finish_setup_in_a_private_chat(
    harness: Harness, owner: SimUser
) -> None:
    world, bot = harness.world, harness.bot
    chat = world.add_chat("supergroup", "Readers Club", owner=owner)
    world.add_bot_to_chat(chat, bot, by=owner)
    await harness.settle()
    ghost = world.add_user("Ghost")
    world.add_member(chat, ghost)
    world.promote(chat, ghost, is_anonymous=True)

    await harness.say(ghost, "/setup", to=chat)
    asked = harness.last_to(chat)
    assert "You are posting as the group" in asked.text
    assert await table_rows(harness, programs) == []

    world.press_button(ghost, asked, text="Open the bot")  # a deep link: /start setup_<id>
    await harness.settle()
    assert "The referral program of Readers Club is ready" in harness.last_to(ghost).text
    row = await program_row(harness, chat.id)
    assert row is not None and row["created_by"] == ghost.id


async def test_the_private_setup_hand_off_still_checks_that_the_person_is_an_admin(
    harness: Harness, owner: SimUser
) -> None:
    world, bot = harness.world, harness.bot
    chat = world.add_chat("supergroup", "Readers Club", owner=owner)
    world.add_bot_to_chat(chat, bot, by=owner)
    await harness.settle()
    mallory = world.add_user("Mallory")
    world.add_member(chat, mallory)
    world.open_link(mallory, f"https://t.me/loopbot?start=setup_{chat.id}")
    await harness.settle()
    assert "Only an admin of Readers Club" in harness.last_to(mallory).text
    assert await table_rows(harness, programs) == []


async def test_a_public_chat_defaults_to_joining_through_the_bot(
    harness: Harness, owner: SimUser
) -> None:
    _, row = await set_up_chat(harness, owner, "supergroup", "Readers Club", "readersclub")
    assert (row["join_mode"], row["username"]) == ("bot", "readersclub")
    assert "friends come through me" in harness.last_to(owner).text

    ana = harness.world.add_user("Ana")
    await harness.say(ana, "/invite")
    assert url_in(harness.last_to(ana)).startswith("https://t.me/loopbot?start=")


async def test_a_private_chat_defaults_to_through_the_bot_and_may_use_direct_links(
    harness: Harness, owner: SimUser
) -> None:
    chat, row = await set_up_chat(harness, owner, "channel", "Daily Brief")
    # through the bot everywhere: a friend who starts the bot can be written to later
    assert (row["join_mode"], row["username"]) == ("bot", None)
    assert "friends come through me" in harness.last_to(owner).text
    assert row["join_url"] is not None  # the private chat's own link, for the Join button

    await harness.app.referrals.update_settings(row["id"], None, join_mode="direct")
    assert harness.app.telegram is not None
    harness.app.telegram.programs.forget(chat.id)
    ana = harness.world.add_user("Ana")
    await harness.say(ana, "/invite")
    link = harness.world.find_link(url_in(harness.last_to(ana), "https://t.me/+"))
    assert link is not None and link.creates_join_request and link.chat_id == chat.id


async def test_an_owner_makes_the_bot_itself_a_newsletter(tmp_path: Path) -> None:
    async with running_harness(tmp_path, telegram_owners=[OWNER_ID]) as harness:
        world, bot = harness.world, harness.bot
        olga = world.add_user("Olga", user_id=OWNER_ID)
        await harness.say(olga, "/setup bot")
        assert "This bot is now a newsletter of its own" in harness.last_to(olga).text
        row = await program_row(harness, bot.id)
        assert row is not None and (row["kind"], row["created_by"]) == ("bot", OWNER_ID)

        # A reader's link is a deep link; a friend who starts the bot through it subscribes.
        ana = world.add_user("Ana")
        await harness.say(ana, "/invite")
        url = url_in(harness.last_to(ana))
        assert url.startswith("https://t.me/loopbot?start=")
        bob = world.add_user("Bob")
        world.open_link(bob, url)
        await harness.settle()
        assert "Ana" in harness.last_to(bob).text
        rows = await table_rows(harness, referrals, program_id=row["id"])
        assert [(r["referred_id"], r["referrer_id"], r["state"]) for r in rows] == [
            (bob.id, ana.id, "pending")
        ]


async def test_only_an_owner_can_turn_on_the_bot_mode(tmp_path: Path) -> None:
    async with running_harness(tmp_path, telegram_owners=[OWNER_ID]) as harness:
        mallory = harness.world.add_user("Mallory")
        await harness.say(mallory, "/setup bot")
        assert "Only the bot's owner" in harness.last_to(mallory).text
        await harness.say(mallory, "/setup")
        assert "Type this command in the group or channel" in harness.last_to(mallory).text
        assert await table_rows(harness, programs) == []


async def test_without_owners_configured_nobody_can_turn_on_the_bot_mode(
    harness: Harness, owner: SimUser
) -> None:
    await harness.say(owner, "/setup bot")
    assert "Only the bot's owner" in harness.last_to(owner).text
    assert await table_rows(harness, programs) == []


async def test_a_group_that_becomes_a_supergroup_keeps_its_program(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, row = await set_up_chat(harness, owner, "group", "Book Club", join_mode="direct")
    ana = world.add_user("Ana")
    world.add_member(chat, ana)
    await harness.say(ana, "/start")
    await harness.say(ana, "/invite", to=chat)
    url = url_in(harness.last_to(ana), "https://t.me/+")

    supergroup = world.migrate_to_supergroup(chat, by=owner)
    await harness.settle()
    moved = await program_row(harness, supergroup.id)
    assert moved is not None
    assert (moved["id"], moved["join_mode"]) == (row["id"], row["join_mode"])
    assert await program_row(harness, chat.id) is None

    # The program now answers in the supergroup and Ana's link still counts for her.
    await harness.say(ana, "/invite", to=supergroup)
    assert url_in(harness.last_to(ana), "https://t.me/+") == url
    bob = world.add_user("Bob")
    world.open_link(bob, url)
    await harness.settle()
    assert world.member(supergroup, bob).status == "member"
    rows = await table_rows(harness, referrals, program_id=row["id"])
    assert [(r["referred_id"], r["referrer_id"]) for r in rows] == [(bob.id, ana.id)]


async def test_losing_the_invite_right_pauses_the_program_and_getting_it_back_resumes_it(
    harness: Harness, owner: SimUser
) -> None:
    world, bot = harness.world, harness.bot
    chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    ana = world.add_user("Ana")
    await harness.say(ana, "/invite")
    bob = world.add_user("Bob")
    world.open_link(bob, url_in(harness.last_to(ana), "https://t.me/+"))
    await harness.settle()

    world.set_admin_rights(chat, bot, by=owner, rights={"can_invite_users": False})
    await harness.settle()
    paused = await program_row(harness, chat.id)
    assert paused is not None and (paused["paused"], paused["paused_reason"]) == (
        True,
        "lost_rights",
    )
    notice = harness.last_to(owner).text
    assert "The referral program of Daily Brief is paused" in notice
    assert "give me the rights back" in notice

    # While paused nothing confirms, even past the hold period.
    harness.clock.advance(days=3)
    assert (await harness.tick())["confirmed"] == 0

    world.set_admin_rights(chat, bot, by=owner, rights={"can_invite_users": True})
    await harness.settle()
    resumed = await program_row(harness, chat.id)
    assert resumed is not None and (resumed["paused"], resumed["paused_reason"]) == (False, None)
    assert "runs again" in harness.last_to(owner).text
    assert (await harness.tick())["confirmed"] == 1


async def test_the_admin_who_took_the_rights_away_is_told_too(
    harness: Harness, owner: SimUser
) -> None:
    world, bot = harness.world, harness.bot
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club")
    ada = world.add_user("Ada")
    world.add_member(chat, ada)
    world.promote(chat, ada, rights={"can_promote_members": True})
    await harness.say(ada, "/start")

    world.demote(chat, bot, by=ada)
    await harness.settle()
    assert "is paused" in harness.last_to(owner).text
    assert "is paused" in harness.last_to(ada).text


async def test_a_bot_removed_from_its_channel_pauses_the_program(
    harness: Harness, owner: SimUser
) -> None:
    world, bot = harness.world, harness.bot
    chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief")
    world.remove_bot_from_chat(chat, bot, by=owner)
    await harness.settle()
    row = await program_row(harness, chat.id)
    assert row is not None and row["paused"] is True
    assert "is paused" in harness.last_to(owner).text


async def test_rights_coming_back_do_not_resume_a_program_a_manager_paused(
    harness: Harness, owner: SimUser
) -> None:
    world, bot = harness.world, harness.bot
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club")
    await harness.say(owner, "/pause", to=chat)
    world.set_admin_rights(chat, bot, by=owner, rights={"can_invite_users": False})
    await harness.settle()
    world.set_admin_rights(chat, bot, by=owner, rights={"can_invite_users": True})
    await harness.settle()
    row = await program_row(harness, chat.id)
    assert row is not None and row["paused"] is True
    assert row["paused_reason"] == "paused by a manager"
