"""/leaderboard through the real bot: the top of a board and the caller's place, only to
them; names that try to format or ping stay text; buttons page and switch period in place."""

from __future__ import annotations

from bots.render import ZWSP
from tests.bots_discord.conftest import Discord
from tests.helpers.discord import (
    bring_friends,
    custom_ids,
    hold_passes,
    labels,
    member,
    press,
    slash,
)


async def test_the_board_shows_the_top_and_the_callers_place_to_them_alone(
    set_up: Discord,
) -> None:
    dc = set_up
    alice = await member(dc, "alice", "Alice")
    carol = await member(dc, "carol", "Carol")
    await bring_friends(dc, alice, 2)
    await bring_friends(dc, carol, 1)
    await hold_passes(dc)
    board = await slash(dc, carol, "leaderboard")
    assert board.ephemeral
    lines = board.content.splitlines()
    assert "1\\. Alice — 2" in lines
    assert "2\\. **Carol** (you) — 1" in lines
    assert "You: #2 with 1. 1 more to move up." in board.content
    # the other periods, no pages (one page only)
    assert custom_ids(board) == ["lb:week:1", "lb:month:1", "lb:season:1"]
    assert list(labels(board).values()) == ["This week", "This month", "Season"]
    sent = dc.world.calls("POST /webhooks/{webhook_id}/{webhook_token}")[-1]
    assert sent.body["allowed_mentions"] == {"parse": []}
    assert all(m.ephemeral for m in dc.world.channel_messages(dc.channel))  # nothing public


async def test_hostile_names_neither_format_nor_ping(set_up: Discord) -> None:
    dc = set_up
    eve = await member(dc, "eve", "@everyone **big** <@123> # Heading")
    await bring_friends(dc, eve, 1)
    await hold_passes(dc)
    board = await slash(dc, eve, "leaderboard", {"period": "all"})
    line = next(ln for ln in board.content.splitlines() if ln.startswith("1\\. "))
    assert f"@{ZWSP}everyone" in line and f"<{ZWSP}@123>" in line
    assert "\\*\\*big\\*\\*" in line and "**big**" not in line.replace("\\*", "")
    assert "@everyone" not in board.content and "<@123>" not in board.content


async def test_buttons_page_down_and_up_and_switch_period_in_place(set_up: Discord) -> None:
    dc = set_up
    readers = [await member(dc, f"reader{i}", f"Reader {i:02d}") for i in range(12)]
    for number, reader in enumerate(readers):
        await bring_friends(dc, reader, 1 + (number == 0))
    await hold_passes(dc)
    last = readers[-1]
    board = await slash(dc, last, "leaderboard")
    assert "Page 1 of 2 · 12 readers" in board.content
    assert "lb:all:2" in custom_ids(board) and "lb:all:0" not in custom_ids(board)
    assert "1\\. Reader 00 — 2" in board.content  # ties share a rank: nine more at 2
    assert board.content.count("\n2\\. Reader") == 9 and "Reader 11" not in board.content

    pressed = await press(dc, last, board, "lb:all:2")
    assert pressed.responses[0].type == 7  # the same message, redrawn
    assert "Page 2 of 2" in board.content and "2\\. **Reader 11** (you) — 1" in board.content
    assert "Reader 00" not in board.content
    assert "lb:all:1" in custom_ids(board) and "lb:all:3" not in custom_ids(board)

    pressed = await press(dc, last, board, "lb:week:1")
    assert pressed.responses[0].type == 7
    assert "this week" in board.content.splitlines()[0]
    assert custom_ids(board)[:3] == ["lb:month:1", "lb:all:1", "lb:season:1"]
    assert board.ephemeral


async def test_a_button_of_an_old_board_after_it_shrank_shows_its_last_page(
    set_up: Discord,
) -> None:
    dc = set_up
    alice = await member(dc, "alice", "Alice")
    await bring_friends(dc, alice, 1)
    await hold_passes(dc)
    board = await slash(dc, alice, "leaderboard")
    board.components = [
        {"type": 1, "components": [{"type": 2, "style": 2, "label": "x", "custom_id": "lb:all:9"}]}
    ]  # a button from the time the board had nine pages
    await press(dc, alice, board, "lb:all:9")
    assert "1\\. **Alice** (you) — 1" in board.content


async def test_the_season_board_without_a_season_says_so(set_up: Discord) -> None:
    dc = set_up
    alice = await member(dc, "alice", "Alice")
    answer = await slash(dc, alice, "leaderboard", {"period": "season"})
    assert "no season yet" in answer.content and answer.ephemeral


async def test_indonesian_readers_get_the_board_in_indonesian(set_up: Discord) -> None:
    dc = set_up
    budi = dc.world.add_user("budi", "Budi", locale="id")
    dc.world.add_member(dc.guild, budi)
    await bring_friends(dc, budi, 1)
    await hold_passes(dc)
    board = await slash(dc, budi, "leaderboard")
    assert "sepanjang masa" in board.content.lower()
    assert list(labels(board).values()) == ["Minggu ini", "Bulan ini", "Musim"]
