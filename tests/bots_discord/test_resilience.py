"""What goes wrong on Discord, through the real bot and the sandbox: hostile names, slow
answers and 429s, and the invite counters after a reconnect or a restart (never a guess:
``stale_cache`` and ``while_away``; leaves missed meanwhile still reach the engine)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from main import Application
from sandbox.discord import DiscordUser
from storage.schema import join_attempts, outbox, referrals
from tests.bots_discord.conftest import SETTLE, Discord
from tests.helpers.discord_people import NO_MENTIONS, ask, invite_code, member, rows, sends

HOSTILE = (
    "# **Boss** @everyone @here <@1> <@&2> <#3> [free](https://evil.example) `x` ||y|| "
    "~~z~~ \u202eevil\u202c\u2066\u200b"
)


async def reasons(dc: Discord) -> dict[int, tuple[Any, Any]]:
    return {r["user_id"]: (r["outcome"], r["reason"]) for r in await rows(dc, join_attempts)}


async def join(dc: Discord, user: DiscordUser, code: str) -> None:
    settled = dc.bot.tracker.settled_joins
    dc.world.join_via_invite(user, code)
    await dc.joins_settled(settled + 1)


# --- hostile names -----------------------------------------------------------------------


async def test_hostile_names_are_shown_escaped_and_nothing_the_bot_says_pings(
    set_up: Discord,
) -> None:
    dc = set_up
    await dc.slash(dc.owner, "settings", {"key": "burst_limit", "value": "1"})
    alice = member(dc, "alice", HOSTILE + "A" * 5000)
    code = await invite_code(dc, alice)
    await join(dc, dc.world.add_user("bob", "Bob"), code)
    friend = dc.world.add_user("mallory", HOSTILE + "M" * 5000)
    await join(dc, friend, code)  # the second in the burst window: held for a review

    for user, command in ((alice, "stats"), (alice, "invite"), (dc.owner, "review")):
        text = await dc.slash(user, command)
        assert len(text) <= 2000
        for raw in ("@everyone", "@here", "<@1>", "<@&2>", "<#3>", "**Boss**", "\u202e"):
            assert raw not in text, (command, raw)
    stats = await dc.slash(alice, "stats")
    assert "# \\*\\*Boss\\*\\* @\u200beveryone @\u200bhere" in stats
    assert "\\[free\\]" in stats
    held = await dc.slash(dc.owner, "review")
    assert "@\u200beveryone" in held  # the held friend's name, neutralised

    bodies = sends(dc)
    assert bodies
    assert all(body.get("allowed_mentions") == NO_MENTIONS for body in bodies), bodies


# --- answers in time ------------------------------------------------------------------------


async def test_a_slow_command_is_deferred_ephemeral_before_its_slow_call(set_up: Discord) -> None:
    dc = set_up
    alice = member(dc, "alice", "Alice")
    # Creating the invite takes 2.5 s (a 429 discord.py waits out by itself).
    dc.world.inject_rate_limit("POST /channels/{channel_id}/invites", retry_after=2.5)
    started = time.monotonic()
    record = dc.world.invoke_slash(alice, dc.channel, "invite")
    await dc.world.wait_for_response(record)
    deferred_after = time.monotonic() - started
    [first] = record.responses
    assert first.type == 5 and first.ephemeral  # "thinking", and only the reader sees it
    assert deferred_after < 1.0
    [answer] = await dc.world.wait_for_messages_of(record, 1)
    await dc.world.wait_for(lambda: "discord.gg" in answer.content, what="the invite")
    assert time.monotonic() - started >= 2.5
    assert answer.ephemeral


async def test_a_long_429_on_one_route_goes_to_the_outbox_and_blocks_nobody(
    set_up: Discord,
) -> None:
    dc = set_up
    alice, carol = member(dc, "alice", "Alice"), member(dc, "carol", "Carol")
    code = await invite_code(dc, alice)
    # Every DM or post for the next minute is refused with retry_after 60 s: far over
    # discord.py's max_ratelimit_timeout (30 s), so it raises instead of sleeping.
    dc.world.inject_rate_limit(
        "POST /channels/{channel_id}/messages", times=1_000, retry_after=60.0
    )
    started = time.monotonic()
    invite = dc.world.live_invite(code)
    assert invite is not None
    dc.world.delete_invite(invite)  # alice is told by DM: that DM waits
    [told] = await _wait_outbox(
        dc, lambda r: r["template"] == "invite_revoked" and r["attempts"] == 0 and r["last_error"]
    )
    assert told["state"] == "queued" and told["last_error"] == "retry after 60s"
    assert (told["next_attempt_at"] - dc.clock.now()).total_seconds() >= 59

    # Meanwhile other people's commands are answered at once.
    _, answer = await ask(dc, carol, "stats")
    assert "Your referrals" in answer.content
    assert time.monotonic() - started < 5.0


async def _wait_outbox(dc: Discord, check: Any) -> list[dict[str, Any]]:
    async with asyncio.timeout(5):
        while not (found := [r for r in await rows(dc, outbox) if check(r)]):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    return found


# --- reconnects and restarts ------------------------------------------------------------


async def test_joins_replayed_after_a_resumed_connection_are_stale_cache(set_up: Discord) -> None:
    dc = set_up
    alice = member(dc, "alice", "Alice")
    code = await invite_code(dc, alice)
    resumed = len([c for c in dc.world.connections if c.kind == "resume"])
    bob = dc.world.add_user("bob", "Bob")
    dc.world.drop_connections(dc.sandbox_app)  # the socket drops; the session survives
    settled = dc.bot.tracker.settled_joins
    dc.world.join_via_invite(bob, code)  # buffered, replayed on RESUME
    await dc.world.wait_for(
        lambda: len([c for c in dc.world.connections if c.kind == "resume"]) > resumed,
        what="a RESUME",
    )
    await dc.joins_settled(settled + 1)
    assert (await reasons(dc))[bob.id] == ("unattributed", "stale_cache")
    assert await rows(dc, referrals) == []

    # After the resync the counters are known again: the next join counts.
    await dc.world.wait_for(lambda: not dc.bot.tracker.stale, what="the resync")
    cat = dc.world.add_user("cat", "Cat")
    await join(dc, cat, code)
    assert [(r["referred_id"], r["referrer_id"]) for r in await rows(dc, referrals)] == [
        (cat.id, alice.id)
    ]


async def test_a_new_session_after_op_9_catches_up_joins_and_leaves_from_the_member_list(
    set_up: Discord,
) -> None:
    dc = set_up
    alice = member(dc, "alice", "Alice")
    code = await invite_code(dc, alice)
    carol = dc.world.add_user("carol", "Carol")
    await join(dc, carol, code)
    ready = len([c for c in dc.world.connections if c.kind == "identify"])

    dc.world.invalidate_sessions(dc.sandbox_app)  # op 9: a new IDENTIFY replays nothing
    bob = dc.world.add_user("bob", "Bob")
    dc.world.join_via_invite(bob, code)  # no session hears it
    dc.world.leave(carol, dc.guild)  # nor this
    await dc.world.wait_for(
        lambda: len([c for c in dc.world.connections if c.kind == "identify"]) > ready,
        what="a new IDENTIFY",
    )
    await _wait_for(dc, lambda found: bob.id in found)
    found = await reasons(dc)
    assert found[bob.id] == ("unattributed", "while_away")
    async with asyncio.timeout(5):  # the missed leave follows the missed joins
        while (await rows(dc, referrals, referred_id=carol.id))[0]["state"] != "rejected":  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    [carols] = await rows(dc, referrals, referred_id=carol.id)
    assert carols["reason"] == "left_during_hold"


async def _wait_for(dc: Discord, check: Any) -> None:
    async with asyncio.timeout(5):
        while not check(await reasons(dc)):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def restarted(dc: Discord) -> AsyncIterator[None]:
    """Stop the bot's process (nothing more is heard), run ``yield``'s body with a new one
    on the same database, then stop that one."""
    old = dc.app
    dc.app = Application(
        old.settings,
        clock=dc.clock,
        discord_options={
            "settle_seconds": SETTLE,
            "member_add_lag": 0.0,  # as the fixture's: events come when the test moves them
            "guild_ready_timeout": 0.05,
        },
    )
    dc.stop = asyncio.Event()
    try:
        await dc.start()
        yield
    finally:
        await dc.stop_bot()
        await dc.app.close()
        dc.app = old  # the fixture closes the first one again: that is harmless


async def stop(dc: Discord) -> None:
    await dc.stop_bot()
    await dc.app.close()


async def test_after_a_restart_joins_and_leaves_while_away_are_caught_up(
    set_up: Discord,
) -> None:
    dc = set_up
    alice = member(dc, "alice", "Alice")
    code = await invite_code(dc, alice)
    carol = dc.world.add_user("carol", "Carol")
    await join(dc, carol, code)
    await stop(dc)

    bob, dan = dc.world.add_user("bob", "Bob"), dc.world.add_user("dan", "Dan")
    dc.world.join_via_invite(bob, code)
    dc.world.leave(carol, dc.guild)
    async with restarted(dc):
        await _wait_for(dc, lambda found: bob.id in found)
        # A join right after the restart: the counters are the ones read at READY, so it
        # counts.
        await join(dc, dan, code)
        found = await reasons(dc)
        assert found[bob.id] == ("unattributed", "while_away")
        by_friend = {r["referred_id"]: r for r in await rows(dc, referrals)}
        assert by_friend[carol.id]["reason"] == "left_during_hold"
        assert by_friend[dan.id]["referrer_id"] == alice.id
        assert bob.id not in by_friend


async def test_a_join_heard_but_not_settled_before_a_crash_is_caught_up_after_it(
    set_up: Discord,
) -> None:
    dc = set_up
    alice = member(dc, "alice", "Alice")
    code = await invite_code(dc, alice)
    dc.bot.tracker.settle_seconds = 60.0  # bob's window is still open when the bot stops
    bob = dc.world.add_user("bob", "Bob")
    dc.world.join_via_invite(bob, code)
    await dc.world.wait_for(lambda: dc.bot.tracker.pending, what="bob's join heard")
    # The counters are stored again after bob joined (another window, or /setup again):
    # the last sync is newer than his join.
    dc.clock.advance(timedelta(minutes=1))
    assert "is set up" in await dc.slash(dc.owner, "setup")
    await stop(dc)  # his window never settles

    async with restarted(dc):
        await _wait_for(dc, lambda found: bob.id in found)
        assert (await reasons(dc))[bob.id] == ("unattributed", "while_away")


async def test_a_leave_reaches_the_engine_from_the_raw_event(set_up: Discord) -> None:
    dc = set_up
    alice = member(dc, "alice", "Alice")
    code = await invite_code(dc, alice)
    bob = dc.world.add_user("bob", "Bob")
    await join(dc, bob, code)
    guild = dc.bot.get_guild(dc.guild.id)
    assert guild is not None
    guild._remove_member(guild.get_member(bob.id))  # type: ignore[arg-type]  # not cached
    dc.world.leave(bob, dc.guild)

    async def rejected() -> bool:
        [row] = await rows(dc, referrals)
        return row["state"] == "rejected"

    async with asyncio.timeout(5):
        while not await rejected():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    [row] = await rows(dc, referrals)
    assert row["reason"] == "left_during_hold"
