"""End-to-end Telegram benchmark: joins per second from the sandbox's HTTP server through the
real aiogram client, our update loop, the engine and the database; then the notification
send rate against the configured global limit.

Run from the project root::

    python benchmarks/telegram_e2e.py [--joins N] [--readers R] [--keep DIR] [--profile]

What it does, in one run, in the direct-link mode on a private channel:

1. Setup (not timed): a sandbox ``World`` and its HTTP server on 127.0.0.1, the real
   ``Application`` (SQLite, the aiogram client, our update loop, the outbox, the
   scheduler). The owner sets the channel up through the bot as a manager would; R readers
   type ``/invite`` and get their join-request links.
2. Joins (timed): N friends open the readers' links at once. Each request reaches the bot as
   a ``chat_join_request`` through ``getUpdates``; the bot records it and queues the welcome;
   the outbox sends the welcome and approves; the sandbox answers with a ``chat_member``
   update carrying the link; the engine counts the join and queues the reader's
   notification. Timed from the first link opened until every update was handled and
   acknowledged. Flood limits are off here (the sandbox's and ours): one welcome DM per
   join would otherwise measure Telegram's 30 messages/s, not us. The readers'
   notifications are held back (their chats closed in our limiter) and stay queued.
3. Notifications (timed): the sandbox enforces Telegram's limits (30/s, 1/s per chat with a
   burst of 3), our outbox gets the configured limits (``Limits()``: 30/s), and drains
   every queued notification to the R readers. The ratio is the shortest time the limit
   allows from the first to the last send (30 at once, then 30 a second) over the time it
   took on the sandbox's clock; lost = rows not sent or not received (and joins never
   announced), duplicates = messages received twice.
4. Baselines in the same run: the engine alone on a fresh database (N ``record_join``
   calls, the ingest path; and ``record_join_request`` + ``record_join``, the two engine
   calls of a direct-link join), and the transport alone (a raw aiohttp client making the
   same Bot API calls per join against a fresh sandbox: no aiogram, no update loop, no
   database). The sandbox runs in this process, so its work is inside the e2e figure.
5. Prints a table and, as the last line, one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import math
import multiprocessing
import os
import platform
import pstats
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from benchmarks.runs import run_in_workdir  # noqa: E402
from delivery.ratelimit import Limits, RateLimiter  # noqa: E402
from main import Application, Settings, tune_garbage_collector  # noqa: E402
from referrals.clock import SystemClock  # noqa: E402
from referrals.models import JoinEvent, Person  # noqa: E402
from referrals.service import ReferralService  # noqa: E402
from sandbox import RateLimits, SandboxServer, SimBot, SimChat, SimUser, World  # noqa: E402
from storage import outbox as db_outbox  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.schema import join_requests, people, referrals  # noqa: E402
from tests.helpers.ports import FakePlatform  # noqa: E402

TARGET_JOINS_PER_S = 500
TARGET_NOTIFY_RATIO = 0.90
WIDE = Limits(
    global_per_second=1_000_000,
    global_burst=1_000_000,
    user_per_second=1_000,
    user_burst=1_000,
    chat_per_minute=1_000_000,
    chat_burst=1_000,
    chat_per_second=1_000,
)
HOLD = 3600.0  # seconds the readers' chats stay closed during the join phase
STEP_TIMEOUT = 30.0
CHANNEL = "Bench Daily"


def say(message: str) -> None:
    print(message, flush=True)


# --- the sandbox, in a process of its own ---------------------------------------------------
#
# Telegram's servers are not in the bot's process, and the sandbox costs about as much CPU
# per join as the bot does: in one process the figure would be half sandbox. The child
# process holds the world and its HTTP server and runs every scripted action; the parent
# (the bot, the engine, the database) asks it over a pipe.


def sandbox_main(conn: Connection) -> None:
    """The child process: serve a world and run the script's requests until "stop"."""
    logging.basicConfig(level=logging.WARNING, format="sandbox %(levelname)s: %(message)s")
    asyncio.run(_SandboxScript(conn).serve())


