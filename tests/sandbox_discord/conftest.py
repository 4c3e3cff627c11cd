"""Fixtures for the Discord sandbox: a world on a fake clock, its server, real discord.py bots.

``pointed`` aims discord.py at the sandbox (``Route.BASE`` and ``DEFAULT_GATEWAY``, put back
afterwards); ``start_bot`` runs a :class:`RecordingBot` until it is ready and closes it at
the end of the test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import discord
import pytest
import yarl
from discord.ext import commands

from sandbox.clock import FakeClock
from sandbox.discord import (
    Application,
    Channel,
    DiscordSandboxServer,
    DiscordUser,
    DiscordWorld,
    Guild,
    Role,
    permissions,
)

BOT_PERMISSIONS = (
    permissions.VIEW_CHANNEL
    | permissions.SEND_MESSAGES
    | permissions.CREATE_INSTANT_INVITE
    | permissions.MANAGE_CHANNELS
    | permissions.MANAGE_GUILD
    | permissions.MANAGE_ROLES
)


def minimal_intents() -> discord.Intents:
    """guilds + members + invites, as the referral bot asks for."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.members = True
    intents.invites = True
    return intents


class RecordingBot(commands.Bot):
    """A small bot that records what it sees; no waits between reconnects."""

    def __init__(self, intents: discord.Intents | None = None, **options: Any) -> None:
        super().__init__(
            command_prefix="!",
            intents=intents or minimal_intents(),
            guild_ready_timeout=0.05,
            **options,
        )
        self.ready = asyncio.Event()
        self.ready_count = 0
        self.resumed_count = 0
        self.joins: list[discord.Member] = []
        self.removes: list[discord.Member] = []
        self.invites_created: list[discord.Invite] = []
        self.invites_deleted: list[discord.Invite] = []
        self.changed = asyncio.Event()
        self.join_hook: Callable[[discord.Member], Awaitable[None]] | None = None
        self.command_errors: list[BaseException] = []

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s before a re-IDENTIFY; the sandbox has no identify limit."""

    def _poke(self) -> None:
        self.changed.set()

    async def on_ready(self) -> None:
        self.ready_count += 1
        self.ready.set()
        self._poke()

    async def on_resumed(self) -> None:
        self.resumed_count += 1
        self._poke()

    async def on_member_join(self, member: discord.Member) -> None:
        self.joins.append(member)
        if self.join_hook is not None:
            await self.join_hook(member)
        self._poke()

    async def on_member_remove(self, member: discord.Member) -> None:
        self.removes.append(member)
        self._poke()

    async def on_invite_create(self, invite: discord.Invite) -> None:
        self.invites_created.append(invite)
        self._poke()

    async def on_invite_delete(self, invite: discord.Invite) -> None:
        self.invites_deleted.append(invite)
        self._poke()

    async def wait_until(
        self,
        predicate: Callable[[], object],
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> None:
        """Wait (real time) until ``predicate()`` holds, re-checked when an event arrives."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 0.05)


class Cast:
    """An owner, two readers, a bot with invite and role rights, a guild with a role."""

    def __init__(self, world: DiscordWorld) -> None:
        self.owner: DiscordUser = world.add_user("olga")
        self.alice: DiscordUser = world.add_user("alice", "Alice")
        self.bob: DiscordUser = world.add_user("bob")
        self.app: Application = world.add_application("Invite Loop", owner=self.owner)
        self.guild: Guild = world.add_guild("Readers", self.owner, vanity_code="readers")
        self.channel: Channel = next(iter(self.guild.channels.values()))
        self.reader_role: Role = world.add_role(self.guild, "Reader")
        self.bot_role: Role = world.add_bot_to_guild(
            self.app, self.guild, permissions=BOT_PERMISSIONS
        )
        world.add_member(self.guild, self.alice)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def world(clock: FakeClock) -> DiscordWorld:
    return DiscordWorld(clock=clock, seed=3, member_add_delay=0)


@pytest.fixture
def cast(world: DiscordWorld) -> Cast:
    return Cast(world)


@pytest.fixture
async def server(world: DiscordWorld) -> AsyncIterator[DiscordSandboxServer]:
    async with DiscordSandboxServer(world) as running:
        yield running


@pytest.fixture
def pointed(server: DiscordSandboxServer) -> Iterator[DiscordSandboxServer]:
    """discord.py aimed at the sandbox for the length of the test."""
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = server.endpoints.rest_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.endpoints.gateway_url)
    try:
        yield server
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


StartBot = Callable[..., Awaitable[RecordingBot]]


@pytest.fixture
async def start_bot(pointed: DiscordSandboxServer, cast: Cast) -> AsyncIterator[StartBot]:
    """Start a bot (``bot=`` an unstarted one, or a new RecordingBot) and wait for on_ready."""
    running: list[tuple[RecordingBot, asyncio.Task[None]]] = []

    async def start(
        bot: RecordingBot | None = None, *, app: Application | None = None, wait: bool = True
    ) -> RecordingBot:
        bot = bot or RecordingBot()
        token = (app or cast.app).token
        task = asyncio.create_task(bot.start(token), name="discord-bot")
        running.append((bot, task))
        if wait:
            ready = asyncio.create_task(bot.ready.wait())
            done, _ = await asyncio.wait({ready, task}, timeout=5, return_when="FIRST_COMPLETED")
            if task in done:
                ready.cancel()
                task.result()  # raises what stopped the bot
            assert ready in done, "the bot did not become ready"
        return bot

    yield start
    for bot, task in running:
        await bot.close()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await task
