"""Flood limits on sending methods, on the injected clock (no sleeping)."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramRetryAfter

from sandbox import FakeClock, RateLimits, World
from sandbox.ratelimit import RateLimiter
from tests.sandbox.conftest import BotFactory, Cast


async def test_private_chat_allows_a_burst_then_one_per_second(
    world: World, cast: Cast, client: BotFactory, clock: FakeClock
) -> None:
    bot = client(cast.sim)
    world.send_text(cast.alice, cast.sim, "/start")
    for n in range(3):
        await bot.send_message(cast.alice.id, f"burst {n}")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(cast.alice.id, "one too many")
    assert caught.value.retry_after == 1
    assert caught.value.message.endswith("Original description: Too Many Requests: retry after 1")
    clock.advance(1)
    await bot.send_message(cast.alice.id, "after waiting")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(cast.alice.id, "again too fast")
    assert len(world.sent_messages(cast.sim, cast.alice)) == 4


async def test_group_allows_twenty_per_minute(
    world: World, cast: Cast, client: BotFactory, clock: FakeClock
) -> None:
    bot = client(cast.sim)
    for n in range(20):
        await bot.send_message(cast.chat.id, f"post {n}")
        clock.advance(0.5)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(cast.chat.id, "post 21")
    assert caught.value.retry_after == 50  # the first post leaves the window in 50 s
    clock.advance(49)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(cast.chat.id, "still too early")
    assert caught.value.retry_after == 1
    clock.advance(1)
    await bot.send_message(cast.chat.id, "post 21")
    # reads are not limited
    for _ in range(50):
        await bot.get_chat_member(cast.chat.id, cast.owner.id)


async def test_thirty_messages_per_second_overall(
    world: World, cast: Cast, client: BotFactory, clock: FakeClock
) -> None:
    bot = client(cast.sim)
    readers = [world.add_user(f"Reader {n}") for n in range(31)]
    for reader in readers:
        world.send_text(reader, cast.sim, "/start")
    for reader in readers[:30]:
        await bot.send_message(reader.id, "Your reward is ready")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(readers[30].id, "Your reward is ready")
    assert caught.value.retry_after == 1
    clock.advance(1)
    await bot.send_message(readers[30].id, "Your reward is ready")


async def test_limits_can_be_changed_or_turned_off(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    world.set_rate_limits(enabled=False)
    for n in range(40):
        await bot.send_message(cast.chat.id, f"post {n}")
    world.set_rate_limits(enabled=True, group_per_minute=2)
    world.limiter.reset()
    await bot.send_message(cast.chat.id, "a")
    await bot.send_message(cast.chat.id, "b")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(cast.chat.id, "c")


def test_rate_limiter_uses_the_given_monotonic_clock() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(private_burst=1, private_per_second=0.5), clock.monotonic)
    assert limiter.check(1, 10, True) is None
    limiter.record(1, 10, True)
    assert limiter.check(1, 10, True) == 2
    clock.advance(1.2)
    assert limiter.check(1, 10, True) == 1  # 0.8 s left, rounded up
    clock.advance(0.8)
    assert limiter.check(1, 10, True) is None
    assert limiter.check(1, 11, True) is None  # other chats are independent


def test_the_limiter_can_have_its_own_time_source() -> None:
    ticks = [100.0]
    world = World(clock=FakeClock(), monotonic=lambda: ticks[0])
    assert world.limiter.check(1, 5, True) is None
    for _ in range(3):
        world.limiter.record(1, 5, True)
    assert world.limiter.check(1, 5, True) == 1
    ticks[0] += 1.0  # only the limiter's source moves
    assert world.limiter.check(1, 5, True) is None