class _SandboxScript:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.world = World(seed=2026, rate_limits=RateLimits(enabled=False))
        self.server = SandboxServer(self.world)
        self.sim: SimBot | None = None
        self.chat: SimChat | None = None
        self.readers: list[SimUser] = []
        self.links: list[str] = []
        self.friends: list[SimUser] = []

    async def serve(self) -> None:
        await self.server.start()
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        loop.add_reader(self.conn.fileno(), lambda: inbox.put_nowait(self.conn.recv()))
        try:
            while True:
                op, args = await inbox.get()
                if op == "stop":
                    self.conn.send(("ok", {}))
                    return
                try:
                    result = await getattr(self, f"op_{op}")(**args)
                    self.conn.send(("ok", result))
                except Exception as exc:  # the parent reports it
                    self.conn.send(("error", {"error": f"{type(exc).__name__}: {exc}"}))
        finally:
            loop.remove_reader(self.conn.fileno())
            await self.server.stop()

    async def reply_to(self, user: SimUser, since: int, contains: str = "") -> Any:
        assert self.sim is not None
        return await self.world.wait_for_message(
            self.sim, user, since=since, contains=contains or None, timeout=STEP_TIMEOUT
        )

    async def op_bot(self, username: str) -> dict[str, Any]:
        self.sim = self.world.add_bot(username, "Bench Loop")
        return {"url": self.server.url, "token": self.sim.token}

    async def op_setup(self, readers: int, friends: int) -> dict[str, Any]:
        """The owner sets the channel up through the bot; readers /invite."""
        world, sim = self.world, self.sim
        assert sim is not None
        owner = world.add_user("Olga", "olga_owner")
        chat = self.chat = world.add_chat("channel", CHANNEL, owner=owner)  # private
        mark = len(world.sent_log)
        world.send_text(owner, sim, "/start")
        await self.reply_to(owner, mark)
        mark = len(world.sent_log)
        world.add_bot_to_chat(chat, sim, by=owner)
        offer = await self.reply_to(owner, mark, CHANNEL)
        mark = len(world.sent_log)
        world.press_button(owner, offer, text=f"Set up {CHANNEL}")
        await self.reply_to(owner, mark, "is ready")
        # the manager picks personal join-request links (through the bot is the default)
        mark = len(world.sent_log)
        world.send_text(owner, sim, "/settings")
        shown = await self.reply_to(owner, mark, "Join mode")
        world.press_button(owner, shown, text="Join: through the bot")
        await world.wait_for(
            lambda: "direct join-request links" in (shown.text or ""),
            timeout=STEP_TIMEOUT,
            what="the join mode to change to direct links",
        )
        mark = len(world.sent_log)
        self.readers = [world.add_user(f"Reader {i}", language_code="en") for i in range(readers)]
        for reader in self.readers:
            world.send_text(reader, sim, "/invite")
        for reader in self.readers:
            card = await self.reply_to(reader, mark)
            copy = [b for b in card.inline_buttons if "copy_text" in b]
            if not copy:
                raise RuntimeError(f"no invite card for {reader.full_name}: {card.text}")
            url = str(copy[0]["copy_text"]["text"])
            if not url.startswith("https://t.me/+"):
                raise RuntimeError(f"not a direct join-request link: {url}")
            self.links.append(url)
        await world.wait_until_delivered(sim, timeout=STEP_TIMEOUT)
        self.friends = [world.add_user(f"Friend {i}", language_code="en") for i in range(friends)]
        return {
            "readers": [r.id for r in self.readers],
            "friends": [f.id for f in self.friends],
        }

    async def op_join(self) -> dict[str, Any]:
        """Every friend opens a reader's link at once; done when all are members and every
        update was acknowledged (the bot acknowledges a batch only once it is handled)."""
        world, sim, chat = self.world, self.sim, self.chat
        assert sim is not None and chat is not None
        target = len(chat.members) + len(self.friends)
        started = time.monotonic()
        for index, friend in enumerate(self.friends):
            world.open_link(friend, self.links[index % len(self.links)])
        opened = time.monotonic()
        await world.wait_for(
            lambda: len(chat.members) >= target and not sim.updates,
            timeout=max(60.0, len(self.friends) / 20),
            what="every join to be handled",
        )
        done = time.monotonic()
        outside = sum(1 for f in self.friends if world.member(chat, f).status != "member")
        return {"seconds": done - started, "scripting": opened - started, "outside": outside}

    async def op_notify(self, queued: int, deadline: float) -> dict[str, Any]:
        """Telegram's flood limits on; wait for ``queued`` messages to the readers."""
        world = self.world
        world.set_rate_limits(RateLimits())
        readers = {r.id for r in self.readers}
        start = cursor = len(world.calls)
        seen = 0

        def delivered() -> bool:
            nonlocal seen, cursor
            calls = world.calls
            for call in calls[cursor:]:
                if call.ok and call.method == "sendMessage" and _chat(call) in readers:
                    seen += 1
            cursor = len(calls)
            return seen >= queued

        error = ""
        try:
            await world.wait_for(delivered, timeout=deadline, what="the notifications")
        except TimeoutError as exc:
            error = str(exc)
        sends = [
            c for c in world.calls[start:] if c.method == "sendMessage" and _chat(c) in readers
        ]
        return {
            "ok_times": sorted(c.monotonic for c in sends if c.ok),
            "refusals": sum(1 for c in sends if c.error_code == 429),
            "received": [
                (m.chat_id, m.message_id) for m in world.sent_log if m.chat_id in readers
            ],
            "error": error,
        }

    async def op_raw_setup(self, readers: int, friends: int) -> dict[str, Any]:
        """The transport baseline's world: a channel with the bot as admin, no bot flow."""
        self.sim = self.world.add_bot("rawloopbot")
        owner = self.world.add_user("Olga")
        self.chat = self.world.add_chat("channel", CHANNEL, owner=owner)
        self.world.add_bot_to_chat(self.chat, self.sim, by=owner)
        self.friends = [self.world.add_user(f"Friend {i}") for i in range(friends)]
        return {"url": self.server.url, "token": self.sim.token, "chat_id": self.chat.id}

    async def op_raw_links(self, links: list[str]) -> dict[str, Any]:
        self.links = links
        return {}


