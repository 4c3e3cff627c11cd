"""Fixtures for the sandbox tests: a world on a fake clock, its server, aiogram clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from sandbox import FakeClock, SandboxServer, SimBot, SimChat, SimUser, World

BotFactory = Callable[[SimBot], Bot]


class LocalSession(AiohttpSession):
    """aiogram's session without the 250 ms pause its close() makes for TLS shutdown."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def world(clock: FakeClock) -> World:
    return World(clock=clock, seed=7)


@pytest.fixture
async def server(world: World) -> AsyncIterator[SandboxServer]:
    async with SandboxServer(world, webhook_retry_delay=0.01) as running:
        yield running


@pytest.fixture
async def client(server: SandboxServer) -> AsyncIterator[BotFactory]:
    """Build real aiogram clients pointed at the sandbox; sessions closed afterwards."""
    bots: list[Bot] = []

    def make(sim: SimBot) -> Bot:
        session = LocalSession(api=TelegramAPIServer.from_base(server.url))
        bot = Bot(sim.token, session=session)
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        await bot.session.close()


class Cast:
    """A small standard world: an owner, two readers, a bot and a private supergroup."""

    def __init__(self, world: World) -> None:
        self.owner: SimUser = world.add_user("Olga", username="olga_owner")
        self.alice: SimUser = world.add_user("Alice", "alice_s", last_name="Smith")
        self.bob: SimUser = world.add_user("Bob", language_code="id")
        self.sim: SimBot = world.add_bot("invite_loop_bot", "Invite Loop")
        self.chat: SimChat = world.add_chat("supergroup", "Readers", owner=self.owner)
        world.add_bot_to_chat(self.chat, self.sim, by=self.owner)


@pytest.fixture
def cast(world: World) -> Cast:
    return Cast(world)


async def drain(bot: Bot) -> int | None:
    """Confirm every queued update; return the offset to poll with next."""
    updates = await bot.get_updates()
    if not updates:
        return None
    offset = updates[-1].update_id + 1
    await bot.get_updates(offset=offset)
    return offset
