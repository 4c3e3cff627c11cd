"""Ingest benchmark: joins per second through the engine, against plain drivers.

Run from the project root::

    python benchmarks/ingest.py [--joins N] [--referrers R] [--concurrency C]
                                [--postgres-url URL] [--keep DIR] [--profile]
    python -m benchmarks.ingest --joins 30000

What it does, in one run:

1. Builds a fresh SQLite database with the real Alembic migrations, one program and R
   referrers with their links, all through the engine's public API (not timed).
2. Times N joins through ``ReferralService.record_join`` from C concurrent callers (asyncio
   tasks pulling from one shared feed of pre-built ``JoinEvent``\\ s): mostly first joins
   through a reader's link, plus re-delivered updates, rejoins and unknown link codes.
   Then checks the rows against a plain model of the rules: referrals, counts per
   referrer, join attempts per outcome, events, members.
3. Writes the same joins with plain ``sqlite3`` into copies of the same migrated database:
   set-based batches of 500 joins per commit (``executemany``), a statement per join with
   500 joins per commit, and a statement per join with one commit per join (on a sample of
   at most 20,000 joins). Same pragmas as the engine (WAL, synchronous=NORMAL, foreign keys).
   This is the ceiling no Python layer can beat.
4. With ``--postgres-url`` (or ``INVITELOOP_BENCH_POSTGRES_URL``): the same engine run on
   PostgreSQL in a private schema, plus raw ``asyncpg`` set-based batches as the ceiling
   there. Both schemas are dropped at the end.
5. Prints a table and, as the last line, one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import platform
import pstats
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy import event as sa_event  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from referrals.clock import SystemClock  # noqa: E402
from referrals.models import JoinEvent, Person  # noqa: E402
from referrals.service import ReferralService  # noqa: E402
from storage.database import SQLITE_CACHE_KIB, Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.helpers.ports import FakePlatform  # noqa: E402

# The workload: shares of the N joins that are not a first join through a reader's link.
DUPLICATE_SHARE = 0.02  # the platform delivers the same update twice
REJOIN_SHARE = 0.01  # someone already counted joins again (half through another reader's link)
UNKNOWN_SHARE = 0.005  # a link code we never issued (typed by hand, or from another bot)

HOLD_HOURS = 48
DESTINATION_ID = -1001234567890
REFERRER_BASE = 100_000
FRIEND_BASE = 5_000_000_000
RAW_PER_JOIN_SAMPLE = 20_000
TARGET_JOINS_PER_S = 5_000
SETUP_CONCURRENCY = 8
NOTIFY_TEMPLATE = "notify_joined"
POSTGRES_ENV = "INVITELOOP_BENCH_POSTGRES_URL"


# --- the workload ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spec:
    """One join of the workload, independent of any database's link codes."""

    friend_id: int
    referrer: int  # index into the referrers; -1 for a code we never issued
    offset_ms: int
    key: str


@dataclass(slots=True)
class Expected:
    """What any correct ingest of a workload ends with."""

    joins: int = 0
    referrals: int = 0
    duplicates: int = 0
    rejoins: int = 0
    unattributed: int = 0
    friends: int = 0
    per_referrer: Counter[int] = field(default_factory=Counter)  # referrer index -> referrals
    # Friends in their hold period who joined again: they had left (a lost leave update),
    # so their referral stops as left during the hold.
    lost: int = 0
    lost_per_referrer: Counter[int] = field(default_factory=Counter)


def make_workload(joins: int, referrers: int, concurrency: int, seed: int) -> list[Spec]:
    """``joins`` joins in delivery order; repeats always come after what they repeat."""
    rng = random.Random(seed)
    duplicates = round(joins * DUPLICATE_SHARE)
    rejoins = round(joins * REJOIN_SHARE)
    firsts = joins - duplicates - rejoins
    unknown = set(rng.sample(range(firsts), min(firsts, round(joins * UNKNOWN_SHARE))))
    # A few readers bring most friends (a heavy tail), every reader brings some.
    weights = [1 / (rank + 1) ** 0.7 for rank in range(referrers)]
    chosen = rng.choices(range(referrers), weights=weights, k=firsts)
    first_specs = [
        Spec(FRIEND_BASE + i, -1 if i in unknown else chosen[i], i, f"j{i}") for i in range(firsts)
    ]
    placed: list[tuple[float, Spec]] = [(float(i), spec) for i, spec in enumerate(first_specs)]
    for _ in range(duplicates):
        # A re-delivery arrives soon after the original: often in the same batch.
        i = rng.randrange(firsts)
        placed.append((i + rng.randint(1, 2 * concurrency) + 0.5, first_specs[i]))
    counted = [i for i in range(firsts) if i not in unknown]
    for n in range(rejoins):
        i = rng.choice(counted)
        gap = rng.randint(1, 5_000)
        referrer = first_specs[i].referrer
        if n % 2 and referrers > 1:
            referrer = (referrer + 1) % referrers  # through someone else's link this time
        spec = Spec(first_specs[i].friend_id, referrer, i + gap, f"r{n}")
        placed.append((i + gap + 0.25, spec))
    placed.sort(key=lambda item: item[0])
    return [spec for _, spec in placed]


def expect(specs: Sequence[Spec]) -> Expected:
    """A plain model of the rules this workload exercises, applied in delivery order."""
    result = Expected(joins=len(specs))
    seen: set[str] = set()
    joined: set[int] = set()
    pending: dict[int, tuple[int, int]] = {}  # friend -> (referrer, offset of the join)
    for spec in specs:
        if spec.key in seen:
            result.duplicates += 1
            continue
        seen.add(spec.key)
        if spec.friend_id in joined:
            result.rejoins += 1
            first = pending.get(spec.friend_id)
            if first is not None and spec.offset_ms > first[1]:
                del pending[spec.friend_id]
                result.lost += 1
                result.lost_per_referrer[first[0]] += 1
        elif spec.referrer < 0:
            result.unattributed += 1
        else:
            result.referrals += 1
            result.per_referrer[spec.referrer] += 1
            pending[spec.friend_id] = (spec.referrer, spec.offset_ms)
        joined.add(spec.friend_id)
    result.friends = len(joined)
    return result