class Remote:
    """The parent's handle on the sandbox process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=sandbox_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self._lock = asyncio.Lock()

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        async with self._lock:
            loop = asyncio.get_running_loop()
            answer: asyncio.Future[tuple[str, dict[str, Any]]] = loop.create_future()

            def readable() -> None:
                if not answer.done():
                    answer.set_result(self.conn.recv())

            self.conn.send((op, args))
            loop.add_reader(self.conn.fileno(), readable)
            try:
                status, result = await answer
            finally:
                loop.remove_reader(self.conn.fileno())
        if status != "ok":
            raise RuntimeError(f"sandbox {op}: {result['error']}")
        return result

    async def close(self) -> None:
        if self.process.is_alive():
            try:
                await asyncio.wait_for(self.call("stop"), 10)
            except (TimeoutError, RuntimeError, OSError):
                pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


def ideal_span(sent: int, limit: float) -> float:
    """Seconds from the first to the last of ``sent`` messages at the fastest pace "no more
    than ``limit`` in any second" allows: ``limit`` at once, then ``limit`` each second."""
    per_second = max(1, math.floor(limit))
    return float(max(0, math.ceil(sent / per_second) - 1))


def _chat(call: Any) -> int | None:
    value = call.params.get("chat_id")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- the end-to-end run -------------------------------------------------------------------


@dataclass
class E2E:
    remote: Remote
    app: Application
    stop: asyncio.Event
    task: asyncio.Task[None]
    readers: list[int] = field(default_factory=list)
    friends: list[int] = field(default_factory=list)


async def start_e2e(remote: Remote, db_path: Path, readers: int, joins: int) -> E2E:
    bot = await remote.call("bot", username="benchloopbot")
    settings = Settings(
        database_url=f"sqlite:///{db_path}",
        telegram_token=SecretStr(bot["token"]),
        telegram_api_url=bot["url"],
        log_level="WARNING",
    )
    app = Application(settings, limits=WIDE, poll_timeout=10, retry_delays=(0.2, 1.0))
    await upgrade(app.db)
    tune_garbage_collector()  # as `inviteloop run` does once it has started
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop), name="bench-bot")
    run = E2E(remote, app, stop, task)
    cast = await remote.call("setup", readers=readers, friends=joins)
    if task.done():
        task.result()
    run.readers, run.friends = cast["readers"], cast["friends"]
    return run


async def stop_e2e(run: E2E) -> None:
    run.stop.set()
    try:
        await asyncio.wait_for(run.task, 15)
    except TimeoutError:
        run.task.cancel()
    await run.app.close()


@dataclass
class JoinPhase:
    seconds: float
    scripting: float
    joins: int
    notifications: int
    problems: list[str]


