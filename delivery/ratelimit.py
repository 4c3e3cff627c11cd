"""The platforms' sending limits (Telegram: about 30 messages/s overall, 1/s per chat with
short bursts, 20/min per group or channel), measured on a monotonic clock tests can replace.

Two shapes of limit, because Telegram names both: a token bucket ("one per second, short
bursts tolerated") and a sliding window ("no more than N in any second / minute"). A bucket
alone would break a window limit: a bucket of 30 tokens refilled at 30/s lets 60 messages
through in the first second, and a bucket of 3 refilled at 20/min lets 23 through in the
first minute. The overall limit is therefore a window (and a bucket for ``global_burst``),
a private chat a bucket, and a group a bucket and a window.

A send is counted when it completes, not when it is chosen: the platform counts it when it
arrives, which is later, so stamping our side at the end keeps us on the safe side of the
platform's own window (stamped at the start, a send chosen at the very edge of the window
can land inside the platform's previous one and earn a 429). Sends that are chosen but not
yet done count as in flight. The caller reports each chosen send with :meth:`sent` or
:meth:`cancel`. A ``retry_after`` from the platform closes a target (or everything) for
that long.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limits:
    """Sends per second overall, per person (private chat), per group/channel. Each
    platform's sender declares its own (the defaults are Telegram's numbers)."""

    global_per_second: float = 30.0
    global_burst: float = 30.0
    user_per_second: float = 1.0
    user_burst: float = 3.0
    chat_per_minute: float = 20.0
    chat_burst: float = 3.0
    chat_per_second: float = 1.0


@dataclass
class _Gate:
    """A token bucket (``burst`` tokens, ``per_second`` refill), optionally a sliding window
    (at most ``window_count`` sends completed within ``window_span`` seconds), sends in
    flight, and a closure from the platform's ``retry_after``."""

    burst: float
    per_second: float
    tokens: float
    updated: float
    window_count: int = 0
    window_span: float = 0.0
    done: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    closed_until: float = 0.0

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.per_second)
            self.updated = now

    def _prune(self, now: float) -> None:
        horizon = now - self.window_span
        while self.done and self.done[0] <= horizon:
            self.done.popleft()

    def wait(self, now: float) -> float:
        """Seconds until one more send may start (0: now)."""
        waits = [self.closed_until - now]
        self._refill(now)
        short = 1 + self.in_flight - self.tokens
        if short > 0:
            waits.append(short / self.per_second)
        if self.window_count:
            self._prune(now)
            room = self.window_count - self.in_flight
            if room <= 0:
                # The window is full of sends still in flight: look again shortly.
                waits.append(self.window_span / self.window_count)
            elif len(self.done) >= room:
                waits.append(self.done[len(self.done) - room] + self.window_span - now)
        return max(0.0, *waits)

    def finish(self, now: float) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self._refill(now)
        self.tokens -= 1
        if self.window_count:
            self.done.append(now)

    def idle(self, now: float) -> bool:
        self._refill(now)
        if self.window_count:
            self._prune(now)
        return (
            self.in_flight == 0
            and self.tokens >= self.burst
            and not self.done
            and self.closed_until <= now
        )


class RateLimiter:
    """What the outbox asks before each send: may it go now, or how long to wait.

    Usage per send: ``wait(kind, target) == 0`` → ``take(kind, target)`` → the call →
    ``sent(kind, target)`` (or ``cancel`` if the call was not made after all)."""

    def __init__(
        self, limits: Limits | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or Limits()
        self._now = monotonic
        limits = self.limits
        count = max(1, math.floor(limits.global_per_second))
        self._global = _Gate(
            burst=limits.global_burst,
            per_second=limits.global_per_second,
            tokens=limits.global_burst,
            updated=monotonic(),
            window_count=count,
            window_span=count / limits.global_per_second,
        )
        self._targets: dict[tuple[str, int], _Gate] = {}

    def _gate(self, kind: str, target: int) -> _Gate:
        key = (kind, target)
        gate = self._targets.get(key)
        if gate is None:
            limits, now = self.limits, self._now()
            if kind == "user":
                gate = _Gate(limits.user_burst, limits.user_per_second, limits.user_burst, now)
            else:
                count = max(1, math.floor(limits.chat_per_minute))
                gate = _Gate(
                    limits.chat_burst,
                    limits.chat_per_second,
                    limits.chat_burst,
                    now,
                    window_count=count,
                    window_span=60.0 * count / limits.chat_per_minute,
                )
            self._targets[key] = gate
        return gate

    def global_wait(self) -> float:
        """Seconds until the overall limit allows one more send."""
        return self._global.wait(self._now())

    def target_wait(self, kind: str, target: int) -> float:
        """Seconds until this chat's own limit allows one more send."""
        return self._gate(kind, target).wait(self._now())

    def wait(self, kind: str, target: int) -> float:
        return max(self.global_wait(), self.target_wait(kind, target))

    def take(self, kind: str, target: int) -> None:
        """A send to ``target`` was chosen: it counts as in flight until :meth:`sent`."""
        self._global.in_flight += 1
        self._gate(kind, target).in_flight += 1

    def sent(self, kind: str, target: int) -> None:
        """The chosen send was made (whatever the platform answered): count it now."""
        now = self._now()
        self._global.finish(now)
        self._gate(kind, target).finish(now)

    def cancel(self, kind: str, target: int) -> None:
        """The chosen send was not made after all."""
        self._global.in_flight = max(0, self._global.in_flight - 1)
        gate = self._gate(kind, target)
        gate.in_flight = max(0, gate.in_flight - 1)

    def close(self, kind: str, target: int, seconds: float) -> None:
        """The platform said to wait: nothing more to this target for ``seconds``."""
        gate = self._gate(kind, target)
        gate.closed_until = max(gate.closed_until, self._now() + seconds)

    def close_all(self, seconds: float) -> None:
        """The platform said to wait, for every target."""
        self._global.closed_until = max(self._global.closed_until, self._now() + seconds)

    def forget_idle(self) -> None:
        """Drop idle targets so the table does not grow with every person ever sent to."""
        now = self._now()
        for key, gate in list(self._targets.items()):
            if gate.idle(now):
                del self._targets[key]

    def tracked(self) -> int:
        """How many targets have a limit in use (:meth:`forget_idle` keeps this small)."""
        return len(self._targets)
