"""End-to-end harness: the sandbox Bot API server, the real aiogram client, our engine and
a fresh database, all on one fake clock that tests move forward."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from delivery.ratelimit import Limits
from main import Application, Settings
from referrals.clock import FakeClock
from sandbox import DatetimeClock, RateLimits, SandboxServer, SimBot, SimChat, SimUser, World
from storage import outbox as outbox_store
from storage.migrate import upgrade


@dataclass
class Harness:
    world: World
    server: SandboxServer
    bot: SimBot
    app: Application
    clock: FakeClock
    stop: asyncio.Event
    task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.app.run(self.stop))
        await self.world.wait_for(
            lambda: self.app.telegram is not None and self.app.telegram.port is not None,
            what="the bot to start",
        )

    async def settle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until the bot handled every update and sent everything it may send now."""
        await self.world.wait_until_delivered(self.bot, timeout=timeout)
        self.app.outbox.wake()
        await self.app.outbox.wait_idle(timeout)

    async def tick(self) -> dict[str, Any]:
        report = await self.app.tick()
        await self.settle()
        return report

    async def outbox_rows(self, state: str | None = None) -> list[dict[str, Any]]:
        async with self.app.db.read() as conn:
            return await outbox_store.outbox_rows(conn, state)

    def texts_to(self, who: SimUser | SimChat) -> list[str]:
        return [m.text or "" for m in self.world.sent_messages(self.bot, who)]

    def last_to(self, who: SimUser | SimChat) -> Any:
        messages = self.world.sent_messages(self.bot, who)
        assert messages, f"the bot sent nothing to {who}"
        return messages[-1]

    async def say(self, user: SimUser, text: str, to: SimChat | None = None) -> Any:
        """A person types ``text`` (in a private chat with the bot unless ``to``)."""
        self.world.send_text(user, to if to is not None else self.bot, text)
        await self.settle()

    async def stop_bot(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 15)


@asynccontextmanager
async def running_harness(tmp_path: Path, **settings: Any) -> AsyncIterator[Harness]:
    """A started harness; ``settings`` adds to the bot's settings (e.g. ``telegram_owners``).
    The ``harness`` fixture is this with no additions."""
    clock = FakeClock()
    world = World(clock=DatetimeClock(clock), seed=7, rate_limits=RateLimits(enabled=False))
    bot = world.add_bot("loopbot", "Loop")
    server = SandboxServer(world)
    await server.start()
    app_settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        telegram_token=bot.token,
        telegram_api_url=server.url,
        **settings,
    )
    # Our own limiter is opened wide here; tests of the limits build their own.
    limits = Limits(
        global_per_second=10_000,
        global_burst=10_000,
        user_per_second=10_000,
        user_burst=10_000,
        chat_per_minute=600_000,
        chat_burst=10_000,
    )
    app = Application(
        app_settings, clock=clock, limits=limits, poll_timeout=1, retry_delays=(0.0, 0.0)
    )
    await upgrade(app.db)
    h = Harness(world, server, bot, app, clock, asyncio.Event())
    await h.start()
    try:
        yield h
    finally:
        await h.stop_bot()
        await app.close()
        await server.stop()


@pytest_asyncio.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path) as h:
        yield h


@pytest.fixture
def owner(harness: Harness) -> SimUser:
    return harness.world.add_user("Olga", username="olga")


# --- helpers for membership, updates and restart tests (additive) -----------------------


def _wide_limits() -> Limits:
    return Limits(
        global_per_second=10_000,
        global_burst=10_000,
        user_per_second=10_000,
        user_burst=10_000,
        chat_per_minute=600_000,
        chat_burst=10_000,
    )


@dataclass
class Bench:
    """A sandbox world and server that outlive the bot: tests start, stop and restart
    bots (fresh ``Application`` objects on one database file, like new processes)."""

    world: World
    server: SandboxServer
    bot: SimBot
    clock: FakeClock
    db_path: Path
    owners: tuple[int, ...] = ()
    harnesses: list[Harness] | None = None

    def settings(self) -> Settings:
        return Settings(
            database_url=f"sqlite:///{self.db_path}",
            telegram_token=self.bot.token,
            telegram_api_url=self.server.url,
            telegram_owners=list(self.owners),
        )

    async def start_bot(self, **app_kwargs: Any) -> Harness:
        """A new ``Application`` (a new process, as far as the bot is concerned)."""
        kwargs: dict[str, Any] = {
            "clock": self.clock,
            "limits": _wide_limits(),
            "poll_timeout": 1,
            "retry_delays": (0.0, 0.0),
            **app_kwargs,
        }
        app = Application(self.settings(), **kwargs)
        await upgrade(app.db)
        h = Harness(self.world, self.server, self.bot, app, self.clock, asyncio.Event())
        await h.start()
        if self.harnesses is not None:
            self.harnesses.append(h)
        return h

    async def stop_bot(self, h: Harness) -> None:
        await h.stop_bot()
        await h.app.close()


@pytest_asyncio.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    clock = FakeClock()
    world = World(clock=DatetimeClock(clock), seed=11, rate_limits=RateLimits(enabled=False))
    bot = world.add_bot("loopbot", "Loop")
    server = SandboxServer(world)
    await server.start()
    b = Bench(world, server, bot, clock, tmp_path / "bot.db", harnesses=[])
    try:
        yield b
    finally:
        for h in b.harnesses or []:
            if h.task is not None and not h.task.done():
                await h.stop_bot()
            await h.app.close()
        await server.stop()


async def invite_url(h: Harness, reader: SimUser) -> str:
    """The reader types /invite; their personal link (from the copy-link button)."""
    await h.say(reader, "/invite")
    card = h.last_to(reader)
    copy = [b for b in card.inline_buttons if "copy_text" in b]
    assert copy, f"no invite card: {card.text}"
    return str(copy[0]["copy_text"]["text"])


class StatementFault:
    """The next ``times`` SQL statements matching ``pattern`` fail as the database would
    fail them (the driver's ``OperationalError``, wrapped by SQLAlchemy): a fault at the
    storage seam, below every service. ``hits`` counts the failures made."""

    def __init__(self, db: Any, pattern: str, times: int, error: str = "disk I/O error"):
        import re

        from sqlalchemy import event

        self._engine = db.engine.sync_engine
        self._pattern = re.compile(pattern, re.IGNORECASE)
        self.remaining = times
        self.hits = 0
        self._error = error
        self._event = event
        event.listen(self._engine, "before_cursor_execute", self._before)

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        import sqlite3

        if self.remaining > 0 and self._pattern.search(statement):
            self.remaining -= 1
            self.hits += 1
            raise sqlite3.OperationalError(self._error)

    def remove(self) -> None:
        self._event.remove(self._engine, "before_cursor_execute", self._before)
