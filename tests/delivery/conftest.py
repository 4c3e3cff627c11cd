"""The outbox against the sandbox: a real database, the real Telegram port and aiogram
client over HTTP, and one fake clock for the engine, our limiter and the sandbox's own
flood limits. No update loop runs here: these tests drive ``Outbox.drain_once`` and move
the clock by what the outbox says it must wait."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest_asyncio
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bots.render import Renderer
from bots.telegram.port import TelegramPort
from delivery.outbox import DrainReport, Outbox, Priority, message
from delivery.ratelimit import Limits, RateLimiter
from referrals.clock import FakeClock
from sandbox import ApiCall, DatetimeClock, RateLimits, SandboxServer, SimBot, SimUser, World
from storage import outbox as store
from storage import people as people_store
from storage.database import Database

PLATFORM = "telegram"


@dataclass
class Rig:
    world: World
    server: SandboxServer
    sim: SimBot
    bot: Bot
    port: TelegramPort
    db: Database
    clock: FakeClock
    outbox: Outbox

    def monotonic(self) -> float:
        return self.clock.now().timestamp()

    def use_limits(self, limits: Limits) -> RateLimiter:
        """Give the outbox a fresh limiter with ``limits`` on the fake clock."""
        limiter = self.outbox.limiters[PLATFORM] = RateLimiter(limits, self.monotonic)
        return limiter

    def sandbox_limits(self, enabled: bool = True) -> None:
        """Telegram's flood limits in the sandbox (30/s, 1/s per chat, 20/min per group)."""
        self.world.set_rate_limits(RateLimits(enabled=enabled))

    async def reader(self, name: str, *, started: bool = True) -> SimUser:
        """A person the bot knows (a ``people`` row); ``started``: they opened the bot."""
        user = self.world.add_user(name)
        if started:
            self.world.start_bot(user, self.sim)
        async with self.db.write() as conn:
            await people_store.upsert_person(
                conn, PLATFORM, user.id, self.clock.now(), display_name=name, started=started
            )
        return user

    def row(
        self,
        target: int,
        marker: str,
        *,
        kind: str = "user",
        priority: Priority = Priority.NOTIFY,
        **options: Any,
    ) -> dict[str, Any]:
        """An outbox row whose text carries ``marker`` (the program-paused notice)."""
        return message(
            PLATFORM,
            kind,
            target,
            "program_notice",
            {"program_title": marker, "paused": True, "reason": ""},
            priority=priority,
            now=self.clock.now(),
            **options,
        )

    async def add(self, rows: Sequence[Mapping[str, Any]]) -> int:
        return await self.outbox.add(rows)

    async def drain(self) -> DrainReport:
        return await self.outbox.drain_once()

    async def drain_all(self, *, max_rounds: int = 5_000) -> list[DrainReport]:
        """Drain until nothing is queued, moving the fake clock by what the outbox says
        it has to wait (never by more)."""
        reports = []
        for _ in range(max_rounds):
            report = await self.outbox.drain_once()
            reports.append(report)
            if report.wait is None:
                return reports
            if report.wait > 0:
                self.clock.advance(seconds=report.wait)
        raise AssertionError(f"the outbox was not empty after {max_rounds} drains")

    async def rows(self, state: str | None = None) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return await store.outbox_rows(conn, state)

    async def person(self, user: SimUser) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            return await people_store.person(conn, PLATFORM, user.id)

    def markers_to(self, who: Any) -> list[str]:
        """The markers of the messages the bot sent to ``who``, oldest first."""
        return [_marker(m.text or "") for m in self.world.sent_messages(self.sim, who)]

    def markers(self) -> list[str]:
        return [_marker(m.text or "") for m in self.world.sent_messages(self.sim)]

    def sends(self, *, ok: bool | None = None) -> list[ApiCall]:
        calls = self.world.calls_of("sendMessage", self.sim)
        return [c for c in calls if ok is None or c.ok == ok]

    def refusals(self) -> list[ApiCall]:
        """sendMessage calls the sandbox refused with 429."""
        return [c for c in self.sends(ok=False) if c.error_code == 429]

    def at(self, seconds: float) -> datetime:
        return self.clock.now() + timedelta(seconds=seconds)


def _marker(text: str) -> str:
    # "⏸ The referral program of <marker> is paused: ..."
    return text.split("The referral program of ", 1)[-1].split(" is paused", 1)[0]


@pytest_asyncio.fixture
async def rig(db: Database) -> AsyncIterator[Rig]:
    clock = FakeClock()
    world = World(clock=DatetimeClock(clock), seed=3, rate_limits=RateLimits(enabled=False))
    sim = world.add_bot("outboxbot", "Outbox")
    server = SandboxServer(world)
    await server.start()
    bot = Bot(sim.token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.url)))
    port = TelegramPort(bot, sim.username or "outboxbot", Renderer(), now=clock.now)
    outbox = Outbox(db, clock, {PLATFORM: port})
    r = Rig(world, server, sim, bot, port, db, clock, outbox)
    r.use_limits(Limits())
    try:
        yield r
    finally:
        await bot.session.close()
        await server.stop()
