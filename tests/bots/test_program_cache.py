"""The program cache of membership updates: one database read for a burst of updates."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bots.telegram.context import ProgramCache


class Programs:
    """Stands in for the engine's ``find_program``: counts reads, answers when told."""

    def __init__(self) -> None:
        self.reads = 0
        self.release = asyncio.Event()
        self.fail = False

    async def find_program(self, platform: str, chat_id: int) -> Any:
        self.reads += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError("the database is restarting")
        return f"program of {chat_id}"


async def test_a_burst_of_updates_reads_the_program_once() -> None:
    engine = Programs()
    cache = ProgramCache(engine)  # type: ignore[arg-type]
    waiting = [asyncio.ensure_future(cache.for_chat(-100)) for _ in range(50)]
    await asyncio.sleep(0)
    engine.release.set()
    assert set(await asyncio.gather(*waiting)) == {"program of -100"}
    assert engine.reads == 1
    assert await cache.for_chat(-100) == "program of -100"
    assert engine.reads == 1  # cached


async def test_a_failed_read_fails_every_waiter_and_is_not_kept() -> None:
    engine = Programs()
    engine.fail = True
    cache = ProgramCache(engine)  # type: ignore[arg-type]
    waiting = [asyncio.ensure_future(cache.for_chat(-100)) for _ in range(3)]
    await asyncio.sleep(0)
    engine.release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    engine.fail = False
    assert await cache.for_chat(-100) == "program of -100"
    assert engine.reads == 2


async def test_forgetting_during_a_read_keeps_nothing_stale() -> None:
    engine = Programs()
    cache = ProgramCache(engine)  # type: ignore[arg-type]
    first = asyncio.ensure_future(cache.for_chat(-100))
    await asyncio.sleep(0)
    cache.forget(-100)  # the settings changed while the read was on its way
    engine.release.set()
    assert await first == "program of -100"
    await cache.for_chat(-100)
    assert engine.reads == 2  # read again, not served from before the change


@pytest.mark.parametrize("chat_id", [-100, -200])
async def test_chats_are_cached_apart(chat_id: int) -> None:
    engine = Programs()
    engine.release.set()
    cache = ProgramCache(engine)  # type: ignore[arg-type]
    assert await cache.for_chat(chat_id) == f"program of {chat_id}"
    assert await cache.for_chat(-1) == "program of -1"
    assert engine.reads == 2
