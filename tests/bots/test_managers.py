"""Managers' commands, end to end: /settings with its buttons and typed forms, the admin
check on every action (typed, pressed, forged or stale), /pause and /resume, /program
totals, and /post with its "Get my invite link" button."""

from __future__ import annotations

from typing import Any

import pytest

from bots.telegram.callbacks import PickProgram, Setting, Setup
from sandbox import SimChat, SimUser
from storage.schema import outbox
from tests.bots.conftest import Harness
from tests.helpers.telegram import (
    button_texts,
    forge_callback,
    program_row,
    set_up_chat,
    table_rows,
    url_in,
)

SETTINGS_BUTTONS = [
    "Hold: 48 h",
    "Join: direct link",
    "Leavers: keep counting",
    "Language: English",
    "Timezone: UTC",
    "Human check: off",
]


async def row_of(harness: Harness, chat: SimChat) -> dict[str, Any]:
    row = await program_row(harness, chat.id)
    assert row is not None
    return row


async def member_of(harness: Harness, chat: SimChat, name: str) -> SimUser:
    """A plain member of the chat who has started the bot."""
    person = harness.world.add_user(name)
    harness.world.add_member(chat, person)
    await harness.say(person, "/start")
    return person


# --- /settings ---------------------------------------------------------------------------


async def test_settings_shows_every_setting_with_a_button(
    harness: Harness, owner: SimUser
) -> None:
    await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    await harness.say(owner, "/settings")
    shown = harness.last_to(owner)
    assert shown.text.splitlines()[:7] == [
        "⚙️ Settings — Daily Brief",
        "Hold period: 48 hours",
        "Join mode: direct join-request links",
        "Leavers after confirmation: keep counting",
        "Language: English",
        "Timezone: UTC",
        "Human check: off",
    ]
    assert button_texts(shown) == SETTINGS_BUTTONS


async def test_each_settings_button_changes_its_setting_and_the_message(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    await harness.say(owner, "/settings")
    shown = harness.last_to(owner)
    presses = [
        ("Hold: 48 h", "hold_hours", 72, "Hold: 72 h"),
        ("Join: direct link", "join_mode", "bot", "Join: through the bot"),
        ("Leavers: keep counting", "leave_policy", "subtract", "Leavers: stop counting"),
        ("Language: English", "locale", "id", "Language: Bahasa Indonesia"),
        ("Timezone: UTC", "timezone", "Asia/Jakarta", "Timezone: Asia/Jakarta"),
        ("Human check: off", "human_check", True, "Human check: on"),
    ]
    for label, column, value, new_label in presses:
        world.press_button(owner, shown, text=label)
        await harness.settle()
        edited = harness.last_to(owner)
        assert edited.message_id == shown.message_id  # the settings message itself changes
        assert "Saved." in edited.text
        assert new_label in button_texts(edited)
        assert (await row_of(harness, chat))[column] == value
        shown = edited
    assert "Timezone: Asia/Jakarta" in shown.text and "Human check: on" in shown.text


async def test_the_hold_button_steps_through_the_usual_periods(
    harness: Harness, owner: SimUser
) -> None:
    chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    await harness.say(owner, "/settings")
    seen = []
    for _ in range(6):
        shown = harness.last_to(owner)
        world_label = next(t for t in button_texts(shown) if t.startswith("Hold: "))
        harness.world.press_button(owner, shown, text=world_label)
        await harness.settle()
        seen.append((await row_of(harness, chat))["hold_hours"])
    assert seen == [72, 168, 336, 0, 24, 48]


async def test_direct_links_cannot_be_chosen_for_a_public_chat(
    harness: Harness, owner: SimUser
) -> None:
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", "readersclub")
    before = await row_of(harness, chat)
    await harness.say(owner, "/settings")
    harness.world.press_button(owner, harness.last_to(owner), text="Join: through the bot")
    await harness.settle()
    told = harness.last_to(owner).text
    assert "Direct join-request links work only for private channels and groups" in told
    assert await row_of(harness, chat) == before


@pytest.mark.parametrize(
    ("typed", "column", "value"),
    [
        ("/settings hold 72", "hold_hours", 72),
        ("/settings hold 0", "hold_hours", 0),
        ("/settings timezone Asia/Jakarta", "timezone", "Asia/Jakarta"),
        ("/settings tz Europe/London", "timezone", "Europe/London"),
        ("/settings cap 50", "referrer_cap", 50),
        ("/settings cap off", "referrer_cap", None),
        ("/settings age 7", "min_account_age_days", 7),
    ],
)
async def test_typed_settings_change_one_setting(
    harness: Harness, owner: SimUser, typed: str, column: str, value: object
) -> None:
    chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    before = await row_of(harness, chat)
    await harness.say(owner, typed)
    answer = harness.last_to(owner)
    assert answer.text.startswith("⚙️ Settings — Daily Brief") and "Saved." in answer.text
    after = await row_of(harness, chat)
    assert after[column] == value
    changed = {key for key in after if after[key] != before[key]}
    assert changed <= {column, "updated_at"}


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("/settings hold abc", "hold"),
        ("/settings hold -5", "hold"),
        ("/settings hold 9999", "720"),
        ("/settings hold 1.5", "hold"),
        ("/settings hold", "hold"),
        ("/settings hold 24 48", "hold"),
        ("/settings timezone Mars/Base", "Asia/Jakarta"),
        ("/settings timezone ../../etc/passwd", "Asia/Jakarta"),
        ("/settings colour blue", "colour"),
        ("/settings cap 0", "cap"),
        ("/settings <b>x</b> 1", "<b>x</b>"),
    ],
)
async def test_a_bad_typed_setting_gets_a_clear_message_and_changes_nothing(
    harness: Harness, owner: SimUser, typed: str, says: str
) -> None:
    chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    before = await row_of(harness, chat)
    await harness.say(owner, typed)
    told = harness.last_to(owner)
    assert not told.text.startswith("⚙️"), told.text
    assert says in told.text
    assert await row_of(harness, chat) == before


