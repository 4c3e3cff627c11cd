"""The limiter's decisions on a fake monotonic clock: Telegram's limits are a window (no
more than 30 in any second overall, 20 in any minute per group) and a bucket (one a second
per chat, short bursts), and a send counts when it completes."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from delivery.ratelimit import Limits, RateLimiter
from sandbox.ratelimit import RateLimiter as SandboxLimiter
from sandbox.ratelimit import RateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def send(limiter: RateLimiter, kind: str, target: int) -> None:
    limiter.take(kind, target)
    limiter.sent(kind, target)


def most_in_any_window(stamps: list[float], span: float) -> int:
    """The largest number of ``stamps`` inside any half-open window of ``span`` seconds."""
    stamps = sorted(stamps)
    best = 0
    for i, start in enumerate(stamps):
        inside = sum(1 for s in stamps[i:] if s < start + span)
        best = max(best, inside)
    return best


def greedy(
    limiter: RateLimiter,
    clock: Clock,
    targets: Callable[[], list[tuple[str, int]]],
    seconds: float,
    step: float = 0.001,
) -> list[tuple[float, str, int]]:
    """Send to whichever target the limiter allows, as soon as it allows it."""
    sent: list[tuple[float, str, int]] = []
    end = clock.now + seconds
    while clock.now < end:
        for kind, target in targets():
            while limiter.wait(kind, target) == 0:
                send(limiter, kind, target)
                sent.append((clock.now, kind, target))
        clock.now += step
    return sent


def test_overall_limit_never_allows_more_than_thirty_in_any_second(clock: Clock) -> None:
    limiter = RateLimiter(Limits(), clock)
    fresh = itertools.count()
    # Always someone new to write to: only the overall limit binds.
    sent = greedy(
        limiter, clock, lambda: [("user", next(fresh)) for _ in range(40)], 3.0, step=0.004
    )
    stamps = [at for at, _, _ in sent]
    assert most_in_any_window(stamps, 1.0) == 30
    assert 87 <= len(sent) <= 90  # three full seconds at the limit


def test_private_chat_gets_a_short_burst_then_one_message_a_second(clock: Clock) -> None:
    limiter = RateLimiter(Limits(), clock)
    sent = greedy(limiter, clock, lambda: [("user", 7)], 10.0)
    stamps = [at - 1_000.0 for at, _, _ in sent]
    assert stamps[:3] == [0.0, 0.0, 0.0]
    gaps = [b - a for a, b in itertools.pairwise(stamps[3:])]
    assert all(0.99 <= gap <= 1.01 for gap in gaps), gaps
    assert 11 <= len(sent) <= 13


def test_group_gets_at_most_twenty_a_minute_paced_one_a_second(clock: Clock) -> None:
    limiter = RateLimiter(Limits(), clock)
    sent = greedy(limiter, clock, lambda: [("chat", -100)], 180.0, step=0.01)
    stamps = [at for at, _, _ in sent]
    assert most_in_any_window(stamps, 60.0) == 20
    assert most_in_any_window(stamps, 1.0) <= 3  # the short burst, then one a second
    assert 59 <= len(sent) <= 60


def test_a_send_counts_from_when_it_completed(clock: Clock) -> None:
    limiter = RateLimiter(Limits(), clock)
    for user in range(30):
        limiter.take("user", user)
    assert limiter.global_wait() > 0  # thirty in flight fill the second
    clock.now += 0.5
    for user in range(30):
        limiter.sent("user", user)  # the platform saw them half a second later
    clock.now += 0.9
    assert limiter.global_wait() == pytest.approx(0.1)
    clock.now += 0.1
    assert limiter.global_wait() == 0


def test_a_cancelled_send_gives_its_place_back(clock: Clock) -> None:
    limiter = RateLimiter(Limits(), clock)
    for _ in range(3):
        limiter.take("user", 1)
    assert limiter.target_wait("user", 1) > 0
    limiter.cancel("user", 1)
    assert limiter.target_wait("user", 1) == 0
    for user in range(100, 127):  # 2 + 27 in flight: one more place overall
        limiter.take("user", user)
    assert limiter.global_wait() == 0
    limiter.take("user", 127)
    assert limiter.global_wait() > 0


def test_retry_after_closes_one_chat_and_close_all_closes_every_chat(clock: Clock) -> None:
    limiter = RateLimiter(Limits(), clock)
    limiter.close("user", 1, 7)
    assert limiter.target_wait("user", 1) == pytest.approx(7)
    assert limiter.wait("user", 2) == 0
    limiter.close_all(3)
    assert limiter.wait("user", 2) == pytest.approx(3)
    clock.now += 3
    assert limiter.wait("user", 2) == 0
    assert limiter.wait("user", 1) == pytest.approx(4)


def test_forget_idle_keeps_only_chats_still_limited(clock: Clock) -> None:
    limiter = RateLimiter(Limits(), clock)
    for user in range(100):
        send(limiter, "user", user)
    send(limiter, "chat", -5)
    limiter.close("user", 3, 60)
    clock.now += 5  # private buckets are full again; the group's minute is not over
    limiter.forget_idle()
    assert limiter.tracked() == 2
    assert limiter.target_wait("user", 3) == pytest.approx(55)


def test_pacing_by_our_limits_never_earns_a_429_from_telegrams_limits(clock: Clock) -> None:
    """The sandbox's model of Telegram's flood control judges every send we allow."""
    ours = RateLimiter(Limits(), clock)
    judge = SandboxLimiter(RateLimits(), clock)
    targets = [("user", user) for user in range(1, 45)] + [("chat", -c) for c in range(1, 4)]
    refused = []
    sent = 0
    end = clock.now + 60
    while clock.now < end:
        for kind, target in targets:
            if ours.wait(kind, target) == 0:
                ours.take(kind, target)
                if judge.check(1, target, kind == "user") is not None:
                    refused.append((clock.now, kind, target))
                judge.record(1, target, kind == "user")
                ours.sent(kind, target)
                sent += 1
        clock.now += 0.005
    assert not refused
    assert sent >= 0.97 * 30 * 60  # and the overall limit is used, not wasted