def build_events(
    program_id: int, specs: Sequence[Spec], codes: Sequence[str], base: datetime
) -> list[JoinEvent]:
    people: dict[int, Person] = {}
    events: list[JoinEvent] = []
    for spec in specs:
        person = people.get(spec.friend_id)
        if person is None:
            person = people[spec.friend_id] = Person(spec.friend_id, f"Friend {spec.friend_id}")
        link = codes[spec.referrer] if spec.referrer >= 0 else f"zz{spec.offset_ms:010d}"
        events.append(
            JoinEvent(
                program_id=program_id,
                person=person,
                at=base + timedelta(milliseconds=spec.offset_ms),
                link=link,
                event_key=spec.key,
            )
        )
    return events


# --- the engine -----------------------------------------------------------------------


async def setup_engine(db: Database, referrers: int) -> tuple[ReferralService, int, list[str]]:
    """Migrate, create the program and every referrer's link through the public API."""
    await upgrade(db)
    service = ReferralService(db, SystemClock(), {"telegram": FakePlatform()})
    program = await service.create_program(
        "telegram", DESTINATION_ID, "channel", "Bench", hold_hours=HOLD_HOURS
    )
    codes = [""] * referrers
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def make(index: int) -> None:
        reader = Person(REFERRER_BASE + index, f"Reader {index}")
        async with gate:
            result = await service.get_or_create_link(program.id, reader)
        codes[index] = result.link.code

    await asyncio.gather(*(make(index) for index in range(referrers)))
    return service, program.id, codes


@dataclass(slots=True)
class EngineRun:
    seconds: float
    outcomes: Counter[str]
    transactions: int


