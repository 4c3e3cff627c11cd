"""How long building a big program's export and ``/programstats`` holds the event loop.

Run from the project root::

    python benchmarks/exports.py [--referrals N]

A program with ``N`` counted referrals (default 200,000) is built on SQLite; then, with a
ticker on the event loop waking every 5 ms, the service builds ``/export`` (three CSV files
streamed from one snapshot and written in a worker thread) and ``/programstats`` twice (the
first call loads matplotlib in its thread). The longest time the loop was held, and its p99,
show whether the bot keeps answering (discord.py's heartbeat, other people's commands)
while a manager's files are built: the bar is about 50 ms. The process applies the garbage
collector settings ``inviteloop run`` uses. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from delivery.spool import Spool  # noqa: E402
from leaderboard.reports import Reports  # noqa: E402
from leaderboard.stats import ChartText  # noqa: E402
from main import tune_garbage_collector  # noqa: E402
from referrals.clock import FakeClock  # noqa: E402
from referrals.service import ReferralService  # noqa: E402
from rewards.service import RewardService  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.helpers.rewards import seed_earned  # noqa: E402

TICK = 0.005
BAR_MS = 50.0


async def held(work: Callable[[], Awaitable[Any]]) -> tuple[float, float, float]:
    """Run ``work`` beside a 5 ms ticker: (seconds taken, max and p99 loop hold in ms)."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            gaps.append(max(0.0, now - last - TICK))
            last = now

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    stop.set()
    await task
    gaps.sort()
    return took, gaps[-1] * 1000, gaps[int(len(gaps) * 0.99)] * 1000


async def run(referrals_n: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="inviteloop-exports-"))
    db = Database.from_url(f"sqlite:///{tmp / 'bench.db'}")
    await upgrade(db)
    clock = FakeClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    referrals = ReferralService(db, clock)
    program = await referrals.create_program("telegram", -100123, "channel", "Bench")
    print(f"building {referrals_n:,} referrals", file=sys.stderr)
    await seed_earned(db, program.id, list(range(1, referrals_n + 1)), clock.now())
    reports = Reports(referrals.engine, RewardService(referrals.engine), Spool(tmp / "spool"))
    chart = ChartText("Referrals per day", "referrals", "day", "counted", "waiting", "not")
    tune_garbage_collector()
    figures: dict[str, Any] = {"referrals": referrals_n}
    sizes: dict[str, int] = {}

    async def export() -> None:
        built = await reports.export(program.id, None, limit=50 * 1024 * 1024)
        sizes.update({f.filename: f.size for f in built.files})

    async def stats() -> None:
        await reports.program_stats(program.id, None, chart=chart, limit=10 << 20)

    for name, work in (("export", export), ("stats_first", stats), ("stats", stats)):
        took, worst, p99 = await held(work)
        figures[f"{name}_s"] = round(took, 2)
        figures[f"{name}_max_hold_ms"] = round(worst, 1)
        figures[f"{name}_p99_hold_ms"] = round(p99, 1)
        print(
            f"{name}: {took:.2f} s, loop held at most {worst:.1f} ms (p99 {p99:.1f} ms)",
            file=sys.stderr,
        )
    figures["export_bytes"] = sum(sizes.values())
    await db.dispose()
    figures["max_hold_ms"] = max(figures[f"{n}_max_hold_ms"] for n in ("export", "stats"))
    figures["bar_50ms"] = figures["max_hold_ms"] < BAR_MS
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--referrals", type=int, default=200_000)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.referrals))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
