"""GUILD_MEMBER_ADD comes a second or two after the invite's counter moved, each join with
its own delay: a reading of the counters may carry the rise of a join not yet announced, and
an announced join's rise may have gone into the reading before. The sums then fit the wrong
reader; the bot must not credit anyone (found by ``benchmarks/discord_e2e.py``).

The world's clock moves only when a test moves it, so the member-add delays here are world
seconds; the bot's guard (``member_add_lag``) is real seconds, and each test moves the world
on right after the bot has read the counters, well within it."""

from __future__ import annotations

import asyncio

from storage.schema import join_attempts, referrals
from tests.bots_discord.conftest import Discord
from tests.bots_discord.test_attribution import _invite_code, _rows

LAG = 1.0  # real seconds the bot waits after a reading for members still on their way


async def _read_once_more(dc: Discord, before: float | None) -> float:
    """Wait until the bot has read this server's counters again; when it did."""
    async with asyncio.timeout(5):
        while (read := dc.bot.tracker.read_at.get(dc.guild.id)) == before:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    assert read is not None
    return read


async def _outcomes(dc: Discord) -> dict[int, tuple[object, object]]:
    return {r["user_id"]: (r["outcome"], r["reason"]) for r in await _rows(dc, join_attempts)}  # type: ignore[misc]


async def test_a_join_announced_after_another_readers_rise_is_not_credited_to_it(
    set_up: Discord,
) -> None:
    """bob uses alice's invite but is announced late; zed (carol's invite) comes first, and
    the reading of zed's window takes bob's rise too. Then dan uses erin's invite: bob's
    window sees exactly one rise, erin's — counting alone credited bob to erin."""
    dc = set_up
    world = dc.world
    readers = [world.add_user(name, name.title()) for name in ("alice", "carol", "erin")]
    for reader in readers:
        world.add_member(dc.guild, reader)
    alice_code, carol_code, erin_code = [await _invite_code(dc, r) for r in readers]
    bob, zed, dan = world.add_user("bob"), world.add_user("zed"), world.add_user("dan")
    dc.bot.tracker.member_add_lag = LAG

    world.member_add_delay = 3.0
    world.join_via_invite(bob, alice_code)
    world.member_add_delay = 1.0
    world.join_via_invite(zed, carol_code)
    before = dc.bot.tracker.read_at.get(dc.guild.id)
    world.advance(1.0)  # zed is announced; bob's rise is already in the counters
    read = await _read_once_more(dc, before)
    world.member_add_delay = 5.0
    world.join_via_invite(dan, erin_code)
    world.advance(2.0)  # bob is announced; dan's rise is the only one since zed's reading
    read = await _read_once_more(dc, read)
    world.advance(3.0)  # dan is announced
    await dc.joins_settled(3)

    assert await _rows(dc, referrals) == []
    outcomes = await _outcomes(dc)
    assert {outcomes[u.id] for u in (bob, zed, dan)} == {("unattributed", "ambiguous")}


async def test_a_join_without_invite_beside_a_join_still_on_its_way_is_not_credited(
    set_up: Discord,
) -> None:
    """dan uses alice's invite and is announced late; bob comes in without any invite and
    is announced first: bob's window sees one join and one rise, alice's."""
    dc = set_up
    world = dc.world
    alice = world.add_user("alice", "Alice")
    world.add_member(dc.guild, alice)
    alice_code = await _invite_code(dc, alice)
    bob, dan = world.add_user("bob"), world.add_user("dan")
    dc.bot.tracker.member_add_lag = LAG

    world.member_add_delay = 3.0
    world.join_via_invite(dan, alice_code)
    world.member_add_delay = 1.0
    world.join_without_invite(bob, dc.guild)
    before = dc.bot.tracker.read_at.get(dc.guild.id)
    world.advance(1.0)  # bob is announced; alice's counter has moved for dan
    await _read_once_more(dc, before)
    world.advance(2.0)  # dan is announced while the bot still waits after that reading
    await dc.joins_settled(2)

    assert await _rows(dc, referrals) == []
    outcomes = await _outcomes(dc)
    assert {outcomes[u.id] for u in (bob, dan)} == {("unattributed", "ambiguous")}
