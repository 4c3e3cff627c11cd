"""End-to-end Discord benchmark: joins through readers' invites, from the sandbox's gateway
through the real discord.py client, our settle windows and the engine into the database;
attributed, unattributed by reason, and misattributed against the sandbox's truth.

Run from the project root::

    python benchmarks/discord_e2e.py [--joins N] [--guilds G] [--settle S] [--speed K]

What it does, in one run:

1. Setup (not timed): a sandbox ``DiscordWorld`` with G servers and its server on
   127.0.0.1, the real ``Application`` (SQLite, discord.py inside our ``ReferralBot``).
   Each server's owner runs ``/setup``; N readers (N/G a server, members before the bot
   starts) each run ``/invite`` and get their own invite. Discord caps a server at 1,000
   invites, so more than 1,000 joins need more servers.
2. Joins (timed): N friends, one through each reader's invite, on a seeded schedule of
   bursts: mostly one join, sometimes two to four within half a second, and one gap in
   five short enough that the next burst lands while the last one's settle window (or
   its GUILD_MEMBER_ADD) is still open — so attribution must sometimes say ``ambiguous``.
   As on Discord, the invite's uses counter moves at once and GUILD_MEMBER_ADD follows
   1–2 s later (each join's own delay, so events may overtake each other). Timed from
   the first join until the tracker has settled every join (its row written).
3. Verification from the database: every friend has exactly one join attempt; every
   referral row's referrer must be the reader whose invite the sandbox used for that
   member (``misattributed`` counts the others); unattributed joins by reason.
4. Baseline in the same run: the transport alone — the same schedule, delays and servers
   in a fresh sandbox, delivered to a bare gateway websocket (aiohttp, IDENTIFY with the
   same intents) that only counts GUILD_MEMBER_ADD; no discord.py, no windows, no
   database. Its rate is the fastest the schedule can be delivered; ``e2e/transport``
   is what the bot adds on top (the last settle window, the counter fetches, the rows).
   Also the sandbox's delivery ceiling: N joins at once with no delay.
5. Prints a table and, as the last line, one JSON object with the figures.

Time. The world's clock (and the engine's, which reads the same clock) runs ``--speed``
times faster than real time during the join phase and stands still during setup: Discord's
1–2 s member-add delay and the gaps of the schedule are world seconds, the bot's settle
window (``--settle``) is real seconds, so the window is ``settle × speed`` world seconds
(by default 0.1 s × 20 = 2 s, the bot's production window). Without the speed-up, 1,000
joins spaced so that most can be attributed would take about an hour. Everything runs in
one process on one event loop, so the bot's I/O and CPU are real time and look ``speed``
times slower in the world than they are: that only makes overlaps (and ``ambiguous``)
more frequent, never attribution easier.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import select  # noqa: E402

from benchmarks.runs import run_in_workdir  # noqa: E402
from bots.discord.app import ReferralBot, intents  # noqa: E402
from main import Application, Settings, tune_garbage_collector  # noqa: E402
from sandbox.discord import (  # noqa: E402
    Application as SandboxApp,
)
from sandbox.discord import (  # noqa: E402
    Channel,
    DiscordSandboxServer,
    DiscordUser,
    DiscordWorld,
    Guild,
    permissions,
)
from storage.migrate import upgrade  # noqa: E402
from storage.schema import join_attempts, programs, referrals  # noqa: E402

INVITE_CAP = 1_000  # Discord's invites per server (error 30016)
MEMBER_ADD_DELAY = (1.0, 2.0)  # world seconds from the uses counter to GUILD_MEMBER_ADD
DELIVERY_MARGIN = 0.1  # real seconds on top: the event's way to the bot, a busy event loop
BOT_PERMISSIONS = (
    permissions.VIEW_CHANNEL
    | permissions.SEND_MESSAGES
    | permissions.CREATE_INSTANT_INVITE
    | permissions.MANAGE_CHANNELS
    | permissions.MANAGE_GUILD
    | permissions.MANAGE_ROLES
)
STEP_TIMEOUT = 30.0
SEED = 2026


def say(message: str) -> None:
    print(message, flush=True)


# --- time -------------------------------------------------------------------------------


class ScaledClock:
    """The world's and the engine's clock: stands still until :meth:`run_at`, then runs
    ``speed`` times real time. Never goes back (a new speed starts from where it is)."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._wall = start
        self._mono = 1_000.0
        self._speed = 0.0
        self._since = time.perf_counter()

    def _elapsed(self) -> float:
        return (time.perf_counter() - self._since) * self._speed

    def time(self) -> float:
        return self._wall + self._elapsed()

    def monotonic(self) -> float:
        return self._mono + self._elapsed()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def run_at(self, speed: float) -> None:
        elapsed = self._elapsed()
        self._wall += elapsed
        self._mono += elapsed
        self._speed = speed
        self._since = time.perf_counter()


