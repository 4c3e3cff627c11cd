"""Connecting the real discord.py client: READY, member chunks, intents, resume, op 9."""

from __future__ import annotations

import discord
import pytest

from sandbox.discord import DiscordWorld
from tests.sandbox_discord.conftest import Cast, RecordingBot, StartBot


async def test_bot_connects_gets_ready_with_every_member_chunked(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    guild = bot.get_guild(cast.guild.id)
    assert guild is not None and guild.chunked
    assert {m.id for m in guild.members} == {cast.owner.id, cast.alice.id, cast.app.user.id}
    assert guild.me.id == cast.app.user.id
    assert bot.user is not None and bot.user.id == cast.app.user.id
    assert bot.application_id == cast.app.id
    assert [c.kind for c in world.connections] == ["identify"]
    assert world.gateway_events(cast.app, "GUILD_MEMBERS_CHUNK")


async def test_privileged_intent_not_enabled_closes_with_4014(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    cast.app.intents_enabled = 0  # GUILD_MEMBERS switched off in the developer portal
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await start_bot()
    assert world.connections[-1].close_code == 4014


async def test_dropped_connection_resumes_and_replays_missed_events(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    session = await world.wait_until_connected(cast.app)
    assert world.drop_connections(cast.app) == 1
    world.join_without_invite(cast.bob, cast.guild)  # happens while the bot is away
    await bot.wait_until(lambda: bot.resumed_count == 1 and bot.joins)
    assert [m.id for m in bot.joins] == [cast.bob.id]
    assert [c.kind for c in world.connections] == ["identify", "resume"]
    assert world.connections[1].path == "/gateway-resume"
    assert world.connections[1].session_id == session.id
    assert bot.ready_count == 1


async def test_invalid_session_forces_a_new_identify(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    first = await world.wait_until_connected(cast.app)
    assert world.invalidate_sessions(cast.app) == 1
    await bot.wait_until(lambda: bot.ready_count == 2)
    assert [c.kind for c in world.connections] == ["identify", "identify"]
    assert not first.valid
    second = await world.wait_until_connected(cast.app, sessions=2)
    assert second.id != first.id


async def test_invalid_resume_gets_op_9_then_identifies(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    session = await world.wait_until_connected(cast.app)
    world.drop_connections(cast.app)
    session.valid = False  # the session expired on Discord's side meanwhile
    await bot.wait_until(lambda: bot.ready_count == 2)
    assert [c.kind for c in world.connections] == ["identify", "resume", "identify"]


async def test_member_query_over_op_8(cast: Cast, start_bot: StartBot) -> None:
    bot = await start_bot()
    guild = bot.get_guild(cast.guild.id)
    assert guild is not None
    found = await guild.query_members(query="ali", limit=5)
    assert [m.id for m in found] == [cast.alice.id]
    by_id = await guild.query_members(user_ids=[cast.owner.id])
    assert [m.id for m in by_id] == [cast.owner.id]


async def test_member_leave_reaches_the_bot(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    world.leave(cast.alice, cast.guild)
    await bot.wait_until(lambda: bot.removes)
    assert bot.removes[0].id == cast.alice.id


async def test_bot_without_members_intent_sees_no_joins(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    intents = discord.Intents.none()
    intents.guilds = True
    bot = await start_bot(RecordingBot(intents=intents))
    world.join_without_invite(cast.bob, cast.guild)
    assert world.gateway_events(cast.app, "GUILD_MEMBER_ADD") == []
    assert bot.joins == []
