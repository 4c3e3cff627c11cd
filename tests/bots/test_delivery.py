"""Delivery through the whole bot: the update loop runs live against the sandbox while the
test drives the outbox (``drain_once``) with Telegram's real limits on one fake clock, so
every wait the outbox asks for is a jump of the clock, never a sleep."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import select

from delivery.outbox import DrainReport
from delivery.ratelimit import Limits
from main import Application, Settings
from referrals.clock import FakeClock
from sandbox import DatetimeClock, RateLimits, SandboxServer, SimBot, SimChat, SimUser, World
from storage import outbox as outbox_store
from storage import people as people_store
from storage.migrate import upgrade
from storage.schema import join_requests, referrals


@dataclass
class Live:
    world: World
    server: SandboxServer
    sim: SimBot
    app: Application
    clock: FakeClock
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    poller: asyncio.Task[None] | None = None

    async def handled(self) -> None:
        """Every update the sandbox queued was fetched, handled and acknowledged."""
        await self.world.wait_until_delivered(self.sim)

    async def drain_all(self, *, max_rounds: int = 20_000) -> list[DrainReport]:
        """Send everything, moving the clock by exactly what the outbox asks to wait; sends
        that cause updates (an approval → chat_member) are handled before the next drain."""
        reports = []
        for _ in range(max_rounds):
            await self.handled()
            report = await self.app.outbox.drain_once()
            reports.append(report)
            if report.wait is None:
                await self.handled()
                if not await self.rows("queued"):
                    return reports
            elif report.wait > 0:
                self.clock.advance(seconds=report.wait)
        raise AssertionError("the outbox never emptied")

    async def act(self) -> None:
        await self.handled()
        await self.drain_all()

    async def say(self, user: SimUser, text: str) -> None:
        self.world.send_text(user, self.sim, text)
        await self.act()

    async def rows(self, state: str | None = None) -> list[dict[str, Any]]:
        async with self.app.db.read() as conn:
            return await outbox_store.outbox_rows(conn, state)

    async def table(self, table: Any) -> list[dict[str, Any]]:
        async with self.app.db.read() as conn:
            return [dict(r) for r in (await conn.execute(select(table))).mappings()]

    async def person(self, user: SimUser) -> dict[str, Any] | None:
        async with self.app.db.read() as conn:
            return await people_store.person(conn, "telegram", user.id)

    def last_to(self, who: SimUser | SimChat) -> Any:
        return self.world.sent_messages(self.sim, who)[-1]

    def refusals(self) -> int:
        return sum(1 for c in self.world.calls_of("sendMessage") if c.error_code == 429)

    async def set_up_channel(self, owner: SimUser, title: str = "Daily Brief") -> SimChat:
        chat = self.world.add_chat("channel", title, owner=owner)
        await self.say(owner, "/start")
        self.world.add_bot_to_chat(chat, self.sim, by=owner)
        await self.act()
        self.world.press_button(owner, self.last_to(owner), text=f"Set up {title}")
        await self.act()
        assert "is ready" in self.last_to(owner).text
        # the manager picks personal join-request links (through the bot is the default)
        await self.say(owner, "/settings")
        self.world.press_button(owner, self.last_to(owner), text="Join: through the bot")
        await self.act()
        return chat

    async def reader_link(self, reader: SimUser) -> str:
        await self.say(reader, "/invite")
        card = self.last_to(reader)
        return next(b["copy_text"]["text"] for b in card.inline_buttons if "copy_text" in b)


@pytest_asyncio.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    clock = FakeClock()
    world = World(clock=DatetimeClock(clock), seed=5, rate_limits=RateLimits(enabled=False))
    sim = world.add_bot("loopbot", "Loop")
    server = SandboxServer(world)
    await server.start()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        telegram_token=SecretStr(sim.token),
        telegram_api_url=server.url,
    )
    app = Application(
        settings,
        clock=clock,
        limits=Limits(),  # Telegram's: 30/s overall, 1/s per chat, 20/min per group
        poll_timeout=1,
        retry_delays=(0.0, 0.0),
        monotonic=lambda: clock.now().timestamp(),
    )
    await upgrade(app.db)
    assert app.telegram is not None
    await app.start()
    h = Live(world, server, sim, app, clock)
    h.poller = asyncio.create_task(app.telegram.poll(h.stop))
    try:
        yield h
    finally:
        h.stop.set()
        await asyncio.wait_for(h.poller, 15)
        await app.close()
        await server.stop()


async def readers_with_friends(
    live: Live, chat: SimChat, readers: int, friends_each: int
) -> dict[int, list[str]]:
    """Readers get their links; their friends ask to join through them (not yet handled).
    Returns reader id → the friends' names."""
    names: dict[int, list[str]] = {}
    links = {}
    for r in range(readers):
        reader = live.world.add_user(f"Reader{r}")
        links[reader.id] = await live.reader_link(reader)
    for reader_id, url in links.items():
        names[reader_id] = []
        for f in range(friends_each):
            name = f"F{reader_id % 1000}x{f}"
            live.world.open_link(live.world.add_user(name), url)
            names[reader_id].append(name)
    return names


