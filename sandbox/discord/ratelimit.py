"""Rate limits of the simulated REST API, on the world's monotonic clock.

Discord (topics/rate-limits.mdx) limits each route per bucket (a route and its major
parameter: channel, guild or webhook) and each bot globally (50 requests per second;
interaction callbacks and webhooks with a token are exempt). Every limited answer carries
``X-RateLimit-Limit``, ``-Remaining``, ``-Reset``, ``-Reset-After`` and ``-Bucket``; a 429
also carries ``Retry-After``, ``X-RateLimit-Scope``, ``X-RateLimit-Global`` (global only)
and a JSON body with ``retry_after`` (seconds, float) and ``global``. discord.py treats a 429
without a ``Via`` header as a Cloudflare ban and never retries it, so every 429 here has one.

Limits are off unless configured: with a fake clock that never moves a window would never
reopen. :meth:`RateLimiter.inject` answers the next calls with a 429 regardless of the
limits, for tests of a client's retry path.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class DiscordRateLimits:
    """What to limit. ``routes`` maps ``"METHOD /template"`` (e.g.
    ``"POST /channels/{channel_id}/messages"``) to ``(limit, per_seconds)``, counted per
    major parameter. ``global_per_second`` limits all non-exempt calls of one bot."""

    global_per_second: int | None = None
    routes: dict[str, tuple[int, float]] = field(default_factory=dict)


@dataclass
class InjectedLimit:
    """A 429 the next ``remaining`` matching calls get (``route`` None = any route)."""

    route: str | None
    remaining: int
    retry_after: float
    is_global: bool
    scope: str


@dataclass
class Verdict:
    """The limiter's answer: headers to add, and for a refusal the 429 details."""

    headers: dict[str, str]
    retry_after: float | None = None
    is_global: bool = False
    scope: str = "user"


class RateLimiter:
    """Sliding windows per (bot, route, major parameter) and per bot."""

    def __init__(self, limits: DiscordRateLimits, monotonic: Callable[[], float]) -> None:
        self.limits = limits
        self._now = monotonic
        self._windows: dict[tuple[int, str, str], deque[float]] = {}
        self._global: dict[int, deque[float]] = {}
        self.injected: list[InjectedLimit] = []

    def inject(
        self,
        route: str | None = None,
        *,
        times: int = 1,
        retry_after: float = 0.05,
        is_global: bool = False,
        scope: str | None = None,
    ) -> InjectedLimit:
        """Refuse the next ``times`` calls of ``route`` ("METHOD /template") with a 429."""
        scope = scope or ("global" if is_global else "user")
        entry = InjectedLimit(route, times, retry_after, is_global, scope)
        self.injected.append(entry)
        return entry

    def check(self, bot_id: int, route: str, major: str, *, exempt_global: bool) -> Verdict:
        """Decide on one call; a call that is allowed is counted."""
        for entry in self.injected:
            if entry.remaining > 0 and entry.route in (None, route):
                entry.remaining -= 1
                refused = self._bucket_headers(route, major, 1, 0, entry.retry_after)
                return Verdict(refused, entry.retry_after, entry.is_global, entry.scope)
        now = self._now()
        if self.limits.global_per_second and not exempt_global:
            window = _prune(self._global.setdefault(bot_id, deque()), now, 1.0)
            if len(window) >= self.limits.global_per_second:
                wait = window[0] + 1.0 - now
                return Verdict({}, round(max(wait, 0.001), 3), True, "global")
        limit = self.limits.routes.get(route)
        headers: dict[str, str] = {}
        if limit is not None:
            count, per = limit
            window = _prune(self._windows.setdefault((bot_id, route, major), deque()), now, per)
            if len(window) >= count:
                wait = round(max(window[0] + per - now, 0.001), 3)
                return Verdict(self._bucket_headers(route, major, count, 0, wait), wait)
            window.append(now)
            reset_after = window[0] + per - now
            headers = self._bucket_headers(route, major, count, count - len(window), reset_after)
        if self.limits.global_per_second and not exempt_global:
            self._global[bot_id].append(now)
        return Verdict(headers)

    def reset(self) -> None:
        """Forget every window and injected 429."""
        self._windows.clear()
        self._global.clear()
        self.injected.clear()

    def _bucket_headers(
        self, route: str, major: str, limit: int, remaining: int, reset_after: float
    ) -> dict[str, str]:
        # A real clock for X-RateLimit-Reset would contradict a fake one; discord.py reads
        # Reset-After unless told to use the clock.
        reset_after = max(reset_after, 0.0)
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{math.ceil(self._now() + reset_after)}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": hashlib.sha1(route.encode()).hexdigest()[:32],
        }


def _prune(window: deque[float], now: float, span: float) -> deque[float]:
    while window and window[0] <= now - span:
        window.popleft()
    return window
