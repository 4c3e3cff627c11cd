"""Flood limits on sending methods, measured on an injectable monotonic clock.

Telegram does not publish exact limits; the Bot FAQ names about 30 messages per second
overall, one message per second in a chat (short bursts tolerated) and 20 messages per minute
in a group. Those are the defaults here. A refused call gets a 429 whose ``retry_after`` is
the whole number of seconds (at least 1) until the window that refused it has room again.
Only calls that succeed use up the allowance.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

SENDING_METHODS = frozenset(
    {
        "sendmessage",
        "senddocument",
        "sendphoto",
        "editmessagetext",
        "editmessagereplymarkup",
        "pinchatmessage",
        "unpinchatmessage",
        "copymessage",
        "forwardmessage",
    }
)


@dataclass
class RateLimits:
    """Limits per bot. ``enabled=False`` turns all of them off.

    ``private_burst`` messages may go to one private chat at once; after that one more per
    ``1 / private_per_second`` seconds. Groups, supergroups and channels share
    ``group_per_minute`` (a sliding 60-second window per chat).
    """

    enabled: bool = True
    global_per_second: int = 30
    private_per_second: float = 1.0
    private_burst: int = 3
    group_per_minute: int = 20
    methods: frozenset[str] = field(default=SENDING_METHODS)


class RateLimiter:
    """Sliding windows and token buckets per bot and chat."""

    def __init__(self, limits: RateLimits, monotonic: Callable[[], float]) -> None:
        self.limits = limits
        self._now = monotonic
        self._global: dict[int, deque[float]] = {}
        self._groups: dict[tuple[int, int], deque[float]] = {}
        self._private: dict[tuple[int, int], tuple[float, float]] = {}

    def applies_to(self, method: str) -> bool:
        """Whether ``method`` (lower-case) is rate limited."""
        return self.limits.enabled and method in self.limits.methods

    def check(self, bot_id: int, chat_id: int, is_private: bool) -> int | None:
        """Seconds to wait before this send is allowed, or None if it may go now."""
        if not self.limits.enabled:
            return None
        now = self._now()
        waits: list[float] = []
        window = self._prune(self._global.get(bot_id), now, 1.0)
        if window is not None and len(window) >= self.limits.global_per_second:
            waits.append(window[len(window) - self.limits.global_per_second] + 1.0 - now)
        if is_private:
            tokens = self._tokens(bot_id, chat_id, now)
            if tokens < 1.0:
                waits.append((1.0 - tokens) / self.limits.private_per_second)
        else:
            window = self._prune(self._groups.get((bot_id, chat_id)), now, 60.0)
            if window is not None and len(window) >= self.limits.group_per_minute:
                waits.append(window[len(window) - self.limits.group_per_minute] + 60.0 - now)
        if not waits:
            return None
        return max(1, math.ceil(max(waits) - 1e-9))

    def record(self, bot_id: int, chat_id: int, is_private: bool) -> None:
        """Count one successful send."""
        if not self.limits.enabled:
            return
        now = self._now()
        self._global.setdefault(bot_id, deque()).append(now)
        if is_private:
            tokens = self._tokens(bot_id, chat_id, now)
            self._private[(bot_id, chat_id)] = (tokens - 1.0, now)
        else:
            self._groups.setdefault((bot_id, chat_id), deque()).append(now)

    def reset(self) -> None:
        """Forget all history."""
        self._global.clear()
        self._groups.clear()
        self._private.clear()

    def _tokens(self, bot_id: int, chat_id: int, now: float) -> float:
        burst = float(max(1, self.limits.private_burst))
        tokens, stamp = self._private.get((bot_id, chat_id), (burst, now))
        return min(burst, tokens + (now - stamp) * self.limits.private_per_second)

    @staticmethod
    def _prune(window: deque[float] | None, now: float, span: float) -> deque[float] | None:
        if window is None:
            return None
        while window and window[0] <= now - span:
            window.popleft()
        return window
