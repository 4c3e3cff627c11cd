"""Joins: attribution and hold rules, applied to many joins in one transaction.

Joins that arrive together (a burst, or many callers at once) are grouped by a
:class:`storage.batch.Batcher` and decided by :func:`decide_joins` with a constant number of
set-based statements per batch: each awaited statement costs 0.2–0.5 ms here whatever it
does, so round trips, not SQL, set the speed (reference/platform-facts.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from delivery.outbox import Priority, message
from referrals import transitions
from referrals.clock import ensure_utc
from referrals.models import (
    JoinEvent,
    JoinOutcome,
    JoinStatus,
    LeavePolicy,
    ProgramNotFound,
    Reason,
)
from referrals.text import clean_name
from referrals.transitions import Move, Transition
from storage import attempts as db_attempts
from storage import counts as db_counts
from storage import links as db_links
from storage import members as db_members
from storage import outbox as db_outbox
from storage import programs as db_programs
from storage import referrals as db_referrals

logger = logging.getLogger(__name__)

Result = JoinOutcome | Exception


@dataclass(slots=True)
class _Referrer:
    active: int  # pending + held + confirmed
    window_started_at: datetime | None
    window_joins: int


@dataclass(slots=True)
class _Known:
    first_joined_at: datetime | None
    remembered_referrer_id: int | None
    remembered_link_id: int | None


@dataclass(slots=True)
class _Counted:
    referrer_id: int | None
    state: str
    left_at: datetime | None
    joined_at: datetime


_KNOWN_COLUMNS = ("first_joined_at", "remembered_referrer_id", "remembered_link_id")
_COUNTED_COLUMNS = ("referrer_id", "state", "left_at", "joined_at")
_REFERRER_COLUMNS = ("pending", "held", "confirmed", "window_started_at", "window_joins")


async def decide_joins(
    conn: AsyncConnection, batch: Sequence[JoinEvent], now: datetime
) -> list[Result]:
    """Record ``batch`` in one transaction; one result per event, in order."""
    results: list[Result | None] = [None] * len(batch)
    # Shared: a change of a program's rules (its leave policy) waits for this batch.
    programs = await db_programs.programs_by_ids(
        conn, {event.program_id for event in batch}, share=True
    )
    todo: list[int] = []
    for index, event in enumerate(batch):
        if event.program_id not in programs:
            results[index] = ProgramNotFound(f"no program {event.program_id}")
        else:
            todo.append(index)

    event_keys = [(batch[i].program_id, batch[i].event_key) for i in todo if batch[i].event_key]
    seen = await db_attempts.existing_event_keys(conn, event_keys) if event_keys else set()  # type: ignore[arg-type]
    people = sorted({(batch[i].program_id, batch[i].person.user_id) for i in todo})
    known: dict[tuple[int, int], _Known] = {
        key: _Known(
            row["first_joined_at"], row["remembered_referrer_id"], row["remembered_link_id"]
        )
        for key, row in (await db_members.members_by_keys(conn, people, _KNOWN_COLUMNS)).items()
    }
    counted: dict[tuple[int, int], _Counted] = {
        key: _Counted(row["referrer_id"], row["state"], row["left_at"], row["joined_at"])
        for key, row in (
            await db_referrals.referrals_by_keys(conn, people, _COUNTED_COLUMNS)
        ).items()
    }
    link_values = sorted({value for i in todo if (value := batch[i].link)})
    links = await db_links.links_by_code_or_url(conn, link_values) if link_values else {}

    # Who each join would count for, before the rules: links first, then the reader the
    # friend was remembered for (the through-the-bot mode).
    attribution: dict[int, tuple[int | None, int | None, Reason | None]] = {}
    for i in todo:
        event = batch[i]
        key = (event.program_id, event.person.user_id)
        referrer_id: int | None = None
        link_id: int | None = None
        reason: Reason | None = None
        if event.link:
            used = links.get(event.link)
            if used is None or used["program_id"] != event.program_id:
                reason = Reason.UNKNOWN_LINK
            elif used["revoked_at"] is not None:
                reason = Reason.REVOKED_LINK
            else:
                referrer_id, link_id = used["referrer_id"], used["id"]
        if referrer_id is None:
            person = known.get(key)
            if person is not None and person.remembered_referrer_id is not None:
                referrer_id, link_id = person.remembered_referrer_id, person.remembered_link_id
                reason = None
            elif reason is None:
                reason = event.unattributed_reason or Reason.NO_LINK
        attribution[i] = (referrer_id, link_id, reason)

    # A reader's running counts and burst window matter only where a cap or a burst limit
    # may hold their friends for a manager; elsewhere they are neither read nor written.
    guarded = {
        pid
        for pid, row in programs.items()
        if row["referrer_cap"] is not None or row["burst_limit"] is not None
    }
    referrer_keys = sorted(
        {
            (batch[i].program_id, ref)
            for i, (ref, _, _) in attribution.items()
            if ref is not None and batch[i].program_id in guarded
        }
    )
    referrers: dict[tuple[int, int], _Referrer] = {}
    if referrer_keys:
        rows = await db_counts.counts_by_keys(conn, referrer_keys, _REFERRER_COLUMNS)
        for key in referrer_keys:
            count_row = rows.get(key)
            referrers[key] = (
                _Referrer(
                    count_row["pending"] + count_row["held"] + count_row["confirmed"],
                    count_row["window_started_at"],
                    count_row["window_joins"],
                )
                if count_row
                else _Referrer(0, None, 0)
            )

    member_rows: dict[tuple[int, int], dict[str, Any]] = {}
    new_referrals: list[dict[str, Any]] = []
    returned: list[tuple[int, int, int | None]] = []
    # friends in their hold who joined again, by the state read: (key -> when), per state
    lost_leaves: dict[str, dict[tuple[int, int], datetime]] = {}
    attempts: list[dict[str, Any]] = []
    pending_results: dict[tuple[int, int], int] = {}  # referral key -> batch index

    for i in todo:
        event = batch[i]
        program = programs[event.program_id]
        at = ensure_utc(event.at)
        key = (event.program_id, event.person.user_id)
        if event.event_key:
            if (event.program_id, event.event_key) in seen:
                results[i] = JoinOutcome(JoinStatus.DUPLICATE)
                continue
            seen.add((event.program_id, event.event_key))
        referrer_id, link_id, link_reason = attribution[i]
        name = clean_name(event.person.display_name)
        username = clean_name(event.person.username, 64) or None
        member_row = member_rows.get(key)
        if member_row is None:
            member_rows[key] = {
                "program_id": key[0],
                "user_id": key[1],
                "display_name": name,
                "username": username,
                "first_seen_at": at,
                "is_member": True,
                "first_joined_at": at,
                "last_joined_at": at,
            }
        else:
            member_row.update(display_name=name, username=username, last_joined_at=at)

        outcome: JoinOutcome
        existing = counted.get(key)
        person = known.get(key)
        if existing is not None or (person is not None and person.first_joined_at is not None):
            reason = Reason.REJOIN
            if existing is not None:
                if referrer_id is not None and referrer_id != existing.referrer_id:
                    reason = Reason.COUNTED_FOR_OTHER
                if existing.state == "confirmed" and existing.left_at is not None:
                    returned.append((key[0], key[1], existing.referrer_id))
                elif existing.state in ("pending", "held") and at > existing.joined_at:
                    lost_leaves.setdefault(existing.state, {}).setdefault(key, at)
                    existing.state = "rejected"
                    existing.left_at = None
            outcome = JoinOutcome(JoinStatus.NOT_COUNTED, reason, referrer_id)
        elif referrer_id is None:
            outcome = JoinOutcome(JoinStatus.UNATTRIBUTED, link_reason)
        else:
            hold_until = at + timedelta(hours=program["hold_hours"])
            status, reason_ = _rules(program, event, at, referrer_id, referrers)
            confirmed_at = at if status is JoinStatus.CONFIRMED else None
            new_referrals.append(
                {
                    "program_id": key[0],
                    "referred_id": key[1],
                    "referrer_id": referrer_id,
                    "link_id": link_id,
                    "state": str(status),
                    "reason": str(reason_) if reason_ else None,
                    "joined_at": at,
                    "hold_until": hold_until,
                    "confirmed_at": confirmed_at,
                    "decided_at": at if status is not JoinStatus.PENDING else None,
                }
            )
            counted[key] = _Counted(referrer_id, str(status), None, at)
            pending_results[key] = i
            outcome = JoinOutcome(
                status,
                reason_,
                referrer_id,
                hold_until if status is JoinStatus.PENDING else None,
            )
        if person is None:
            known[key] = _Known(at, None, None)
        elif person.first_joined_at is None:
            person.first_joined_at = at
        results[i] = outcome
        attempts.append(
            {
                "program_id": key[0],
                "user_id": key[1],
                "referrer_id": outcome.referrer_id,
                "link_id": link_id,
                "outcome": "referral"
                if key in pending_results and pending_results[key] == i
                else str(outcome.status),
                "reason": str(outcome.reason) if outcome.reason else None,
                "at": at,
                "event_key": event.event_key,
            }
        )

    # Writes: a fixed number of multi-row statements, rows in key order.
    await db_members.upsert_people(
        conn, [member_rows[k] for k in sorted(member_rows)], joined=True
    )
    inserted = await db_referrals.insert_referrals(
        conn, sorted(new_referrals, key=lambda r: (r["program_id"], r["referred_id"]))
    )
    moves: list[Move] = []
    for referral_row in new_referrals:
        key = (referral_row["program_id"], referral_row["referred_id"])
        index = pending_results[key]
        if key not in inserted:
            # Another instance counted this person first (PostgreSQL, between our read and
            # our insert): this join becomes a not-counted attempt.
            earlier = results[index]
            referrer_of = earlier.referrer_id if isinstance(earlier, JoinOutcome) else None
            results[index] = JoinOutcome(
                JoinStatus.NOT_COUNTED, Reason.COUNTED_FOR_OTHER, referrer_of
            )
            for attempt in attempts:
                if (attempt["program_id"], attempt["user_id"]) == key and attempt[
                    "outcome"
                ] == "referral":
                    attempt.update(outcome="not_counted", reason=str(Reason.COUNTED_FOR_OTHER))
            continue
        state = referral_row["state"]
        moves.append(
            Move(
                program_id=key[0],
                referred_id=key[1],
                referrer_id=referral_row["referrer_id"],
                transition=Transition.HOLD if state == "held" else Transition.JOIN,
                old_state=None,
                new_state=state,
                at=referral_row["joined_at"],
                joined_at=referral_row["joined_at"],
                confirmed_at=referral_row["confirmed_at"],
                reason=referral_row["reason"],
            )
        )
    for state, lost_keys in sorted(lost_leaves.items()):
        # A friend in their hold period joined again: they had left, even though the leave
        # update never arrived. The referral stops as if the leave had been seen.
        lost = str(Reason.LEFT_DURING_HOLD)
        moved = await db_referrals.transition_referrals(
            conn,
            sorted(lost_keys),
            (state,),
            {"state": "rejected", "reason": lost, "decided_at": now},
        )
        for row in moved:
            at = lost_keys[(row["program_id"], row["referred_id"])]
            moves.extend(transitions.moves_of([row], Transition.LEAVE, "rejected", at, lost))
    if returned:
        back = await db_referrals.set_left_at(conn, sorted({(p, u) for p, u, _ in returned}), None)
        for row in back:
            key = (row["program_id"], row["referred_id"])
            moves.append(
                Move(
                    program_id=key[0],
                    referred_id=key[1],
                    referrer_id=row["referrer_id"],
                    transition=Transition.REJOIN,
                    old_state="confirmed",
                    new_state="confirmed",
                    at=member_rows[key]["last_joined_at"],
                    joined_at=row["joined_at"],
                    confirmed_at=row["confirmed_at"],
                    left_before=True,
                    left_after=False,
                )
            )
    # Readers whose links were used get their burst window written (guarded programs) and,
    # everywhere, a counts row even when nothing of theirs changed.
    windows = (
        {key: (state.window_started_at, state.window_joins) for key, state in referrers.items()}
        if referrers
        else None
    )
    await transitions.record(
        conn,
        moves,
        subtract={
            pid: row["leave_policy"] == LeavePolicy.SUBTRACT for pid, row in programs.items()
        },
        now=_latest(batch),
        windows=windows,
        touch=[
            (batch[i].program_id, ref)
            for i, (ref, _, _) in attribution.items()
            if ref is not None and batch[i].program_id not in guarded
        ],
    )
    await db_attempts.insert_join_attempts(conn, attempts)
    await db_outbox.enqueue(
        conn, _join_notifications(new_referrals, inserted, member_rows, programs, _latest(batch))
    )
    return [r if r is not None else RuntimeError("join not processed") for r in results]


def _rules(
    program: Any,
    event: JoinEvent,
    at: datetime,
    referrer_id: int,
    referrers: dict[tuple[int, int], _Referrer],
) -> tuple[JoinStatus, Reason | None]:
    """The hold rules for a new referral, in order; updates the referrer's running state."""
    if referrer_id == event.person.user_id:
        return JoinStatus.REJECTED, Reason.SELF_REFERRAL
    min_age = program["min_account_age_days"]
    if min_age and event.account_created_at is not None:
        age = at - ensure_utc(event.account_created_at)
        if age < timedelta(days=min_age):
            return JoinStatus.REJECTED, Reason.ACCOUNT_TOO_NEW
    cap, burst = program["referrer_cap"], program["burst_limit"]
    if cap is None and burst is None:
        return (JoinStatus.CONFIRMED if program["hold_hours"] == 0 else JoinStatus.PENDING), None
    state = referrers[(event.program_id, referrer_id)]
    window = timedelta(minutes=program["burst_window_minutes"])
    if state.window_started_at is None or at - state.window_started_at >= window:
        state.window_started_at, state.window_joins = at, 0
    status: JoinStatus
    reason: Reason | None = None
    if cap is not None and state.active >= cap:
        status, reason = JoinStatus.HELD, Reason.OVER_CAP
    elif burst is not None and state.window_joins >= burst:
        status, reason = JoinStatus.HELD, Reason.BURST
    elif program["hold_hours"] == 0:
        status = JoinStatus.CONFIRMED
    else:
        status = JoinStatus.PENDING
    state.active += 1
    state.window_joins += 1
    return status, reason


