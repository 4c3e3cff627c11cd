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
