"""Updates in, nothing lost (DESIGN.md, Updates in): a batch is acknowledged only after it
is handled; a re-delivered update changes nothing; a failure is retried while the batch
is held; an update that keeps failing waits in the inbox for the scheduler; the updates
of one chat and person are handled in their order, also behind a kept one."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

import storage.database
from sandbox import SimChat, SimUser
from storage import outbox as inbox_store
from storage.schema import events, join_attempts, members, referrals, referrer_counts
from tests.bots.conftest import Bench, Harness, StatementFault, invite_url
from tests.helpers.telegram import set_up_chat, table_rows

JOIN_WRITE = r"INSERT INTO join_attempts"


@pytest.fixture
def quick_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot's database gives up on a lock after 0.3 s instead of 30 s."""
    monkeypatch.setattr(storage.database, "SQLITE_BUSY_TIMEOUT_S", 0.3)


class WriteLock:
    """Another connection holding a write transaction on the bot's SQLite file: every
    write of the bot meets "database is locked" until it is released."""

    def __init__(self, path: Any) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN IMMEDIATE")
        self.held = True

    def release(self) -> None:
        if self.held:
            self.conn.execute("ROLLBACK")
            self.held = False

    def close(self) -> None:
        self.release()
        self.conn.close()


class OnWarning(logging.Handler):
    """Runs ``action`` when the bot logs a warning containing ``text``."""

    def __init__(self, text: str, action: Any) -> None:
        super().__init__(logging.WARNING)
        self.text, self.action, self.seen = text, action, 0

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen += 1
            self.action()


@pytest.fixture
def app_log() -> Iterator[list[OnWarning]]:
    logger = logging.getLogger("bots.telegram.app")
    handlers: list[OnWarning] = []
    yield handlers
    for handler in handlers:
        logger.removeHandler(handler)


def on_warning(handlers: list[OnWarning], text: str, action: Any) -> OnWarning:
    handler = OnWarning(text, action)
    logging.getLogger("bots.telegram.app").addHandler(handler)
    handlers.append(handler)
    return handler


async def _program(h: Harness) -> tuple[SimUser, SimChat, str]:
    """A public channel (through-the-bot mode) and Ana's invite link."""
    owner = h.world.add_user("Olga", username="olga")
    chat, _ = await set_up_chat(h, owner, "channel", "Open News", username="opennews")
    ana = h.world.add_user("Ana")
    return ana, chat, await invite_url(h, ana)


async def _friend(h: Harness, url: str, name: str) -> SimUser:
    """A friend who opened Ana's link in the bot (remembered for her), not yet joined."""
    friend = h.world.add_user(name)
    h.world.open_link(friend, url)
    await h.settle()
    return friend


async def _snapshot(h: Harness) -> dict[str, list[dict[str, Any]]]:
    tables = {
        "referrals": referrals,
        "join_attempts": join_attempts,
        "referrer_counts": referrer_counts,
        "members": members,
        "events": events,
    }
    found = {name: await table_rows(h, table) for name, table in tables.items()}
    found["outbox"] = [
        {k: v for k, v in row.items() if k not in ("lease_until",)}
        for row in await h.outbox_rows()
    ]
    return found


def _deliveries(h: Harness, update_id: int) -> int:
    """How many getUpdates answers carried ``update_id``."""
    return sum(
        1
        for call in h.world.calls_of("getUpdates", bot=h.bot)
        if call.ok and any(u.get("update_id") == update_id for u in call.result or [])
    )


def _update_id_of(h: Harness, kind: str, user: SimUser) -> int:
    for update in reversed(h.world.pending_updates(h.bot)):
        event = update.get(kind) or {}
        member = (event.get("new_chat_member") or {}).get("user") or event.get("from") or {}
        if member.get("id") == user.id:
            return int(update["update_id"])
    raise AssertionError(f"no pending {kind} update for {user.first_name}")


async def _inbox(h: Harness) -> list[dict[str, Any]]:
    async with h.app.db.read() as conn:
        return await inbox_store.inbox_rows(conn)