# --- the schedule -----------------------------------------------------------------------


@dataclass(frozen=True)
class Join:
    at: float  # world seconds after the first join
    server: int  # index of the server
    slot: int  # index of the reader (and friend) within the server


def schedule(joins: int, servers: int, seed: int) -> list[Join]:
    """Each server's joins as bursts: mostly one join, sometimes 2–4 within 0.5 s; between
    bursts a quiet 7–11 s, or (one gap in five) 0.3–2.5 s, so the next burst arrives while
    the last one's window or member-add events are still open. Seeded: every run (and the
    transport baseline) replays the same timeline."""
    rng = random.Random(seed)
    plan: list[Join] = []
    for server in range(servers):
        count = joins // servers + (1 if server < joins % servers else 0)
        at, slot = rng.uniform(0.0, 3.0), 0
        while slot < count:
            size = min(count - slot, rng.choices((1, 2, 3, 4), weights=(80, 12, 6, 2))[0])
            for _ in range(size):
                plan.append(Join(at + rng.uniform(0.0, 0.5), server, slot))
                slot += 1
            at += rng.uniform(0.3, 2.5) if rng.random() < 1 / 5 else rng.uniform(7.0, 11.0)
    plan.sort(key=lambda j: j.at)
    start = plan[0].at
    return [Join(j.at - start, j.server, j.slot) for j in plan]


def alone_within(plan: Sequence[Join], seconds: float) -> int:
    """Joins with no other join of their server within ``seconds`` before or after."""
    times: dict[int, list[float]] = {}
    for join in plan:
        times.setdefault(join.server, []).append(join.at)
    alone = 0
    for ats in times.values():
        for index, at in enumerate(ats):
            before = at - ats[index - 1] if index else float("inf")
            after = ats[index + 1] - at if index + 1 < len(ats) else float("inf")
            alone += before >= seconds and after >= seconds
    return alone


def bursts_within(plan: Sequence[Join], window: float) -> int:
    """Joins that land within ``window`` world seconds after another join of their server."""
    last: dict[int, float] = {}
    close = 0
    for join in plan:
        if join.server in last and join.at - last[join.server] <= window:
            close += 1
        last[join.server] = join.at
    return close


async def replay(
    world: DiscordWorld,
    clock: ScaledClock,
    plan: Sequence[Join],
    codes: list[list[str]],
    friends: list[list[DiscordUser]],
    speed: float,
) -> float:
    """Make the joins happen on the world's clock, ``speed`` times real time; returns the
    real ``perf_counter`` of the first join."""
    clock.run_at(speed)
    started = time.perf_counter()
    for join in plan:
        delay = started + join.at / speed - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        world.join_via_invite(friends[join.server][join.slot], codes[join.server][join.slot])
    return started


# --- the sandbox world ------------------------------------------------------------------


@dataclass
class Server:
    guild: Guild
    channel: Channel
    owner: DiscordUser
    readers: list[DiscordUser] = field(default_factory=list)
    friends: list[DiscordUser] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    program_id: int = 0


def build_world(
    clock: ScaledClock, joins: int, servers: int, name: str
) -> tuple[DiscordWorld, SandboxApp, list[Server]]:
    """G servers with their readers as members already (the bot finds them there)."""
    world = DiscordWorld(clock=clock, seed=SEED, member_add_delay=MEMBER_ADD_DELAY)
    admin = world.add_user("olga", "Olga")
    app = world.add_application(name, owner=admin)
    built = []
    for index in range(servers):
        owner = admin if index == 0 else world.add_user(f"owner{index}", f"Owner {index}")
        guild = world.add_guild(f"Readers {index}", owner, vanity_code=f"readers{index}")
        channel = next(iter(guild.channels.values()))
        world.add_bot_to_guild(app, guild, permissions=BOT_PERMISSIONS)
        built.append(Server(guild, channel, owner))
    for index in range(joins):
        server = built[index % servers]
        reader = world.add_user(f"reader{index}", f"Reader {index}")
        world.add_member(server.guild, reader)
        server.readers.append(reader)
        server.friends.append(world.add_user(f"friend{index}", f"Friend {index}"))
    return world, app, built


