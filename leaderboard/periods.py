"""Board periods and schedule slots, in a program's timezone.

A referral belongs to the period of its join (``joined_at`` in the program's timezone):
the week that starts on the program's week-start day, the calendar month, and every season
whose [start, end) holds it. Boards are keyed by text: ``all``, ``w2026-01-05`` (the local
date the week starts), ``m2026-01``, ``s<season id>``.

Schedules are five cron fields read as *wall-clock* times of the program's timezone. Slots
are computed on the wall clock (APScheduler's cron arithmetic on a zone without daylight
saving) and then placed on the real timeline: a wall time that happens twice (the hour
repeated when clocks go back) is one slot, at its first occurrence; a wall time that does
not exist (the hour skipped when clocks go forward) moves to the next valid minute.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


class Period(enum.StrEnum):
    ALL = "all"
    WEEK = "week"
    MONTH = "month"
    SEASON = "season"


def local_day(at: datetime, timezone: str) -> date:
    return at.astimezone(ZoneInfo(timezone)).date()


def week_key(at: datetime, timezone: str, week_start: int = 0) -> str:
    day = local_day(at, timezone)
    start = day - timedelta(days=(day.weekday() - week_start) % 7)
    return f"w{start.isoformat()}"


def month_key(at: datetime, timezone: str) -> str:
    day = local_day(at, timezone)
    return f"m{day.year:04d}-{day.month:02d}"


def season_key(season_id: int) -> str:
    return f"s{season_id}"


def instant(wall: datetime, timezone: str) -> datetime:
    """The UTC instant of a naive local wall time: the first occurrence of a repeated one,
    the next valid minute after a skipped one."""
    zone = ZoneInfo(timezone)
    candidate = wall.replace(tzinfo=zone, fold=0)
    back = candidate.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back == wall:
        return candidate.astimezone(UTC)
    # In a gap: walk to the first wall minute that exists.
    probe = wall.replace(second=0, microsecond=0)
    for _ in range(24 * 60):
        probe += timedelta(minutes=1)
        aware = probe.replace(tzinfo=zone, fold=0)
        if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == probe:
            return aware.astimezone(UTC)
    raise ValueError(f"no valid time after {wall} in {timezone}")  # pragma: no cover


class BadSchedule(ValueError):
    """Not five cron fields, or more often than once an hour; ``problem`` says which in a
    word templates translate: ``fields``, ``minute`` or ``cron`` (a field cron rejects)."""

    def __init__(self, message: str, problem: str = "cron") -> None:
        super().__init__(message)
        self.problem = problem


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekdays(field: str) -> str:
    """A standard cron weekday field (0 or 7 Sunday, 1 Monday …) as APScheduler's names:
    its ``from_crontab`` reads 0 as Monday."""
    if field == "*" or not any(ch.isdigit() for ch in field):
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            first, _, last = span.partition("-")
            low, high = int(first), int(last)
        else:
            low = high = int(span)
        if not (0 <= low <= 7 and 0 <= high <= 7 and low <= high and step >= 1):
            raise BadSchedule(f"bad weekday {part!r}")
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(_DAYS[day] for day in sorted(days))


def _trigger_text(cron: str) -> str:
    fields = cron.split()
    return " ".join([*fields[:4], _weekdays(fields[4])])


def check_cron(cron: str) -> str:
    """Five cron fields (minute hour day month weekday, 0 or 7 Sunday as in crontab); the
    minute must be one number, so
    a board is posted at most once an hour. Returns the normalised text."""
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split()
    if len(fields) != 5:
        raise BadSchedule("five fields: minute hour day month weekday", problem="fields")
    if not fields[0].isdigit() or not 0 <= int(fields[0]) <= 59:
        raise BadSchedule("the minute must be one number from 0 to 59", problem="minute")
    try:
        CronTrigger.from_crontab(_trigger_text(" ".join(fields)), timezone=UTC)
    except ValueError as exc:
        raise BadSchedule(str(exc), problem="cron") from exc
    return " ".join(fields)


def _wall_slots(cron: str, after: datetime) -> Iterator[datetime]:
    """Naive wall-clock fire times strictly after the naive ``after``."""
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(_trigger_text(cron), timezone=UTC)
    previous = None
    now = after.replace(tzinfo=UTC) + timedelta(microseconds=1)
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            return
        yield fire.replace(tzinfo=None)
        previous = fire
        now = fire + timedelta(microseconds=1)


# How far back the latest slot is searched for: a board posted at least weekly (or monthly
# on a fixed day) has a slot in it.
LOOKBACK = timedelta(days=32)


def latest_slot(
    cron: str, timezone: str, now: datetime, since: datetime | None = None
) -> tuple[datetime, datetime] | None:
    """The latest slot due at ``now`` after ``since`` (UTC): (its wall time, its instant),
    or None. The wall time names the slot, so a repeated hour is one slot."""
    zone = ZoneInfo(timezone)
    start = max(since or now - LOOKBACK, now - LOOKBACK)
    # Start a little early: a slot skipped forward by a gap lands after its wall time.
    wall_start = start.astimezone(zone).replace(tzinfo=None) - timedelta(hours=3)
    wall_end = now.astimezone(zone).replace(tzinfo=None) + timedelta(hours=3)
    found: tuple[datetime, datetime] | None = None
    for wall in _wall_slots(cron, wall_start):
        if wall > wall_end:
            break
        at = instant(wall, timezone)
        if at > now:
            break
        if since is not None and at <= since:
            continue
        found = (wall, at)
    return found