async def test_the_same_update_delivered_twice_changes_nothing(bench: Bench) -> None:
    world = bench.world
    h = await bench.start_bot()
    ana, chat, url = await _program(h)
    bob = await _friend(h, url, "Bob")

    # Bob joins; the bot handles it, then cannot acknowledge it and stops.
    world.inject_fault("getUpdates", times=10_000, error_code=502)
    world.join_public(bob, chat)
    update_id = _update_id_of(h, "chat_member", bob)
    await world.wait_for(lambda: "Bob joined Open News" in "".join(h.texts_to(ana)))
    await h.app.outbox.wait_idle(5)
    before = await _snapshot(h)
    await bench.stop_bot(h)
    world.clear_faults()
    assert [u["update_id"] for u in world.pending_updates(bench.bot)] == [update_id]

    h = await bench.start_bot()  # a new process: Telegram hands the update over again
    await h.settle()
    assert _deliveries(h, update_id) == 2
    assert world.pending_updates(bench.bot) == []
    assert await _snapshot(h) == before
    rows = await table_rows(h, referrals)
    assert [(r["referred_id"], r["referrer_id"], r["state"]) for r in rows] == [
        (bob.id, ana.id, "pending")
    ]
    assert sum("Bob joined" in text for text in h.texts_to(ana)) == 1


async def test_a_handler_failing_once_on_a_locked_database_is_retried_in_the_batch(
    bench: Bench, quick_busy_timeout: None, app_log: list[OnWarning]
) -> None:
    world = bench.world
    h = await bench.start_bot()
    ana, chat, url = await _program(h)
    bob = await _friend(h, url, "Bob")

    lock = WriteLock(bench.db_path)
    try:
        failed = on_warning(app_log, "failed (attempt 1)", lock.release)
        world.join_public(bob, chat)
        await h.settle(timeout=10)
    finally:
        lock.close()
    assert failed.seen == 1  # it did fail, on the lock, and the retry got through
    rows = await table_rows(h, referrals)
    assert [(r["referred_id"], r["referrer_id"]) for r in rows] == [(bob.id, ana.id)]
    assert len(await table_rows(h, join_attempts, user_id=bob.id)) == 1
    assert await _inbox(h) == []
    assert sum("Bob joined" in text for text in h.texts_to(ana)) == 1


async def test_a_batch_is_not_acknowledged_while_it_cannot_be_handled(
    bench: Bench, quick_busy_timeout: None
) -> None:
    world = bench.world
    h = await bench.start_bot()
    ana, chat, url = await _program(h)
    bob = await _friend(h, url, "Bob")

    lock = WriteLock(bench.db_path)
    reader = sqlite3.connect(bench.db_path)
    acknowledged_unhandled: list[bool] = []

    def acknowledged() -> bool:
        gone = not world.pending_updates(bench.bot)
        counted = reader.execute("SELECT count(*) FROM referrals").fetchone()[0] == 1
        if gone and not counted:
            acknowledged_unhandled.append(True)
        return gone

    try:
        world.join_public(bob, chat)
        update_id = _update_id_of(h, "chat_member", bob)
        # Neither handled nor kept (the inbox is in the same database): fetched again.
        await world.wait_for(lambda: _deliveries(h, update_id) >= 2, timeout=15)
        assert world.pending_updates(bench.bot)
        assert reader.execute("SELECT count(*) FROM referrals").fetchone()[0] == 0
        lock.release()
        await world.wait_for(acknowledged, timeout=15, what="the batch to be acknowledged")
    finally:
        lock.close()
    await h.settle()
    assert acknowledged_unhandled == []
    reader.close()
    rows = await table_rows(h, referrals)
    assert [(r["referred_id"], r["referrer_id"]) for r in rows] == [(bob.id, ana.id)]
    assert len(await table_rows(h, join_attempts, user_id=bob.id)) == 1
    assert await _inbox(h) == []


