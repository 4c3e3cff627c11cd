"""Readers' commands, end to end: /start (plain and with a friend's link), /invite and its
labels and reset, answers in groups, the paginated /stats receipt, /forget, /help, /lang,
the language picked from Telegram, several programs, hostile names, unknown commands."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from bots.telegram.callbacks import StatsPage
from sandbox import LinkError, SimUser
from storage.schema import links, members, people, referrals, referrer_counts
from tests.bots.conftest import Harness
from tests.helpers.telegram import (
    button_texts,
    forge_callback,
    live_links,
    program_row,
    set_up_chat,
    table_rows,
    url_in,
)

ENTRY_MARKS = ("✅", "⏳", "🔎", "❌", "➖")


async def invite_link(harness: Harness, reader: SimUser, args: str = "") -> str:
    await harness.say(reader, f"/invite {args}".strip())
    return url_in(harness.last_to(reader))


async def join_through(harness: Harness, friend: SimUser, url: str) -> None:
    """A friend opens a direct join-request link and is let in."""
    harness.world.open_link(friend, url)
    await harness.settle()


# --- /start ------------------------------------------------------------------------------


async def test_start_greets_the_reader_and_names_the_programs(
    harness: Harness, owner: SimUser
) -> None:
    ana = harness.world.add_user("Ana")
    await harness.say(ana, "/start")
    assert "This bot is not set up for any channel or group yet" in harness.last_to(ana).text

    await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    await harness.say(ana, "/start")
    text = harness.last_to(ana).text
    assert text.startswith("👋 Hi, Ana!")
    assert "I run the referral program of Daily Brief." in text
    assert "not set up" not in text


async def test_a_friend_opening_a_readers_link_gets_the_program_card_and_is_remembered(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await set_up_chat(harness, owner, "supergroup", "Readers Club", "readersclub")
    ana = world.add_user("Ana")
    url = await invite_link(harness, ana)

    bob = world.add_user("Bob")
    world.open_link(bob, url)  # /start <code>
    await harness.settle()
    card = harness.last_to(bob)
    assert "Ana invited you to Readers Club" in card.text
    assert card.inline_buttons == [{"text": "Join", "url": "https://t.me/readersclub"}]
    remembered = await table_rows(harness, members, program_id=program["id"], user_id=bob.id)
    assert [r["remembered_referrer_id"] for r in remembered] == [ana.id]
    assert world.member(chat, bob).status == "left"  # nothing joined yet

    world.press_button(bob, card, text="Join")  # joins by username: no link in the update
    await harness.settle()
    assert world.member(chat, bob).status == "member"
    rows = await table_rows(harness, referrals, program_id=program["id"])
    assert [(r["referred_id"], r["referrer_id"], r["state"]) for r in rows] == [
        (bob.id, ana.id, "pending")
    ]


async def test_the_program_card_of_a_private_chat_in_the_bot_mode_joins_through_its_link(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    await harness.say(owner, "/settings")
    world.press_button(owner, harness.last_to(owner), text="Join: direct link")
    await harness.settle()
    assert (await program_row(harness, chat.id) or {})["join_mode"] == "bot"

    ana = world.add_user("Ana")
    url = await invite_link(harness, ana)
    assert url.startswith("https://t.me/loopbot?start=")
    bob = world.add_user("Bob")
    world.open_link(bob, url)
    await harness.settle()
    card = harness.last_to(bob)
    join = card.button(text="Join")["url"]
    assert join == program["join_url"] and join.startswith("https://t.me/+")
    world.press_button(bob, card, text="Join")
    await harness.settle()
    rows = await table_rows(harness, referrals, program_id=program["id"])
    assert [(r["referred_id"], r["referrer_id"]) for r in rows] == [(bob.id, ana.id)]


async def test_an_unknown_link_code_gets_a_clear_message_and_changes_nothing(
    harness: Harness, owner: SimUser
) -> None:
    await set_up_chat(harness, owner, "supergroup", "Readers Club", "readersclub")
    bob = harness.world.add_user("Bob")
    harness.world.open_link(bob, "https://t.me/loopbot?start=nosuchcode")
    await harness.settle()
    assert "This invite link is not valid any more" in harness.last_to(bob).text
    assert await table_rows(harness, members, user_id=bob.id) == []


async def test_opening_your_own_link_does_not_remember_you(
    harness: Harness, owner: SimUser
) -> None:
    _, program = await set_up_chat(harness, owner, "supergroup", "Readers Club", "readersclub")
    ana = harness.world.add_user("Ana")
    harness.world.open_link(ana, await invite_link(harness, ana))
    await harness.settle()
    assert "That is your own link" in harness.last_to(ana).text
    rows = await table_rows(harness, members, program_id=program["id"], user_id=ana.id)
    assert [r["remembered_referrer_id"] for r in rows] == [None]


async def test_the_first_readers_link_wins_and_the_friend_is_told_so(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    _, program = await set_up_chat(harness, owner, "supergroup", "Readers Club", "readersclub")
    ana, budi = world.add_user("Ana"), world.add_user("Budi")
    ana_url, budi_url = await invite_link(harness, ana), await invite_link(harness, budi)
    ivan = world.add_user("Ivan")
    world.open_link(ivan, ana_url)
    await harness.settle()
    world.open_link(ivan, budi_url)
    await harness.settle()
    told = harness.last_to(ivan)
    assert "already have an invitation to Readers Club from Ana" in told.text
    assert told.button(text="Join")["url"] == "https://t.me/readersclub"
    rows = await table_rows(harness, members, program_id=program["id"], user_id=ivan.id)
    assert [r["remembered_referrer_id"] for r in rows] == [ana.id]


# --- /invite -----------------------------------------------------------------------------


async def test_invite_gives_a_personal_link_with_rules_counts_and_share_buttons(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    ana = world.add_user("Ana")
    await harness.say(ana, "/invite")
    card = harness.last_to(ana)
    url = url_in(card, "https://t.me/+")
    assert "Your invite link for Daily Brief" in card.text
    assert "once they have stayed 48 hours" in card.text
    assert "Your friends so far: 0 counted" in card.text
    assert "This link is new" in card.text

    assert button_texts(card) == ["Share on Telegram", "WhatsApp", "X", "Copy link"]
    share = urlsplit(card.button(text="Share on Telegram")["url"])
    assert (share.netloc, share.path) == ("t.me", "/share/url")
    assert parse_qs(share.query)["url"] == [url]
    assert url in parse_qs(urlsplit(card.button(text="WhatsApp")["url"]).query)["text"][0]
    assert parse_qs(urlsplit(card.button(text="X")["url"]).query)["url"] == [url]
    assert world.press_button(ana, card, text="Copy link").copied_text == url

    link = world.find_link(url)
    assert link is not None and link.chat_id == chat.id and link.creates_join_request
    rows = await live_links(harness, ana)
    assert [(r["program_id"], r["label"], r["url"]) for r in rows] == [(program["id"], "", url)]

    # Asking again gives the same link, and the counts move as friends come.
    bob = world.add_user("Bob")
    await join_through(harness, bob, url)
    await harness.say(ana, "/invite")
    again = harness.last_to(ana)
    assert url_in(again, "https://t.me/+") == url
    assert "This link is new" not in again.text
    assert "0 counted, 1 waiting" in again.text
    assert len(await table_rows(harness, links, referrer_id=ana.id)) == 1


async def test_invite_with_a_label_makes_a_separate_link(harness: Harness, owner: SimUser) -> None:
    await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    ana = harness.world.add_user("Ana")
    main = await invite_link(harness, ana)
    await harness.say(ana, "/invite WhatsApp")
    card = harness.last_to(ana)
    assert "Your “whatsapp” invite link for Daily Brief" in card.text
    labelled = url_in(card, "https://t.me/+")
    assert labelled != main
    rows = await live_links(harness, ana)
    assert sorted((r["label"], r["url"]) for r in rows) == [("", main), ("whatsapp", labelled)]


@pytest.mark.parametrize(
    "args",
    [
        "a-label-that-is-far-too-long-for-a-link",
        "<b>x</b>",
        "two words",
        "wa\u200bts",  # a zero-width space
        "reset two words",
        "ünïcode",
    ],
)
async def test_a_bad_label_gets_a_clear_message_and_creates_no_link(
    harness: Harness, owner: SimUser, args: str
) -> None:
    chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    ana = harness.world.add_user("Ana")
    main = await invite_link(harness, ana)
    on_telegram = len(harness.world.invite_links(chat))
    await harness.say(ana, f"/invite {args}")
    answer = harness.last_to(ana)
    assert "A link label is 1–24 characters of a-z, 0-9, _ and -" in answer.text
    assert [r["url"] for r in await table_rows(harness, links, referrer_id=ana.id)] == [main]
    assert len(harness.world.invite_links(chat)) == on_telegram


async def test_invite_reset_replaces_a_leaked_link(harness: Harness, owner: SimUser) -> None:
    world = harness.world
    chat, program = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    ana = world.add_user("Ana")
    old = await invite_link(harness, ana)
    labelled = await invite_link(harness, ana, "whatsapp")

    await harness.say(ana, "/invite reset")
    card = harness.last_to(ana)
    new = url_in(card, "https://t.me/+")
    assert new != old
    assert "your old link no longer counts" in card.text
    old_link = world.find_link(old)
    assert old_link is not None and old_link.is_revoked  # revoked on Telegram too
    rows = await table_rows(harness, links, referrer_id=ana.id)
    assert {r["url"]: r["revoked_at"] is not None for r in rows} == {
        old: True,
        labelled: False,  # only the main link was reset
        new: False,
    }
    with pytest.raises(LinkError):
        world.open_link(world.add_user("Eve"), old)

    bob = world.add_user("Bob")
    await join_through(harness, bob, new)
    assert world.member(chat, bob).status == "member"
    found = await table_rows(harness, referrals, program_id=program["id"])
    assert [(r["referred_id"], r["referrer_id"]) for r in found] == [(bob.id, ana.id)]


async def test_a_reset_deep_link_no_longer_remembers_anyone(
    harness: Harness, owner: SimUser
) -> None:
    await set_up_chat(harness, owner, "supergroup", "Readers Club", "readersclub")
    ana = harness.world.add_user("Ana")
    old = await invite_link(harness, ana)
    await harness.say(ana, "/invite reset")
    assert url_in(harness.last_to(ana)) != old
    bob = harness.world.add_user("Bob")
    harness.world.open_link(bob, old)
    await harness.settle()
    assert "This invite link is not valid any more" in harness.last_to(bob).text


# --- answers in a group ------------------------------------------------------------------


async def test_invite_in_a_group_answers_in_private(harness: Harness, owner: SimUser) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    ana = world.add_user("Ana")
    world.add_member(chat, ana)
    await harness.say(ana, "/start")

    await harness.say(ana, "/invite", to=chat)
    note = harness.last_to(chat).text
    assert note == "Ana, I sent your invite link to you in a private message."
    assert "https://t.me/+" not in harness.last_to(chat).text  # the link stays private
    assert "Your invite link for Readers Club" in harness.last_to(ana).text

    await harness.say(ana, "/stats@loopbot", to=chat)
    assert "Your referrals — Readers Club" in harness.last_to(ana).text


async def test_a_reader_who_never_started_the_bot_gets_a_button_that_opens_it(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    ana = world.add_user("Ana")
    world.add_member(chat, ana)

    await harness.say(ana, "/invite", to=chat)
    answer = harness.last_to(chat)
    assert "Ana, open a private chat with me to get your personal invite link" in answer.text
    assert harness.texts_to(ana) == []  # the bot may not write first
    assert await table_rows(harness, links) == []

    world.press_button(ana, answer, text="Open the bot")  # /start go_<program>
    await harness.settle()
    assert "Your invite link for Readers Club" in harness.last_to(ana).text

    bea = world.add_user("Bea")
    world.add_member(chat, bea)
    await harness.say(bea, "/stats", to=chat)
    assert "open a private chat with me" in harness.last_to(chat).text
    assert harness.texts_to(bea) == []


async def test_invite_in_a_group_without_a_program_says_so(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat = world.add_chat("supergroup", "Other Group", owner=owner)
    world.add_bot_to_chat(chat, harness.bot, by=owner)
    await harness.settle()
    await harness.say(owner, "/invite", to=chat)
    assert "There is no referral program here yet" in harness.last_to(chat).text


# --- /stats ------------------------------------------------------------------------------


async def test_stats_is_a_paginated_receipt_whose_header_agrees_with_its_entries(
    harness: Harness, owner: SimUser
) -> None:
    world, clock = harness.world, harness.clock
    chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    ana, budi = world.add_user("Ana"), world.add_user("Budi")
    ana_url, budi_url = await invite_link(harness, ana), await invite_link(harness, budi)

    for n in range(6):  # six friends who stay: counted after the hold
        await join_through(harness, world.add_user(f"Stayer {n}"), ana_url)
    clock.advance(days=3)
    assert (await harness.tick())["confirmed"] == 6
    for name in ("Gita", "Hadi"):  # two still in their hold period
        await join_through(harness, world.add_user(name), ana_url)
    eko = world.add_user("Eko")  # leaves during the hold: not counted
    await join_through(harness, eko, ana_url)
    world.leave(eko, chat)
    await harness.settle()
    fajar = world.add_user("Fajar")  # Budi's friend first, then through Ana's link
    await join_through(harness, fajar, budi_url)
    world.leave(fajar, chat)
    await join_through(harness, fajar, ana_url)
    await join_through(harness, eko, ana_url)  # Eko comes back: a rejoin, not counted

    await harness.say(ana, "/stats")
    first = harness.last_to(ana)
    lines = first.text.splitlines()
    assert lines[0] == "📊 Your referrals — Daily Brief"
    assert lines[1] == "6 counted · 2 waiting · 0 under review · 3 not counted"
    entries = [n for n, line in enumerate(lines) if line[:1] in ENTRY_MARKS]
    assert len(entries) == 8 and lines[-1] == "Page 1 of 2"
    for n in entries:  # an entry is its own two lines (nothing runs into the next one)
        assert lines[n + 1].startswith("   ") and lines[n + 1][3:4] not in ENTRY_MARKS
    text = first.text
    assert "➖ Eko" in text and "not counted: they were a member before" in text
    assert "➖ Fajar" in text and "not counted: another reader invited them first" in text
    assert "❌ Eko" in text and "not counted: left during the hold period" in text
    hold_end = (clock.now() + timedelta(hours=48)).strftime("%Y-%m-%d %H:%M UTC")
    assert "⏳ Gita" in text and f"waiting: counts on {hold_end}" in text
    assert button_texts(first) == ["Older ›"]

    world.press_button(ana, first, text="Older ›")
    await harness.settle()
    second = harness.last_to(ana)
    assert second.message_id == first.message_id  # the same message, edited
    assert second.text.splitlines()[1] == lines[1]
    assert second.text.count("✅ Stayer") + text.count("✅ Stayer") == 6
    assert second.text.splitlines()[-1] == "Page 2 of 2"
    assert button_texts(second) == ["‹ Newer"]
    world.press_button(ana, second, text="‹ Newer")
    await harness.settle()
    assert harness.last_to(ana).text == text

    # Budi's receipt: Fajar left during his hold, so he counts for nobody.
    await harness.say(budi, "/stats")
    budi_lines = harness.last_to(budi).text.splitlines()
    assert budi_lines[1] == "0 counted · 0 waiting · 0 under review · 1 not counted"
    assert budi_lines[3:] == [
        budi_lines[3],
        "   not counted: left during the hold period",
    ] and budi_lines[3].startswith("❌ Fajar — ")


async def test_a_stats_page_past_the_end_shows_the_last_page(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    _, program = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    ana = world.add_user("Ana")
    await join_through(harness, world.add_user("Bob"), await invite_link(harness, ana))
    await harness.say(ana, "/stats")
    shown = harness.last_to(ana)
    forge_callback(world, ana, shown, StatsPage(program_id=program["id"], page=99).pack())
    await harness.settle()
    edited = harness.last_to(ana)
    assert edited.message_id == shown.message_id
    assert "⏳ Bob — " in edited.text and "Nobody has joined" not in edited.text


async def test_stats_before_anyone_joined_points_to_invite(
    harness: Harness, owner: SimUser
) -> None:
    await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    ana = harness.world.add_user("Ana")
    await harness.say(ana, "/stats")
    text = harness.last_to(ana).text
    assert "0 counted · 0 waiting · 0 under review · 0 not counted" in text
    assert "Nobody has joined through your links yet" in text


async def test_a_confirmed_friend_who_left_is_shown_as_no_longer_counted_when_leavers_subtract(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    await harness.say(owner, "/settings")
    world.press_button(owner, harness.last_to(owner), text="Leavers: keep counting")
    await harness.settle()
    ana, bob = world.add_user("Ana"), world.add_user("Bob")
    await join_through(harness, bob, await invite_link(harness, ana))
    harness.clock.advance(days=3)
    await harness.tick()
    world.leave(bob, chat)
    await harness.settle()
    await harness.say(ana, "/stats")
    text = harness.last_to(ana).text
    assert "0 counted · 0 waiting · 0 under review · 1 not counted" in text
    assert "❌ Bob" in text and "no longer counted: left on" in text


# --- /forget -----------------------------------------------------------------------------


async def test_forget_asks_first_then_deletes_the_readers_data(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    ana, bob = world.add_user("Ana"), world.add_user("Bob")
    url = await invite_link(harness, ana)
    await join_through(harness, bob, url)

    await harness.say(ana, "/forget")
    ask = harness.last_to(ana)
    assert "This deletes your links, your counts" in ask.text
    assert button_texts(ask) == ["Yes, delete my data", "Cancel"]
    world.press_button(ana, ask, text="Cancel")
    await harness.settle()
    assert harness.last_to(ana).text == "Nothing was deleted."
    assert len(await live_links(harness, ana)) == 1

    await harness.say(ana, "/forget")
    world.press_button(ana, harness.last_to(ana), text="Yes, delete my data")
    await harness.settle()
    assert "Done: your data is deleted" in harness.last_to(ana).text
    assert await table_rows(harness, links, referrer_id=ana.id) == []
    assert await table_rows(harness, members, user_id=ana.id) == []
    assert await table_rows(harness, referrer_counts, referrer_id=ana.id) == []
    assert await table_rows(harness, people, user_id=ana.id) == []
    # Bob stays counted once, for nobody: he can never be counted again.
    kept = await table_rows(harness, referrals, program_id=program["id"])
    assert [(r["referred_id"], r["referrer_id"]) for r in kept] == [(bob.id, None)]
    link = world.find_link(url)
    assert link is not None and link.is_revoked
    assert world.member(chat, bob).status == "member"


# --- /help, /lang and the reader's language ----------------------------------------------


async def test_help_lists_the_reader_commands_and_managers_see_theirs(
    harness: Harness, owner: SimUser
) -> None:
    await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    ana = harness.world.add_user("Ana")
    await harness.say(ana, "/help")
    text = harness.last_to(ana).text
    for command in ("/invite", "/stats", "/lang en|id", "/forget"):
        assert command in text
    assert "Managers" not in text and "/settings" not in text

    await harness.say(owner, "/help")
    text = harness.last_to(owner).text
    assert "Managers" in text and "/settings" in text and "/post" in text


async def test_lang_switches_the_language_and_a_bad_choice_changes_nothing(
    harness: Harness, owner: SimUser
) -> None:
    ana = harness.world.add_user("Ana")
    await harness.say(ana, "/lang id")
    assert harness.last_to(ana).text == "Bahasa diatur ke Bahasa Indonesia."
    await harness.say(ana, "/help")
    assert "Pembaca" in harness.last_to(ana).text

    for bad in ("/lang xx", "/lang", "/lang <b>en</b>"):
        await harness.say(ana, bad)
        assert "Pilih bahasa" in harness.last_to(ana).text  # still Indonesian
    assert [r["language"] for r in await table_rows(harness, people, user_id=ana.id)] == ["id"]

    await harness.say(ana, "/lang EN")
    assert harness.last_to(ana).text == "Language set to English."


async def test_the_language_follows_telegram_unless_the_reader_chose_one(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    dewi = world.add_user("Dewi", language_code="id")
    await harness.say(dewi, "/start")
    assert harness.last_to(dewi).text.startswith("👋 Hai, Dewi!")
    await harness.say(dewi, "/invite")
    card = harness.last_to(dewi)
    assert card.text.startswith("🔗 Tautan undanganmu untuk Daily Brief")
    assert button_texts(card)[-1] == "Salin tautan"

    await harness.say(dewi, "/lang en")
    await harness.say(dewi, "/start")
    assert harness.last_to(dewi).text.startswith("👋 Hi, Dewi!")

    pierre = world.add_user("Pierre", language_code="fr")  # not a language we have
    await harness.say(pierre, "/start")
    assert harness.last_to(pierre).text.startswith("👋 Hi, Pierre!")


# --- several programs --------------------------------------------------------------------


async def test_a_reader_in_several_programs_chooses_with_buttons(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    _, brief = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    _, club = await set_up_chat(harness, owner, "supergroup", "Readers Club", "readersclub")
    ana = world.add_user("Ana")

    await harness.say(ana, "/invite")
    ask = harness.last_to(ana)
    assert ask.text == "Which program is this for?"
    assert button_texts(ask) == ["Daily Brief", "Readers Club"]
    assert await table_rows(harness, links) == []
    world.press_button(ana, ask, text="Readers Club")
    await harness.settle()
    card = harness.last_to(ana)
    assert "Your invite link for Readers Club" in card.text
    assert [r["program_id"] for r in await live_links(harness, ana)] == [club["id"]]

    await harness.say(ana, "/invite whatsapp")
    world.press_button(ana, harness.last_to(ana), text="Daily Brief")
    await harness.settle()
    assert "Your “whatsapp” invite link for Daily Brief" in harness.last_to(ana).text
    found = sorted((r["program_id"], r["label"]) for r in await live_links(harness, ana))
    assert found == sorted([(club["id"], ""), (brief["id"], "whatsapp")])

    await harness.say(ana, "/stats")
    world.press_button(ana, harness.last_to(ana), text="Daily Brief")
    await harness.settle()
    assert "Your referrals — Daily Brief" in harness.last_to(ana).text


# --- what people control -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_name", "shown"),
    [
        ('<b>Bob</b> & "co"', '<b>Bob</b> & "co"'),
        ("Zo\u200be\u202e\u2066", "Zoe"),  # zero-width and bidi controls are dropped
        ("B" * 10_000, "B" * 63 + "…"),  # cut to 64 characters
    ],
)
async def test_names_people_control_never_break_a_message_nor_change_anything_else(
    harness: Harness, owner: SimUser, first_name: str, shown: str
) -> None:
    world = harness.world
    chat, program = await set_up_chat(
        harness, owner, "supergroup", "Readers Club", join_mode="direct"
    )
    ana = world.add_user("Ana")
    url = await invite_link(harness, ana)
    friend = world.add_user(first_name)
    await join_through(harness, friend, url)

    joined = harness.last_to(ana)
    assert f"{shown} joined Readers Club through your link" in joined.text
    await harness.say(ana, "/stats")
    receipt = harness.last_to(ana)
    assert f"⏳ {shown} — " in receipt.text
    assert len(receipt.text) < 4096
    rows = await table_rows(harness, referrals, program_id=program["id"])
    assert [(r["referred_id"], r["referrer_id"], r["state"]) for r in rows] == [
        (friend.id, ana.id, "pending")
    ]

    # The person with that name reads the bot too: the greeting and group answers hold.
    await harness.say(friend, "/start")
    assert harness.last_to(friend).text.startswith(f"👋 Hi, {shown[:20]}")
    await harness.say(friend, "/invite", to=chat)
    assert "I sent your invite link to you in a private message" in harness.last_to(chat).text


async def test_unknown_commands_get_a_clear_answer_in_private_and_silence_in_groups(
    harness: Harness, owner: SimUser
) -> None:
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    ana = harness.world.add_user("Ana")
    await harness.say(ana, "/frobnicate now")
    assert "I do not know that command. /help lists what I can do." in harness.last_to(ana).text
    await harness.say(ana, "hello there")
    assert "/invite" in harness.last_to(ana).text  # plain text gets the help

    sent = len(harness.texts_to(chat))
    await harness.say(owner, "/frobnicate", to=chat)
    await harness.say(owner, "just chatting", to=chat)
    assert len(harness.texts_to(chat)) == sent


async def test_a_paused_program_makes_no_new_links_but_keeps_the_old_ones(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    ana = world.add_user("Ana")
    url = await invite_link(harness, ana)
    await harness.say(owner, "/pause", to=chat)

    await harness.say(ana, "/invite")
    assert url_in(harness.last_to(ana)) == url
    budi = world.add_user("Budi")
    await harness.say(budi, "/invite")
    assert "The program is paused right now" in harness.last_to(budi).text
    assert await table_rows(harness, links, referrer_id=budi.id) == []


async def test_a_refusal_of_an_invite_asked_for_in_a_group_is_answered_in_private(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    await harness.say(owner, "/pause", to=chat)
    budi = world.add_user("Budi")
    world.add_member(chat, budi)
    await harness.say(budi, "/start")
    in_chat = len(harness.texts_to(chat))

    await harness.say(budi, "/invite", to=chat)
    assert "The program is paused right now" in harness.last_to(budi).text
    assert len(harness.texts_to(chat)) == in_chat  # nothing in the group, no link either
    assert await table_rows(harness, links, referrer_id=budi.id) == []
    await harness.say(budi, "/invite", to=chat)  # asked again: answered again, once
    assert harness.texts_to(budi).count(harness.last_to(budi).text) == 2