async def run_engine(
    db: Database,
    service: ReferralService,
    events: Sequence[JoinEvent],
    concurrency: int,
    profile: cProfile.Profile | None = None,
) -> EngineRun:
    """``concurrency`` callers share one feed; each awaits its own ``record_join``."""
    commits = 0

    def on_commit(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    sync_engine = db.engine.sync_engine
    sa_event.listen(sync_engine, "commit", on_commit)
    outcomes: Counter[str] = Counter()
    feed: Iterator[JoinEvent] = iter(events)

    async def caller() -> None:
        for join in feed:
            outcome = await service.record_join(join)
            outcomes[str(outcome.status)] += 1

    if profile is not None:
        profile.enable()
    start = time.perf_counter()
    try:
        await asyncio.gather(*(caller() for _ in range(concurrency)))
    finally:
        seconds = time.perf_counter() - start
        if profile is not None:
            profile.disable()
        sa_event.remove(sync_engine, "commit", on_commit)
    return EngineRun(seconds, outcomes, commits)


def check_outcomes(outcomes: Counter[str], expected: Expected) -> list[str]:
    want = Counter(
        {
            "pending": expected.referrals,
            "duplicate": expected.duplicates,
            "not_counted": expected.rejoins,
            "unattributed": expected.unattributed,
        }
    )
    want = +want  # drop zeros
    if outcomes != want:
        return [f"record_join outcomes: got {dict(outcomes)}, expected {dict(want)}"]
    return []


# --- checking the rows ----------------------------------------------------------------

Fetch = Callable[[str], Awaitable[list[tuple[Any, ...]]]]


def _diff(what: str, got: dict[Any, Any], want: dict[Any, Any]) -> list[str]:
    if got == want:
        return []
    keys = sorted(set(got) | set(want), key=str)
    wrong = [k for k in keys if got.get(k) != want.get(k)]
    sample = ", ".join(f"{k}: {got.get(k)} != {want.get(k)}" for k in wrong[:5])
    return [f"{what}: {len(wrong)} keys differ ({sample})"]


async def verify(
    fetch: Fetch, program_id: int, expected: Expected, referrer_ids: Sequence[int]
) -> list[str]:
    """Compare the rows of one program with ``expected``; returns what differs."""
    p = int(program_id)
    problems: list[str] = []
    states = {
        s: int(n)
        for s, n in await fetch(
            f"SELECT state, COUNT(*) FROM referrals WHERE program_id = {p} GROUP BY state"
        )
    }
    still = expected.referrals - expected.lost
    want_states = +Counter({"pending": still, "rejected": expected.lost})
    problems += _diff("referrals by state", states, dict(want_states))
    (pending, rejected, others), *_ = await fetch(
        "SELECT COALESCE(SUM(pending), 0), COALESCE(SUM(rejected), 0),"
        " COALESCE(SUM(held + confirmed), 0)"
        f" FROM referrer_counts WHERE program_id = {p}"
    )
    if int(pending) != still:
        problems.append(f"sum of referrer_counts.pending is {pending}, pending referrals: {still}")
    if int(rejected) != expected.lost:
        problems.append(f"sum of referrer_counts.rejected is {rejected}, lost: {expected.lost}")
    if int(others) != 0:
        problems.append(f"held + confirmed counts are {others}, expected 0")
    want = {referrer_ids[i]: n for i, n in expected.per_referrer.items()}
    want_pending = {
        referrer_ids[i]: n - expected.lost_per_referrer[i]
        for i, n in expected.per_referrer.items()
        if n - expected.lost_per_referrer[i]
    }
    counts = {
        int(r): int(n)
        for r, n in await fetch(
            "SELECT referrer_id, pending FROM referrer_counts"
            f" WHERE program_id = {p} AND pending <> 0"
        )
    }
    problems += _diff("referrer_counts.pending per referrer", counts, want_pending)
    per_referrer = {
        int(r): int(n)
        for r, n in await fetch(
            "SELECT referrer_id, COUNT(*) FROM referrals"
            f" WHERE program_id = {p} GROUP BY referrer_id"
        )
    }
    problems += _diff("referrals per referrer", per_referrer, want)
    attempts = {
        o: int(n)
        for o, n in await fetch(
            f"SELECT outcome, COUNT(*) FROM join_attempts WHERE program_id = {p} GROUP BY outcome"
        )
    }
    want_attempts = +Counter(
        {
            "referral": expected.referrals,
            "not_counted": expected.rejoins,
            "unattributed": expected.unattributed,
        }
    )
    problems += _diff("join_attempts by outcome", attempts, dict(want_attempts))
    ((events,),) = await fetch(
        f"SELECT COUNT(*) FROM events WHERE program_id = {p} AND kind = 'referral.pending'"
    )
    if int(events) != expected.referrals:
        problems.append(f"{events} referral.pending events, expected {expected.referrals}")
    ((joined,),) = await fetch(
        f"SELECT COUNT(*) FROM members WHERE program_id = {p} AND first_joined_at IS NOT NULL"
    )
    if int(joined) != expected.friends:
        problems.append(f"{joined} members have joined, expected {expected.friends}")
    # Each referrer is told about every friend once: "N friends joined" rows add up.
    notified: Counter[int] = Counter()
    for target, context in await fetch(
        f"SELECT target_id, context FROM outbox WHERE program_id = {p}"
        f" AND template = '{NOTIFY_TEMPLATE}'"
    ):
        notified[int(target)] += int(json.loads(context)["count"])
    problems += _diff("friends announced per referrer (outbox)", dict(notified), want)
    return problems


def sqlalchemy_fetch(db: Database) -> Fetch:
    async def fetch(sql: str) -> list[tuple[Any, ...]]:
        async with db.read() as conn:
            return [tuple(row) for row in (await conn.execute(text(sql))).all()]

    return fetch


def sqlite3_fetch(path: Path) -> Fetch:
    async def fetch(sql: str) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(path)
        try:
            return [tuple(row) for row in con.execute(sql).fetchall()]
        finally:
            con.close()

    return fetch


def asyncpg_fetch(con: asyncpg.Connection) -> Fetch:
    async def fetch(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await con.fetch(sql)]

    return fetch


# --- raw writers (the ceiling) --------------------------------------------------------

SQL_MEMBER = (
    "INSERT INTO members (program_id, user_id, display_name, username, first_seen_at,"
    " is_member, first_joined_at, last_joined_at) VALUES (?, ?, ?, ?, ?, TRUE, ?, ?)"
    " ON CONFLICT (program_id, user_id) DO UPDATE SET display_name = excluded.display_name,"
    " username = excluded.username, is_member = TRUE, last_joined_at = excluded.last_joined_at,"
    " first_joined_at = COALESCE(members.first_joined_at, excluded.first_joined_at)"
)
SQL_REFERRAL = (
    "INSERT INTO referrals (program_id, referred_id, referrer_id, link_id, state, joined_at,"
    " hold_until) VALUES (?, ?, ?, ?, 'pending', ?, ?)"
    " ON CONFLICT (program_id, referred_id) DO NOTHING"
)
SQL_COUNTS = (
    "INSERT INTO referrer_counts (program_id, referrer_id, pending, rejected, updated_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (program_id, referrer_id) DO UPDATE"
    " SET pending = referrer_counts.pending + excluded.pending,"
    " rejected = referrer_counts.rejected + excluded.rejected,"
    " updated_at = excluded.updated_at"
)
# A friend in their hold period joined again: they had left (the leave update was lost).
SQL_LOST = (
    "UPDATE referrals SET state = 'rejected', reason = 'left_during_hold', decided_at = ?"
    " WHERE program_id = ? AND referred_id = ? AND state = 'pending'"
)
SQL_LOST_EVENT = (
    "INSERT INTO events (program_id, user_id, kind, at, data)"
    " VALUES (?, ?, 'referral.rejected', ?, ?)"
)
SQL_ATTEMPT = (
    "INSERT INTO join_attempts (program_id, user_id, referrer_id, link_id, outcome, reason, at,"
    " event_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (program_id, event_key) DO NOTHING"
)
SQL_EVENT = (
    "INSERT INTO events (program_id, user_id, kind, at, data)"
    " VALUES (?, ?, 'referral.pending', ?, ?)"
)
SQL_OUTBOX = (
    "INSERT INTO outbox (platform, target_kind, target_id, program_id, priority, action,"
    " template, context, state, attempts, next_attempt_at, idempotency_key, created_at)"
    f" VALUES ('telegram', 'user', ?, ?, 2, 'send', '{NOTIFY_TEMPLATE}', ?, 'queued', 0, ?, ?, ?)"
    " ON CONFLICT (idempotency_key) DO NOTHING"
)
SQL_PROGRAM = "SELECT hold_hours, title FROM programs WHERE id = ?"
SQL_SEEN_ONE = "SELECT 1 FROM join_attempts WHERE program_id = ? AND event_key = ?"
SQL_REFERRED_ONE = (
    "SELECT referrer_id, state, joined_at FROM referrals WHERE program_id = ? AND referred_id = ?"
)
SQL_LINK_ONE = (
    "SELECT id, referrer_id FROM links WHERE code = ? AND program_id = ? AND revoked_at IS NULL"
)


def to_pg(sql: str) -> str:
    """``?`` placeholders to asyncpg's ``$1, $2, …``."""
    parts = sql.split("?")
    return "".join(
        part + (f"${n}" if n < len(parts) else "") for n, part in enumerate(parts, start=1)
    )


# PostgreSQL types of the ``?`` placeholders of each write, in order (for unnest arrays).
PG_TYPES = {
    SQL_MEMBER: ("bigint", "bigint", "text", "text", "timestamptz", "timestamptz", "timestamptz"),
    SQL_REFERRAL: ("bigint", "bigint", "bigint", "bigint", "timestamptz", "timestamptz"),
    SQL_COUNTS: ("bigint", "bigint", "integer", "integer", "timestamptz"),
    SQL_ATTEMPT: (
        "bigint",
        "bigint",
        "bigint",
        "bigint",
        "text",
        "text",
        "timestamptz",
        "text",
    ),
    SQL_EVENT: ("bigint", "bigint", "timestamptz", "text"),
    SQL_OUTBOX: ("bigint", "bigint", "text", "timestamptz", "text", "timestamptz"),
}


def to_pg_unnest(sql: str) -> str:
    """``INSERT … VALUES (?, …)`` to ``INSERT … SELECT … FROM unnest($1::t[], …)``: one
    statement for all rows, each parameter an array (a column of the batch)."""
    head, rest = sql.split(" VALUES (", 1)
    values, tail = rest.split(")", 1)
    types = PG_TYPES[sql]
    selected: list[str] = []
    arrays: list[str] = []
    for item in values.split(", "):
        if item == "?":
            n = len(arrays) + 1
            arrays.append(f"${n}::{types[n - 1]}[]")
            selected.append(f"c{n}")
        else:
            selected.append(item)
    names = ", ".join(f"c{n}" for n in range(1, len(arrays) + 1))
    return (
        f"{head} SELECT {', '.join(selected)} FROM unnest({', '.join(arrays)}) AS u({names}){tail}"
    )


def sqlite_time(value: Any) -> Any:
    """A datetime SQLite stored as text, back as an aware UTC datetime (None stays None)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def sqlite_stamp(value: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def pg_stamp(value: datetime) -> datetime:
    return value


def event_data(referrer_id: int) -> str:
    return json.dumps({"reason": None, "referrer_id": referrer_id}, sort_keys=True)


def notice(
    title: str, hold_hours: int, friends: list[str], count: int, hold_until: datetime
) -> str:
    """The context of a "friends joined through your link" notification."""
    context = {
        "count": count,
        "friends": friends[:10],
        "hold_hours": hold_hours,
        "hold_until": hold_until.isoformat(),
        "program_title": title,
        "states": ["pending"],
    }
    return json.dumps(context, sort_keys=True, default=str)


def chunked(items: Sequence[JoinEvent], size: int) -> Iterator[Sequence[JoinEvent]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True)
class RawRows:
    members: list[tuple[Any, ...]]
    referrals: list[tuple[Any, ...]]
    counts: list[tuple[int, int, int]]  # (referrer_id, pending delta, rejected delta), sorted
    attempts: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    notices: list[tuple[Any, ...]]  # (target_id, program_id, context, next, key, created)
    lost: list[tuple[Any, ...]]  # (decided_at, program_id, user_id) of SQL_LOST
    lost_events: list[tuple[Any, ...]]


def decide_raw(
    program_id: int,
    program: tuple[int, str],
    part: Sequence[JoinEvent],
    links: dict[str, tuple[int, int]],
    seen: set[str],
    joined: dict[int, tuple[int | None, str | None, Any]],
    stamp: Callable[[datetime], Any],
) -> RawRows:
    """The rows one set-based batch writes: the engine's rules for this workload, inline."""
    hold_hours, title = program
    hold = timedelta(hours=hold_hours)
    members: dict[int, list[Any]] = {}
    friends: dict[int, list[JoinEvent]] = {}
    referrals: list[tuple[Any, ...]] = []
    attempts: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    counts: Counter[int] = Counter()
    rejected: Counter[int] = Counter()
    lost: list[tuple[Any, ...]] = []
    lost_events: list[tuple[Any, ...]] = []
    for join in part:
        key = join.event_key
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        user = join.person.user_id
        at = stamp(join.at)
        row = members.get(user)
        if row is None:
            members[user] = [program_id, user, join.person.display_name, None, at, at, at]
        else:
            row[2], row[6] = join.person.display_name, at
        link = links.get(join.link) if join.link else None
        link_id, referrer_id = link if link is not None else (None, None)
        reason: str | None
        if user in joined:
            outcome = "not_counted"
            counted_for, state, joined_at = joined[user]
            if state == "pending" and counted_for is not None and join.at > joined_at:
                # joined again during the hold: they had left (the leave update was lost)
                lost.append((at, program_id, user))
                lost_events.append((program_id, user, at, event_data(counted_for)))
                counts[counted_for] -= 1
                rejected[counted_for] += 1
                joined[user] = (counted_for, "rejected", joined_at)
            other = referrer_id is not None and referrer_id != counted_for
            reason = "counted_for_other" if other else "rejoin"
        elif referrer_id is None:
            outcome, reason = "unattributed", "unknown_link" if join.link else "no_link"
        else:
            outcome, reason = "referral", None
            referrals.append((program_id, user, referrer_id, link_id, at, stamp(join.at + hold)))
            counts[referrer_id] += 1
            events.append((program_id, user, at, event_data(referrer_id)))
            friends.setdefault(referrer_id, []).append(join)
        if outcome == "referral":
            joined.setdefault(user, (referrer_id, "pending", join.at))
        else:
            joined.setdefault(user, (None, None, join.at))
        attempts.append((program_id, user, referrer_id, link_id, outcome, reason, at, key))
    now = datetime.now(UTC)
    notices = [
        (
            referrer_id,
            program_id,
            notice(
                title,
                hold_hours,
                [join.person.display_name for join in joins[:10]],
                len(joins),
                max(join.at for join in joins) + hold,
            ),
            stamp(now),
            f"joined:{program_id}:{joins[0].person.user_id}",
            stamp(now),
        )
        for referrer_id, joins in friends.items()
    ]
    return RawRows(
        [tuple(members[user]) for user in sorted(members)],
        referrals,
        sorted((r, counts[r], rejected[r]) for r in set(counts) | set(rejected)),
        attempts,
        events,
        notices,
        lost,
        lost_events,
    )


def raw_connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None, timeout=30)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    con.execute("PRAGMA foreign_keys=ON")
    return con