async def test_an_update_that_keeps_failing_waits_in_the_inbox_until_a_tick_handles_it(
    bench: Bench,
) -> None:
    world = bench.world
    h = await bench.start_bot()
    ana, chat, url = await _program(h)
    bob = await _friend(h, url, "Bob")

    # Every attempt inside the batch fails, and so does the first scheduled retry.
    fault = StatementFault(h.app.db, JOIN_WRITE, times=4)
    try:
        world.join_public(bob, chat)
        update_id = _update_id_of(h, "chat_member", bob)
        await h.settle()
        assert fault.hits == 3  # the first try and two retries while the batch was held
        assert world.pending_updates(bench.bot) == []  # kept, so acknowledged
        [kept] = await _inbox(h)
        assert (kept["update_id"], kept["state"], kept["attempts"]) == (update_id, "queued", 1)
        assert "disk I/O error" in kept["last_error"]
        assert await table_rows(h, referrals) == []

        assert (await h.tick())["inbox"] == (0, 0)  # not due for a minute
        h.clock.advance(minutes=1)
        assert (await h.tick())["inbox"] == (0, 1)
        assert fault.hits == 4
        assert await table_rows(h, referrals) == []
        h.clock.advance(minutes=1)
        assert (await h.tick())["inbox"] == (0, 0)  # it waits 2 minutes now
        h.clock.advance(minutes=1)
        assert (await h.tick())["inbox"] == (1, 0)
    finally:
        fault.remove()
    [kept] = await _inbox(h)
    assert kept["state"] == "done"
    rows = await table_rows(h, referrals)
    assert [(r["referred_id"], r["referrer_id"], r["state"]) for r in rows] == [
        (bob.id, ana.id, "pending")
    ]
    assert len(await table_rows(h, join_attempts, user_id=bob.id)) == 1
    assert sum("Bob joined" in text for text in h.texts_to(ana)) == 1
    assert (await h.tick())["inbox"] == (0, 0)


async def test_the_updates_of_one_person_in_a_batch_are_handled_in_order(
    harness: Harness,
) -> None:
    world = harness.world
    ana, chat, url = await _program(harness)
    bob = await _friend(harness, url, "Bob")
    others = [await _friend(harness, url, f"Friend {n}") for n in range(5)]

    # One batch: Bob joins, leaves and joins again, among other people's joins.
    polls = len(world.calls_of("getUpdates"))
    world.join_public(others[0], chat)
    world.join_public(bob, chat)
    world.join_public(others[1], chat)
    world.leave(bob, chat)
    world.join_public(others[2], chat)
    world.join_public(bob, chat)
    for friend in others[3:]:
        world.join_public(friend, chat)
    await harness.settle()
    batches = [
        c for c in world.calls_of("getUpdates")[polls:] if c.ok and c.result
    ]  # the updates came in one batch
    assert len(batches) == 1 and len(batches[0].result) == 8

    rows = {r["referred_id"]: r for r in await table_rows(harness, referrals)}
    assert (rows[bob.id]["state"], rows[bob.id]["reason"]) == ("rejected", "left_during_hold")
    assert [r["outcome"] for r in await table_rows(harness, join_attempts, user_id=bob.id)] == [
        "referral",
        "not_counted",
    ]
    assert all(rows[f.id]["state"] == "pending" for f in others)
    [counts] = await table_rows(harness, referrer_counts, referrer_id=ana.id)
    assert (counts["pending"], counts["rejected"]) == (5, 1)


