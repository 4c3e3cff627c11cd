"""The outbox every outgoing message goes through.

Services add rows in the same transaction as the change they announce; one drainer sends
them in priority order within each platform's limits, honours ``retry_after``, retries
transient failures with backoff, and records why a message could not be delivered.
Delivery is at least once: a crash between the platform accepting a message and our commit
can repeat that message, never lose it.

A row says *what* to do as a typed action and payload (:mod:`delivery.actions`); the
platform's :class:`Sender` says *how*. Each platform has its own :class:`RateLimiter`,
built from the limits its sender declares, and its own policy for refusals: the drain
hands every sender the 429s it earned, and the sender says whether the whole bot must
pause (Telegram: several private chats refused at once), so another platform can answer
differently.

**What does not go through the outbox.** The outbox is for what may wait: notifications,
answers to commands, posts, the join-request welcome, all of which survive a crash and a
429. An answer that a platform accepts only through its own reply channel and only within
a deadline is sent by the adapter directly, in the handler, and never queued: a Discord
interaction must be answered (or deferred) within 3 seconds and its token lasts 15
minutes, so a queued answer behind a rate-limit pause would arrive too late to count.
Telegram's counterpart is ``answerCallbackQuery`` (the toast under a pressed button).
Such an answer is short and best effort: the handler responds (or defers) at once, does its
work, and what must not be lost — a follow-up DM, a notification to someone else — is an
outbox row like any other. A follow-up through the interaction's token (an edit of the
deferred response) is also sent directly by the adapter, within the token's life.

**Files.** A row that sends a file (``SEND_DOCUMENT``, ``SEND_PHOTO``) names it in the
outbox's :class:`~delivery.spool.Spool`; the drain hands the sender the file's path
(``OutboundMessage.file``), fails a row whose file is gone, and deletes each file once its
row is sent or has failed for good. A retry after a 429 sends the same file again.

**Keeping the table small.** :meth:`Outbox.purge` deletes sent, failed and expired rows
after a retention period (7 days by default, never below two days: Telegram hands an
update over again for 24 hours and the inbox retries kept ones for hours, and their answers
are made idempotent by the rows' keys). A row is kept for as long as a join request
awaiting a human check may still read its state (``settle_join_requests`` decides by the
state of the check's row). Purging is a daily job that claims its slot in ``job_claims``
in the same transaction as the delete, so instances sharing one database purge once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from delivery import actions
from delivery.actions import FILE_ACTIONS, Action, Attachment, MalformedRow, Payload
from delivery.port import (
    Clock,
    Delivered,
    RetryAfter,
    SendResult,
    TransientFailure,
    Unreachable,
    UnreachableReason,
)
from delivery.ratelimit import Limits, RateLimiter
from delivery.spool import Spool
from storage import jobs as db_jobs
from storage import outbox as db_outbox
from storage import people as db_people
from storage.batch import Batcher
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
    action: Action = Action.SEND,
    payload: Payload | None = None,
    expires_at: datetime | None = None,
    key: str | None = None,
    not_before: datetime | None = None,
) -> dict[str, Any]:
    """An outbox row: ``template`` is rendered by the platform adapter with ``context``
    (plain JSON values) in the target's language; ``action`` and its ``payload`` say what
    the platform does with the text (:mod:`delivery.actions`; checked here, so a bad pair
    fails where it is made). ``key`` makes the row idempotent."""
    if target_kind not in ("user", "chat"):
        raise ValueError(f"target_kind must be 'user' or 'chat', not {target_kind!r}")
    kind, payload = actions.check(action, payload)
    return {
        "platform": platform,
        "target_kind": target_kind,
        "target_id": target_id,
        "program_id": program_id,
        "priority": int(priority),
        "action": kind.value,
        "template": template,
        "context": dict(context or {}),
        "payload": actions.dump(kind, payload),
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
    action: Action
    payload: Payload
    template: str
    context: dict[str, Any]  # the template's context only
    locales: tuple[str, ...]  # the language candidates, most wanted first
    attempts: int
    file: Path | None = None  # SEND_DOCUMENT / SEND_PHOTO: the spooled file to send

    @property
    def locale(self) -> str | None:
        """The most wanted language (the adapter picks the first one it has texts in)."""
        return self.locales[0] if self.locales else None


@dataclass(frozen=True, slots=True)
class Refusal:
    """One ``retry_after`` a drain earned: the target and how long it was told to wait."""

    target_kind: str
    target_id: int
    seconds: float


class Sender(Protocol):
    """The sending half of a platform adapter: its limits, its sends, and its policy for
    the refusals (429s) a drain earned."""

    platform: str
    limits: Limits

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send (or edit, pin, ...) one message; never raises for platform errors."""
        ...

    def pause_for(self, refusals: Sequence[Refusal]) -> float | None:
        """Seconds every send of this platform must wait after these refusals of one drain
        (each refused target waits on its own anyway); None: no pause for the whole bot."""
        ...


