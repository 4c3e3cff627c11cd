"""Rewards benchmark: N earned coupons delivered through the sandbox with Telegram's limits,
and the milestone job over 100,000 change records against one plain SELECT of them.

Run from the project root::

    python benchmarks/rewards.py [--rewards N] [--readers-eval M] [--postgres-url URL]

What it does, in one run:

1. Delivery. The real ``Application`` (SQLite in a temporary directory, or a fresh
   PostgreSQL database with ``--postgres-url``) with its Telegram bot against an in-process
   sandbox whose flood limits are Telegram's (30/s overall, 1/s per chat with a burst of 3);
   our outbox has the configured limits (``Limits()``). A program with a coupon milestone at
   one referral and a pool of N codes imported as a coupon file (``import_codes``); N readers
   who opened the bot each get one referral confirmed (their rows written in bulk: people,
   referrals, referrer_counts, one ``count_changes`` row each). Then the application runs as
   ``inviteloop run`` would, on one fake clock that the sandbox's limits and our limiter both
   read: ``Application.tick()`` every (fake) minute, the outbox drained in between, the clock
   moved by exactly the wait the outbox asks for, never slept. The rate is measured on that
   clock from the first to the last accepted send: the ratio is the shortest span the limit
   allows (30 at once, then 30 a second) over the span it took. Lost: a reader without their
   message or a grant not ``delivered``; duplicated: a second message to a reader, or one
   code in two readers' messages. Wall time is printed too.
2. Milestone evaluation. A fresh database with M readers (default 100,000) whose counts
   changed (one ``count_changes`` row each, bulk inserted) and a milestone at one referral;
   the baseline is one ``SELECT * FROM count_changes WHERE milestones_at IS NULL`` over the
   same rows (fetched whole), timed on the same database before ``RewardService.evaluate()``
   is timed until every record is consumed (and every reader has their grant).
3. A table, then one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from benchmarks.telegram_e2e import ideal_span  # noqa: E402
from delivery.ratelimit import Limits  # noqa: E402
from referrals.clock import FakeClock  # noqa: E402
from referrals.service import ReferralService  # noqa: E402
from rewards.service import RewardService  # noqa: E402
from storage.database import Database, normalise_url  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.schema import count_changes, grants  # noqa: E402
from tests.helpers.rewards import (  # noqa: E402
    assigned_codes,
    coupon_bot,
    grant_states,
    received_codes,
    run_until_delivered,
    seed_earned,
)

TARGET_RATIO = 0.95
READER_BASE = 700_000_000


def say(message: str) -> None:
    print(message, flush=True)


# --- databases --------------------------------------------------------------------------


@asynccontextmanager
async def database_url(workdir: Path, name: str, postgres: str | None) -> AsyncIterator[str]:
    """A URL of an empty database: a SQLite file in ``workdir``, or a PostgreSQL database
    created for this run on the server of ``postgres`` (dropped afterwards)."""
    if not postgres:
        yield f"sqlite:///{workdir / f'{name}.db'}"
        return
    db_name = f"inviteloop_bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = Database.from_url(postgres)
    try:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'CREATE DATABASE "{db_name}"'))
        url = make_url(normalise_url(postgres)).set(database=db_name)
        yield url.render_as_string(hide_password=False)
    finally:
        async with admin.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        await admin.dispose()


# --- 1. delivery through the sandbox -------------------------------------------------------


@dataclass
class DeliveryPhase:
    rewards: int
    sent: int
    span: float
    wall: float
    ratio: float
    refusals: int
    lost: int
    duplicated: int
    queue_wall: float
    problems: list[str] = field(default_factory=list)


async def delivery_phase(url: str, count: int) -> DeliveryPhase:
    async with coupon_bot(url, count) as bench:
        mark = len(bench.world.calls)
        started = time.perf_counter()
        queue_wall = await run_until_delivered(bench.app, bench.clock)
        wall = time.perf_counter() - started
        async with bench.app.db.read() as conn:
            states = await grant_states(conn)
            assigned = await assigned_codes(conn)
        calls = [c for c in bench.world.calls[mark:] if c.method == "sendMessage"]
        got = received_codes(bench.world.sent_log, bench.readers, bench.codes)
    problems: list[str] = []
    ok_times = sorted(c.monotonic for c in calls if c.ok)
    refusals = sum(1 for c in calls if c.error_code == 429)
    readers = bench.readers
    # lost: a reader without a message carrying the code assigned to them
    lost = sum(1 for r in readers if assigned.get(r) is None or assigned[r] not in got[r])
    # duplicated: a second message to a reader, or a code in two readers' messages
    duplicated = sum(len(codes) - 1 for codes in got.values() if len(codes) > 1)
    holders = Counter(code for codes in got.values() for code in set(codes) if code)
    duplicated += sum(n - 1 for n in holders.values() if n > 1)
    if states != Counter({"delivered": len(readers)}):
        problems.append(f"grants by state {dict(states)}, expected all delivered")
    if len(set(assigned.values())) != len(assigned):
        problems.append("a code is assigned to two grants")
    span = ok_times[-1] - ok_times[0] if len(ok_times) > 1 else 0.0
    ideal = ideal_span(len(ok_times), Limits().global_per_second)
    ratio = ideal / span if span > 0 else 0.0
    return DeliveryPhase(
        len(readers),
        len(ok_times),
        span,
        wall,
        ratio,
        refusals,
        lost,
        duplicated,
        queue_wall,
        problems,
    )


# --- 2. the milestone job over many change records ------------------------------------------


@dataclass
class EvalPhase:
    readers: int
    select_s: float
    eval_s: float
    grants: int
    problems: list[str] = field(default_factory=list)


async def eval_phase(url: str, count: int) -> EvalPhase:
    clock = FakeClock()
    db = Database.from_url(url)
    try:
        await upgrade(db)
        referrals = ReferralService(db, clock)
        rewards = RewardService(referrals.engine)
        program = await referrals.create_program("telegram", -1009000000002, "channel", "Eval")
        await rewards.add_milestone(
            program.id, None, count=1, title="Thanks", reward_kind="message", message="Thanks!"
        )
        readers = [READER_BASE + n for n in range(count)]
        await seed_earned(db, program.id, readers, clock.now())
        baseline = select(count_changes).where(count_changes.c.milestones_at.is_(None))
        timings = []
        for _ in range(3):  # the first also warms the cache, for both figures alike
            began = time.perf_counter()
            async with db.read() as conn:
                rows = (await conn.execute(baseline)).all()
            timings.append(time.perf_counter() - began)
        problems = [] if len(rows) == count else [f"the SELECT saw {len(rows)} records"]
        clock.advance(minutes=1)
        began = time.perf_counter()
        made = 0
        while True:
            report = await rewards.evaluate()
            made += report.grants
            if report.changes == 0:
                break
        eval_s = time.perf_counter() - began
        async with db.read() as conn:
            left = (
                await conn.execute(
                    select(func.count())
                    .select_from(count_changes)
                    .where(count_changes.c.milestones_at.is_(None))
                )
            ).scalar_one()
            granted = (await conn.execute(select(func.count()).select_from(grants))).scalar_one()
        if left:
            problems.append(f"{left} change records not consumed")
        if granted != count or made != count:
            problems.append(f"{granted} grants ({made} reported) for {count} readers")
        return EvalPhase(count, min(timings), eval_s, granted, problems)
    finally:
        await db.dispose()


# --- the run ----------------------------------------------------------------------------


async def run(args: argparse.Namespace, workdir: Path) -> int:
    engine = "PostgreSQL" if args.postgres_url else "SQLite"
    say(
        f"rewards benchmark: {args.rewards:,} coupons through the sandbox with Telegram's "
        f"limits, milestones for {args.readers_eval:,} readers; {engine}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs"
    )
    async with database_url(workdir, "delivery", args.postgres_url) as url:
        say(f"delivery: {args.rewards:,} readers earn one coupon each ...")
        delivery = await delivery_phase(url, args.rewards)
    async with database_url(workdir, "eval", args.postgres_url) as url:
        say(f"milestones: {args.readers_eval:,} change records ...")
        evaluation = await eval_phase(url, args.readers_eval)

    limit = Limits().global_per_second
    rate = limit * delivery.ratio
    over = evaluation.eval_s / evaluation.select_s if evaluation.select_s else 0.0
    header = f"{'figure':<62} {'value':>14}"
    say("")
    say(header)
    say("-" * len(header))
    for name, value in [
        ("rewards earned", f"{delivery.rewards:,}"),
        ("reward messages accepted by the sandbox", f"{delivery.sent:,}"),
        ("first to last send, on the shared fake clock (s)", f"{delivery.span:,.1f}"),
        (f"shortest span {limit:g}/s allows (s)", f"{ideal_span(delivery.sent, limit):,.0f}"),
        ("achieved rate (messages/s)", f"{rate:,.2f}"),
        ("achieved rate / configured limit", f"{delivery.ratio:.1%}"),
        ("429s from the sandbox", f"{delivery.refusals:,}"),
        ("lost", f"{delivery.lost:,}"),
        ("duplicated", f"{delivery.duplicated:,}"),
        ("wall time of the delivery run (s)", f"{delivery.wall:,.1f}"),
        ("  of which the scheduled jobs: evaluate + deliver (s)", f"{delivery.queue_wall:,.1f}"),
        ("readers whose counts changed", f"{evaluation.readers:,}"),
        ("baseline: one SELECT of their change records (s)", f"{evaluation.select_s:.3f}"),
        ("RewardService.evaluate() until all consumed (s)", f"{evaluation.eval_s:.3f}"),
        ("evaluate / SELECT", f"{over:,.1f}×"),
    ]:
        say(f"{name:<62} {value:>14}")
    problems = delivery.problems + evaluation.problems
    for problem in problems:
        say(f"  ! {problem}")
    ok = delivery.ratio >= TARGET_RATIO and delivery.lost == 0 and delivery.duplicated == 0
    say(
        f"bar: delivery {'meets' if ok else 'is BELOW'} {TARGET_RATIO:.0%} of the limit with "
        f"0 lost and 0 duplicated ({delivery.ratio:.1%}, lost {delivery.lost}, duplicated "
        f"{delivery.duplicated})"
    )
    verified = ok and not problems
    figures = {
        "engine": engine.lower(),
        "rewards": delivery.rewards,
        "delivered": delivery.sent,
        "delivery_rate_per_s": round(rate, 2),
        "delivery_limit_per_s": limit,
        "delivery_rate_ratio": round(delivery.ratio, 4),
        "delivery_span_s": round(delivery.span, 2),
        "delivery_wall_s": round(delivery.wall, 2),
        "delivery_jobs_wall_s": round(delivery.queue_wall, 2),
        "delivery_429s": delivery.refusals,
        "lost": delivery.lost,
        "duplicated": delivery.duplicated,
        "milestone_readers": evaluation.readers,
        "milestone_eval_s": round(evaluation.eval_s, 3),
        "milestone_select_s": round(evaluation.select_s, 4),
        "milestone_eval_over_select": round(over, 2),
        "verified": verified,
    }
    print(json.dumps(figures), flush=True)
    return 0 if verified else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Reward delivery rate against Telegram's limit, and the milestone job "
        "against one SELECT of its change records."
    )
    parser.add_argument("--rewards", type=int, default=10_000, help="earned coupons (10000)")
    parser.add_argument(
        "--readers-eval",
        type=int,
        default=100_000,
        help="readers whose counts changed, for the milestone job (100000)",
    )
    parser.add_argument(
        "--postgres-url", help="run on PostgreSQL (a database is created and dropped)"
    )
    parser.add_argument("--keep", metavar="DIR", help="keep the SQLite files in DIR")
    args = parser.parse_args(argv)
    if args.rewards < 31:
        parser.error("--rewards must be more than the 30 a second allows at once")
    if args.readers_eval < 1:
        parser.error("--readers-eval must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.keep:
        workdir = Path(args.keep).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        for stale in workdir.glob("*.db*"):
            stale.unlink()
    else:
        workdir = Path(tempfile.mkdtemp(prefix="inviteloop-rewards-"))
    try:
        return asyncio.run(run(args, workdir))
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
