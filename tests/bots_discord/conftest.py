"""End to end on Discord: the sandbox's REST + gateway, the real discord.py client inside
our ReferralBot, our engine on a fresh database; the engine's clock and the sandbox's
start at the same moment and move only when a test moves them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord
import pytest

from bots.discord.app import ReferralBot
from main import Application, Settings
from referrals.clock import FakeClock
from sandbox.clock import FakeClock as WorldClock
from sandbox.discord import (
    Application as SandboxApp,
)
from sandbox.discord import (
    Channel,
    DiscordSandboxServer,
    DiscordUser,
    DiscordWorld,
    Guild,
    InteractionRecord,
    permissions,
)
from storage.migrate import upgrade

BOT_PERMISSIONS = (
    permissions.VIEW_CHANNEL
    | permissions.SEND_MESSAGES
    | permissions.CREATE_INSTANT_INVITE
    | permissions.MANAGE_CHANNELS
    | permissions.MANAGE_GUILD
    | permissions.MANAGE_ROLES
)
SETTLE = 0.05  # the settle window, in real seconds (the sandbox delivers at once)


@dataclass
class Discord:
    world: DiscordWorld
    server: DiscordSandboxServer
    app: Application
    sandbox_app: SandboxApp
    guild: Guild
    channel: Channel
    owner: DiscordUser
    clock: FakeClock
    stop: asyncio.Event
    task: asyncio.Task[None] | None = None

    @property
    def bot(self) -> ReferralBot:
        assert self.app.discord is not None
        return self.app.discord.bot

    async def start(self) -> None:
        self.bot.tracker.synced = False
        self.task = asyncio.create_task(self.app.run(self.stop))
        await self.world.wait_until_connected(self.sandbox_app)
        async with asyncio.timeout(10):
            while not (self.bot.is_ready() and self.bot.tracker.synced):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await self.bot.tree.sync()

    async def slash(
        self, user: DiscordUser, name: str, options: dict[str, Any] | None = None
    ) -> str:
        """``/name`` by ``user``; returns the text of its (last) answer."""
        record: InteractionRecord = self.world.invoke_slash(user, self.channel, name, options)
        await self.world.wait_for_response(record)
        async with asyncio.timeout(5):
            while True:
                texts = [m.content for m in self.world.interaction_responses(record)]
                if texts and texts[-1]:
                    return texts[-1]
                await asyncio.sleep(0.01)

    async def joins_settled(self, count: int) -> None:
        """Wait (real time) until the tracker has settled ``count`` joins in all."""
        async with asyncio.timeout(5):
            while self.bot.tracker.settled_joins < count:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    async def stop_bot(self) -> None:
        self.stop.set()
        if self.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.task, 15)


@contextlib.asynccontextmanager
async def running(tmp_path: Path, **world_options: Any) -> AsyncIterator[Discord]:
    world_clock = WorldClock()
    world = DiscordWorld(clock=world_clock, seed=5, member_add_delay=0, **world_options)
    owner = world.add_user("olga", "Olga")
    sandbox_app = world.add_application("Invite Loop", owner=owner)
    guild = world.add_guild("Readers", owner, vanity_code="readers")
    channel = next(iter(guild.channels.values()))
    world.add_bot_to_guild(sandbox_app, guild, permissions=BOT_PERMISSIONS)
    clock = FakeClock(datetime.fromtimestamp(world_clock.time(), UTC))
    async with DiscordSandboxServer(world) as server:
        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'bot.db'}",
            discord_token=sandbox_app.token,
            discord_api_url=server.url,
        )
        app = Application(
            settings,
            clock=clock,
            discord_options={
                "settle_seconds": SETTLE,
                "member_add_lag": 0.0,  # events come when the test moves the clock
                "guild_ready_timeout": 0.05,
            },
        )
        await upgrade(app.db)
        h = Discord(world, server, app, sandbox_app, guild, channel, owner, clock, asyncio.Event())
        try:
            await h.start()
            yield h
        finally:
            await h.stop_bot()
            await app.close()
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


@pytest.fixture
async def dc(tmp_path: Path) -> AsyncIterator[Discord]:
    async with running(tmp_path) as h:
        yield h


@pytest.fixture
async def set_up(dc: Discord) -> Discord:
    text = await dc.slash(dc.owner, "setup")
    assert "is set up" in text, text
    return dc