@dataclass(frozen=True, slots=True)
class Settled:
    """A row the drain settled for good: sent, or failed (refused, given up, malformed),
    by its idempotency key. Listeners get these in the drain's own transaction."""

    key: str
    sent: bool
    error: str = ""


SettleListener = Callable[[Any, Sequence[Settled]], Awaitable[None]]


@dataclass
class DrainReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0
    rate_limited: int = 0
    malformed: int = 0
    wait: float | None = None  # seconds until more can be done; None: nothing queued
    failures: list[tuple[int, str]] = field(default_factory=list)


MAX_PER_TARGET_PER_DRAIN = 3
FORGET_IDLE_ABOVE = 10_000  # limiter entries kept before idle ones are dropped
GONE = (UnreachableReason.BLOCKED, UnreachableReason.ACCOUNT_GONE)
RETENTION = timedelta(days=7)
MIN_RETENTION = timedelta(days=2)
PURGE_JOB = "outbox_purge"


class Outbox:
    """Adds rows and drains them. One drainer per process; several processes on one
    PostgreSQL lease rows (``FOR UPDATE SKIP LOCKED``) so no row is sent twice at once."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        senders: Mapping[str, Sender] | None = None,
        limiters: Mapping[str, RateLimiter] | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        batch: int = 200,
        max_attempts: int = 8,
        lease: timedelta = timedelta(minutes=2),
        max_in_flight: int = 32,
        retention: timedelta = RETENTION,
        spool: Spool | None = None,
    ) -> None:
        """``spool`` holds the files of file rows (none: such rows fail as malformed)."""
        if retention < MIN_RETENTION:
            raise ValueError(f"outbox retention must be at least {MIN_RETENTION}")
        self._db = db
        self._clock = clock
        self._monotonic = monotonic
        self._senders: dict[str, Sender] = {}
        self.limiters: dict[str, RateLimiter] = dict(limiters or {})
        for sender in (senders or {}).values():
            self.add_sender(sender)
        self.retention = retention
        self.spool = spool
        self._batch = batch
        self._max_attempts = max_attempts
        self._lease = lease
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._adds: Batcher[list[Mapping[str, Any]], int] = Batcher(
            self._add_batch, name="outbox-add"
        )
        self._listeners: list[SettleListener] = []

    def on_settled(self, listener: SettleListener) -> None:
        """Call ``listener(conn, settled)`` in the transaction that settles rows with an
        idempotency key, so what a row stood for (a reward's grant) records the outcome
        atomically with it."""
        self._listeners.append(listener)

    def add_sender(self, sender: Sender) -> None:
        """Send ``sender.platform``'s rows through ``sender``, under a limiter of its own
        (one given to the constructor for that platform, else one from its limits)."""
        self._senders[sender.platform] = sender
        if sender.platform not in self.limiters:
            self.limiters[sender.platform] = RateLimiter(sender.limits, self._monotonic)

    def limiter(self, platform: str) -> RateLimiter:
        """The rate limiter of one platform."""
        return self.limiters[platform]

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

        chosen: dict[tuple[str, str, int], list[tuple[dict[str, Any], OutboundMessage]]] = (
            defaultdict(list)
        )
        skipped: list[int] = []
        failed: list[tuple[int, str]] = []
        paused: set[str] = set()  # platforms whose overall limit is spent for now
        rate_wait = float("inf")
        for row in rows:
            platform = row["platform"]
            if platform in paused:
                skipped.append(row["id"])
                continue
            if platform not in self._senders:
                skipped.append(row["id"])
                rate_wait = min(rate_wait, 1.0)
                continue
            try:
                outbound = self._with_file(_outbound(row))
            except MalformedRow as exc:
                failed.append((row["id"], f"malformed row: {exc}"))
                report.failures.append((row["id"], "malformed"))
                report.malformed += 1
                continue
            limiter = self.limiters[platform]
            global_wait = limiter.global_wait()
            if global_wait > 0:
                paused.add(platform)
                skipped.append(row["id"])
                rate_wait = min(rate_wait, global_wait)
                continue
            target_wait = limiter.target_wait(row["target_kind"], row["target_id"])
            if target_wait > 0:
                skipped.append(row["id"])
                rate_wait = min(rate_wait, target_wait)
                continue
            limiter.take(row["target_kind"], row["target_id"])
            chosen[(platform, row["target_kind"], row["target_id"])].append((row, outbound))
        report.rate_limited = len(skipped)

        outcomes = await asyncio.gather(*(self._send_in_order(group) for group in chosen.values()))
        sent: list[tuple[int, int | None]] = []
        retry: list[tuple[int, datetime, bool, str]] = []
        gone: dict[str, list[int]] = defaultdict(list)
        throttled: dict[tuple[str, str, int], float] = {}
        for row, outcome in (pair for group in outcomes for pair in group):
            if isinstance(outcome, Delivered):
                sent.append((row["id"], outcome.message_id))
            elif isinstance(outcome, RetryAfter):
                target = (row["platform"], row["target_kind"], row["target_id"])
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
        refusals: dict[str, list[Refusal]] = defaultdict(list)
        for (platform, kind, target_id), seconds in throttled.items():
            self.limiters[platform].close(kind, target_id, seconds)
            refusals[platform].append(Refusal(kind, target_id, seconds))
        for platform, refused in refusals.items():
            # Whether the bot as a whole is over its limit is the platform's call.
            pause = self._senders[platform].pause_for(refused)
            if pause:
                self.limiters[platform].close_all(pause)
        async with self._db.write() as conn:
            await db_outbox.mark_sent(conn, sent, self._clock.now())
            await db_outbox.settle(conn, retry, failed)
            await db_outbox.release(conn, skipped)
            for platform, user_ids in gone.items():
                await db_people.mark_unreachable(conn, platform, user_ids, self._clock.now())
            if self._listeners:
                keys = {row["id"]: row.get("idempotency_key") for row in rows}
                settled = [
                    Settled(str(keys[row_id]), True) for row_id, _ in sent if keys.get(row_id)
                ] + [
                    Settled(str(keys[row_id]), False, error)
                    for row_id, error in failed
                    if keys.get(row_id)
                ]
                if settled:
                    for listener in self._listeners:
                        await listener(conn, settled)
        report.sent, report.retried, report.failed = len(sent), len(retry), len(failed)
        self._discard_files(rows, {row_id for row_id, _ in sent} | {i for i, _ in failed})
        for row_id, error in failed:
            logger.warning("outbox row %s not delivered: %s", row_id, error)
        report.wait = 0.0 if rate_wait == float("inf") else rate_wait
        return report

    def _with_file(self, outbound: OutboundMessage) -> OutboundMessage:
        """A file row as its sender receives it: with the path of its spooled file, or
        :class:`MalformedRow` when the file is gone (it never sends something else)."""
        if not isinstance(outbound.payload, Attachment):
            return outbound
        if self.spool is None:
            raise MalformedRow("a file row, but this outbox has no spool")
        path = self.spool.path_of(outbound.payload.spooled)
        if path is None:
            raise MalformedRow(f"the file {outbound.payload.spooled} is gone from the spool")
        return dataclasses.replace(outbound, file=path)

    def _discard_files(self, rows: Sequence[Mapping[str, Any]], settled: set[int]) -> None:
        """Delete the spooled files of rows that were sent or failed for good."""
        if self.spool is None or not settled:
            return
        names = []
        for row in rows:
            if row["id"] not in settled or row["action"] not in FILE_ACTIONS:
                continue
            try:
                _, payload = actions.load(row["action"], row.get("payload"))
            except MalformedRow:
                continue
            if isinstance(payload, Attachment):
                names.append(payload.spooled)
        self.spool.discard(names)

    async def _send_in_order(
        self, group: list[tuple[dict[str, Any], OutboundMessage]]
    ) -> list[tuple[dict[str, Any], SendResult]]:
        """Rows for one chat go out one after another, in priority order. Each row was
        taken from the limiter; it is reported as sent once its call was made, or as
        cancelled if it never was."""
        results: list[tuple[dict[str, Any], SendResult]] = []
        first = group[0][0]
        limiter = self.limiters[first["platform"]]
        kind, target = first["target_kind"], first["target_id"]
        made = 0
        try:
            for index, (row, outbound) in enumerate(group):
                async with self._in_flight:
                    try:
                        outcome = await self._send(outbound)
                    finally:
                        made += 1
                        limiter.sent(kind, target)
                results.append((row, outcome))
                if isinstance(outcome, RetryAfter):
                    # the chat is closed: the rest of this group waits as well
                    results.extend(
                        (later, RetryAfter(outcome.seconds)) for later, _ in group[index + 1 :]
                    )
                    break
        finally:
            for _ in group[made:]:
                limiter.cancel(kind, target)
        return results

    async def _send(self, outbound: OutboundMessage) -> SendResult:
        try:
            return await self._senders[outbound.platform].send(outbound)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an adapter bug must not stop the drainer
            logger.exception("sender failed on outbox row %s", outbound.id)
            return TransientFailure(f"{type(exc).__name__}: {exc}")

    async def purge(self, now: datetime | None = None, *, job: str = PURGE_JOB) -> int | None:
        """Delete sent, failed and expired rows older than the retention period (queued rows
        and rows a waiting join request still reads stay), at most once per UTC day across
        every instance on this database: the day's slot in ``job_claims`` is claimed in the
        same transaction. Returns how many rows went, or None if the day was purged
        already."""
        now = now or self._clock.now()
        async with self._db.write() as conn:
            if not await db_jobs.claim_slot(conn, job, now.date().isoformat(), now):
                return None
            purged = await db_outbox.purge_finished(conn, now - self.retention)
        if purged:
            logger.info("outbox: purged %d rows older than %s", purged, self.retention)
        await self.sweep_spool()
        return purged

    async def sweep_spool(self) -> int:
        """Delete spooled files that no queued row names any more (a process that stopped
        between writing a file and queueing its row, a row that expired)."""
        if self.spool is None:
            return 0
        async with self._db.read() as conn:
            stored = await db_outbox.queued_payloads(conn, sorted(FILE_ACTIONS))
        keep = set()
        for text in stored:
            try:
                keep.add(str(json.loads(text)["spooled"]))
            except (ValueError, KeyError, TypeError):
                continue
        return await asyncio.to_thread(self.spool.sweep, keep)

    async def run(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Drain until ``stop`` is set, sleeping only while nothing can be sent."""
        while not stop.is_set():
            self._wake.clear()
            for limiter in self.limiters.values():
                if limiter.tracked() > FORGET_IDLE_ABOVE:
                    limiter.forget_idle()
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


def _outbound(row: Mapping[str, Any]) -> OutboundMessage:
    """A claimed row as its sender receives it; :class:`MalformedRow` if it cannot be."""
    try:
        context = json.loads(row["context"]) if isinstance(row["context"], str) else row["context"]
    except ValueError as exc:
        raise MalformedRow(f"context is not JSON: {exc}") from None
    if not isinstance(context, dict):
        raise MalformedRow("context must be a JSON object")
    stored = row.get("payload")
    if stored is None:
        legacy = actions.split_legacy(row["action"], context)
        if legacy is not None:
            context, stored = legacy
    action, payload = actions.load(row["action"], stored)
    return OutboundMessage(
        id=row["id"],
        platform=row["platform"],
        target_kind=row["target_kind"],
        target_id=row["target_id"],
        program_id=row["program_id"],
        action=action,
        payload=payload,
        template=row["template"],
        context=context,
        locales=_locales(row),
        attempts=row["attempts"],
    )


def _locales(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The message's own language, the person's choice, their app's, the program's: the
    adapter renders in the first of these it has texts in (``referrals.locale``)."""
    return tuple(
        str(candidate)
        for candidate in (
            row.get("locale"),
            row.get("person_language"),
            row.get("person_platform_language"),
            row.get("program_locale"),
        )
        if candidate
    )