def named_in(text: str, candidates: list[str]) -> list[str]:
    return [name for name in candidates if name in text]


async def test_a_429_storm_during_notifications_loses_nothing_and_repeats_nothing(
    live: Live,
) -> None:
    owner = live.world.add_user("Olga")
    chat = await live.set_up_channel(owner)
    friends = await readers_with_friends(live, chat, readers=35, friends_each=3)
    # Telegram turns out stricter than our configuration, and throws in extra 429s.
    live.world.set_rate_limits(RateLimits(enabled=True, global_per_second=12))
    live.world.inject_fault("sendMessage", retry_after=4, times=40)
    before = live.refusals()

    await live.act()

    assert live.refusals() - before >= 40
    rows = await live.rows()
    assert Counter(r["state"] for r in rows)["sent"] == len(rows)  # nothing failed or left
    for reader_id, names in friends.items():
        notes = [
            m.text
            for m in live.world.sent_messages(live.sim, reader_id)
            if "through your link" in (m.text or "")
        ]
        told = [name for text in notes for name in named_in(text or "", names)]
        assert sorted(told) == sorted(names)  # every friend named once: none lost, none twice
    referred = await live.table(referrals)
    assert len(referred) == 105
    friend_ids = {u.id for u in live.world.users.values() if u.first_name.startswith("F")}
    assert {r["referred_id"] for r in referred} == friend_ids
    assert all(live.world.member(chat, f).status == "member" for f in friend_ids)


async def test_handlers_never_wait_for_a_notification_to_be_sent(live: Live) -> None:
    owner = live.world.add_user("Olga")
    chat = await live.set_up_channel(owner)
    ana = live.world.add_user("Ana")
    url = await live.reader_link(ana)
    live.world.inject_fault("sendMessage", chat=ana, retry_after=30)
    bob = live.world.add_user("Bob")
    live.world.open_link(bob, url)

    await live.handled()
    await live.app.outbox.drain_once()  # the welcome goes out and Bob is approved
    await live.handled()
    await live.app.outbox.drain_once()  # Ana's notification is refused for 30 s
    live.world.send_text(bob, live.sim, "/help")
    await live.handled()

    # The join was counted and the next update answered while the notification waits.
    assert [r["referrer_id"] for r in await live.table(referrals)] == [ana.id]
    [note] = [r for r in await live.rows("queued") if r["target_id"] == ana.id]
    assert note["template"] == "notify_joined" and note["last_error"] == "retry after 30s"
    await live.app.outbox.drain_once()
    assert "/invite — your personal invite link" in live.last_to(bob).text  # answered
    assert not [m for m in live.world.sent_messages(live.sim, ana) if "Bob" in (m.text or "")]

    live.clock.advance(seconds=30)
    await live.drain_all()
    assert sum("Bob" in (m.text or "") for m in live.world.sent_messages(live.sim, ana)) == 1
    assert live.world.member(chat, bob).status == "member"


async def test_a_reader_who_blocked_the_bot_still_gets_the_join_counted_and_is_recorded(
    live: Live,
) -> None:
    owner = live.world.add_user("Olga")
    await live.set_up_channel(owner)
    ana = live.world.add_user("Ana")
    url = await live.reader_link(ana)
    live.world.block_bot(ana, live.sim)
    live.world.open_link(live.world.add_user("Bob"), url)

    await live.act()

    [note] = [r for r in await live.rows() if r["template"] == "notify_joined"]
    assert note["state"] == "failed" and note["last_error"].startswith("blocked: ")
    person = await live.person(ana)
    assert person is not None and person["blocked_at"] is not None
    assert [r["referrer_id"] for r in await live.table(referrals)] == [ana.id]