def marks(n: int) -> str:
    return ", ".join("?" * n)


def raw_sqlite_batched(
    path: Path, program_id: int, events: Sequence[JoinEvent], batch: int
) -> float:
    """Set-based: per batch a few ``IN`` lookups, then one ``executemany`` per table."""
    con = raw_connect(path)
    try:
        start = time.perf_counter()
        for part in chunked(events, batch):
            con.execute("BEGIN IMMEDIATE")
            program = con.execute(SQL_PROGRAM, (program_id,)).fetchone()
            codes = sorted({join.link for join in part if join.link})
            links = {
                code: (link_id, referrer_id)
                for code, link_id, referrer_id in con.execute(
                    "SELECT code, id, referrer_id FROM links WHERE revoked_at IS NULL"
                    f" AND program_id = ? AND code IN ({marks(len(codes))})",
                    (program_id, *codes),
                )
            }
            keys = sorted({join.event_key for join in part if join.event_key})
            seen = {
                key
                for (key,) in con.execute(
                    "SELECT event_key FROM join_attempts"
                    f" WHERE program_id = ? AND event_key IN ({marks(len(keys))})",
                    (program_id, *keys),
                )
            }
            users = sorted({join.person.user_id for join in part})
            joined = {
                user: (referrer, state, sqlite_time(joined_at))
                for user, referrer, state, joined_at in con.execute(
                    "SELECT m.user_id, r.referrer_id, r.state, r.joined_at FROM members AS m"
                    " LEFT JOIN referrals AS r"
                    " ON r.program_id = m.program_id AND r.referred_id = m.user_id"
                    " WHERE m.program_id = ? AND m.first_joined_at IS NOT NULL"
                    f" AND m.user_id IN ({marks(len(users))})",
                    (program_id, *users),
                ).fetchall()
            }
            rows = decide_raw(program_id, program, part, links, seen, joined, sqlite_stamp)
            now = sqlite_stamp(datetime.now(UTC))
            con.executemany(SQL_MEMBER, rows.members)
            con.executemany(SQL_REFERRAL, rows.referrals)
            con.executemany(SQL_LOST, rows.lost)
            con.executemany(SQL_COUNTS, [(program_id, r, n, x, now) for r, n, x in rows.counts])
            con.executemany(SQL_ATTEMPT, rows.attempts)
            con.executemany(SQL_EVENT, rows.events)
            con.executemany(SQL_LOST_EVENT, rows.lost_events)
            con.executemany(SQL_OUTBOX, rows.notices)
            con.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        con.close()


