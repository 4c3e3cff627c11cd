"""The outbox every outgoing message goes through.

Services add rows in the same transaction as the change they announce; one drainer sends
them in priority order within the platform's limits, honours ``retry_after``, retries
transient failures with backoff, and records why a message could not be delivered.
Delivery is at least once: a crash between the platform accepting a message and our commit
can repeat that message, never lose it.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from delivery.port import (
    Delivered,
    RetryAfter,
    SendResult,
    TransientFailure,
    Unreachable,
    UnreachableReason,
)
from delivery.ratelimit import RateLimiter
from storage import outbox as db_outbox
from storage import people as db_people
from storage.batch import Batcher
from storage.clock import Clock
from storage.database import Database

logger = logging.getLogger(__name__)


class Priority(enum.IntEnum):
    ANSWER = 0  # a reply to someone who just typed a command or pressed a button
    TIMED = 1  # a DM that is only possible for a while (the join-request window)
    NOTIFY = 2  # notifications: a friend joined, a referral confirmed
    BULK = 3  # posts to many people or to chats


def message(
    platform: str,
    target_kind: str,
    target_id: int,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    priority: Priority,
    now: datetime,
    program_id: int | None = None,
    locale: str | None = None,
    action: str = "send",
    expires_at: datetime | None = None,
    key: str | None = None,
    not_before: datetime | None = None,
) -> dict[str, Any]:
    """An outbox row: ``template`` is rendered by the platform adapter with ``context``
    (plain JSON values) in the target's language. ``key`` makes the row idempotent."""
    if target_kind not in ("user", "chat"):
        raise ValueError(f"target_kind must be 'user' or 'chat', not {target_kind!r}")
    return {
        "platform": platform,
        "target_kind": target_kind,
        "target_id": target_id,
        "program_id": program_id,
        "priority": int(priority),
        "action": action,
        "template": template,
        "context": dict(context or {}),
        "locale": locale,
        "state": "queued",
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "expires_at": expires_at,
        "idempotency_key": key,
        "created_at": now,
    }


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message as the platform adapter receives it."""

    id: int
    platform: str
    target_kind: str
    target_id: int
    program_id: int | None
    action: str
    template: str
    context: dict[str, Any]
    locale: str | None
    attempts: int


class Sender(Protocol):
    """The sending half of a platform adapter."""

    platform: str

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send (or edit, pin, ...) one message; never raises for platform errors."""
        ...


@dataclass
class DrainReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0
    rate_limited: int = 0
    wait: float | None = None  # seconds until more can be done; None: nothing queued
    failures: list[tuple[int, str]] = field(default_factory=list)


MAX_PER_TARGET_PER_DRAIN = 3
FORGET_IDLE_ABOVE = 10_000  # limiter entries kept before idle ones are dropped
GONE = (UnreachableReason.BLOCKED, UnreachableReason.ACCOUNT_GONE)


