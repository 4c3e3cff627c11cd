"""/leaderboard through the real aiogram bot and the sandbox Bot API: the top, the
reader's place, period buttons, privacy in groups, hostile names."""

from __future__ import annotations

from sandbox import SimUser
from tests.bots.conftest import Harness
from tests.helpers.telegram import button_texts, set_up_chat, url_in


async def _invite(harness: Harness, reader: SimUser) -> str:
    await harness.say(reader, "/invite")
    return url_in(harness.last_to(reader))


async def test_leaderboard_shows_the_top_and_where_the_reader_stands(
    harness: Harness, owner: SimUser
) -> None:
    world, clock = harness.world, harness.clock
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    ana = world.add_user("Ana")
    eve = world.add_user("\u202eEve\u200b<b>boss</b>")
    ana_url, eve_url = await _invite(harness, ana), await _invite(harness, eve)
    for n in range(3):
        world.open_link(world.add_user(f"Friend {n}"), ana_url)
    world.open_link(world.add_user("Friend X"), eve_url)
    await harness.settle()
    clock.advance(days=3)
    await harness.tick()

    await harness.say(eve, "/leaderboard")
    board = harness.last_to(eve)
    lines = board.text.splitlines()
    assert lines[0] == "🏆 Readers Club — all time"
    assert "1. Ana — 3" in lines
    assert any(line.startswith("2. Eve") and "<b>" in line for line in lines)  # text, not tags
    assert not any("\u202e" in line or "\u200b" in line for line in lines)
    assert "You: #2 with 1. 2 more to move up." in board.text
    assert {"This week", "This month", "Season"} <= set(button_texts(board))

    world.press_button(eve, board, text="This week")
    await harness.settle()
    assert "Readers Club — this week" in harness.last_to(eve).text

    world.add_member(chat, ana)
    await harness.say(ana, "/leaderboard week", to=chat)
    assert harness.last_to(chat).text == "Ana, I sent you the leaderboard in a private message."
    assert "You lead!" in harness.last_to(ana).text

    await harness.say(ana, "/leaderboard yesterday")
    assert "Which board?" in harness.last_to(ana).text


async def test_managers_set_up_boards_and_seasons_in_chat(
    harness: Harness, owner: SimUser
) -> None:
    _chat, program = await set_up_chat(harness, owner, "channel", "Daily Brief")
    await harness.say(owner, "/board")
    assert "Weeks start on Monday" in harness.last_to(owner).text
    await harness.say(owner, "/board names private")
    await harness.say(owner, "/board week sun")
    await harness.say(owner, "/board schedule 0 9 * * 1 month")
    shown = harness.last_to(owner).text
    assert "Reader #number" in shown and "Weeks start on Sunday" in shown
    assert "0 9 * * 1" in shown and "month's board" in shown
    settings = await harness.app.boards.settings(program["id"])
    assert (settings.public_names, settings.week_start, settings.schedule_period) == (
        False,
        6,
        "month",
    )
    await harness.say(owner, "/board schedule 61 9 * * 1")
    assert "minute must be one number from 0 to 59" in harness.last_to(owner).text
    await harness.say(owner, "/board schedule 0 25 * * 1")
    assert "not a cron schedule I can read" in harness.last_to(owner).text
    assert (await harness.app.boards.settings(program["id"])).schedule == "0 9 * * 1"
    await harness.say(owner, "/season 2026-03-01 2026-03-31 draw 2 min 3 Spring <b>draw</b>")
    created = harness.last_to(owner).text
    assert "Spring <b>draw</b>" in created and "commitment" in created
    [season] = await harness.app.boards.seasons(program["id"])
    assert (season.mode, season.winners, season.min_referrals) == ("draw", 2, 3)

    reader = harness.world.add_user("Rita")
    await harness.say(reader, "/start")
    await harness.say(reader, "/board names public")
    assert (await harness.app.boards.settings(program["id"])).public_names is False
    await harness.say(reader, "/season 2026-04-01 2026-04-30 top 3 Mine")
    assert len(await harness.app.boards.seasons(program["id"])) == 1
