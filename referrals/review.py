"""Managers' decisions: the queue of held referrals, approving or rejecting them (one, or all
of one reader), and reversing a decision. Each decision is an audit event with the manager's
id and a change record when a count moves; the reader is told the outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from delivery.outbox import Priority, message
from referrals import transitions
from referrals.context import Engine
from referrals.models import (
    HeldReferral,
    LeavePolicy,
    NotReversible,
    NotReviewable,
    Program,
    Reason,
    ReferralInfo,
    ReviewOutcome,
    ReviewPage,
)
from referrals.programs import ProgramService
from referrals.text import clean_name
from referrals.transitions import Transition
from storage import counts as db_counts
from storage import members as db_members
from storage import outbox as db_outbox
from storage import programs as db_programs
from storage import referrals as db_referrals

MAX_NOTE = 200
REVIEW_PAGE = 10


class ReviewService:
    """What managers decide about referrals."""

    def __init__(self, engine: Engine, programs: ProgramService) -> None:
        self._engine = engine
        self._programs = programs

    async def review_queue(
        self, program_id: int, page: int = 1, per_page: int = REVIEW_PAGE
    ) -> ReviewPage:
        """Held referrals waiting for a manager, oldest first, one page."""
        per_page = max(1, min(per_page, 50))
        async with self._engine.db.read() as conn:
            total = await db_referrals.held_count(conn, program_id)
            pages = max(1, -(-total // per_page))
            page = max(1, min(page, pages))
            rows = await db_referrals.held_referrals(
                conn, program_id, per_page, (page - 1) * per_page
            )
        items = [
            HeldReferral(
                program_id=program_id,
                referred_id=row["referred_id"],
                referred_name=row["referred_name"] or "",
                referrer_id=row["referrer_id"],
                referrer_name=row["referrer_name"] or "",
                reason=row["reason"],
                joined_at=row["joined_at"],
            )
            for row in rows
        ]
        return ReviewPage(items, total, page, pages)

    async def find_member(self, program_id: int, who: str) -> int | None:
        """The user id a manager means by ``who``: a number, or a @username the program
        has seen; None when nobody matches."""
        who = who.strip()
        if who.lstrip("-").isdigit() and len(who) <= 20:
            return int(who)
        name = who.removeprefix("@")
        if not name or len(name) > 64:
            return None
        async with self._engine.db.read() as conn:
            row = await db_members.member_by_username(conn, program_id, name)
        return int(row["user_id"]) if row else None

    async def review(
        self,
        program_id: int,
        referred_id: int,
        actor_id: int | None,
        *,
        approve: bool,
        note: str = "",
    ) -> ReviewOutcome:
        """A manager confirms or rejects a pending or held referral, with a note."""
        program = await self._programs.get_program(program_id)
        await self._engine.require_manager(program, actor_id)
        async with self._engine.db.write() as conn:
            row = await db_referrals.referral(conn, program_id, referred_id)
            if row is None:
                raise NotReviewable("no such referral")
            if row["state"] not in ("pending", "held"):
                raise NotReviewable(f"the referral is already {row['state']}", state=row["state"])
            decided = await self._decide(
                conn, program, [referred_id], ("pending", "held"), actor_id, approve, note
            )
            if not decided:
                raise NotReviewable("the referral changed meanwhile")
        return decided[0]

    async def review_reader(
        self, program_id: int, referrer_id: int, actor_id: int | None, *, approve: bool
    ) -> list[ReviewOutcome]:
        """A manager approves or rejects every held referral of one reader at once."""
        program = await self._programs.get_program(program_id)
        await self._engine.require_manager(program, actor_id)
        async with self._engine.db.write() as conn:
            keys = await db_referrals.held_keys_of(conn, program_id, referrer_id)
            return await self._decide(conn, program, keys, ("held",), actor_id, approve, "")

    async def referral_of(self, program_id: int, referred_id: int) -> ReferralInfo | None:
        """One friend's referral as a manager sees it (None: not referred in the program)."""
        async with self._engine.db.read() as conn:
            row = await db_referrals.referral(conn, program_id, referred_id)
            if row is None:
                return None
            keys = [(program_id, referred_id)]
            if row["referrer_id"] is not None:
                keys.append((program_id, row["referrer_id"]))
            names = await db_members.members_by_keys(conn, sorted(keys), ("display_name",))

        def name(user_id: int | None) -> str:
            found = names.get((program_id, user_id)) if user_id is not None else None
            return str(found["display_name"]) if found else ""

        return ReferralInfo(
            program_id=program_id,
            referred_id=referred_id,
            referred_name=name(referred_id),
            referrer_id=row["referrer_id"],
            referrer_name=name(row["referrer_id"]),
            state=row["state"],
            reason=row["reason"],
            joined_at=row["joined_at"],
        )

    async def undo(
        self,
        program_id: int,
        referred_id: int,
        actor_id: int | None,
        *,
        expect: str | None = None,
        note: str = "",
    ) -> ReviewOutcome:
        """A manager reverses the decision on a referral: a confirmed one is rejected (a
        manager's decision), a rejected one is confirmed. Audited, with a change record;
        rewards already delivered stay delivered. ``expect`` is the state the manager saw:
        when it has changed since (the same press delivered twice), nothing happens."""
        program = await self._programs.get_program(program_id)
        await self._engine.require_manager(program, actor_id)
        now = self._engine.clock.now()
        note = clean_name(note, MAX_NOTE)
        async with self._engine.db.write() as conn:
            row = await db_referrals.referral(conn, program_id, referred_id, lock=True)
            if row is None:
                raise NotReversible("no such referral")
            if expect is not None and row["state"] != expect:
                raise NotReversible(f"the referral is {row['state']} already", state=row["state"])
            if row["state"] == "confirmed":
                values: dict[str, Any] = {"state": "rejected", "reason": str(Reason.MANUAL)}
            elif row["state"] == "rejected":
                values = {"state": "confirmed", "reason": None}
                if row["confirmed_at"] is None:
                    values["confirmed_at"] = now
                # Counted again as the friend is now: away if they are not a member.
                member = await db_members.member(conn, program_id, referred_id)
                if member is not None and member["is_member"]:
                    values["left_at"] = None
                else:
                    values["left_at"] = (member["last_left_at"] if member else None) or now
            else:
                raise NotReversible(
                    f"the referral is {row['state']}: decide it first", state=row["state"]
                )
            values.update(decided_at=now, decided_by=actor_id)
            moved = await db_referrals.transition_referrals(
                conn, [(program_id, referred_id)], (row["state"],), values
            )
            if not moved:
                raise NotReversible("the referral changed meanwhile")
            moves = transitions.moves_of(
                moved,
                Transition.UNDO,
                values["state"],
                now,
                values["reason"],
                actor_id=actor_id,
                note=note or None,
            )
            outcomes = await self._record(conn, program, moves)
        return outcomes[0]

    async def _decide(
        self,
        conn: AsyncConnection,
        program: Program,
        referred_ids: Sequence[int],
        from_states: tuple[str, ...],
        actor_id: int | None,
        approve: bool,
        note: str,
    ) -> list[ReviewOutcome]:
        now = self._engine.clock.now()
        values: dict[str, Any] = {"decided_at": now, "decided_by": actor_id}
        if approve:
            values.update(state="confirmed", confirmed_at=now, reason=None)
        else:
            values.update(state="rejected", reason=str(Reason.MANUAL))
        moved = await db_referrals.transition_referrals(
            conn, [(program.id, referred_id) for referred_id in referred_ids], from_states, values
        )
        moves = transitions.moves_of(
            moved,
            Transition.REVIEW,
            values["state"],
            now,
            values["reason"],
            actor_id=actor_id,
            note=clean_name(note, MAX_NOTE) or None,
        )
        return await self._record(conn, program, moves)

    async def _record(
        self, conn: AsyncConnection, program: Program, moves: Sequence[transitions.Move]
    ) -> list[ReviewOutcome]:
        """Counts, events and change records of the decisions, and one message per reader
        telling them how their friends were decided."""
        now = self._engine.clock.now()
        # The policy as it stands in this transaction (a change of it waits for this one).
        rules = (await db_programs.programs_by_ids(conn, [program.id], share=True)).get(program.id)
        policy = rules["leave_policy"] if rules is not None else program.leave_policy
        recorded = await transitions.record(
            conn,
            moves,
            subtract={program.id: policy == LeavePolicy.SUBTRACT},
            now=now,
        )
        names = await db_members.members_by_keys(
            conn, sorted({(m.program_id, m.referred_id) for m in moves}), ("display_name",)
        )
        counts = await _counted(conn, program.id, {m.referrer_id for m in moves}, recorded)
        await db_outbox.enqueue(conn, _review_notices(program, moves, names, counts, now))
        return [
            ReviewOutcome(m.program_id, m.referred_id, m.referrer_id, m.new_state) for m in moves
        ]