async def test_settings_in_a_group_answer_the_manager_in_private(
    harness: Harness, owner: SimUser
) -> None:
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    sent_to_group = len(harness.texts_to(chat))
    await harness.say(owner, "/settings hold 24", to=chat)
    assert "Hold period: 24 hours" in harness.last_to(owner).text
    assert len(harness.texts_to(chat)) == sent_to_group
    assert (await row_of(harness, chat))["hold_hours"] == 24


async def test_settings_in_a_group_by_an_admin_who_never_started_the_bot_offers_the_bot(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    rina = world.add_user("Rina")
    world.add_member(chat, rina)
    world.set_admin_rights(chat, rina, by=owner)
    await harness.say(rina, "/settings hold 24", to=chat)
    offer = harness.last_to(chat)
    assert offer.text == (
        "Rina, open a private chat with me to change the settings of this program."
    )
    assert url_in_button(offer).startswith("https://t.me/loopbot?start=go_")
    assert harness.texts_to(rina) == []
    assert (await row_of(harness, chat))["hold_hours"] == 48

    # Once she has started the bot, the same command works and answers in private.
    await harness.say(rina, "/start")
    await harness.say(rina, "/settings hold 24", to=chat)
    assert "Hold period: 24 hours" in harness.last_to(rina).text
    assert (await row_of(harness, chat))["hold_hours"] == 24


def url_in_button(message: Any) -> str:
    return next(button["url"] for button in message.inline_buttons if button.get("url"))


async def test_a_manager_of_several_programs_chooses_which_one(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    brief, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    club, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    other = world.add_user("Other")
    await set_up_chat(harness, other, "channel", "Someone Else's", join_mode="direct")

    await harness.say(owner, "/settings")
    ask = harness.last_to(owner)
    assert ask.text == "Which program do you want to manage?"
    assert button_texts(ask) == ["Daily Brief", "Readers Club"]  # only the ones they manage
    world.press_button(owner, ask, text="Readers Club")
    await harness.settle()
    assert harness.last_to(owner).text.startswith("⚙️ Settings — Readers Club")

    await harness.say(owner, "/pause")
    world.press_button(owner, harness.last_to(owner), text="Daily Brief")
    await harness.settle()
    assert (await row_of(harness, brief))["paused"] is True
    assert (await row_of(harness, club))["paused"] is False


# --- only admins -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["/settings", "/settings hold 1", "/pause", "/resume", "/program", "/post"]
)
async def test_a_member_who_is_not_an_admin_is_refused_every_manager_command(
    harness: Harness, owner: SimUser, typed: str
) -> None:
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    mallory = await member_of(harness, chat, "Mallory")
    before = await row_of(harness, chat)
    in_chat = len(harness.texts_to(chat))

    await harness.say(mallory, typed, to=chat)
    assert harness.last_to(chat).text == "Only an admin of the program's chat can do that."
    assert len(harness.texts_to(chat)) == in_chat + 1  # that refusal, nothing posted
    await harness.say(mallory, typed)  # in private: nothing of theirs to manage
    assert "You do not manage any program here" in harness.last_to(mallory).text
    assert await row_of(harness, chat) == before


async def test_forged_manager_button_presses_are_refused_and_change_nothing(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    mallory = world.add_user("Mallory")
    await harness.say(mallory, "/help")
    own_message = harness.last_to(mallory)  # a message of the bot Mallory can press on
    before = await row_of(harness, chat)
    posts = len(harness.texts_to(chat))

    forged = [
        *(Setting(program_id=program["id"], key=key).pack() for key in ("hold", "human_check")),
        Setting(program_id=program["id"], key="timezone").pack(),
        *(
            PickProgram(action=action, program_id=program["id"]).pack()
            for action in ("settings", "pause", "program", "post")
        ),
    ]
    for data in forged:
        forge_callback(world, mallory, own_message, data)
        await harness.settle()
        assert harness.last_to(mallory).text == "Only an admin of the program's chat can do that."
    forge_callback(world, mallory, own_message, Setup(chat_id=chat.id).pack())
    await harness.settle()
    assert "Only an admin of Daily Brief" in harness.last_to(mallory).text

    assert await row_of(harness, chat) == before
    assert len(harness.texts_to(chat)) == posts
    assert not any("Settings —" in text for text in harness.texts_to(mallory))


async def test_an_admin_who_was_demoted_cannot_use_an_old_settings_message(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    ada = await member_of(harness, chat, "Ada")
    world.promote(chat, ada)
    await harness.say(ada, "/settings")
    shown = harness.last_to(ada)
    assert shown.text.startswith("⚙️ Settings — Readers Club")

    world.demote(chat, ada, by=owner)
    before = await row_of(harness, chat)
    world.press_button(ada, shown, text="Hold: 48 h")
    await harness.settle()
    assert harness.last_to(ada).text == "Only an admin of the program's chat can do that."
    assert await row_of(harness, chat) == before


# --- /pause, /resume, /program -----------------------------------------------------------


async def test_pause_stops_confirmations_and_resume_starts_them_again(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    ana = await member_of(harness, chat, "Ana")
    await harness.say(ana, "/invite")
    world.open_link(world.add_user("Bob"), url_in(harness.last_to(ana), "https://t.me/+"))
    await harness.settle()

    await harness.say(owner, "/pause", to=chat)
    assert harness.last_to(chat).text == "⏸ Paused: nothing is confirmed until /resume."
    row = await row_of(harness, chat)
    assert (row["paused"], row["paused_reason"]) == (True, "paused by a manager")
    harness.clock.advance(days=3)
    assert (await harness.tick())["confirmed"] == 0

    await harness.say(owner, "/resume", to=chat)
    assert harness.last_to(chat).text == "▶️ Running: referrals are confirmed again."
    row = await row_of(harness, chat)
    assert (row["paused"], row["paused_reason"]) == (False, None)
    assert (await harness.tick())["confirmed"] == 1


async def test_program_shows_the_totals(harness: Harness, owner: SimUser) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    ana = world.add_user("Ana")
    await harness.say(ana, "/invite")
    url = url_in(harness.last_to(ana), "https://t.me/+")
    stayer, leaver = world.add_user("Stayer"), world.add_user("Leaver")
    for friend in (stayer, leaver):
        world.open_link(friend, url)
        await harness.settle()
    world.leave(leaver, chat)
    walk_in = world.create_invite_link(owner, chat)  # the owner's own link: nobody's referral
    world.open_link(world.add_user("Walk-in"), walk_in.url)
    await harness.settle()

    await harness.say(owner, "/program")
    assert harness.last_to(owner).text.splitlines() == [
        "📈 Daily Brief",
        "",
        "Readers with referrals: 1",
        "Counted: 0 · waiting: 1 · under review: 0 · not counted: 1",
        "Joins without a referral: 1",
    ]


# --- /post -------------------------------------------------------------------------------


async def test_post_puts_a_pinned_get_my_link_button_in_the_channel(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    await harness.say(owner, "/post")
    assert harness.last_to(owner).text == "Posted and pinned in Daily Brief."
    post = harness.last_to(chat)
    assert "Invite your friends to Daily Brief" in post.text
    assert post.inline_buttons == [
        {"text": "Get my invite link", "url": f"https://t.me/loopbot?start=go_{program['id']}"}
    ]
    assert [m.message_id for m in world.pinned_messages(chat)] == [post.message_id]

    reader = world.add_user("Reader")  # a subscriber sees the post and taps the button
    world.add_member(chat, reader)
    world.press_button(reader, post, text="Get my invite link")
    await harness.settle()
    assert "Your invite link for Daily Brief" in harness.last_to(reader).text


async def test_post_without_the_right_to_pin_posts_and_says_it_did_not_pin(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    world.set_admin_rights(chat, harness.bot, by=owner, rights={"can_pin_messages": False})
    await harness.settle()
    await harness.say(owner, "/post", to=chat)
    latest = harness.texts_to(chat)[-2:]  # the answer first, then the (bulk) post itself
    assert latest[0] == "Posted in Readers Club."
    assert "Invite your friends to Readers Club" in latest[1]
    assert world.pinned_messages(chat) == []


async def test_post_without_the_right_to_post_says_so_and_posts_nothing(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    world.set_admin_rights(chat, harness.bot, by=owner, rights={"can_post_messages": False})
    await harness.settle()
    posts = len(harness.texts_to(chat))
    await harness.say(owner, "/post")
    told = harness.last_to(owner).text
    assert told == "I could not post in Daily Brief: give me the right to post messages."
    assert len(harness.texts_to(chat)) == posts
    assert await table_rows(harness, outbox, target_id=chat.id) == []


async def test_an_anonymous_admin_is_asked_to_use_manager_commands_in_private(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    ghost = await member_of(harness, chat, "Ghost")
    world.promote(chat, ghost, is_anonymous=True)
    before = await row_of(harness, chat)

    await harness.say(ghost, "/pause", to=chat)  # sent as the group: nobody to check
    assert harness.last_to(chat).text == "Please use this command in a private chat with me."
    assert await row_of(harness, chat) == before

    await harness.say(ghost, "/pause")
    assert harness.last_to(ghost).text == "⏸ Paused: nothing is confirmed until /resume."
    assert (await row_of(harness, chat))["paused"] is True