async def join_phase(
    run: E2E, profile: cProfile.Profile | None, writes: WriteLog | None
) -> JoinPhase:
    for reader in run.readers:
        run.app.outbox.limiter("telegram").close("user", reader, HOLD)
    if writes is not None:
        writes.active = True
    if profile is not None:
        profile.enable()
    try:
        result = await run.remote.call("join")
    finally:
        if profile is not None:
            profile.disable()
        if writes is not None:
            writes.active = False
    problems = await check_joins(run)
    if result["outside"]:
        problems.append(f"{result['outside']} friends are not members")
    async with run.app.db.read() as conn:
        queued = await db_outbox.outbox_rows(conn, "queued")
    notes = [row for row in queued if row["template"] == "notify_joined"]
    if len(notes) != len(queued):
        problems.append(f"{len(queued) - len(notes)} rows other than notifications queued")
    return JoinPhase(
        result["seconds"], result["scripting"], len(run.friends), len(notes), problems
    )


async def check_joins(run: E2E) -> list[str]:
    """Every friend counted once, for the reader whose link they used, and approved."""
    problems: list[str] = []
    async with run.app.db.read() as conn:
        rows = (await conn.execute(select(referrals))).mappings().all()
        requests = (await conn.execute(select(join_requests))).mappings().all()
        known = (await conn.execute(select(func.count()).select_from(people))).scalar_one()
        welcomes = await db_outbox.outbox_rows(conn, "sent")
    by_friend = {row["referred_id"]: row["referrer_id"] for row in rows}
    readers = run.readers
    expected = {friend: readers[index % len(readers)] for index, friend in enumerate(run.friends)}
    if len(rows) != len(run.friends):
        problems.append(f"{len(rows)} referrals for {len(run.friends)} joins")
    wrong = sum(1 for friend, reader in expected.items() if by_friend.get(friend) != reader)
    if wrong:
        problems.append(f"{wrong} friends not counted for their reader")
    states = Counter(row["state"] for row in rows)
    if set(states) - {"pending"}:
        problems.append(f"unexpected referral states {dict(states)}")
    approved = sum(1 for r in requests if r["state"] == "approved")
    if approved != len(run.friends):
        problems.append(f"{approved} join requests approved of {len(run.friends)}")
    welcomed = sum(1 for row in welcomes if row["template"] == "join_welcome")
    if welcomed != len(run.friends):
        problems.append(f"{welcomed} welcomes sent of {len(run.friends)}")
    if known < len(run.friends):
        problems.append(f"only {known} people rows")
    return problems


@dataclass
class NotifyPhase:
    seconds: float
    span: float
    sent: int
    rate: float
    limit: float
    refusals: int
    lost: int
    duplicates: int
    problems: list[str]


async def notify_phase(run: E2E, queued: int) -> NotifyPhase:
    limits = Limits()
    run.app.outbox.limiters["telegram"] = RateLimiter(limits)
    deadline = queued / limits.global_per_second * 3 + 15
    started = time.perf_counter()
    waiting = asyncio.ensure_future(run.remote.call("notify", queued=queued, deadline=deadline))
    run.app.outbox.wake()
    seen = await waiting
    seconds = time.perf_counter() - started
    await run.app.outbox.wait_idle(STEP_TIMEOUT)
    problems = [seen["error"]] if seen["error"] else []
    ok: list[float] = seen["ok_times"]
    span = ok[-1] - ok[0] if len(ok) > 1 else 0.0
    ideal = ideal_span(len(ok), limits.global_per_second)
    rate = limits.global_per_second * ideal / span if span > 0 else 0.0

    async with run.app.db.read() as conn:
        rows = [r for r in await db_outbox.outbox_rows(conn) if r["template"] == "notify_joined"]
        per_reader = Counter((await conn.execute(select(referrals.c.referrer_id))).scalars())
    received: Counter[tuple[int, int]] = Counter(tuple(pair) for pair in seen["received"])
    notified: Counter[int] = Counter()
    lost = 0
    for row in rows:
        if row["state"] != "sent" or received[(row["target_id"], row["message_id"])] != 1:
            lost += 1
        else:
            notified[row["target_id"]] += int(row["context"]["count"])
    duplicates = sum(n - 1 for n in received.values() if n > 1)
    # Every join of the join phase is announced to its reader (summed over the batches).
    unannounced = sum(max(0, n - notified[reader]) for reader, n in per_reader.items())
    if unannounced:
        problems.append(f"{unannounced} joins never announced to their reader")
    if len(ok) != len(rows):
        problems.append(f"{len(ok)} notifications received for {len(rows)} rows")
    return NotifyPhase(
        seconds,
        span,
        len(ok),
        rate,
        limits.global_per_second,
        seen["refusals"],
        lost + unannounced,
        duplicates,
        problems,
    )