def raw_sqlite_per_join(
    path: Path, program_id: int, events: Sequence[JoinEvent], commit_every: int
) -> float:
    """A statement at a time per join (the duplicate check, link lookup, member upsert,
    referral insert, then counts, event and notification or nothing, attempt),
    ``commit_every`` joins per commit."""
    con = raw_connect(path)
    hold_hours, title = con.execute(SQL_PROGRAM, (program_id,)).fetchone()
    hold = timedelta(hours=hold_hours)

    def lost(user: int, when: datetime, at: str) -> None:
        """Joined again while still in the hold: they had left (a lost leave update)."""
        found = con.execute(SQL_REFERRED_ONE, (program_id, user)).fetchone()
        if found is None or found[1] != "pending" or when <= sqlite_time(found[2]):
            return
        con.execute(SQL_LOST, (at, program_id, user))
        now = sqlite_stamp(datetime.now(UTC))
        con.execute(SQL_COUNTS, (program_id, found[0], -1, 1, now))
        con.execute(SQL_LOST_EVENT, (program_id, user, at, event_data(found[0])))

    def one(join: JoinEvent) -> None:
        if con.execute(SQL_SEEN_ONE, (program_id, join.event_key)).fetchone():
            return  # a re-delivered update: nothing changes
        user = join.person.user_id
        at = sqlite_stamp(join.at)
        link = con.execute(SQL_LINK_ONE, (join.link, program_id)).fetchone()
        con.execute(SQL_MEMBER, (program_id, user, join.person.display_name, None, at, at, at))
        link_id: int | None = None
        referrer_id: int | None = None
        reason: str | None = None
        if link is None:
            outcome, reason = "unattributed", "unknown_link"
        else:
            link_id, referrer_id = link
            row = (program_id, user, referrer_id, link_id, at, sqlite_stamp(join.at + hold))
            if con.execute(SQL_REFERRAL, row).rowcount == 1:
                outcome = "referral"
                now = sqlite_stamp(datetime.now(UTC))
                con.execute(SQL_COUNTS, (program_id, referrer_id, 1, 0, now))
                con.execute(SQL_EVENT, (program_id, user, at, event_data(link[1])))
                context = notice(title, hold_hours, [join.person.display_name], 1, join.at + hold)
                key = f"joined:{program_id}:{user}"
                con.execute(SQL_OUTBOX, (referrer_id, program_id, context, now, key, now))
            else:
                outcome, reason = "not_counted", "rejoin"
                lost(user, join.at, at)
        con.execute(
            SQL_ATTEMPT,
            (program_id, user, referrer_id, link_id, outcome, reason, at, join.event_key),
        )

    try:
        start = time.perf_counter()
        for part in chunked(events, commit_every):
            con.execute("BEGIN IMMEDIATE")
            for join in part:
                one(join)
            con.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        con.close()


