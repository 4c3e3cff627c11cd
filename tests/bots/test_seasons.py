"""Seasons and their prizes in chat, through the sandbox and the real bot: a manager adds a
prize with /milestone prize and picks it with a button when starting a season; at the close
the winners get it once; winners the bot cannot message claim it with the announcement's
button (only they can, once); unclaimed after 7 days it counts as unreachable and the
manager is told. Bad choices get a clear answer and change nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sandbox import SimChat, SimUser
from storage.schema import grants
from tests.bots.conftest import Harness
from tests.helpers.telegram import button_texts, set_up_chat, table_rows

CLAIM = "🎁 Winners: claim my prize"


async def _add_prize(harness: Harness, owner: SimUser, title: str) -> None:
    """The guided setup of a season prize: a message reward."""
    await harness.say(owner, f"/milestone prize {title}")
    ask = harness.last_to(owner)
    assert f"New prize: the season prize “{title}”" in ask.text
    harness.world.press_button(owner, ask, text="💬 A message")
    await harness.settle()
    await harness.say(owner, "Your prize is on its way, {{ name }}!")
    confirm = harness.last_to(owner)
    assert "A season's winners get it" in confirm.text
    harness.world.press_button(owner, confirm, text="✅ Save")
    await harness.settle()
    assert "Give it to a season's winners with /season" in harness.last_to(owner).text


async def _refer(harness: Harness, chat: SimChat, reader: SimUser, count: int) -> None:
    """The reader (a member of the chat) brings ``count`` friends in, now."""
    harness.world.add_member(chat, reader)
    await harness.say(reader, "/invite")
    url = next(
        str(b["copy_text"]["text"])
        for b in harness.last_to(reader).inline_buttons
        if "copy_text" in b
    )
    for n in range(count):
        harness.world.open_link(harness.world.add_user(f"{reader.first_name} friend {n}"), url)
        await harness.settle()


def _claim(harness: Harness, who: SimUser, announcement: Any) -> None:
    harness.world.press_button(who, announcement, text=CLAIM)


async def _prize_states(harness: Harness) -> dict[int, tuple[int, str]]:
    rows = await table_rows(harness, grants, source="prize")
    return {r["reader_id"]: (r["occurrence"], r["state"]) for r in rows}


async def test_a_prize_picked_in_chat_is_won_once_claimed_by_its_winner_or_expires(
    harness: Harness, owner: SimUser
) -> None:
    world, clock = harness.world, harness.clock
    chat, program = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    await _add_prize(harness, owner, "Mug")
    today = clock.now().date()
    last = today + timedelta(days=9)
    await harness.say(owner, f"/season {today} {last} top 3 Spring Cup")
    ask = harness.last_to(owner)
    assert "Which prize do the winners of Spring Cup get?" in ask.text
    assert [t for t in button_texts(ask) if t.startswith("🎁")] == ["🎁 Mug (#1)"]
    assert await harness.app.boards.seasons(program["id"]) == []  # nothing saved yet
    world.press_button(owner, ask, text="🎁 Mug (#1)")
    await harness.settle()
    assert "🎁 Prize: Mug" in harness.last_to(owner).text
    [season] = await harness.app.boards.seasons(program["id"])
    assert season.prize_title == "Mug"
    world.press_button(owner, ask, text="🎁 Mug (#1)")  # pressed again: no second season
    await harness.settle()
    assert "expired" in harness.last_to(owner).text
    assert len(await harness.app.boards.seasons(program["id"])) == 1
    assert "The winners get: Mug" in harness.last_to(chat).text

    ana, bob, cy = world.add_user("Ana"), world.add_user("Bob"), world.add_user("Cy")
    await _refer(harness, chat, ana, 3)
    await _refer(harness, chat, bob, 2)
    await _refer(harness, chat, cy, 1)
    clock.advance(days=4)
    await harness.tick()  # counted
    world.block_bot(bob, harness.bot)  # Bob and Cy cannot be messaged when the season ends
    world.block_bot(cy, harness.bot)
    await harness.settle()

    clock.advance(days=6 + program["hold_hours"] / 24 + 1)  # past the end and the hold
    await harness.tick()  # final: announced and granted
    await harness.tick()  # delivered
    announcement = harness.last_to(chat)
    lines = announcement.text.splitlines()
    assert "1. Ana — 3" in lines
    assert "2. Bob — 2 — 🎁 to claim" in lines and "3. Cy — 1 — 🎁 to claim" in lines
    assert "🎁 Prize: Mug." in announcement.text and "7 days" in announcement.text
    assert CLAIM in button_texts(announcement)
    won = [m for m in world.sent_messages(harness.bot, ana) if "You won Mug!" in m.text]
    assert len(won) == 1 and "Place 1 in Spring Cup of Daily Brief" in won[0].text
    assert await _prize_states(harness) == {
        ana.id: (1, "delivered"),
        bob.id: (2, "unclaimed"),
        cy.id: (3, "unclaimed"),
    }

    # Someone who did not win presses the button: a clear answer, nothing changes.
    eve = world.add_user("Eve")
    world.add_member(chat, eve)
    _claim(harness, eve, announcement)
    await harness.settle()
    assert "you are not one of them" in harness.last_to(eve).text
    # Bob claims it (the button opens the bot): sent once; a second press changes nothing.
    _claim(harness, bob, announcement)
    await harness.settle()
    assert "Your prize Mug is on its way" in harness.last_to(bob).text
    await harness.tick()
    _claim(harness, bob, announcement)
    await harness.settle()
    assert "is already yours" in harness.last_to(bob).text
    await harness.tick()
    assert len([m for m in world.sent_messages(harness.bot, bob) if "You won" in m.text]) == 1
    _claim(harness, ana, announcement)  # a winner who got it already
    await harness.settle()
    assert "is already yours" in harness.last_to(ana).text

    # The results are final: the prize no longer changes.
    await harness.say(owner, f"/season {season.id} prize none")
    assert "results are final" in harness.last_to(owner).text

    # Seven days after the results Cy has not claimed it: unreachable, the manager is told.
    clock.advance(days=7)
    await harness.tick()
    told = harness.last_to(owner).text
    assert "Spring Cup" in told and "3. Cy (Reader #3) — Mug" in told and "unreachable" in told
    rows = await table_rows(harness, grants, source="prize", reader_id=cy.id)
    assert (rows[0]["state"], rows[0]["delivery_error"].split(":")[0]) == (
        "unreachable",
        "claim_expired",
    )
    _claim(harness, cy, announcement)
    await harness.settle()
    assert "was not claimed within 7 days" in harness.last_to(cy).text
    await harness.tick()
    assert not [m for m in world.sent_messages(harness.bot, cy) if "You won" in m.text]
    assert await _prize_states(harness) == {
        ana.id: (1, "delivered"),
        bob.id: (2, "delivered"),
        cy.id: (3, "unreachable"),
    }
    await harness.say(owner, "/program")
    assert "1 not claimed in time (unreachable)" in harness.last_to(owner).text


async def test_a_seasons_prize_is_changed_in_chat_and_bad_choices_change_nothing(
    harness: Harness, owner: SimUser
) -> None:
    world, clock = harness.world, harness.clock
    chat, program = await set_up_chat(harness, owner, "channel", "Daily Brief")
    today = clock.now().date()
    await harness.say(owner, f"/season {today} {today + timedelta(days=6)} top 1 Quick Cup")
    created = harness.last_to(owner).text
    assert "No prize yet: add one with /milestone prize Title" in created
    [season] = await harness.app.boards.seasons(program["id"])
    await _add_prize(harness, owner, "Sticker <b>pack</b>")
    await _add_prize(harness, owner, "Hoodie")

    await harness.say(owner, f"/season {season.id} prize")
    shown = harness.last_to(owner)
    assert {"🎁 Sticker <b>pack</b> (#1)", "🎁 Hoodie (#2)", "No prize"} <= set(
        button_texts(shown)
    )
    world.press_button(owner, shown, text="🎁 Hoodie (#2)")
    await harness.settle()
    assert "the winners of Quick Cup get Hoodie" in harness.last_to(owner).text
    assert "the winner gets Hoodie" in harness.last_to(chat).text
    await harness.say(owner, f"/season {season.id} prize Sticker <b>pack</b>")
    assert "get Sticker <b>pack</b>" in harness.last_to(owner).text

    for typed, answer in (
        (f"/season {season.id} prize 99", "There is no prize “99”"),
        (f"/season {season.id} prize Yacht", "There is no prize “Yacht”"),
        (f"/season {season.id + 7} prize Hoodie", "There is no such season"),
        (f"/season {season.id} gift Hoodie", "For example"),
    ):
        await harness.say(owner, typed)
        assert answer in harness.last_to(owner).text, typed
    assert (await harness.app.boards.season(season.id)).prize_title == "Sticker <b>pack</b>"

    await harness.say(owner, "/season")
    listing = harness.last_to(owner).text
    assert f"#{season.id} Quick Cup" in listing and "🎁 Sticker <b>pack</b>" in listing

    rita = world.add_user("Rita")
    await harness.say(rita, "/start")
    await harness.say(rita, f"/season {season.id} prize none")
    assert "Only an admin" in harness.last_to(rita).text
    assert (await harness.app.boards.season(season.id)).prize_id is not None
