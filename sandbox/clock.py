"""Time sources for the sandbox.

The world reads two clocks: a wall clock (Unix seconds) for every date it hands out (message
dates, link expiry, the 5-minute join-request window, the 24-hour update retention) and a
monotonic clock for rate limits. Tests use :class:`FakeClock` and move time with
:meth:`FakeClock.advance`; nothing in the sandbox sleeps to let time pass.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """What the world needs from a clock."""

    def time(self) -> float:
        """Wall-clock time in Unix seconds."""
        ...

    def monotonic(self) -> float:
        """A monotonic reading in seconds (only differences matter)."""
        ...


class SystemClock:
    """The real clocks: :func:`time.time` and :func:`time.monotonic`."""

    def time(self) -> float:
        """Return :func:`time.time`."""
        return time.time()

    def monotonic(self) -> float:
        """Return :func:`time.monotonic`."""
        return time.monotonic()


class FakeClock:
    """A clock that only moves when told to; both readings move together.

    ``start`` is the initial wall-clock time (default 2026-01-01T00:00:00Z).
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._wall = float(start)
        self._mono = 1_000.0

    def time(self) -> float:
        """Return the current fake wall-clock time."""
        return self._wall

    def monotonic(self) -> float:
        """Return the current fake monotonic time."""
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._wall += seconds
        self._mono += seconds


class _HasNow(Protocol):
    def now(self) -> datetime: ...


class DatetimeClock:
    """Adapt a clock with ``now() -> aware datetime`` (like the project's FakeClock).

    Both readings follow the source, so moving the source clock moves the sandbox's dates,
    its 5-minute join-request windows and its rate-limit windows together. The source must
    never go backwards.
    """

    def __init__(self, source: _HasNow) -> None:
        self.source = source

    def time(self) -> float:
        """The source's time as Unix seconds."""
        return self.source.now().timestamp()

    def monotonic(self) -> float:
        """The same reading (a never-decreasing fake clock is monotonic)."""
        return self.source.now().timestamp()