def _join_notifications(
    new_referrals: Sequence[dict[str, Any]],
    inserted: set[tuple[int, int]],
    member_rows: dict[tuple[int, int], dict[str, Any]],
    programs: dict[int, Any],
    now: datetime,
) -> list[dict[str, Any]]:
    """One DM per referrer per batch: "N friends joined through your link"."""
    grouped: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for row in new_referrals:
        key = (row["program_id"], row["referred_id"])
        if key in inserted and row["referrer_id"] != row["referred_id"]:
            grouped.setdefault((row["program_id"], row["referrer_id"]), []).append(row)
    notes = []
    for (program_id, referrer_id), rows in grouped.items():
        program = programs[program_id]
        notes.append(
            message(
                program["platform"],
                "user",
                referrer_id,
                "notify_joined",
                {
                    "program_title": program["title"],
                    "friends": [
                        member_rows[(program_id, r["referred_id"])]["display_name"]
                        for r in rows[:10]
                    ],
                    "count": len(rows),
                    "states": sorted({r["state"] for r in rows}),
                    "hold_until": max(r["hold_until"] for r in rows).isoformat(),
                    "hold_hours": program["hold_hours"],
                },
                priority=Priority.NOTIFY,
                now=now,
                program_id=program_id,
                key=f"joined:{program_id}:{rows[0]['referred_id']}",
            )
        )
    return notes


def _latest(batch: Sequence[JoinEvent]) -> datetime:
    return max(ensure_utc(event.at) for event in batch)