# --- baseline: the engine alone -------------------------------------------------------------


async def engine_baseline(
    path: Path, joins: int, readers: int, *, with_requests: bool, concurrency: int = 100
) -> tuple[float, list[str]]:
    """Joins per second through the engine alone (and the rows checked)."""
    db = Database.from_url(f"sqlite:///{path}")
    try:
        await upgrade(db)
        service = ReferralService(db, SystemClock(), {"telegram": FakePlatform()})
        program = await service.create_program(
            "telegram", -1009000000001, "channel", CHANNEL, join_mode="direct"
        )
        urls = []
        for index in range(readers):
            result = await service.get_or_create_link(
                program.id, Person(100_000 + index, f"Reader {index}")
            )
            urls.append(result.link.url)
        base = datetime.now(UTC) - timedelta(minutes=5)
        friends = [Person(5_000_000_000 + i, f"Friend {i}") for i in range(joins)]
        feed = iter(enumerate(friends))

        async def caller() -> None:
            for index, friend in feed:
                url = urls[index % readers]
                at = base + timedelta(milliseconds=index)
                if with_requests:
                    await service.record_join_request(program.id, friend, at, url)
                await service.record_join(
                    JoinEvent(program.id, friend, at, link=url, event_key=f"b:{friend.user_id}")
                )

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        problems = []
        async with db.read() as conn:
            count = (await conn.execute(select(func.count()).select_from(referrals))).scalar_one()
        if count != joins:
            problems.append(f"{count} referrals for {joins} joins")
        return joins / seconds, problems
    finally:
        await db.dispose()


# --- baseline: the transport alone -------------------------------------------------------


async def transport_baseline(joins: int, readers: int) -> tuple[float, list[str]]:
    """The same Bot API traffic per join through a raw aiohttp client against a fresh
    sandbox process: getUpdates, the welcome (sendMessage) and approveChatJoinRequest; no
    aiogram, no update loop, no database. The ceiling of the transport in this run."""
    remote = Remote()
    problems: list[str] = []
    try:
        world = await remote.call("raw_setup", readers=readers, friends=joins)
        base = f"{world['url']}/bot{world['token']}"
        gate = asyncio.Semaphore(32)
        async with aiohttp.ClientSession() as http:

            async def call(method: str, **params: Any) -> Any:
                async with http.post(f"{base}/{method}", json=params) as response:
                    body = await response.json()
                if not body.get("ok"):
                    raise RuntimeError(f"{method}: {body}")
                return body["result"]

            links = []
            for index in range(readers):
                link = await call(
                    "createChatInviteLink",
                    chat_id=world["chat_id"],
                    name=f"reader {index}",
                    creates_join_request=True,
                )
                links.append(link["invite_link"])
            await remote.call("raw_links", links=links)

            async def welcome_and_approve(request: dict[str, Any]) -> None:
                async with gate:
                    await call("sendMessage", chat_id=request["user_chat_id"], text="Welcome!")
                    await call(
                        "approveChatJoinRequest",
                        chat_id=request["chat"]["id"],
                        user_id=request["from"]["id"],
                    )

            async def poll(stop: asyncio.Event) -> None:
                offset = None
                while not stop.is_set():
                    updates = await call(
                        "getUpdates",
                        offset=offset,
                        timeout=1,
                        allowed_updates=["chat_join_request", "chat_member"],
                    )
                    await asyncio.gather(
                        *(
                            welcome_and_approve(u["chat_join_request"])
                            for u in updates
                            if "chat_join_request" in u
                        )
                    )
                    if updates:
                        offset = updates[-1]["update_id"] + 1

            stop = asyncio.Event()
            poller = asyncio.create_task(poll(stop))
            result = await remote.call("join")
            stop.set()
            await poller
        if result["outside"]:
            problems.append(f"{result['outside']} friends did not get in")
        return joins / result["seconds"], problems
    finally:
        await remote.close()