class Outbox:
    """Adds rows and drains them. One drainer per process; several processes on one
    PostgreSQL lease rows (``FOR UPDATE SKIP LOCKED``) so no row is sent twice at once."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        senders: Mapping[str, Sender] | None = None,
        limiter: RateLimiter | None = None,
        *,
        batch: int = 200,
        max_attempts: int = 8,
        lease: timedelta = timedelta(minutes=2),
        max_in_flight: int = 32,
    ) -> None:
        self._db = db
        self._clock = clock
        self._senders: dict[str, Sender] = dict(senders or {})
        self.limiter = limiter if limiter is not None else RateLimiter()
        self._batch = batch
        self._max_attempts = max_attempts
        self._lease = lease
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._adds: Batcher[list[Mapping[str, Any]], int] = Batcher(
            self._add_batch, name="outbox-add"
        )

    def add_sender(self, sender: Sender) -> None:
        self._senders[sender.platform] = sender

    def wake(self) -> None:
        """Tell the drainer that rows were added (handlers call this after commit)."""
        self._idle.clear()
        self._wake.set()

    async def wait_idle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the running drainer finds nothing it may send now (tests, demo)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def add(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Add rows in a transaction of their own and wake the drainer; returns how many
        were new (a repeated idempotency key adds nothing). Adds that arrive together (the
        answers to one batch of updates) share one transaction."""
        return await self._adds.submit(list(rows))

    async def _add_batch(self, batch: list[list[Mapping[str, Any]]]) -> list[int]:
        async with self._db.write() as conn:
            if len(batch) == 1:
                counts = [await db_outbox.enqueue(conn, batch[0])]
            else:
                # One statement for all; a count per caller needs to know which rows went
                # in, which only a repeated key can change: then each list on its own.
                keys = [row.get("idempotency_key") for rows in batch for row in rows]
                present = [key for key in keys if key is not None]
                if len(present) == len(set(present)):
                    existing = await db_outbox.existing_keys(conn, present)
                    await db_outbox.enqueue(conn, [row for rows in batch for row in rows])
                    counts = [
                        sum(1 for row in rows if row.get("idempotency_key") not in existing)
                        for rows in batch
                    ]
                else:
                    counts = [await db_outbox.enqueue(conn, rows) for rows in batch]
        self.wake()
        return counts

    async def drain_once(self) -> DrainReport:
        """Send what is due and allowed now; returns what happened and how long to wait."""
        report = DrainReport()
        now = self._clock.now()
        async with self._db.write() as conn:
            report.expired = await db_outbox.expire_overdue(conn, now)
            rows = await db_outbox.claim_due(
                conn, now, now + self._lease, self._batch, MAX_PER_TARGET_PER_DRAIN
            )
            if not rows:
                next_due = await db_outbox.next_due_at(conn)
        if not rows:
            report.wait = None if next_due is None else max(0.0, (next_due - now).total_seconds())
            return report

        chosen: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
        skipped: list[int] = []
        rate_wait = float("inf")
        for position, row in enumerate(rows):
            global_wait = self.limiter.global_wait()
            if global_wait > 0:
                skipped.extend(r["id"] for r in rows[position:])
                rate_wait = min(rate_wait, global_wait)
                break
            if row["platform"] not in self._senders:
                skipped.append(row["id"])
                rate_wait = min(rate_wait, 1.0)
                continue
            target_wait = self.limiter.target_wait(row["target_kind"], row["target_id"])
            if target_wait > 0:
                skipped.append(row["id"])
                rate_wait = min(rate_wait, target_wait)
                continue
            self.limiter.take(row["target_kind"], row["target_id"])
            chosen[(row["platform"], row["target_kind"], row["target_id"])].append(row)
        report.rate_limited = len(skipped)

        outcomes = await asyncio.gather(*(self._send_in_order(group) for group in chosen.values()))
        sent: list[tuple[int, int | None]] = []
        retry: list[tuple[int, datetime, bool, str]] = []
        failed: list[tuple[int, str]] = []
        gone: dict[str, list[int]] = defaultdict(list)
        throttled: dict[tuple[str, int], float] = {}
        for row, outcome in (pair for group in outcomes for pair in group):
            if isinstance(outcome, Delivered):
                sent.append((row["id"], outcome.message_id))
            elif isinstance(outcome, RetryAfter):
                target = (row["target_kind"], row["target_id"])
                throttled[target] = max(throttled.get(target, 0.0), outcome.seconds)
                when = now + timedelta(seconds=outcome.seconds)
                retry.append((row["id"], when, False, f"retry after {outcome.seconds:g}s"))
                rate_wait = min(rate_wait, outcome.seconds)
            elif isinstance(outcome, Unreachable):
                error = f"{outcome.reason}: {outcome.detail}"
                failed.append((row["id"], error))
                report.failures.append((row["id"], str(outcome.reason)))
                if row["target_kind"] == "user" and outcome.reason in GONE:
                    gone[row["platform"]].append(row["target_id"])
            else:
                attempts = row["attempts"] + 1
                detail = outcome.detail if isinstance(outcome, TransientFailure) else str(outcome)
                if attempts >= self._max_attempts:
                    failed.append((row["id"], f"gave up after {attempts} attempts: {detail}"))
                    report.failures.append((row["id"], "gave_up"))
                else:
                    backoff = min(300.0, 2.0**attempts)
                    retry.append((row["id"], now + timedelta(seconds=backoff), True, detail))
        for (kind, target_id), seconds in throttled.items():
            self.limiter.close(kind, target_id, seconds)
        private = [seconds for (kind, _), seconds in throttled.items() if kind == "user"]
        if len(private) > 1:
            # Several private chats refused at once: the bot as a whole is over its limit,
            # so everything pauses for the shortest wait instead of earning more 429s.
            # (Groups refuse on their own too, in slow mode: that pauses only them.)
            self.limiter.close_all(min(private))
        async with self._db.write() as conn:
            await db_outbox.mark_sent(conn, sent, self._clock.now())
            await db_outbox.settle(conn, [], retry, failed, self._clock.now())
            await db_outbox.release(conn, skipped)
            for platform, user_ids in gone.items():
                await db_people.mark_unreachable(conn, platform, user_ids, self._clock.now())
        report.sent, report.retried, report.failed = len(sent), len(retry), len(failed)
        for row_id, error in failed:
            logger.warning("outbox row %s not delivered: %s", row_id, error)
        report.wait = 0.0 if rate_wait == float("inf") else rate_wait
        return report

    async def _send_in_order(
        self, group: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], SendResult]]:
        """Rows for one chat go out one after another, in priority order. Each row was
        taken from the limiter; it is reported as sent once its call was made, or as
        cancelled if it never was."""
        results: list[tuple[dict[str, Any], SendResult]] = []
        kind, target = group[0]["target_kind"], group[0]["target_id"]
        made = 0
        try:
            for index, row in enumerate(group):
                async with self._in_flight:
                    try:
                        outcome = await self._send(row)
                    finally:
                        made += 1
                        self.limiter.sent(kind, target)
                results.append((row, outcome))
                if isinstance(outcome, RetryAfter):
                    # the chat is closed: the rest of this group waits as well
                    results.extend(
                        (later, RetryAfter(outcome.seconds)) for later in group[index + 1 :]
                    )
                    break
        finally:
            for _ in group[made:]:
                self.limiter.cancel(kind, target)
        return results

    async def _send(self, row: dict[str, Any]) -> SendResult:
        sender = self._senders[row["platform"]]
        outbound = OutboundMessage(
            id=row["id"],
            platform=row["platform"],
            target_kind=row["target_kind"],
            target_id=row["target_id"],
            program_id=row["program_id"],
            action=row["action"],
            template=row["template"],
            context=_load(row["context"]),
            locale=_locale(row),
            attempts=row["attempts"],
        )
        try:
            return await sender.send(outbound)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an adapter bug must not stop the drainer
            logger.exception("sender failed on outbox row %s", row["id"])
            return TransientFailure(f"{type(exc).__name__}: {exc}")

    async def run(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Drain until ``stop`` is set, sleeping only while nothing can be sent."""
        while not stop.is_set():
            self._wake.clear()
            if self.limiter.tracked() > FORGET_IDLE_ABOVE:
                self.limiter.forget_idle()
            try:
                report = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbox drain failed; trying again shortly")
                report = DrainReport(wait=idle)
            progressed = bool(report.sent or report.retried or report.failed)
            if progressed and report.wait in (0.0, None):
                # Drain again at once: either more is due now, or the next drain finds
                # nothing and reports idle (waiting `idle` here kept callers of
                # wait_idle, the demo and tests, a second behind every send).
                continue
            if not progressed and not report.rate_limited and not self._wake.is_set():
                self._idle.set()  # nothing is due (rate-limited rows are not idle)
            timeout = idle if report.wait is None else min(max(report.wait, 0.005), idle)
            wake = asyncio.ensure_future(self._wake.wait())
            halt = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({wake, halt}, timeout=timeout, return_when="FIRST_COMPLETED")
            finally:
                wake.cancel()
                halt.cancel()


def _load(context: Any) -> dict[str, Any]:
    return dict(json.loads(context)) if isinstance(context, str) else dict(context or {})


def _locale(row: Mapping[str, Any]) -> str | None:
    for candidate in (
        row.get("locale"),
        row.get("person_language"),
        row.get("person_platform_language"),
        row.get("program_locale"),
    ):
        if candidate:
            return str(candidate).split("-")[0].lower()
    return None