# --- the end-to-end run -----------------------------------------------------------------


@dataclass
class E2E:
    world: DiscordWorld
    clock: ScaledClock
    app: Application
    servers: list[Server]
    stop: asyncio.Event
    task: asyncio.Task[None]

    @property
    def bot(self) -> ReferralBot:
        assert self.app.discord is not None
        return self.app.discord.bot


async def slash(world: DiscordWorld, user: DiscordUser, channel: Channel, name: str) -> str:
    """``/name`` by ``user``; the text of its last answer."""
    record = world.invoke_slash(user, channel, name)
    await world.wait_for_response(record, timeout=STEP_TIMEOUT)
    async with asyncio.timeout(STEP_TIMEOUT):
        while True:
            texts = [m.content for m in world.interaction_responses(record)]
            if texts and texts[-1]:
                return texts[-1]
            await asyncio.sleep(0.005)


async def start_e2e(
    world: DiscordWorld,
    clock: ScaledClock,
    sandbox_app: SandboxApp,
    servers: list[Server],
    url: str,
    db_path: Path,
    settle: float,
    lag: float,
) -> E2E:
    settings = Settings(
        database_url=f"sqlite:///{db_path}",
        discord_token=SecretStr(sandbox_app.token),
        discord_api_url=url,
        log_level="WARNING",
    )
    app = Application(
        settings,
        clock=clock,
        discord_options={
            "settle_seconds": settle,
            "member_add_lag": lag,
            "guild_ready_timeout": 0.05,
        },
    )
    await upgrade(app.db)
    tune_garbage_collector()  # as `inviteloop run` does once it has started
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop), name="bench-bot")
    e2e = E2E(world, clock, app, servers, stop, task)
    await world.wait_until_connected(sandbox_app, timeout=STEP_TIMEOUT)
    async with asyncio.timeout(STEP_TIMEOUT):
        while not (e2e.bot.is_ready() and e2e.bot.tracker.synced):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await e2e.bot.tree.sync()
    for server in servers:
        text = await slash(world, server.owner, server.channel, "setup")
        if "is set up" not in text:
            raise RuntimeError(f"/setup in {server.guild.name}: {text}")
    gate = asyncio.Semaphore(16)

    async def invite(server: Server, reader: DiscordUser) -> str:
        async with gate:
            text = await slash(world, reader, server.channel, "invite")
        found = re.search(r"https?://\S+/([A-Za-z0-9]+)", text)
        if not found:
            raise RuntimeError(f"no invite for {reader.username}: {text}")
        return found.group(1)

    for server in servers:
        server.codes = list(await asyncio.gather(*(invite(server, r) for r in server.readers)))
        if len(set(server.codes)) != len(server.codes):
            raise RuntimeError(f"readers of {server.guild.name} share invites")
    async with app.db.read() as conn:
        rows = (await conn.execute(select(programs.c.id, programs.c.destination_id))).all()
    by_guild = {int(r.destination_id): int(r.id) for r in rows}
    for server in servers:
        server.program_id = by_guild[server.guild.id]
    return e2e


async def stop_e2e(e2e: E2E) -> None:
    e2e.stop.set()
    try:
        await asyncio.wait_for(e2e.task, 15)
    finally:
        await e2e.app.close()


@dataclass
class JoinPhase:
    seconds: float
    schedule_seconds: float
    settles: int
    problems: list[str]


