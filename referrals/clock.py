"""Time for the whole project: an injectable clock and UTC helpers.

Domain code never calls ``datetime.now()``; it receives a :class:`Clock`. Tests use
:class:`FakeClock` and move time forward days at a time without sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time as a timezone-aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = ensure_utc(start) if start else datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; returns the new time."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError("a clock never goes back")
        self._now += step
        return self._now

    def set(self, when: datetime) -> None:
        self._now = ensure_utc(when)


def ensure_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; a naive datetime is rejected, never guessed."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value!r}: all times must be timezone-aware")
    return value.astimezone(UTC)
