"""``/programstats``: what a program brings and costs — referrals per day for the last 30
days in the program's timezone (also as a chart image), the confirmation rate, the link
labels that work best (which share channel brings counted friends), and the rewards'
figures (grants, codes used, cost per confirmed referral).

The database sums joins per quarter hour (every zone's offset is a multiple of 15
minutes, so each quarter hour lies within one local day) and this module adds them up by
local day: a few thousand rows at most, whatever the program's size. The chart is drawn
with matplotlib's Agg backend (imported only when a chart is drawn) in a worker process;
its texts come from the caller, in the reader's language, and are never parsed as
mathtext.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import logging
import multiprocessing
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from storage.exports import BUCKET_SECONDS

logger = logging.getLogger(__name__)

DAYS = 30
TOP_LABELS = 5
WAITING = ("pending", "held")
# matplotlib keeps global state (its font cache, rcParams): one chart at a time
_DRAWING = threading.Lock()


@dataclass(frozen=True, slots=True)
class Day:
    """Referrals that joined on one local day, by where they stand now."""

    day: date
    counted: int = 0  # confirmed
    waiting: int = 0  # pending or held for a manager
    rejected: int = 0

    @property
    def total(self) -> int:
        return self.counted + self.waiting + self.rejected


@dataclass(frozen=True, slots=True)
class LabelStat:
    """One link label's referrals (``""``: the main link)."""

    label: str
    referrals: int
    counted: int
    rejected: int

    @property
    def rate(self) -> float | None:
        """The confirmation rate of its decided referrals (None: none decided yet)."""
        decided = self.counted + self.rejected
        return self.counted / decided if decided else None


@dataclass(frozen=True, slots=True)
class ChartText:
    """The chart's texts, in the reader's language."""

    title: str
    y_label: str
    x_label: str
    counted: str
    waiting: str
    rejected: str


@dataclass(frozen=True, slots=True)
class ProgramStats:
    program_id: int
    timezone: str
    days: tuple[Day, ...]
    referrals: int  # all time
    counted: int
    waiting: int
    rejected: int
    left: int  # confirmed referrals whose friend left later
    labels: tuple[LabelStat, ...]  # the best ones, most counted first
    rewards: dict[str, Any] = field(default_factory=dict)  # RewardService.report

    @property
    def rate(self) -> float | None:
        """Confirmed out of every decided referral (confirmed or rejected), all time."""
        decided = self.counted + self.rejected
        return self.counted / decided if decided else None

    @property
    def last_days_total(self) -> int:
        return sum(day.total for day in self.days)


def window_start(now: datetime, timezone: str, days: int = DAYS) -> tuple[date, datetime]:
    """The first local day of the window ending today, and its start as an instant."""
    zone = ZoneInfo(timezone)
    first = now.astimezone(zone).date() - timedelta(days=days - 1)
    return first, datetime.combine(first, time(), zone)


def daily(
    buckets: Iterable[tuple[int, str, int]], timezone: str, first: date, days: int = DAYS
) -> tuple[Day, ...]:
    """Quarter-hour buckets (seconds since the epoch // 900, state, referrals) as one
    :class:`Day` per local day from ``first``, days without referrals included."""
    zone = ZoneInfo(timezone)
    sums: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for bucket, state, count in buckets:
        day = datetime.fromtimestamp(bucket * BUCKET_SECONDS, zone).date()
        kind = "counted" if state == "confirmed" else "waiting" if state in WAITING else state
        sums[day][kind] += count
    out = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        found = sums.get(day, {})
        out.append(
            Day(day, found.get("counted", 0), found.get("waiting", 0), found.get("rejected", 0))
        )
    return tuple(out)


def by_label(
    rows: Iterable[tuple[str, str, int, int]], top: int = TOP_LABELS
) -> tuple[tuple[LabelStat, ...], dict[str, int]]:
    """(label, state, referrals, left) rows as the best labels and the totals by state
    (plus ``left``: confirmed referrals whose friend left later)."""
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, int] = defaultdict(int)
    for label, state, count, left in rows:
        per[label][state] += count
        per[label]["all"] += count
        totals[state] += count
        if state == "confirmed":
            totals["left"] += left
    stats = [
        LabelStat(label, found["all"], found.get("confirmed", 0), found.get("rejected", 0))
        for label, found in per.items()
    ]
    stats.sort(key=lambda s: (-s.counted, -s.referrals, s.label))
    return tuple(stats[:top]), dict(totals)


_pool: concurrent.futures.ProcessPoolExecutor | None = None


async def draw_chart_elsewhere(days: Sequence[Day], text: ChartText, path: Path) -> Path:
    """:func:`draw_chart` in a worker process, started on the first chart and kept. Not a
    thread: matplotlib's import and its Agg renderer hold the GIL for tens of milliseconds
    at a time (35-45 ms measured by benchmarks/exports.py), which a thread would take from
    the event loop. If the process cannot be started, a thread does it."""
    global _pool
    loop = asyncio.get_running_loop()
    try:
        if _pool is None:
            # forkserver: a clean process, not a fork of one with the database's threads.
            _pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("forkserver")
            )
        return await loop.run_in_executor(_pool, draw_chart, list(days), text, path)
    except (OSError, concurrent.futures.process.BrokenProcessPool) as exc:
        logger.warning("charts drawn in a thread: no worker process (%s)", exc)
        _pool = None
        return await asyncio.to_thread(draw_chart, days, text, path)


def draw_chart(days: Sequence[Day], text: ChartText, path: Path) -> Path:
    """A PNG of the days as stacked bars (counted, waiting, rejected). Blocking: run it
    elsewhere (:func:`draw_chart_elsewhere`)."""
    with _DRAWING:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        figure = Figure(figsize=(9, 4.2), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        positions = list(range(len(days)))
        counted = [d.counted for d in days]
        waiting = [d.waiting for d in days]
        rejected = [d.rejected for d in days]
        below = [c + w for c, w in zip(counted, waiting, strict=True)]
        bars = [
            axes.bar(positions, counted, color="#2e7d32"),
            axes.bar(positions, waiting, bottom=counted, color="#f9a825"),
            axes.bar(positions, rejected, bottom=below, color="#9e9e9e"),
        ]
        step = max(1, len(days) // 10)
        axes.set_xticks(positions[::step], [f"{d.day:%m-%d}" for d in days[::step]])
        axes.set_xlim(-0.6, len(days) - 0.4)
        axes.set_ylim(0, max(1, *(d.total for d in days)) * 1.3)  # room for the legend
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(text.title, parse_math=False)
        axes.set_ylabel(text.y_label, parse_math=False)
        axes.set_xlabel(text.x_label, parse_math=False)
        legend = axes.legend(
            bars, [text.counted, text.waiting, text.rejected], loc="upper left", frameon=False
        )
        for label in legend.get_texts():
            label.set_parse_math(False)
        axes.spines[["top", "right"]].set_visible(False)
        figure.tight_layout()
        figure.savefig(path, format="png")
    return path