async def join_phase(e2e: E2E, plan: Sequence[Join], speed: float) -> JoinPhase:
    tracker = e2e.bot.tracker
    before = tracker.settled_joins
    calls_before = len(e2e.world.calls("GET /guilds/{guild_id}/invites"))
    codes = [s.codes for s in e2e.servers]
    friends = [s.friends for s in e2e.servers]
    started = await replay(e2e.world, e2e.clock, plan, codes, friends, speed)
    scheduled = time.perf_counter() - started
    problems: list[str] = []
    deadline = 30.0 + 4 * MEMBER_ADD_DELAY[1] / speed
    try:
        async with asyncio.timeout(deadline):
            while tracker.settled_joins - before < len(plan):  # noqa: ASYNC110
                await asyncio.sleep(0.002)
    except TimeoutError:
        problems.append(
            f"only {tracker.settled_joins - before} of {len(plan)} joins settled "
            f"{deadline:.0f} s after the last"
        )
    seconds = time.perf_counter() - started
    e2e.clock.run_at(0.0)
    settles = len(e2e.world.calls("GET /guilds/{guild_id}/invites")) - calls_before
    return JoinPhase(seconds, scheduled, settles, problems)


@dataclass
class Verdict:
    attributed: int
    misattributed: int
    unattributed: Counter[str]
    problems: list[str]
    examples: list[str]


async def verify(e2e: E2E) -> Verdict:
    """The database against the sandbox's truth: friend i of a server joined through the
    invite the bot gave reader i (the sandbox counted one use on it, and on no other)."""
    truth: dict[tuple[int, int], int] = {}
    names: dict[int, str] = {}
    problems: list[str] = []
    outside = 0
    for server in e2e.servers:
        uses = {i.code: i.uses for i in e2e.world.invites(server.guild, include_deleted=True)}
        for reader, friend, code in zip(server.readers, server.friends, server.codes, strict=True):
            if e2e.world.member_of(server.guild, friend) is None or uses.get(code) != 1:
                outside += 1
            truth[(server.program_id, friend.id)] = reader.id
            names[reader.id], names[friend.id] = reader.username, friend.username
    if outside:
        problems.append(f"{outside} friends are not in through their reader's invite alone")
    async with e2e.app.db.read() as conn:
        attempts = (
            await conn.execute(
                select(
                    join_attempts.c.program_id,
                    join_attempts.c.user_id,
                    join_attempts.c.outcome,
                    join_attempts.c.reason,
                )
            )
        ).all()
        credited = (
            await conn.execute(
                select(referrals.c.program_id, referrals.c.referred_id, referrals.c.referrer_id)
            )
        ).all()
    examples: list[str] = []
    seen = Counter((int(a.program_id), int(a.user_id)) for a in attempts)
    missing = [key for key in truth if seen[key] == 0]
    twice = [key for key, n in seen.items() if n > 1]
    strangers = [key for key in seen if key not in truth]
    if missing:
        problems.append(f"{len(missing)} joins without a join attempt row")
    if twice:
        problems.append(f"{len(twice)} joins recorded more than once")
    if strangers:
        problems.append(f"{len(strangers)} join attempts of people who did not join")
    attributed = misattributed = 0
    credited_keys = set()
    for row in credited:
        key = (int(row.program_id), int(row.referred_id))
        credited_keys.add(key)
        if row.referrer_id is not None and truth.get(key) == int(row.referrer_id):
            attributed += 1
        elif row.referrer_id is not None:
            misattributed += 1
            if len(examples) < 5:
                examples.append(
                    f"{names.get(key[1], key[1])} credited to "
                    f"{names.get(int(row.referrer_id), row.referrer_id)}, came through "
                    f"{names.get(truth.get(key, 0), 'no reader')}'s invite"
                )
    unattributed: Counter[str] = Counter(
        str(a.reason or a.outcome)
        for a in attempts
        if (int(a.program_id), int(a.user_id)) not in credited_keys
    )
    return Verdict(attributed, misattributed, unattributed, problems, examples)


# --- baseline: the transport alone ------------------------------------------------------