# --- output ---------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    count: int
    rate: float
    problems: list[str]
    note: str = ""


def print_table(rows: list[Row], compare: float) -> None:
    header = f"{'path':<58} {'joins':>7} {'joins/s':>9} {'e2e/this':>9}  check"
    say("")
    say(header)
    say("-" * len(header))
    for row in rows:
        ratio = compare / row.rate if row.rate else 0.0
        check = "ok" if not row.problems else "FAILED"
        note = f"  ({row.note})" if row.note else ""
        say(f"{row.name:<58} {row.count:>7,} {row.rate:>9,.0f} {ratio:>8.2f}×  {check}{note}")
    for row in rows:
        for problem in row.problems:
            say(f"  ! {row.name}: {problem}")


class WriteLog:
    """Where the single SQLite writer's time goes: each ``Database.write`` transaction by
    the function that opened it, with the time it held the writer and waited for it."""

    def __init__(self, db: Database) -> None:
        self.held: dict[str, list[float]] = {}
        self.waited: dict[str, float] = {}
        self.active = False
        original = db.write

        @asynccontextmanager
        async def write() -> AsyncIterator[Any]:
            caller = sys._getframe(2).f_code.co_qualname
            asked = time.perf_counter()
            async with original() as conn:
                got = time.perf_counter()
                try:
                    yield conn
                finally:
                    if self.active:
                        self.held.setdefault(caller, []).append(time.perf_counter() - got)
                        self.waited[caller] = self.waited.get(caller, 0.0) + got - asked

        db.write = write  # type: ignore[method-assign]

    def print(self, seconds: float, joins: int) -> None:
        total = sum(sum(v) for v in self.held.values())
        say(
            f"\n--- SQLite write transactions in the join phase: the writer was busy "
            f"{total:.2f} s of {seconds:.2f} s ({total / seconds:.0%}) ---"
        )
        say(f"{'opened by':<48} {'count':>7} {'per join':>8} {'held ms':>9} {'mean ms':>8}")
        for caller, held in sorted(self.held.items(), key=lambda kv: -sum(kv[1])):
            say(
                f"{caller:<48} {len(held):>7,} {len(held) / joins:>8.2f} "
                f"{sum(held) * 1000:>9,.0f} {sum(held) / len(held) * 1000:>8.2f}"
            )


def print_profile(profile: cProfile.Profile) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(30)
        say(f"\n--- join phase profile, top 30 by {order} (the bot's event loop thread) ---")
        say(out.getvalue().split("\n\n", 1)[-1].rstrip())


# --- the run --------------------------------------------------------------------------------


