"""Reports for a program's managers, in chat: the CSV exports (``/export``) and the
program's statistics with a chart (``/programstats``), for every adapter.

Both check on every call that the person manages the program (asked of the platform,
through the engine) before anything is read or built. The files are built in the
outbox's spool (:mod:`delivery.spool`) so that an adapter can queue them as
``SEND_DOCUMENT`` / ``SEND_PHOTO`` rows (or send them at once and :meth:`Reports.discard`
them); CSV writing, zipping and splitting run in worker threads and the chart in a worker
process, never on the event loop. Each file fits the upload limit the adapter names (its port's).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from delivery.spool import Spool
from leaderboard import export, stats
from leaderboard.export import Fitted
from leaderboard.stats import ChartText, ProgramStats
from referrals.context import Engine
from referrals.models import Program, ProgramNotFound
from referrals.programs import program_from_row
from storage import exports as db
from storage import programs as db_programs

logger = logging.getLogger(__name__)


class RewardReport(Protocol):
    """The rewards' side of the statistics (:meth:`rewards.service.RewardService.report`)."""

    async def report(self, program_id: int) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ReportFile:
    """One file of a report, waiting in the spool: ``spooled`` is its name there (what an
    outbox row stores), ``filename`` what the person sees, ``source`` which export
    (``readers``, ``referrals``, ``grants``; ``chart``), ``form`` how it was fitted to the
    limit (``csv``, ``zip``, ``part`` of ``parts``; ``png``), sizes in bytes."""

    path: Path
    spooled: str
    filename: str
    source: str
    form: str
    size: int
    original: int
    part: int = 1
    parts: int = 1


@dataclass(frozen=True, slots=True)
class Export:
    program: Program
    files: tuple[ReportFile, ...]


@dataclass(frozen=True, slots=True)
class StatsReport:
    program: Program
    stats: ProgramStats
    chart: ReportFile


class Reports:
    """Exports and statistics for managers (plain values in and out)."""

    def __init__(self, engine: Engine, rewards: RewardReport, spool: Spool) -> None:
        self._engine = engine
        self._rewards = rewards
        self.spool = spool

    async def _managed(self, program_id: int, actor_id: int | None) -> Program:
        async with self._engine.db.read() as conn:
            row = await db_programs.program_by_id(conn, program_id)
        if row is None:
            raise ProgramNotFound(f"program {program_id} does not exist")
        program = program_from_row(row)
        await self._engine.require_manager(program, actor_id)
        return program

    async def export(self, program_id: int, actor_id: int | None, *, limit: int) -> Export:
        """The program's CSV files in a new spool batch, each at most ``limit`` bytes
        (zipped, or split into parts, when too big); only for its managers."""
        program = await self._managed(program_id, actor_id)
        batch = await asyncio.to_thread(self.spool.new_batch)
        try:
            written = await export.write_csvs(self._engine.db, program_id, batch)
            files: list[ReportFile] = []
            for path in written:
                source = path.name.removesuffix(".csv")
                for fitted in await asyncio.to_thread(export.fit, path, limit):
                    files.append(self._file(fitted.path, source, fitted))
        except BaseException:
            await asyncio.to_thread(self.spool.discard_batch, batch)
            raise
        return Export(program, tuple(files))

    async def program_stats(
        self, program_id: int, actor_id: int | None, *, chart: ChartText, limit: int
    ) -> StatsReport:
        """The program's figures and the chart of its last 30 days as a PNG in a new spool
        batch (drawn with ``chart``'s texts); only for its managers."""
        program = await self._managed(program_id, actor_id)
        now = self._engine.clock.now()
        first, since = stats.window_start(now, program.timezone)
        async with self._engine.db.read() as conn:
            buckets = await db.joins_by_quarter_hour(conn, program_id, since)
            labels = await db.referrals_by_label(conn, program_id)
        days = stats.daily(buckets, program.timezone, first)
        best, totals = stats.by_label(labels)
        figures = ProgramStats(
            program_id=program_id,
            timezone=program.timezone,
            days=days,
            referrals=sum(n for state, n in totals.items() if state != "left"),
            counted=totals.get("confirmed", 0),
            waiting=sum(totals.get(state, 0) for state in stats.WAITING),
            rejected=totals.get("rejected", 0),
            left=totals.get("left", 0),
            labels=best,
            rewards=await self._rewards.report(program_id),
        )
        batch = await asyncio.to_thread(self.spool.new_batch)
        try:
            path = await stats.draw_chart_elsewhere(days, chart, batch / "chart.png")
            size = path.stat().st_size
            if size > limit:  # 900x420 pixels of flat colours: tens of kilobytes
                raise ValueError(f"the chart is {size} bytes, over the limit of {limit}")
        except BaseException:
            await asyncio.to_thread(self.spool.discard_batch, batch)
            raise
        name = f"programstats-{program_id}-{first + timedelta(days=stats.DAYS - 1):%Y%m%d}.png"
        return StatsReport(
            program,
            figures,
            ReportFile(path, self.spool.name_of(path), name, "chart", "png", size, size),
        )

    def _file(self, path: Path, source: str, fitted: Fitted) -> ReportFile:
        return ReportFile(
            path=path,
            spooled=self.spool.name_of(path),
            filename=path.name,
            source=source,
            form=fitted.form,
            size=fitted.size,
            original=fitted.original,
            part=fitted.part,
            parts=fitted.parts,
        )

    def discard(self, files: tuple[ReportFile, ...] | list[ReportFile]) -> None:
        """Delete files an adapter sent itself (or will not send)."""
        self.spool.discard(file.spooled for file in files)
