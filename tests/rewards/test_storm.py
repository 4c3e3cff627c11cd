"""A 429 storm while coupons are delivered through the bot: Telegram turns out stricter than
our configured limits and throws in extra refusals; every reward is delayed, none is lost,
none repeats."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sandbox import RateLimits
from storage import outbox as db_outbox
from tests.helpers.rewards import (
    assigned_codes,
    coupon_bot,
    grant_states,
    received_codes,
    run_until_delivered,
)

READERS = 60


async def test_a_429_storm_delays_rewards_but_loses_and_repeats_none(tmp_path: Path) -> None:
    # Telegram allows 12 messages a second where we are configured for 30.
    stricter = RateLimits(enabled=True, global_per_second=12)
    async with coupon_bot(f"sqlite:///{tmp_path / 'bot.db'}", READERS, stricter) as bot:
        world = bot.world
        world.inject_fault("sendMessage", retry_after=4, times=40)
        for reader in bot.readers[:10]:
            world.inject_fault("sendMessage", chat=reader, retry_after=30, times=2)
        started = bot.clock.now()
        await run_until_delivered(bot.app, bot.clock, tick_every=10.0)
        took = (bot.clock.now() - started).total_seconds()
        async with bot.app.db.read() as conn:
            states = await grant_states(conn)
            assigned = await assigned_codes(conn)
            rows = await db_outbox.outbox_rows(conn)
        refusals = sum(1 for c in world.calls_of("sendMessage") if c.error_code == 429)
        got = received_codes(world.sent_log, bot.readers, bot.codes)

    assert refusals >= 40 + 20  # it was a storm
    assert took > READERS / 12  # delayed: no faster than Telegram's own limit allows
    assert states == Counter({"delivered": READERS})
    assert Counter(r["state"] for r in rows) == Counter({"sent": len(rows)})
    assert all(r["attempts"] <= 1 for r in rows)  # a 429 is not a failed attempt
    for reader in bot.readers:
        assert got[reader] == [assigned[reader]], (reader, got[reader])  # once, their own
    assert len(set(assigned.values())) == READERS
