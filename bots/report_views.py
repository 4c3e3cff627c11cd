"""What the report templates receive (``/export``, ``/programstats``), built once for every
adapter from the reports service's values (:mod:`leaderboard.reports`): plain values, as
in :mod:`bots.views`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bots import views
from bots.render import Renderer
from leaderboard.reports import ReportFile, StatsReport
from leaderboard.stats import ChartText, Day
from referrals.models import Program

View = dict[str, Any]


def chart_text(renderer: Renderer, locale: str | None, timezone: str) -> ChartText:
    """The chart's title, axes and legend in the reader's language (label macros)."""
    return ChartText(
        title=renderer.label(locale, "chart_title"),
        y_label=renderer.label(locale, "chart_y"),
        x_label=renderer.label(locale, "chart_x", timezone=timezone),
        counted=renderer.label(locale, "chart_counted"),
        waiting=renderer.label(locale, "chart_waiting"),
        rejected=renderer.label(locale, "chart_rejected"),
    )


def size_text(size: int) -> str:
    """A file size as people read it: ``850 B``, ``12 KB``, ``62.3 MB``."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size // 1024} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def export_file(program: Program, file: ReportFile, *, first: bool, count: int) -> View:
    """The caption of one export file (``first``: the caption also says what comes)."""
    return {
        "program_title": program.title,
        "source": file.source,
        "form": file.form,
        "part": file.part,
        "parts": file.parts,
        "size": size_text(file.size),
        "original": size_text(file.original),
        "first": first,
        "count": count,
    }


def report_privately(name: str, what: str) -> View:
    """Said in a group: the report (``export`` or ``stats``) goes to the manager in private."""
    return {"name": name, "what": what}


def _percent(rate: float | None) -> int | None:
    return None if rate is None else round(rate * 100)


def _best_day(days: Sequence[Day]) -> View | None:
    best = max(days, key=lambda d: (d.total, d.day), default=None)
    if best is None or not best.total:
        return None
    return {"day": best.day.isoformat(), "total": best.total}


def program_stats(report: StatsReport) -> View:
    """``/programstats``: the last 30 days, the confirmation rate, the best link labels and
    the rewards' figures."""
    program, figures = report.program, report.stats
    money = views.program_totals(program, {}, figures.rewards)
    days = figures.days
    return {
        "program_title": program.title,
        "timezone": figures.timezone,
        "first_day": days[0].day.isoformat() if days else "",
        "last_day": days[-1].day.isoformat() if days else "",
        "last_days": figures.last_days_total,
        "last_days_counted": sum(d.counted for d in days),
        "best_day": _best_day(days),
        "referrals": figures.referrals,
        "counted": figures.counted,
        "waiting": figures.waiting,
        "rejected": figures.rejected,
        "left": figures.left,
        "rate": _percent(figures.rate),
        "labels": [
            {
                "label": stat.label,
                "referrals": stat.referrals,
                "counted": stat.counted,
                "rate": _percent(stat.rate),
            }
            for stat in figures.labels
        ],
        **{key: money[key] for key in ("grants", "codes_used", "codes_left", "currency")},
        "cost": money["cost"],
        "cost_per_referral": money["cost_per_referral"],
    }


def program_chart(report: StatsReport) -> View:
    """The chart's caption."""
    days = report.stats.days
    return {
        "program_title": report.program.title,
        "timezone": report.stats.timezone,
        "first_day": days[0].day.isoformat() if days else "",
        "last_day": days[-1].day.isoformat() if days else "",
    }
