"""The inbox service on both engines: kept updates come back in update order, a failing
one waits longer each time and is given up after its attempts, a re-kept one is no-op."""

from __future__ import annotations

from datetime import timedelta

from delivery.inbox import Inbox
from referrals.clock import FakeClock
from storage import outbox as store
from storage.database import Database


async def test_kept_updates_come_back_in_update_order_with_their_payload(db: Database) -> None:
    clock = FakeClock()
    inbox = Inbox(db, clock)
    assert await inbox.keep("telegram", 12, {"update_id": 12, "x": [1]}, "OperationalError: down")
    assert await inbox.keep("telegram", 11, {"update_id": 11}, None)
    assert not await inbox.keep("telegram", 12, {"update_id": 12}, "again")  # re-delivered
    await inbox.keep("discord", 5, {"id": 5}, None)

    kept = await inbox.waiting("telegram")

    assert [(k.update_id, k.payload, k.attempts) for k in kept] == [
        (11, {"update_id": 11}, 0),
        (12, {"update_id": 12, "x": [1]}, 1),
    ]
    assert kept[0].due(clock.now())  # waiting behind another: due at once
    assert not kept[1].due(clock.now())  # failed: a minute later
    assert kept[1].due(clock.now() + timedelta(minutes=1))


async def test_a_failing_update_waits_longer_each_time_then_is_given_up(db: Database) -> None:
    clock = FakeClock()
    inbox = Inbox(db, clock, max_attempts=3)
    await inbox.keep("telegram", 1, {"update_id": 1}, "boom")
    [kept] = await inbox.waiting("telegram")

    assert not await inbox.failed(kept, "boom 2")
    [kept] = await inbox.waiting("telegram")
    assert kept.next_attempt_at == clock.now() + timedelta(minutes=2)
    assert await inbox.failed(kept, "boom 3")  # the third attempt: given up

    assert await inbox.waiting("telegram") == []
    async with db.read() as conn:
        [row] = await store.inbox_rows(conn)
    assert (row["state"], row["attempts"], row["last_error"]) == ("dead", 3, "boom 3")


async def test_a_handled_update_leaves_the_queue(db: Database) -> None:
    inbox = Inbox(db, FakeClock())
    await inbox.keep("telegram", 1, {"update_id": 1}, None)
    [kept] = await inbox.waiting("telegram")

    await inbox.handled(kept)

    assert await inbox.waiting("telegram") == []