async def test_a_reader_whose_account_is_gone_is_recorded_as_gone(live: Live) -> None:
    owner = live.world.add_user("Olga")
    await live.set_up_channel(owner)
    ana = live.world.add_user("Ana")
    url = await live.reader_link(ana)
    live.world.deactivate(ana)
    live.world.open_link(live.world.add_user("Bob"), url)

    await live.act()

    [note] = [r for r in await live.rows() if r["template"] == "notify_joined"]
    assert note["state"] == "failed" and note["last_error"].startswith("account_gone: ")
    person = await live.person(ana)
    assert person is not None and person["blocked_at"] == live.clock.now()


async def test_a_human_check_that_cannot_be_sent_in_time_expires_and_the_friend_gets_in(
    live: Live,
) -> None:
    owner = live.world.add_user("Olga")
    chat = await live.set_up_channel(owner)
    [program] = await live.app.referrals.list_programs("telegram")
    await live.app.referrals.update_settings(program.id, None, human_check=True)
    url = await live.reader_link(live.world.add_user("Ana"))
    bob = live.world.add_user("Bob")
    live.world.inject_fault("sendMessage", chat=bob, retry_after=600)
    live.world.open_link(bob, url)

    await live.act()  # the check is refused for ten minutes; it may only be sent for 4.5

    [check] = [r for r in await live.rows() if r["template"] == "human_check"]
    assert check["state"] == "expired"
    assert live.world.inbox(bob, live.sim) == []
    await live.app.tick()
    await live.act()
    assert live.world.member(chat, bob).status == "member"  # never punished for it
    [request] = await live.table(join_requests)
    assert request["state"] == "approved"


async def test_membership_checks_go_through_while_the_send_limit_is_spent(live: Live) -> None:
    owner = live.world.add_user("Olga")
    chat = await live.set_up_channel(owner)
    await readers_with_friends(live, chat, readers=10, friends_each=4)
    await live.act()
    live.world.set_rate_limits(RateLimits(enabled=True))
    live.clock.advance(days=3)  # past the hold
    # Spend this second's thirty messages.
    spent = [outbox_store_row(live, live.world.add_user(f"X{i}").id) for i in range(30)]
    for user_id in (row["target_id"] for row in spent):
        live.world.start_bot(user_id, live.sim)
    await live.handled()
    await live.app.outbox.add(spent)
    await live.app.outbox.drain_once()
    assert live.app.outbox.limiter("telegram").global_wait() > 0

    report = await live.app.tick()

    assert report["confirmed"] == 40  # forty getChatMember calls at the same instant
    checks = live.world.calls_of("getChatMember")
    assert len(checks) >= 40 and all(c.ok for c in checks)
    assert live.app.outbox.limiter("telegram").global_wait() > 0  # reads used none of it
    await live.drain_all()
    assert len(await live.rows("failed")) == 0


async def test_the_outbox_paces_by_the_limits_and_clock_it_was_given(live: Live) -> None:
    users = [live.world.add_user(f"U{i}") for i in range(31)]
    for user in users:
        live.world.start_bot(user, live.sim)
    await live.act()  # the answers to /start
    live.clock.advance(seconds=1)
    await live.app.outbox.add([outbox_store_row(live, u.id) for u in users])

    first = await live.app.outbox.drain_once()
    assert (first.sent, first.rate_limited) == (30, 1)
    assert live.app.outbox.limiter("telegram").global_wait() == 1.0
    live.clock.advance(seconds=1)  # the fake clock, not the wall clock, frees the second
    assert (await live.app.outbox.drain_once()).sent == 1


def outbox_store_row(live: Live, user_id: int) -> dict[str, Any]:
    from delivery.outbox import Priority, message

    return message(
        "telegram",
        "user",
        user_id,
        "program_notice",
        {"program_title": "X", "paused": False, "reason": ""},
        priority=Priority.BULK,
        now=live.clock.now(),
    )
