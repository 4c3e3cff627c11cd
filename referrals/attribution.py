"""Attribution: who a newcomer counts for, and what happens to their referral over time —
joins, join requests and the human check, leaves, the confirmation after the hold, and the
bot-subscription mode (starting the bot subscribes, blocking it leaves).

Every referral change goes through :mod:`referrals.transitions`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from delivery.outbox import Priority, message
from delivery.port import Membership, MembershipResult, RetryAfter, Unreachable
from referrals import joins, requests, transitions
from referrals.clock import ensure_utc
from referrals.context import Engine
from referrals.links import note_person
from referrals.models import (
    ConfirmedReferrer,
    ConfirmResult,
    JoinEvent,
    JoinOutcome,
    JoinRequestOutcome,
    LeaveEvent,
    LeaveOutcome,
    LeavePolicy,
    LeaveStatus,
    Person,
    Program,
    ProgramNotFound,
    Reason,
    RememberOutcome,
    RememberStatus,
)
from referrals.people import People
from referrals.programs import ProgramService, program_from_row
from referrals.transitions import Move, Transition
from storage import attempts as db_attempts
from storage import events as db_events
from storage import join_requests as db_requests
from storage import links as db_links
from storage import members as db_members
from storage import outbox as db_outbox
from storage import programs as db_programs
from storage import referrals as db_referrals
from storage.batch import Batcher

logger = logging.getLogger(__name__)

MEMBERSHIP_CHECKS_AT_ONCE = 10
HUMAN_CHECK_PATIENCE = timedelta(hours=24)
SUBSCRIPTION = "bot"  # the program kind of a newsletter that is the bot itself


def human_check_key(program_id: int, user_id: int, requested_at: datetime) -> str:
    """The outbox key of the human-check DM of one join request (one check per request)."""
    return f"check:{program_id}:{user_id}:{int(ensure_utc(requested_at).timestamp())}"


@dataclass(frozen=True, slots=True)
class PassedCheck:
    """A human check passed: the request is to be approved (after a welcome, while the DM
    window of the request is open). ``approved_now`` is False for a second press."""

    program: Program
    requested_at: datetime
    referrer_id: int | None
    referrer_name: str | None
    approved_now: bool


class AttributionService:
    """Joins, leaves, join requests, confirmations and the bot-subscription mode."""

    def __init__(
        self,
        engine: Engine,
        programs: ProgramService,
        people: People,
        *,
        max_batch: int = 500,
    ) -> None:
        self._engine = engine
        self._programs = programs
        self._people = people
        self._joins: Batcher[JoinEvent, JoinOutcome] = Batcher(
            self._process_joins, name="join-batcher", max_batch=max_batch
        )
        self._requests: Batcher[requests.JoinRequest, JoinRequestOutcome] = Batcher(
            self._process_requests, name="join-request-batcher", max_batch=max_batch
        )

    # --- through the bot ------------------------------------------------------------

    async def remember(self, code: str, friend: Person) -> RememberOutcome:
        """A friend opened a reader's link in the bot (through-the-bot mode): remember the
        reader so the friend's later join is matched by user id. The first reader wins.

        In a bot subscription (the newsletter is the bot), opening the link is joining:
        the friend is subscribed at once (``SUBSCRIBED``). Someone already counted (or a
        member before) is not remembered, but the link's reader sees the attempt on their
        receipt, as a join through a direct link would show it."""
        if not code or len(code) > 64:
            return RememberOutcome(RememberStatus.UNKNOWN_LINK)
        now = self._engine.clock.now()
        async with self._engine.db.write() as conn:
            link = await db_links.link_by_code(conn, code)
            if link is None or link["revoked_at"] is not None:
                return RememberOutcome(RememberStatus.UNKNOWN_LINK)
            program_row = await db_programs.program_by_id(conn, link["program_id"])
            if program_row is None:
                return RememberOutcome(RememberStatus.UNKNOWN_LINK)
            program = program_from_row(program_row)
            referrer_id = link["referrer_id"]
            referrer = await db_members.member(conn, program.id, referrer_id)
            base = RememberOutcome(
                RememberStatus.REMEMBERED,
                program,
                referrer_id,
                referrer["display_name"] if referrer else None,
            )
            if referrer_id == friend.user_id:
                return replace(base, status=RememberStatus.SELF_REFERRAL)
            existing = await db_members.member(conn, program.id, friend.user_id)
            counted = await db_referrals.referral(conn, program.id, friend.user_id)
            if counted is not None or (existing and existing["first_joined_at"] is not None):
                reason = (
                    Reason.COUNTED_FOR_OTHER
                    if counted is not None and counted["referrer_id"] != referrer_id
                    else Reason.REJOIN
                )
                await db_attempts.insert_join_attempts(
                    conn,
                    [
                        {
                            "program_id": program.id,
                            "user_id": friend.user_id,
                            "referrer_id": referrer_id,
                            "link_id": link["id"],
                            "outcome": "not_counted",
                            "reason": str(reason),
                            "at": now,
                            "event_key": f"open:{link['id']}:{friend.user_id}",
                        }
                    ],
                )
                return replace(base, status=RememberStatus.ALREADY_MEMBER)
            await note_person(conn, program.id, friend, now)
            if not await db_members.remember_referrer(
                conn, program.id, friend.user_id, referrer_id, link["id"], now
            ):
                # The invitation that stands is the earlier reader's: name them.
                friend_row = await db_members.member(conn, program.id, friend.user_id)
                first_id = friend_row["remembered_referrer_id"] if friend_row else None
                first = await db_members.member(conn, program.id, first_id) if first_id else None
                base = replace(
                    base,
                    status=RememberStatus.ALREADY_REMEMBERED,
                    referrer_id=first_id,
                    referrer_name=first["display_name"] if first else None,
                )
            else:
                await db_events.insert_events(
                    conn,
                    [
                        {
                            "program_id": program.id,
                            "user_id": friend.user_id,
                            "actor_id": None,
                            "kind": "friend.remembered",
                            "at": now,
                            "data": {"referrer_id": referrer_id},
                        }
                    ],
                )
        if program.kind == SUBSCRIPTION:
            await self.record_join(
                JoinEvent(program.id, friend, now, link=code, event_key=_start_key(friend))
            )
            return replace(base, status=RememberStatus.SUBSCRIBED)
        return base

    # --- the bot-subscription mode --------------------------------------------------

    async def started(self, platform: str, person: Person, at: datetime) -> list[Program]:
        """Someone started the bot in private: in every bot subscription of the platform
        (the newsletter is the bot) that is subscribing. Returns the platform's programs."""
        programs = await self._programs.list_programs(platform)
        await self.record_joins(
            [
                JoinEvent(program.id, person, at, event_key=_start_key(person))
                for program in programs
                if program.kind == SUBSCRIPTION
            ]
        )
        return programs

    async def blocked(self, platform: str, user_id: int, at: datetime) -> None:
        """Someone blocked the bot: it may not write to them any more, and in a bot
        subscription that is leaving (the only kind of program where a block is a leave)."""
        await self._people.blocked(platform, user_id)
        for program in await self._programs.list_programs(platform):
            if program.kind == SUBSCRIPTION:
                await self.record_leave(LeaveEvent(program.id, user_id, at))

    async def unblocked(
        self, platform: str, person: Person, at: datetime, *, event_key: str
    ) -> None:
        """Someone unblocked the bot: it may write to them again, and in a bot subscription
        they are back (a rejoin: it does not count twice). ``event_key`` names the platform
        event, so a re-delivery changes nothing."""
        await self._people.unblocked(platform, person.user_id)
        await self.record_joins(
            [
                JoinEvent(program.id, person, at, event_key=f"unblock:{event_key}")
                for program in await self._programs.list_programs(platform)
                if program.kind == SUBSCRIPTION
            ]
        )

    # --- join requests (the direct-link mode) ----------------------------------------

    async def record_join_request(
        self, program_id: int, person: Person, at: datetime, link: str | None
    ) -> JoinRequestOutcome:
        """Someone asked to join through a join-request link. The reader whose link it is
        is remembered for them; the request is to be approved now (``APPROVE``), or after
        the one-button human check when the program asks for one (``CHECK``) and the check
        can still reach them: inside the DM window and not blocked.

        A re-delivered request gets the answer it got the first time (a pending check stays
        a check); ``ALREADY`` means it was settled (declined) before: nothing more to do. A
        new request after a settled one starts over. A declined request or a failed check
        takes no slot."""
        return await self._requests.submit(
            requests.JoinRequest(program_id, person, ensure_utc(at), link)
        )

    async def _process_requests(self, batch: list[requests.JoinRequest]) -> list[requests.Result]:
        windows = {platform: self._check_window(platform) for platform in self._engine.ports}
        async with self._engine.db.write() as conn:
            return await requests.decide_join_requests(
                conn, batch, self._engine.clock.now(), windows
            )

    def _check_window(self, platform: str) -> timedelta | None:
        """How long after a join request its human check may be offered on ``platform``
        (its port tells how long the bot may write to a requester)."""
        port = self._engine.ports.get(platform)
        return requests.check_window(getattr(port, "join_request_window", None))

    async def pass_human_check(self, program_id: int, user_id: int) -> PassedCheck | None:
        """The person pressed the check button: their request is to be approved. None when
        they have no request that passed (none, or it was declined)."""
        now = self._engine.clock.now()
        async with self._engine.db.write() as conn:
            request = await db_requests.join_request(conn, program_id, user_id)
            if request is None or request["state"] == "declined":
                return None
            program_row = await db_programs.program_by_id(conn, program_id)
            if program_row is None:
                return None
            first = await db_requests.decide_join_request(
                conn, program_id, user_id, "approved", now
            )
            referrer = (
                await db_members.member(conn, program_id, request["referrer_id"])
                if request["referrer_id"] is not None
                else None
            )
        return PassedCheck(
            program_from_row(program_row),
            request["requested_at"],
            request["referrer_id"],
            referrer["display_name"] if referrer else None,
            approved_now=first,
        )

    async def settle_join_requests(self, now: datetime | None = None) -> tuple[int, int]:
        """Requests waiting for a human check: approve those the check cannot reach (its DM
        failed, or did not go out within the window: never punish the friend for that),
        decline those who got the check and ignored it for a day; the rest wait.
        Returns (approved, declined)."""
        now = ensure_utc(now) if now else self._engine.clock.now()
        async with self._engine.db.read() as conn:
            # Requests younger than the longest check window may have a check that failed.
            young = max(
                (w for p in self._engine.ports if (w := self._check_window(p))), default=None
            )
            since = now - (young or timedelta(0))
            rows = await db_requests.unsettled_join_requests(conn, now, since)
            keys = {
                (row["program_id"], row["user_id"]): human_check_key(
                    row["program_id"], row["user_id"], row["requested_at"]
                )
                for row in rows
            }
            states = await db_outbox.outbox_states(conn, list(keys.values()))
        approved = declined = 0
        for row in rows:
            key = (row["program_id"], row["user_id"])
            check = states.get(keys[key])
            due = row["check_until"] <= now
            if check == "sent":
                if now - row["requested_at"] < HUMAN_CHECK_PATIENCE:
                    if due:  # delivered: the person has a day to press the button
                        async with self._engine.db.write() as conn:
                            await db_requests.postpone_join_request(
                                conn, *key, row["requested_at"] + HUMAN_CHECK_PATIENCE
                            )
                    continue
                decision = "declined"
            elif check in ("failed", "expired") or due:
                decision = "approved"
            else:
                continue  # the check is on its way
            program = await self._programs.find_program_by_id(row["program_id"])
            if program is None:
                continue
            port = self._engine.port(program.platform)
            if decision == "declined":
                outcome = await port.decline_join_request(program.destination, row["user_id"])
            else:
                outcome = await port.approve_join_request(program.destination, row["user_id"])
            if isinstance(outcome, RetryAfter):
                continue
            async with self._engine.db.write() as conn:
                if await db_requests.decide_join_request(conn, *key, decision, now):
                    if decision == "declined":
                        declined += 1
                    else:
                        approved += 1
        return approved, declined

    # --- joins ------------------------------------------------------------------------

    async def record_join(self, event: JoinEvent) -> JoinOutcome:
        """Count a join (DESIGN.md, referral states). Concurrent calls share a transaction."""
        return await self._joins.submit(event)

    async def record_joins(self, events: Sequence[JoinEvent]) -> list[JoinOutcome]:
        """Several joins at once (e.g. one batch of platform updates)."""
        return list(await asyncio.gather(*(self._joins.submit(e) for e in events)))

    async def _process_joins(self, batch: list[JoinEvent]) -> list[joins.Result]:
        async with self._engine.db.write() as conn:
            return await joins.decide_joins(conn, batch, self._engine.clock.now())

    # --- leaves -----------------------------------------------------------------------

    async def record_leave(self, event: LeaveEvent) -> LeaveOutcome:
        """A member left or was removed. In the hold period the referral is rejected; after
        confirmation it gets ``left_at`` and the leave policy decides if it still counts."""
        at = ensure_utc(event.at)
        now = self._engine.clock.now()
        key = (event.program_id, event.user_id)
        async with self._engine.db.write() as conn:
            program_row = (
                await db_programs.programs_by_ids(conn, [event.program_id], share=True)
            ).get(event.program_id)
            if program_row is None:
                raise ProgramNotFound(f"no program {event.program_id}")
            await db_members.set_member_left(conn, event.program_id, event.user_id, at)
            # Locked (PostgreSQL): no other instance can confirm it between this read and
            # the change decided from it.
            found = await db_referrals.referral(conn, event.program_id, event.user_id, lock=True)
            if found is None:
                return LeaveOutcome(LeaveStatus.NO_REFERRAL)
            subtract = program_row["leave_policy"] == LeavePolicy.SUBTRACT
            policy = {event.program_id: subtract}
            referrer_id = found["referrer_id"]
            state = found["state"]
            moves: list[Move] = []
            if (
                state == "pending"
                and not program_row["paused"]
                and at >= ensure_utc(found["hold_until"])
            ):
                # They stayed the whole hold and left after it; the scheduler had not
                # confirmed them yet (it was down, or its tick is still to come).
                hold_until = ensure_utc(found["hold_until"])
                moved = await db_referrals.transition_referrals(
                    conn,
                    [key],
                    ("pending",),
                    {"state": "confirmed", "confirmed_at": hold_until, "decided_at": now},
                )
                moves.extend(
                    transitions.moves_of(moved, Transition.CONFIRM, "confirmed", hold_until)
                )
                if moved:
                    state = "confirmed"
            outcome = LeaveOutcome(
                LeaveStatus.NO_REFERRAL,
                referrer_id,
                state == "confirmed" and not subtract and found["left_at"] is not None,
            )
            if state in ("pending", "held"):
                reason = Reason.REMOVED_DURING_HOLD if event.removed else Reason.LEFT_DURING_HOLD
                moved = await db_referrals.transition_referrals(
                    conn,
                    [key],
                    ("pending", "held"),
                    {"state": "rejected", "reason": str(reason), "decided_at": at},
                )
                moves.extend(
                    transitions.moves_of(moved, Transition.LEAVE, "rejected", at, str(reason))
                )
                if moved:
                    outcome = LeaveOutcome(LeaveStatus.REJECTED, referrer_id)
            elif state == "confirmed":
                left = await db_referrals.set_left_at(conn, [key], at)
                for row in left:
                    moves.append(
                        Move(
                            row["program_id"],
                            row["referred_id"],
                            row["referrer_id"],
                            Transition.LEAVE,
                            "confirmed",
                            "confirmed",
                            at,
                            joined_at=row["joined_at"],
                            confirmed_at=row["confirmed_at"],
                            left_before=False,
                            left_after=True,
                        )
                    )
                if left:
                    outcome = LeaveOutcome(
                        LeaveStatus.LEFT_AFTER_CONFIRM, referrer_id, not subtract
                    )
                else:
                    outcome = LeaveOutcome(LeaveStatus.NO_REFERRAL, referrer_id, not subtract)
            await transitions.record(conn, moves, subtract=policy, now=now)
        return outcome

    # --- confirmation -----------------------------------------------------------------

    async def confirm_due(self, now: datetime | None = None, *, limit: int = 500) -> ConfirmResult:
        """Confirm pending referrals past their hold whose person is still a member.

        The platform is asked first (a leave update can be missed); someone no longer a
        member is rejected, and one it cannot answer for now stays pending for the next
        tick. Paused programs confirm nothing. Returns the referrers whose count changed.
        """
        now = ensure_utc(now) if now else self._engine.clock.now()
        confirmed = rejected = deferred = 0
        changed: dict[tuple[int, int], int] = {}
        after: tuple[datetime, int, int] | None = None
        semaphore = asyncio.Semaphore(MEMBERSHIP_CHECKS_AT_ONCE)
        while True:
            async with self._engine.db.read() as conn:
                due = await db_referrals.due_referrals(conn, now, limit, after)
                programs = await db_programs.programs_by_ids(
                    conn, {row["program_id"] for row in due}
                )
            if not due:
                break
            last = due[-1]
            after = (last["hold_until"], last["program_id"], last["referred_id"])

            answers = await asyncio.gather(
                *(self._membership(programs[row["program_id"]], row, semaphore) for row in due)
            )
            stay: list[tuple[int, int]] = []
            gone: list[tuple[int, int]] = []
            for row, answer in zip(due, answers, strict=True):
                key = (row["program_id"], row["referred_id"])
                if isinstance(answer, MembershipResult):
                    (stay if answer.status is Membership.MEMBER else gone).append(key)
                else:
                    deferred += 1
                    logger.info("membership of %s unknown for now: %s", key, answer)
            if stay or gone:
                async with self._engine.db.write() as conn:
                    result = await self._apply_confirmations(conn, stay, gone, now)
                confirmed += result[0]
                rejected += result[1]
                changed.update(result[2])
            if len(due) < limit:
                break
        return ConfirmResult(
            confirmed=confirmed,
            rejected=rejected,
            deferred=deferred,
            referrers=[ConfirmedReferrer(p, r, c) for (p, r), c in sorted(changed.items())],
        )

    async def _membership(
        self, program_row: Mapping[Any, Any], row: Mapping[Any, Any], semaphore: asyncio.Semaphore
    ) -> MembershipResult | RetryAfter | Unreachable | None:
        program = program_from_row(program_row)
        port = self._engine.ports.get(program.platform)
        if port is None:
            return None  # no adapter running: ask again next tick
        async with semaphore:
            return await port.get_membership(program.destination, row["referred_id"])

    async def _apply_confirmations(
        self,
        conn: AsyncConnection,
        stay: list[tuple[int, int]],
        gone: list[tuple[int, int]],
        now: datetime,
    ) -> tuple[int, int, dict[tuple[int, int], int]]:
        # A program paused while its members were being asked confirms nothing; the rules
        # read here (the leave policy) hold until this transaction ends.
        programs = await db_programs.programs_by_ids(
            conn, {key[0] for key in (*stay, *gone)}, share=True
        )
        running = {pid for pid, row in programs.items() if not row["paused"]}
        stay = [key for key in stay if key[0] in running]
        gone = [key for key in gone if key[0] in running]
        moved = await db_referrals.transition_referrals(
            conn,
            stay,
            ("pending",),
            {"state": "confirmed", "confirmed_at": now, "decided_at": now},
        )
        reason = str(Reason.LEFT_DURING_HOLD)
        dropped = await db_referrals.transition_referrals(
            conn, gone, ("pending",), {"state": "rejected", "reason": reason, "decided_at": now}
        )
        for row in dropped:
            await db_members.set_member_left(conn, row["program_id"], row["referred_id"], now)
        moves = [
            *transitions.moves_of(moved, Transition.CONFIRM, "confirmed", now),
            *transitions.moves_of(dropped, Transition.REJECT, "rejected", now, reason),
        ]
        recorded = await transitions.record(
            conn,
            moves,
            subtract={
                pid: row["leave_policy"] == LeavePolicy.SUBTRACT for pid, row in programs.items()
            },
            now=now,
        )
        await db_outbox.enqueue(
            conn, await self._confirm_notifications(conn, moved, recorded.counted, programs)
        )
        confirmed_keys = {
            (row["program_id"], row["referrer_id"])
            for row in moved
            if row["referrer_id"] is not None
        }
        return (
            len(moved),
            len(dropped),
            {key: recorded.counted[key] for key in confirmed_keys if key in recorded.counted},
        )

    async def _confirm_notifications(
        self,
        conn: AsyncConnection,
        moved: list[dict[str, Any]],
        counted: dict[tuple[int, int], int],
        programs: Mapping[int, Any],
    ) -> list[dict[str, Any]]:
        """One DM per referrer: "N referrals confirmed, you now have M"."""
        grouped: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for row in moved:
            if row["referrer_id"] is not None:
                grouped.setdefault((row["program_id"], row["referrer_id"]), []).append(row)
        if not grouped:
            return []
        names = await db_members.members_by_keys(
            conn, sorted({(r["program_id"], r["referred_id"]) for r in moved})
        )
        now = self._engine.clock.now()
        notes = []
        for (program_id, referrer_id), rows in grouped.items():
            program = programs[program_id]
            friends = [
                names[(program_id, r["referred_id"])]["display_name"]
                if (program_id, r["referred_id"]) in names
                else ""
                for r in rows[:10]
            ]
            notes.append(
                message(
                    program["platform"],
                    "user",
                    referrer_id,
                    "notify_confirmed",
                    {
                        "program_title": program["title"],
                        "friends": friends,
                        "count": len(rows),
                        "counted": counted.get((program_id, referrer_id), 0),
                    },
                    priority=Priority.NOTIFY,
                    now=now,
                    program_id=program_id,
                    key=f"confirmed:{program_id}:{rows[0]['referred_id']}",
                )
            )
        return notes


def _start_key(person: Person) -> str:
    return f"start:{person.user_id}"