async def transport_baseline(
    joins: int, servers: int, plan: Sequence[Join], speed: float
) -> tuple[float, float, list[str]]:
    """The same schedule and delays through a fresh sandbox to a bare gateway websocket
    that only counts GUILD_MEMBER_ADD; then N joins at once with no delay (the ceiling).
    Returns (scheduled joins/s, at-once events/s, problems)."""
    clock = ScaledClock()
    world, app, built = build_world(clock, joins, servers, "Raw Counter")
    for server in built:
        server.codes = [
            world.create_invite(
                app, server.channel, max_age=0, max_uses=0, temporary=False, unique=True
            ).code
            for _ in server.readers
        ]
    problems: list[str] = []
    async with DiscordSandboxServer(world) as sandbox, aiohttp.ClientSession() as http:
        added = 0
        changed = asyncio.Event()
        ready = asyncio.Event()
        async with http.ws_connect(f"{sandbox.endpoints.gateway_url}?v=10&encoding=json") as ws:

            async def read() -> None:
                nonlocal added
                async for frame in ws:
                    payload = json.loads(frame.data)
                    if payload["op"] == 10:
                        await ws.send_json(
                            {
                                "op": 2,
                                "d": {
                                    "token": app.token,
                                    "intents": intents().value,
                                    "properties": {
                                        "os": "linux",
                                        "browser": "raw",
                                        "device": "raw",
                                    },
                                },
                            }
                        )
                    elif payload.get("t") == "READY":
                        ready.set()
                    elif payload.get("t") == "GUILD_MEMBER_ADD":
                        added += 1
                        changed.set()

            reader = asyncio.create_task(read())
            try:
                await asyncio.wait_for(ready.wait(), STEP_TIMEOUT)
                codes = [s.codes for s in built]
                friends = [s.friends for s in built]
                started = await replay(world, clock, plan, codes, friends, speed)
                scheduled = await _count_to(lambda: added, joins, changed, started, problems)
                clock.run_at(0.0)
                # the ceiling: as many joins again, all at once, no member-add delay
                world.member_add_delay = 0
                extra = [world.add_user(f"burst{i}") for i in range(joins)]
                started = time.perf_counter()
                for index, user in enumerate(extra):
                    server = built[index % servers]
                    world.join_via_invite(user, server.codes[index // servers % len(server.codes)])
                at_once = await _count_to(lambda: added, 2 * joins, changed, started, problems)
            finally:
                reader.cancel()
    return joins / scheduled, joins / at_once, problems


async def _count_to(
    count: Any, target: int, changed: asyncio.Event, started: float, problems: list[str]
) -> float:
    try:
        async with asyncio.timeout(STEP_TIMEOUT + 10):
            while count() < target:
                changed.clear()
                await changed.wait()
    except TimeoutError:
        problems.append(f"{count()} GUILD_MEMBER_ADD of {target}")
    return time.perf_counter() - started


# --- the run ------------------------------------------------------------------------------


async def run(args: argparse.Namespace, workdir: Path) -> int:
    plan = schedule(args.joins, args.guilds, SEED)
    window = args.settle * args.speed
    lag = MEMBER_ADD_DELAY[1] / args.speed + DELIVERY_MARGIN
    # the gap either side that makes a join's window isolated for any delays in the range
    clear = MEMBER_ADD_DELAY[1] - MEMBER_ADD_DELAY[0] + window + lag * args.speed
    alone = alone_within(plan, clear)
    say(
        f"discord e2e benchmark: {args.joins:,} joins through {args.joins:,} readers' invites "
        f"in {args.guilds} server(s); SQLite, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; sandbox and bot in one process"
    )
    say(
        f"time: the world runs {args.speed:g}× real time; settle window {args.settle:g} s "
        f"real = {window:g} s world; GUILD_MEMBER_ADD {MEMBER_ADD_DELAY[0]:g}–"
        f"{MEMBER_ADD_DELAY[1]:g} s world after the uses counter (the bot allows "
        f"{lag:.2f} s real = {lag * args.speed:.1f} s world); schedule "
        f"{plan[-1].at:.0f} s world, {bursts_within(plan, window)} joins within a window of "
        f"their server's previous join, {alone:,} with no other join of their server within "
        f"{clear:.0f} s (isolated whatever the delays)"
    )
    started = time.perf_counter()
    clock = ScaledClock()
    world, sandbox_app, servers = build_world(clock, args.joins, args.guilds, "Invite Loop")
    async with DiscordSandboxServer(world) as sandbox:
        e2e = await start_e2e(
            world, clock, sandbox_app, servers, sandbox.url, workdir / "e2e.db", args.settle, lag
        )
        try:
            say(
                f"setup: {args.guilds} server(s) set up, {args.joins:,} readers' invites by "
                f"/invite in {time.perf_counter() - started:.1f} s (not timed)"
            )
            say(f"joins: {args.joins:,} on the schedule ...")
            joins = await join_phase(e2e, plan, args.speed)
            verdict = await verify(e2e)
        finally:
            await stop_e2e(e2e)
    say(
        f"joins: {args.joins:,} settled in {joins.seconds:.2f} s (the schedule itself "
        f"{joins.schedule_seconds:.2f} s); {joins.settles:,} settle windows (invite fetches)"
    )
    say("baseline: the transport alone (the same schedule to a bare gateway websocket) ...")
    transport_rate, ceiling, transport_problems = await transport_baseline(
        args.joins, args.guilds, plan, args.speed
    )

    e2e_rate = args.joins / joins.seconds
    unattributed = sum(verdict.unattributed.values())
    ratio = unattributed / args.joins
    problems = joins.problems + verdict.problems
    say("")
    header = f"{'path':<62} {'joins':>7} {'joins/s':>9}  check"
    say(header)
    say("-" * len(header))
    say(
        f"{'end to end: sandbox → discord.py → settle → engine → SQLite':<62} "
        f"{args.joins:>7,} {e2e_rate:>9,.1f}  {'ok' if not problems else 'FAILED'}"
    )
    say(
        f"{'transport alone: same schedule, bare websocket':<62} "
        f"{args.joins:>7,} {transport_rate:>9,.1f}  {'ok' if not transport_problems else 'FAILED'}"
    )
    say(
        f"{'transport ceiling: all at once, no member-add delay':<62} "
        f"{args.joins:>7,} {ceiling:>9,.0f}"
    )
    for problem in problems + transport_problems:
        say(f"  ! {problem}")
    say("")
    say(
        f"attribution: {verdict.attributed:,} attributed, {unattributed:,} unattributed "
        f"({ratio:.1%}: "
        + ", ".join(f"{k} {v:,}" for k, v in verdict.unattributed.most_common())
        + f"), {verdict.misattributed:,} misattributed"
    )
    for example in verdict.examples:
        say(f"  ! misattributed: {example}")
    met = verdict.misattributed == 0
    say(f"bar: misattributed 0 {'is met' if met else 'is NOT met'} ({verdict.misattributed})")
    verified = met and not problems and not transport_problems
    figures = {
        "joins": args.joins,
        "guilds": args.guilds,
        "settle_seconds": args.settle,
        "speed": args.speed,
        "member_add_lag_seconds": round(lag, 3),
        "e2e_joins_per_s": round(e2e_rate, 2),
        "e2e_seconds": round(joins.seconds, 3),
        "schedule_seconds": round(joins.schedule_seconds, 3),
        "transport_joins_per_s": round(transport_rate, 2),
        "transport_at_once_per_s": round(ceiling, 1),
        "e2e_over_transport": round(e2e_rate / transport_rate, 3),
        "settle_windows": joins.settles,
        "attributed": verdict.attributed,
        "alone_on_schedule": alone,
        "unattributed": unattributed,
        "unattributed_ratio": round(ratio, 4),
        "unattributed_by_reason": dict(verdict.unattributed.most_common()),
        "misattributed": verdict.misattributed,
        "verified": verified,
    }
    print(json.dumps(figures), flush=True)
    return 0 if verified else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Joins per second through the whole Discord bot, and whether any was "
        "credited to the wrong reader."
    )
    parser.add_argument("--joins", type=int, default=1_000, help="joins, one a reader (1000)")
    parser.add_argument(
        "--guilds", type=int, default=8, help="servers the joins are spread over (8)"
    )
    parser.add_argument(
        "--settle", type=float, default=0.1, help="the bot's settle window, real seconds (0.1)"
    )
    parser.add_argument(
        "--speed", type=float, default=20.0, help="world seconds per real second (20)"
    )
    parser.add_argument("--keep", metavar="DIR", help="keep the SQLite file in DIR")
    args = parser.parse_args(argv)
    if args.joins < 1:
        parser.error("--joins must be at least 1")
    if args.guilds < 1 or args.guilds > args.joins:
        parser.error("--guilds must be between 1 and --joins")
    if -(-args.joins // args.guilds) > INVITE_CAP:
        parser.error(f"Discord allows {INVITE_CAP} invites a server: use more --guilds")
    if args.settle <= 0 or args.speed <= 0:
        parser.error("--settle and --speed must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_in_workdir(parse_args(argv), run, "inviteloop-discord-e2e-")


if __name__ == "__main__":
    raise SystemExit(main())
