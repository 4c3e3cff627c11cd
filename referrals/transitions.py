"""The one referral state machine.

Every change of a referral — a join, a confirmation after the hold, a rejection, a hold for a
manager, a manager's review, a leave, a return, an undo, the leave-policy recount — is a
:class:`Move` recorded here, in the transaction that changed the referral row. From the moves
this module derives, in a constant number of set-based statements per batch:

- the change of each reader's counts (``referrer_counts``: pending, held, confirmed, rejected,
  left, counted), from the referral's state before and after;
- one audit event per move (``events``);
- one **change record** per move that changed a reader's counted total (``count_changes``:
  program, reader, before → after, the referral, the transition, its joined_at and
  confirmed_at, whether a manager decided it and whether it had been held). Milestones and
  period boards consume exactly these records; nothing else recomputes counts.

What counts: a confirmed referral counts, unless the friend left and the program's leave
policy subtracts leavers. :func:`contribution` is that rule, once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from referrals.models import EngineError
from storage import counts as db_counts
from storage import events as db_events

COUNT_FIELDS = db_counts.COUNT_FIELDS


class Transition(enum.StrEnum):
    JOIN = "join"  # a new referral: pending, confirmed (no hold) or rejected by a rule
    HOLD = "hold"  # a new referral a rule holds for a manager (a burst, a reader over the cap)
    CONFIRM = "confirm"  # pending -> confirmed once the hold passed and they are still in
    REJECT = "reject"  # pending or held -> rejected (gone when the hold ended, a lost leave)
    REVIEW = "review"  # a manager decided a pending or held referral
    LEAVE = "leave"  # the friend left: in the hold, rejected; once confirmed, left_at is set
    REJOIN = "rejoin"  # a confirmed friend who had left is back (left_at cleared)
    UNDO = "undo"  # a manager reversed a decision: confirmed <-> rejected
    RECOUNT = "recount"  # the leave policy changed: counted totals follow it


# (state before, state after) each transition may make; None before = a new referral.
ALLOWED: dict[Transition, frozenset[tuple[str | None, str]]] = {
    Transition.JOIN: frozenset({(None, "pending"), (None, "confirmed"), (None, "rejected")}),
    Transition.HOLD: frozenset({(None, "held")}),
    Transition.CONFIRM: frozenset({("pending", "confirmed")}),
    Transition.REJECT: frozenset({("pending", "rejected"), ("held", "rejected")}),
    Transition.REVIEW: frozenset(
        {
            ("pending", "confirmed"),
            ("held", "confirmed"),
            ("pending", "rejected"),
            ("held", "rejected"),
        }
    ),
    Transition.LEAVE: frozenset(
        {("pending", "rejected"), ("held", "rejected"), ("confirmed", "confirmed")}
    ),
    Transition.REJOIN: frozenset({("confirmed", "confirmed")}),
    Transition.UNDO: frozenset({("confirmed", "rejected"), ("rejected", "confirmed")}),
}

_EVENT_KIND = {
    Transition.CONFIRM: "referral.confirmed",
    Transition.REJECT: "referral.rejected",
    Transition.REJOIN: "referral.returned",
    Transition.UNDO: "referral.undone",
}


class IllegalTransition(EngineError):
    """A change the state machine does not allow (a bug in the caller, never user input)."""

    code = "illegal_transition"


@dataclass(frozen=True, slots=True)
class Move:
    """One referral's change, as the caller made it to the referral row.

    ``old_state`` None is a new referral. ``left_before``/``left_after``: whether the friend
    was away (a confirmed referral with ``left_at``) before and after. ``at`` is when it
    happened (the event's time); ``actor_id`` the manager who decided it, if one did.
    """

    program_id: int
    referred_id: int
    referrer_id: int | None
    transition: Transition
    old_state: str | None
    new_state: str
    at: datetime
    joined_at: datetime | None = None
    confirmed_at: datetime | None = None
    left_before: bool = False
    left_after: bool = False
    reason: str | None = None
    actor_id: int | None = None
    note: str | None = None

    def check(self) -> None:
        allowed = ALLOWED.get(self.transition, frozenset())
        if (self.old_state, self.new_state) not in allowed:
            raise IllegalTransition(
                f"{self.transition}: {self.old_state or 'new'} -> {self.new_state} is not a "
                f"referral transition (program {self.program_id}, person {self.referred_id})"
            )
        if self.transition is Transition.LEAVE and self.new_state == "confirmed":
            if self.left_before or not self.left_after:
                raise IllegalTransition("a leave after confirmation sets left_at once")
        if self.transition is Transition.REJOIN and not (self.left_before and not self.left_after):
            raise IllegalTransition("a return clears the left_at of a friend who had left")


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """A reader's counted total moved (``count_changes``)."""

    program_id: int
    reader_id: int
    before: int
    after: int
    referred_id: int | None
    transition: Transition
    joined_at: datetime | None
    confirmed_at: datetime | None
    manual: bool
    held: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class Recorded:
    """What :func:`record` wrote: each touched reader's counted total after the change
    (readers whose total did not move are left out) and the change records."""

    counted: dict[tuple[int, int], int] = field(default_factory=dict)
    changes: list[ChangeRecord] = field(default_factory=list)


def moves_of(
    rows: Sequence[Mapping[str, Any]],
    transition: Transition,
    new_state: str,
    at: datetime,
    reason: str | None = None,
    *,
    actor_id: int | None = None,
    note: str | None = None,
) -> list[Move]:
    """The moves of the rows :func:`storage.referrals.transition_referrals` changed."""
    return [
        Move(
            program_id=row["program_id"],
            referred_id=row["referred_id"],
            referrer_id=row["referrer_id"],
            transition=transition,
            old_state=row["old_state"],
            new_state=new_state,
            at=at,
            joined_at=row["joined_at"],
            confirmed_at=row["confirmed_at"],
            left_before=row["old_left_at"] is not None,
            left_after=row["left_at"] is not None,
            reason=reason,
            actor_id=actor_id,
            note=note,
        )
        for row in rows
    ]


def contribution(state: str | None, left: bool, subtract: bool) -> dict[str, int]:
    """What one referral adds to its reader's counts (the rule of what counts)."""
    if state is None:
        return {}
    counts = {state: 1}
    if state == "confirmed":
        if left:
            counts["left"] = 1
        if not (left and subtract):
            counts["counted"] = 1
    return counts


_STATES = (None, "pending", "held", "confirmed", "rejected")
# Every (state, away, subtract) once: the join path computes thousands of deltas a second.
_CONTRIBUTIONS = {
    (state, left, subtract): tuple(contribution(state, left, subtract).items())
    for state in _STATES
    for left in (False, True)
    for subtract in (False, True)
}


def delta(move: Move, subtract: bool) -> dict[str, int]:
    """The change of the reader's counts that ``move`` makes."""
    change: dict[str, int] = {}
    for name, value in _CONTRIBUTIONS[(move.new_state, move.left_after, subtract)]:
        change[name] = value
    for name, value in _CONTRIBUTIONS[(move.old_state, move.left_before, subtract)]:
        change[name] = change.get(name, 0) - value
    return {name: value for name, value in change.items() if value}


def event_of(move: Move) -> dict[str, Any]:
    """The audit event of a move."""
    if move.transition in (Transition.JOIN, Transition.HOLD, Transition.REVIEW):
        kind = f"referral.{move.new_state}"
    elif move.transition is Transition.LEAVE:
        kind = "referral.left" if move.new_state == "confirmed" else "referral.rejected"
    else:
        kind = _EVENT_KIND[move.transition]
    data: dict[str, Any] = {"referrer_id": move.referrer_id, "reason": move.reason}
    if move.actor_id is not None or move.transition in (Transition.REVIEW, Transition.UNDO):
        data["manual"] = True
        data["note"] = move.note or None
    if move.transition is Transition.UNDO:
        data["from"] = move.old_state
        data["to"] = move.new_state
    return {
        "program_id": move.program_id,
        "user_id": move.referred_id,
        "actor_id": move.actor_id,
        "kind": kind,
        "at": move.at,
        "data": data,
    }


async def record(
    conn: AsyncConnection,
    moves: Sequence[Move],
    *,
    subtract: Mapping[int, bool],
    now: datetime,
    windows: Mapping[tuple[int, int], tuple[datetime | None, int]] | None = None,
    touch: Iterable[tuple[int, int]] = (),
) -> Recorded:
    """Record ``moves`` (already made to the referral rows, in this transaction): counts,
    events and change records. ``subtract`` maps each program of the moves to whether its
    leave policy subtracts leavers. ``windows`` sets the burst window of those readers (the
    join path); ``touch`` readers get a counts row even when nothing of theirs changed."""
    deltas: dict[tuple[int, int], dict[str, int]] = {}
    steps: list[dict[str, int]] = []  # each move's own delta, in order
    for move in moves:
        move.check()
        step = delta(move, subtract.get(move.program_id, False))
        steps.append(step)
        if move.referrer_id is None:
            continue
        total = deltas.setdefault((move.program_id, move.referrer_id), {})
        for name, value in step.items():
            total[name] = total.get(name, 0) + value
    for key in touch:
        deltas.setdefault(key, {})
    if windows:
        for key in windows:
            deltas.setdefault(key, {})

    # Readers with a move that changed their counted total, even when their moves cancel
    # out in this batch (confirmed at the hold's end, then left): each move gets a record.
    moving = {
        (move.program_id, move.referrer_id)
        for move, step in zip(moves, steps, strict=True)
        if move.referrer_id is not None and step.get("counted")
    }
    counted: dict[tuple[int, int], int] = {}
    for with_windows in (True, False) if windows else (False,):
        for returning in (True, False):
            part = {
                key: change
                for key, change in deltas.items()
                if (key in moving) is returning
                and (windows is not None and key in windows) is with_windows
            }
            if not part:
                continue
            counted.update(
                await db_counts.apply_count_deltas(
                    conn, part, now, windows if with_windows else None, returning=returning
                )
            )
    await db_events.insert_events(conn, [event_of(move) for move in moves])
    changes = _change_records(moves, steps, deltas, counted) if moving else []
    if changes:
        await db_counts.insert_count_changes(conn, [_change_row(change) for change in changes])
    return Recorded({key: counted[key] for key in moving if key in counted}, changes)


def _change_records(
    moves: Sequence[Move],
    steps: Sequence[Mapping[str, int]],
    deltas: Mapping[tuple[int, int], Mapping[str, int]],
    counted_after: Mapping[tuple[int, int], int],
) -> list[ChangeRecord]:
    """One record per move that moved its reader's counted total (also when the reader's
    moves cancel out in the batch), chained in move order from the reader's total before
    the batch to the total after it."""
    running = {key: counted_after[key] - deltas[key].get("counted", 0) for key in counted_after}
    changes: list[ChangeRecord] = []
    for move, change in zip(moves, steps, strict=True):
        if move.referrer_id is None:
            continue
        key = (move.program_id, move.referrer_id)
        step = change.get("counted", 0)
        if not step or key not in running:
            continue
        before = running[key]
        running[key] = before + step
        changes.append(
            ChangeRecord(
                program_id=move.program_id,
                reader_id=move.referrer_id,
                before=before,
                after=before + step,
                referred_id=move.referred_id,
                transition=move.transition,
                joined_at=move.joined_at,
                confirmed_at=move.confirmed_at,
                manual=move.actor_id is not None
                or move.transition in (Transition.REVIEW, Transition.UNDO),
                held=move.old_state == "held",
                at=move.at,
            )
        )
    return changes


def _change_row(change: ChangeRecord) -> dict[str, Any]:
    return {
        "program_id": change.program_id,
        "reader_id": change.reader_id,
        "before": change.before,
        "after": change.after,
        "referred_id": change.referred_id,
        "transition": str(change.transition),
        "joined_at": change.joined_at,
        "confirmed_at": change.confirmed_at,
        "manual": change.manual,
        "held": change.held,
        "at": change.at,
    }


async def recount(
    conn: AsyncConnection, program_id: int, subtract: bool, now: datetime
) -> list[ChangeRecord]:
    """The program's leave policy changed: every reader with friends who left gets their
    counted total recomputed, and one change record per reader whose total moved."""
    moved = await db_counts.recompute_counted(conn, program_id, subtract, now)
    changes = [
        ChangeRecord(
            program_id=program_id,
            reader_id=reader_id,
            before=before,
            after=after,
            referred_id=None,
            transition=Transition.RECOUNT,
            joined_at=None,
            confirmed_at=None,
            manual=False,
            held=False,
            at=now,
        )
        for reader_id, before, after in moved
    ]
    await db_counts.insert_count_changes(conn, [_change_row(change) for change in changes])
    return changes