async def run(args: argparse.Namespace, workdir: Path) -> int:
    say(
        f"telegram e2e benchmark: {args.joins:,} joins through {args.readers} readers' "
        f"direct join-request links; SQLite, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; the sandbox in a process of its own"
    )
    started = time.perf_counter()
    remote = Remote()
    try:
        e2e = await start_e2e(remote, workdir / "e2e.db", args.readers, args.joins)
        say(
            f"setup: channel set up through the bot, {args.readers} readers' links by "
            f"/invite in {time.perf_counter() - started:.1f} s (not timed)"
        )
        profile = cProfile.Profile() if args.profile else None
        writes = WriteLog(e2e.app.db)
        try:
            say(f"joins: {args.joins:,} join requests at once, limits off, notifications held ...")
            joins = await join_phase(e2e, profile, writes)
            say(
                f"joins: {joins.joins:,} in {joins.seconds:.2f} s (of which {joins.scripting:.2f}"
                f" s the sandbox opening the links); {joins.notifications:,} reader "
                "notifications queued"
            )
            say(
                f"notifications: {joins.notifications:,} to {args.readers} readers with "
                f"Telegram's limits in the sandbox and ours at {Limits().global_per_second:g}/s"
                " ..."
            )
            notify = await notify_phase(e2e, joins.notifications)
        finally:
            await stop_e2e(e2e)
    finally:
        await remote.close()
    if profile is not None:
        print_profile(profile)
    writes.print(joins.seconds, joins.joins)

    say("baseline: the engine alone on a fresh database ...")
    engine_rate, engine_problems = await engine_baseline(
        workdir / "engine.db", args.joins, args.readers, with_requests=False
    )
    both_rate, both_problems = await engine_baseline(
        workdir / "engine_requests.db", args.joins, args.readers, with_requests=True
    )
    say("baseline: the transport alone (raw aiohttp against a fresh sandbox) ...")
    transport_rate, transport_problems = await transport_baseline(args.joins, args.readers)

    e2e_rate = joins.joins / joins.seconds
    rows = [
        Row(
            "end to end: sandbox → aiogram → our loop → engine → SQLite",
            joins.joins,
            e2e_rate,
            joins.problems,
            "profiled" if profile else "",
        ),
        Row("engine alone: record_join", args.joins, engine_rate, engine_problems),
        Row(
            "engine alone: record_join_request + record_join",
            args.joins,
            both_rate,
            both_problems,
        ),
        Row(
            "transport alone: getUpdates + welcome + approve, raw aiohttp",
            args.joins,
            transport_rate,
            transport_problems,
        ),
    ]
    print_table(rows, e2e_rate)
    ratio = notify.rate / notify.limit
    say("")
    ideal = ideal_span(notify.sent, notify.limit)
    say(
        f"notifications: {notify.sent:,} sent in {notify.seconds:.2f} s, first to last in "
        f"{notify.span:.2f} s where {notify.limit:g}/s allows {ideal:.0f} s at best "
        f"({notify.limit:g} at once, then {notify.limit:g} a second): {notify.rate:.1f}/s = "
        f"{ratio:.0%} of the configured limit; 429s {notify.refusals}; lost {notify.lost}; "
        f"duplicates {notify.duplicates}"
    )
    for problem in notify.problems:
        say(f"  ! notifications: {problem}")
    join_verdict = "meets" if e2e_rate >= TARGET_JOINS_PER_S else "is BELOW"
    say(f"bar: end to end {join_verdict} {TARGET_JOINS_PER_S} joins/s ({e2e_rate:,.0f})")
    notify_ok = ratio >= TARGET_NOTIFY_RATIO and notify.lost == 0 and notify.duplicates == 0
    say(
        f"bar: notifications {'meet' if notify_ok else 'are BELOW'} "
        f"{TARGET_NOTIFY_RATIO:.0%} of the limit with nothing lost ({ratio:.0%}, "
        f"lost {notify.lost})"
    )
    say(
        "note: with Telegram's limits on, one welcome DM per join request would pace "
        f"direct-link approvals at the global limit ({Limits().global_per_second:g}/s)"
    )
    verified = not any(row.problems for row in rows) and not notify.problems
    figures = {
        "joins": args.joins,
        "readers": args.readers,
        "e2e_joins_per_s": round(e2e_rate, 1),
        "e2e_seconds": round(joins.seconds, 3),
        "engine_joins_per_s": round(engine_rate, 1),
        "engine_request_and_join_per_s": round(both_rate, 1),
        "transport_joins_per_s": round(transport_rate, 1),
        "e2e_over_engine": round(e2e_rate / engine_rate, 3),
        "e2e_over_engine_request_and_join": round(e2e_rate / both_rate, 3),
        "notifications": notify.sent,
        "notify_rate_per_s": round(notify.rate, 2),
        "notify_limit_per_s": notify.limit,
        "notify_rate_ratio": round(ratio, 3),
        "notify_429s": notify.refusals,
        "lost": notify.lost,
        "duplicates": notify.duplicates,
        "verified": verified,
    }
    if args.profile:
        figures["profiled"] = True
    print(json.dumps(figures), flush=True)
    return 0 if verified else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Joins per second through the whole Telegram bot, and the notification "
        "send rate against the limit."
    )
    parser.add_argument("--joins", type=int, default=1_000, help="join requests (1000)")
    parser.add_argument(
        "--readers", type=int, default=40, help="readers with links, at least 30 (40)"
    )
    parser.add_argument("--keep", metavar="DIR", help="keep the SQLite files in DIR")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the join phase and print the top"
    )
    args = parser.parse_args(argv)
    if args.joins < 1:
        parser.error("--joins must be at least 1")
    if args.readers < 30:
        parser.error("--readers must be at least 30 (the notification rate needs them)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_in_workdir(parse_args(argv), run, "inviteloop-e2e-")


if __name__ == "__main__":
    raise SystemExit(main())