async def test_later_updates_of_a_person_wait_behind_a_kept_one_also_across_a_restart(
    bench: Bench,
) -> None:
    world = bench.world
    h = await bench.start_bot()
    _ana, chat, url = await _program(h)
    bob = await _friend(h, url, "Bob")
    cid = await _friend(h, url, "Cid")

    fault = StatementFault(h.app.db, JOIN_WRITE, times=3)
    world.join_public(bob, chat)  # fails three times: kept
    await h.settle()
    fault.remove()
    assert [r["state"] for r in await _inbox(h)] == ["queued"]

    world.leave(bob, chat)  # must not be handled before Bob's join
    world.join_public(cid, chat)  # someone else: handled at once
    await h.settle()
    assert [r["state"] for r in await _inbox(h)] == ["queued", "queued"]
    rows = {r["referred_id"]: r for r in await table_rows(h, referrals)}
    assert set(rows) == {cid.id}

    await bench.stop_bot(h)
    h = await bench.start_bot()  # a new process still knows Bob's lane waits
    world.join_public(bob, chat)
    await h.settle()
    assert [r["state"] for r in await _inbox(h)] == ["queued"] * 3

    h.clock.advance(minutes=1)
    assert (await h.tick())["inbox"] == (3, 0)
    assert [r["state"] for r in await _inbox(h)] == ["done"] * 3
    rows = {r["referred_id"]: r for r in await table_rows(h, referrals)}
    assert (rows[bob.id]["state"], rows[bob.id]["reason"]) == ("rejected", "left_during_hold")
    assert [r["outcome"] for r in await table_rows(h, join_attempts, user_id=bob.id)] == [
        "referral",
        "not_counted",
    ]
    world.leave(bob, chat)  # the lane is free again: handled at once
    await h.settle()
    assert len(await _inbox(h)) == 3


async def test_another_process_polling_the_same_bot_does_not_stop_it(bench: Bench) -> None:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    world = bench.world
    h = await bench.start_bot()
    ana, _chat, url = await _program(h)
    await world.wait_for(lambda: world.is_polling(bench.bot), what="the bot polling")
    # Another process with the same token (an overlapping deploy) fetches updates: Telegram
    # ends the bot's long poll with 409 Conflict.
    other = Bot(
        bench.bot.token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(bench.server.url)),
    )
    try:
        await other.get_updates(timeout=0)
    finally:
        await other.session.close()
    await world.wait_for(
        lambda: [c for c in world.calls_of("getUpdates") if c.error_code == 409],
        what="a conflict",
    )
    bob = await _friend(h, url, "Bob")  # the bot carries on
    assert h.task is not None and not h.task.done()
    assert "invited you" in h.last_to(bob).text
    [friend] = await table_rows(h, members, user_id=bob.id)
    assert friend["remembered_referrer_id"] == ana.id


async def test_a_friends_start_and_join_in_one_batch_are_handled_in_order(
    harness: Harness,
) -> None:
    world = harness.world
    ana, chat, url = await _program(harness)
    # The friend opens Ana's link and joins right away; the bot sees both in one batch
    # (as after a pause): the join must come after the bot remembered Ana for him.
    polls = len(world.calls_of("getUpdates"))
    bob = world.add_user("Bob")
    world.open_link(bob, url)
    world.join_public(bob, chat)
    await harness.settle()
    batches = [c for c in world.calls_of("getUpdates")[polls:] if c.ok and c.result]
    assert len(batches) == 1 and len(batches[0].result) == 2
    rows = await table_rows(harness, referrals)
    assert [(r["referred_id"], r["referrer_id"]) for r in rows] == [(bob.id, ana.id)]


async def test_a_friends_join_waits_behind_their_kept_start_so_the_reader_still_counts(
    harness: Harness,
) -> None:
    world = harness.world
    ana, chat, url = await _program(harness)
    # As above, but remembering Ana fails past the batch's retries (the database is
    # restarting): the /start is kept, and the join, in the same person's lane though in
    # another chat, must wait behind it rather than be decided with nobody remembered.
    fault = StatementFault(harness.app.db, r"UPDATE members SET remembered_referrer_id", times=3)
    bob = world.add_user("Bob")
    world.open_link(bob, url)
    world.join_public(bob, chat)
    await harness.settle()
    fault.remove()
    assert fault.hits == 3
    assert [r["state"] for r in await _inbox(harness)] == ["queued", "queued"]
    assert await table_rows(harness, referrals) == []

    harness.clock.advance(minutes=1)
    assert (await harness.tick())["inbox"] == (2, 0)
    rows = await table_rows(harness, referrals)
    assert [(r["referred_id"], r["referrer_id"]) for r in rows] == [(bob.id, ana.id)]
