"""Token buckets for the platforms' sending limits (Telegram: about 30 messages/s overall,
1/s per private chat, 20/min per group or channel). They measure a monotonic clock that
tests can replace; a ``retry_after`` from the platform closes a bucket for that long."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    capacity: float
    per_second: float
    tokens: float
    updated: float
    closed_until: float = 0.0

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.per_second)
            self.updated = now

    def wait(self, now: float) -> float:
        self.refill(now)
        blocked = max(0.0, self.closed_until - now)
        if self.tokens >= 1:
            return blocked
        return max(blocked, (1 - self.tokens) / self.per_second)


@dataclass(frozen=True)
class Limits:
    """Sends per second overall, per person (private chat), per group/channel."""

    global_per_second: float = 30.0
    global_burst: float = 30.0
    user_per_second: float = 1.0
    user_burst: float = 3.0
    chat_per_minute: float = 20.0
    chat_burst: float = 3.0


class RateLimiter:
    def __init__(
        self, limits: Limits | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or Limits()
        self._now = monotonic
        start = monotonic()
        self._global = _Bucket(
            self.limits.global_burst,
            self.limits.global_per_second,
            self.limits.global_burst,
            start,
        )
        self._keys: dict[tuple[str, int], _Bucket] = {}

    def _bucket(self, kind: str, target: int) -> _Bucket:
        key = (kind, target)
        bucket = self._keys.get(key)
        if bucket is None:
            if kind == "user":
                capacity, rate = self.limits.user_burst, self.limits.user_per_second
            else:
                capacity, rate = self.limits.chat_burst, self.limits.chat_per_minute / 60.0
            bucket = _Bucket(capacity, rate, capacity, self._now())
            self._keys[key] = bucket
        return bucket

    def global_wait(self) -> float:
        return self._global.wait(self._now())

    def target_wait(self, kind: str, target: int) -> float:
        return self._bucket(kind, target).wait(self._now())

    def take(self, kind: str, target: int) -> None:
        now = self._now()
        for bucket in (self._global, self._bucket(kind, target)):
            bucket.refill(now)
            bucket.tokens -= 1

    def close(self, kind: str, target: int, seconds: float) -> None:
        """The platform said to wait: nothing more to this target for ``seconds``."""
        bucket = self._bucket(kind, target)
        bucket.closed_until = max(bucket.closed_until, self._now() + seconds)

    def close_all(self, seconds: float) -> None:
        self._global.closed_until = max(self._global.closed_until, self._now() + seconds)

    def forget_idle(self) -> None:
        """Drop full, open buckets so the table does not grow with every person ever sent to."""
        now = self._now()
        for key, bucket in list(self._keys.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.capacity and bucket.closed_until <= now:
                del self._keys[key]