async def raw_pg_batched(
    dsn: str,
    schema: str,
    program_id: int,
    events: Sequence[JoinEvent],
    batch: int,
    *,
    unnest: bool,
) -> float:
    """The set-based batches of :func:`raw_sqlite_batched` on plain asyncpg: the writes as
    ``executemany`` (a statement per row, pipelined) or, with ``unnest``, as one
    statement per table whose parameters are arrays."""
    con = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    writes = (SQL_MEMBER, SQL_REFERRAL, SQL_COUNTS, SQL_ATTEMPT, SQL_EVENT, SQL_OUTBOX)
    member, referral, counts, attempt, event_row, notify = (
        to_pg_unnest(sql) if unnest else to_pg(sql) for sql in writes
    )

    async def write(sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if unnest:
            await con.execute(sql, *(list(column) for column in zip(*rows, strict=True)))
        else:
            await con.executemany(sql, rows)

    try:
        start = time.perf_counter()
        for part in chunked(events, batch):
            async with con.transaction():
                program = await con.fetchrow(to_pg(SQL_PROGRAM), program_id)
                codes = sorted({join.link for join in part if join.link})
                links = {
                    row[0]: (row[1], row[2])
                    for row in await con.fetch(
                        "SELECT code, id, referrer_id FROM links WHERE revoked_at IS NULL"
                        " AND program_id = $1 AND code = ANY($2::text[])",
                        program_id,
                        codes,
                    )
                }
                keys = sorted({join.event_key for join in part if join.event_key})
                seen = {
                    row[0]
                    for row in await con.fetch(
                        "SELECT event_key FROM join_attempts"
                        " WHERE program_id = $1 AND event_key = ANY($2::text[])",
                        program_id,
                        keys,
                    )
                }
                users = sorted({join.person.user_id for join in part})
                joined = {
                    row[0]: (row[1], row[2], row[3])
                    for row in await con.fetch(
                        "SELECT m.user_id, r.referrer_id, r.state, r.joined_at FROM members AS m"
                        " LEFT JOIN referrals AS r"
                        " ON r.program_id = m.program_id AND r.referred_id = m.user_id"
                        " WHERE m.program_id = $1 AND m.first_joined_at IS NOT NULL"
                        " AND m.user_id = ANY($2::bigint[])",
                        program_id,
                        users,
                    )
                }
                rows = decide_raw(
                    program_id, (program[0], program[1]), part, links, seen, joined, pg_stamp
                )
                now = datetime.now(UTC)
                await write(member, rows.members)
                await write(referral, rows.referrals)
                if rows.lost:
                    await con.executemany(to_pg(SQL_LOST), rows.lost)
                await write(counts, [(program_id, r, n, x, now) for r, n, x in rows.counts])
                await write(attempt, rows.attempts)
                await write(event_row, rows.events)
                if rows.lost_events:
                    await con.executemany(to_pg(SQL_LOST_EVENT), rows.lost_events)
                await write(notify, rows.notices)
        return time.perf_counter() - start
    finally:
        await con.close()


# --- the run --------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    name: str
    joins: int
    seconds: float
    problems: list[str]
    note: str = ""

    @property
    def rate(self) -> float:
        return self.joins / self.seconds if self.seconds > 0 else 0.0


def peak_rss_mb() -> float:
    # Linux reports kilobytes, macOS bytes.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def say(message: str) -> None:
    print(message, flush=True)


def plain_pg_dsn(url: str) -> str:
    """A ``postgresql://`` DSN for asyncpg, whatever driver the URL names."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def print_profile(profile: cProfile.Profile) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(25)
        say(f"\n--- engine profile, top 25 by {order} (main thread only) ---")
        say(out.getvalue().split("\n\n", 1)[-1].rstrip())


async def sqlite_phase(
    args: argparse.Namespace, workdir: Path, specs: list[Spec], expected: Expected
) -> tuple[list[Row], EngineRun, int, float]:
    """Engine on SQLite, then the raw sqlite3 writers on copies of the set-up database."""
    engine_path = workdir / "engine.db"
    db = Database.from_url(f"sqlite:///{engine_path}")
    rows: list[Row] = []
    try:
        started = time.perf_counter()
        service, program_id, codes = await setup_engine(db, args.referrers)
        say(
            f"setup: migrations, program and {args.referrers} referrer links through the API "
            f"in {time.perf_counter() - started:.1f} s (not timed)"
        )
        # The raw writers start from the same migrated schema and the same set-up rows.
        template = workdir / "raw_template.db"
        template_db = Database.from_url(f"sqlite:///{template}")
        await upgrade(template_db)
        await template_db.dispose()
        con = sqlite3.connect(template, isolation_level=None)
        con.execute("ATTACH DATABASE ? AS src", (str(engine_path),))
        con.execute("BEGIN")
        for table in ("programs", "members", "links"):
            con.execute(f"INSERT INTO main.{table} SELECT * FROM src.{table}")
        con.execute("COMMIT")
        con.execute("DETACH DATABASE src")
        con.close()

        base = datetime.now(UTC) - timedelta(hours=1)
        events = build_events(program_id, specs, codes, base)
        profile = cProfile.Profile() if args.profile else None
        say(f"engine (SQLite): {len(events):,} joins from {args.concurrency} callers ...")
        run = await run_engine(db, service, events, args.concurrency, profile)
        problems = check_outcomes(run.outcomes, expected)
        problems += await verify(sqlalchemy_fetch(db), program_id, expected, referrer_ids(args))
        engine_rss = peak_rss_mb()
        rows.append(
            Row(
                f"engine record_join, SQLite, {args.concurrency} callers",
                len(events),
                run.seconds,
                problems,
                "profiled" if profile else "",
            )
        )
    finally:
        await db.dispose()
    if profile is not None:
        print_profile(profile)

    ids = referrer_ids(args)
    path = workdir / "raw_batched.db"
    shutil.copyfile(template, path)
    say(f"raw sqlite3, set-based, {args.batch} joins per commit ...")
    seconds = raw_sqlite_batched(path, program_id, events, args.batch)
    problems = await verify(sqlite3_fetch(path), program_id, expected, ids)
    rows.append(
        Row(
            f"raw sqlite3, set-based executemany, {args.batch}/commit",
            len(events),
            seconds,
            problems,
        )
    )

    path = workdir / "raw_statements.db"
    shutil.copyfile(template, path)
    say(f"raw sqlite3, statement per join, {args.batch} joins per commit ...")
    seconds = raw_sqlite_per_join(path, program_id, events, args.batch)
    problems = await verify(sqlite3_fetch(path), program_id, expected, ids)
    rows.append(
        Row(
            f"raw sqlite3, statement per join, {args.batch}/commit", len(events), seconds, problems
        )
    )

    sample = min(len(events), args.raw_per_join_sample)
    path = workdir / "raw_commit_per_join.db"
    shutil.copyfile(template, path)
    say(f"raw sqlite3, statement per join, one commit per join, {sample:,} joins ...")
    seconds = raw_sqlite_per_join(path, program_id, events[:sample], 1)
    problems = await verify(sqlite3_fetch(path), program_id, expect(specs[:sample]), ids)
    note = f"first {sample:,} joins only" if sample < len(events) else ""
    rows.append(
        Row("raw sqlite3, statement per join, commit per join", sample, seconds, problems, note)
    )
    return rows, run, program_id, engine_rss


def referrer_ids(args: argparse.Namespace) -> list[int]:
    return [REFERRER_BASE + index for index in range(args.referrers)]


async def postgres_phase(
    args: argparse.Namespace, url: str, specs: list[Spec], expected: Expected
) -> tuple[list[Row], EngineRun]:
    """Engine and raw asyncpg on PostgreSQL, each in a private schema dropped at the end."""
    dsn = plain_pg_dsn(url)
    tag = uuid.uuid4().hex[:10]
    engine_schema = f"bench_{tag}"
    raw_schemas = {False: f"bench_{tag}_raw_many", True: f"bench_{tag}_raw_unnest"}
    schemas = [engine_schema, *raw_schemas.values()]
    admin = await asyncpg.connect(dsn)
    rows: list[Row] = []
    try:
        for schema in schemas:
            await admin.execute(f'CREATE SCHEMA "{schema}"')
        db = Database.from_url(
            url, connect_args={"server_settings": {"search_path": engine_schema}}
        )
        try:
            started = time.perf_counter()
            service, program_id, codes = await setup_engine(db, args.referrers)
            say(
                f"setup (PostgreSQL, schema {engine_schema}): {args.referrers} referrer links "
                f"in {time.perf_counter() - started:.1f} s (not timed)"
            )
            for raw_schema in raw_schemas.values():
                raw_db = Database.from_url(
                    url, connect_args={"server_settings": {"search_path": raw_schema}}
                )
                try:
                    await upgrade(raw_db)
                finally:
                    await raw_db.dispose()
                for table in ("programs", "members", "links"):
                    source = f'"{engine_schema}".{table}'
                    await admin.execute(
                        f'INSERT INTO "{raw_schema}".{table} SELECT * FROM {source}'
                    )
            events = build_events(program_id, specs, codes, datetime.now(UTC) - timedelta(hours=1))
            say(f"engine (PostgreSQL): {len(events):,} joins from {args.concurrency} callers ...")
            run = await run_engine(db, service, events, args.concurrency)
            problems = check_outcomes(run.outcomes, expected)
            problems += await verify(
                sqlalchemy_fetch(db), program_id, expected, referrer_ids(args)
            )
            rows.append(
                Row(
                    f"engine record_join, PostgreSQL, {args.concurrency} callers",
                    len(events),
                    run.seconds,
                    problems,
                )
            )
        finally:
            await db.dispose()
        for unnest, raw_schema in raw_schemas.items():
            style = "unnest arrays" if unnest else "executemany"
            say(f"raw asyncpg, set-based ({style}), {args.batch} joins per commit ...")
            seconds = await raw_pg_batched(
                dsn, raw_schema, program_id, events, args.batch, unnest=unnest
            )
            reader = await asyncpg.connect(dsn, server_settings={"search_path": raw_schema})
            try:
                problems = await verify(
                    asyncpg_fetch(reader), program_id, expected, referrer_ids(args)
                )
            finally:
                await reader.close()
            name = f"raw asyncpg, set-based {style}, {args.batch}/commit"
            rows.append(Row(name, len(events), seconds, problems))
    finally:
        for schema in schemas:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
    return rows, run


def print_table(groups: list[list[Row]]) -> None:
    """One group per database; the first row of a group is the engine, and each row's
    ratio is the engine's rate over that row's (engine/raw: 0.25 means a quarter)."""
    header = f"{'path':<52} {'joins':>8} {'seconds':>8} {'joins/s':>9} {'engine/this':>11}  check"
    say("")
    say(header)
    say("-" * len(header))
    rows = [row for group in groups for row in group]
    for row in rows:
        engine_rate = next(group[0].rate for group in groups if row in group)
        ratio = engine_rate / row.rate if row.rate else 0.0
        check = "ok" if not row.problems else "FAILED"
        note = f"  ({row.note})" if row.note else ""
        say(
            f"{row.name:<52} {row.joins:>8,} {row.seconds:>8.2f} {row.rate:>9,.0f}"
            f" {ratio:>10.2f}×  {check}{note}"
        )
    for row in rows:
        for problem in row.problems:
            say(f"  ! {row.name}: {problem}")


def prepare_keep_dir(name: str) -> Path:
    """``--keep DIR``: the databases of an earlier run there are replaced."""
    workdir = Path(name).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("*.db*"):
        stale.unlink()
    return workdir


async def run(args: argparse.Namespace) -> int:
    if args.referrers is None:
        args.referrers = max(50, args.joins // 100)
    specs = make_workload(args.joins, args.referrers, args.concurrency, args.seed)
    expected = expect(specs)
    say(
        f"ingest benchmark: {args.joins:,} joins, {args.referrers:,} referrers, "
        f"{args.concurrency} concurrent callers; SQLite {sqlite3.sqlite_version}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    say(
        f"workload: {expected.referrals:,} first joins through a reader's link, "
        f"{expected.duplicates:,} re-delivered updates, {expected.rejoins:,} rejoins, "
        f"{expected.unattributed:,} unknown link codes"
    )
    if args.keep:
        workdir = prepare_keep_dir(args.keep)
        rows, engine_run, _, engine_rss = await sqlite_phase(args, workdir, specs, expected)
        say(f"databases kept in {workdir}")
    else:
        with tempfile.TemporaryDirectory(prefix="inviteloop-bench-") as tmp:
            rows, engine_run, _, engine_rss = await sqlite_phase(args, Path(tmp), specs, expected)

    pg_rows: list[Row] = []
    pg_run: EngineRun | None = None
    if args.postgres_url:
        pg_rows, pg_run = await postgres_phase(args, args.postgres_url, specs, expected)

    engine, raw_batched, _, raw_commit = rows
    print_table([rows, pg_rows] if pg_rows else [rows])
    say("")
    say(
        f"engine transactions: {engine_run.transactions:,} "
        f"(mean {args.joins / max(1, engine_run.transactions):.1f} joins each)"
        + (
            f"; on PostgreSQL {pg_run.transactions:,} "
            f"(mean {args.joins / max(1, pg_run.transactions):.1f})"
            if pg_run
            else ""
        )
    )
    peak = peak_rss_mb()
    say(f"peak RSS: {engine_rss:.0f} MB after the SQLite engine run, {peak:.0f} MB overall")
    verdict = "meets" if engine.rate >= TARGET_JOINS_PER_S else "is BELOW"
    say(f"bar: engine on SQLite {verdict} {TARGET_JOINS_PER_S:,} joins/s ({engine.rate:,.0f})")
    if raw_commit.note:
        say(f"note: raw commit-per-join ran on the {raw_commit.note}")

    verified = not any(row.problems for row in rows + pg_rows)
    figures: dict[str, Any] = {
        "joins": args.joins,
        "concurrency": args.concurrency,
        "referrers": args.referrers,
        "engine_joins_per_s": round(engine.rate, 1),
        "raw_batched_joins_per_s": round(raw_batched.rate, 1),
        "raw_statement_per_join_batched_joins_per_s": round(rows[2].rate, 1),
        "raw_commit_per_join_joins_per_s": round(raw_commit.rate, 1),
        "raw_commit_per_join_sample": raw_commit.joins,
        "engine_over_raw_batched": round(engine.rate / raw_batched.rate, 3),
        "engine_over_raw_commit_per_join": round(engine.rate / raw_commit.rate, 3),
        "engine_transactions": engine_run.transactions,
        "peak_rss_mb": round(peak, 1),
        "verified": verified,
    }
    if pg_rows and pg_run is not None:
        figures["pg_engine_joins_per_s"] = round(pg_rows[0].rate, 1)
        figures["pg_raw_batched_joins_per_s"] = round(pg_rows[1].rate, 1)
        figures["pg_raw_batched_unnest_joins_per_s"] = round(pg_rows[2].rate, 1)
        figures["pg_engine_over_raw_batched"] = round(pg_rows[0].rate / pg_rows[1].rate, 3)
        figures["pg_engine_over_raw_batched_unnest"] = round(pg_rows[0].rate / pg_rows[2].rate, 3)
        figures["pg_engine_transactions"] = pg_run.transactions
    if args.profile:
        figures["profiled"] = True
    print(json.dumps(figures), flush=True)
    return 0 if verified else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Joins per second through the inviteloop engine against plain drivers."
    )
    parser.add_argument("--joins", type=int, default=200_000, help="joins to ingest (200000)")
    parser.add_argument(
        "--referrers", type=int, default=None, help="readers with links (joins/100, at least 50)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=100, help="concurrent record_join callers (100)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(POSTGRES_ENV) or None,
        help=f"also measure PostgreSQL (a private schema, dropped after); env {POSTGRES_ENV}",
    )
    parser.add_argument("--keep", metavar="DIR", help="keep the SQLite files in DIR")
    parser.add_argument("--batch", type=int, default=500, help="joins per raw batch (500)")
    parser.add_argument(
        "--raw-per-join-sample",
        type=int,
        default=RAW_PER_JOIN_SAMPLE,
        help=f"joins for raw commit-per-join ({RAW_PER_JOIN_SAMPLE})",
    )
    parser.add_argument("--seed", type=int, default=7, help="workload seed (7)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the SQLite engine run and print the top functions (slows it down)",
    )
    args = parser.parse_args(argv)
    if args.joins < 1 or args.concurrency < 1 or args.batch < 1:
        parser.error("--joins, --concurrency and --batch must be at least 1")
    if args.referrers is not None and args.referrers < 1:
        parser.error("--referrers must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