async def _counted(
    conn: AsyncConnection,
    program_id: int,
    readers: set[int | None],
    recorded: transitions.Recorded,
) -> dict[int, int]:
    """Each reader's counted total after the decisions."""
    keys = sorted((program_id, r) for r in readers if r is not None)
    rows = await db_counts.counts_by_keys(conn, keys, ("counted",))
    found = {key[1]: row["counted"] for key, row in rows.items()}
    found.update({key[1]: value for key, value in recorded.counted.items()})
    return found


def _review_notices(
    program: Program,
    moves: Sequence[transitions.Move],
    names: Mapping[tuple[int, int], Any],
    counted: Mapping[int, int],
    now: datetime,
) -> list[dict[str, Any]]:
    grouped: dict[int, list[transitions.Move]] = {}
    for move in moves:
        if move.referrer_id is not None and move.referrer_id != move.referred_id:
            grouped.setdefault(move.referrer_id, []).append(move)
    notes = []
    for referrer_id, decided in grouped.items():
        approved = [m for m in decided if m.new_state == "confirmed"]
        rejected = [m for m in decided if m.new_state == "rejected"]

        def name(move: transitions.Move) -> str:
            row = names.get((move.program_id, move.referred_id))
            return str(row["display_name"]) if row else ""

        notes.append(
            message(
                program.platform,
                "user",
                referrer_id,
                "notify_reviewed",
                {
                    "program_title": program.title,
                    "approved": [name(m) for m in approved[:10]],
                    "approved_count": len(approved),
                    "rejected": [name(m) for m in rejected[:10]],
                    "rejected_count": len(rejected),
                    "undo": decided[0].transition is Transition.UNDO,
                    "counted": counted.get(referrer_id, 0),
                },
                priority=Priority.NOTIFY,
                now=now,
                program_id=program.id,
                # No idempotency key: the decision itself is guarded by the referral's state
                # (a repeated press decides nothing), so each notice is made once.
            )
        )
    return notes
