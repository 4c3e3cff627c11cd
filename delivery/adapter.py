"""What the composition root (``main.py``) needs from a bot adapter, and the scheduled
jobs it runs.

An adapter (``bots/telegram``, later ``bots/discord``) starts — learns who it is on its
platform — and hands back its port, which ``main.py`` alone connects to the engine (the
:class:`~delivery.port.PlatformPort` half) and to the outbox (the
:class:`~delivery.outbox.Sender` half). It then serves (polls, or holds its gateway) until
told to stop, brings jobs of its own (the Telegram inbox retry), and closes.

A :class:`Job` is a named call of a service on an interval or a UTC cron schedule.
APScheduler is only the ticker: each run asks the database what is due at the clock's
``now``, so a missed run catches up. A job that must run once per period across instances
claims its slot in ``job_claims`` in the same transaction as its output
(:meth:`delivery.outbox.Outbox.purge` is one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from delivery.outbox import Sender
from delivery.port import PlatformPort

JobReport = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Job:
    """A scheduled service call: ``every`` an interval, or ``cron`` a crontab expression
    read in UTC. ``run`` returns figures for ``Application.tick``'s report."""

    name: str
    run: Callable[[], Awaitable[JobReport]]
    every: timedelta | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.every is None) == (self.cron is None):
            raise ValueError(f"job {self.name!r} needs exactly one of every= or cron=")
        if self.every is not None and self.every <= timedelta(0):
            raise ValueError(f"job {self.name!r}: every= must be positive")


class ChatPort(PlatformPort, Sender, Protocol):
    """A platform's port as an adapter hands it over: engine calls and outbox sends."""


class BotAdapter(Protocol):
    """One chat platform's bot, run by ``main.py``."""

    platform: str

    async def start(self) -> ChatPort:
        """Learn who the bot is and get ready to serve; returns the bot's port."""
        ...

    async def serve(self, stop: asyncio.Event) -> None:
        """Receive and handle updates until ``stop`` is set (the work in hand finishes)."""
        ...

    def jobs(self) -> Sequence[Job]:
        """The adapter's own scheduled work."""
        ...

    async def close(self) -> None:
        """Release the adapter's connections."""
        ...
