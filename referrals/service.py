"""The engine's public API. Plain values in and out; every operation is one transaction
that changes referrals, counts and the event log together."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from delivery.outbox import Priority, message
from delivery.port import (
    AdminResult,
    Delivered,
    InviteCreated,
    Membership,
    MembershipResult,
    PlatformPort,
    RetryAfter,
    Unreachable,
)
from referrals import joins, requests
from referrals.models import (
    BadLabel,
    ConfirmedReferrer,
    ConfirmResult,
    Counts,
    DeletionSummary,
    JoinEvent,
    JoinOutcome,
    JoinRequestOutcome,
    LeaveEvent,
    LeaveOutcome,
    LeavePolicy,
    LeaveStatus,
    Link,
    LinkResult,
    NotAllowed,
    NotReviewable,
    Person,
    PlatformUnavailable,
    PlatformUser,
    Program,
    ProgramExists,
    ProgramNotFound,
    ProgramPaused,
    Reason,
    Receipt,
    ReceiptItem,
    RememberOutcome,
    RememberStatus,
    ReviewOutcome,
    SettingsError,
    TooManyLinks,
)
from referrals.programs import KINDS, PLATFORMS, program_from_row, validate_settings
from referrals.text import clean_name
from storage import counts as db_counts
from storage import events as db_events
from storage import join_requests as db_requests
from storage import links as db_links
from storage import members as db_members
from storage import outbox as db_outbox
from storage import privacy as db_privacy
from storage import programs as db_programs
from storage import referrals as db_referrals
from storage.batch import Batcher
from storage.clock import Clock, ensure_utc
from storage.database import Database

logger = logging.getLogger(__name__)

LABEL_RE = re.compile(r"^[a-z0-9_-]{1,24}$")
MAX_LINKS_PER_READER = 10
MAX_NOTE = 200
MEMBERSHIP_CHECKS_AT_ONCE = 10
HUMAN_CHECK_WINDOW = requests.HUMAN_CHECK_WINDOW
HUMAN_CHECK_PATIENCE = timedelta(hours=24)


def normalise_label(label: str | None) -> str:
    """'' for the reader's main link, else 1–24 characters of a-z 0-9 _ - (case folded)."""
    if label is None or label == "":
        return ""
    folded = label.strip().lower()
    if not LABEL_RE.fullmatch(folded):
        raise BadLabel("a label is 1–24 characters of a-z, 0-9, _ and -", label=label[:40])
    return folded


def _link(row: Mapping[Any, Any]) -> Link:
    return Link(
        id=row["id"],
        program_id=row["program_id"],
        referrer_id=row["referrer_id"],
        label=row["label"],
        code=row["code"],
        url=row["url"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def _counts(row: Mapping[Any, Any] | None) -> Counts:
    if row is None:
        return Counts()
    return Counts(
        pending=row["pending"],
        held=row["held"],
        confirmed=row["confirmed"],
        rejected=row["rejected"],
        left=row["left"],
        counted=row["counted"],
    )


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


class ReferralService:
    """Programs, links, joins, leaves, confirmations, reviews, receipts, deletion.

    ``ports`` maps a platform name (``"telegram"``) to its :class:`PlatformPort`.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        ports: Mapping[str, PlatformPort] | None = None,
        *,
        max_batch: int = 500,
    ) -> None:
        self._db = db
        self._clock = clock
        self._ports: dict[str, PlatformPort] = dict(ports or {})
        self._batcher: Batcher[JoinEvent, JoinOutcome] = Batcher(
            self._process_joins, name="join-batcher", max_batch=max_batch
        )
        self._requests: Batcher[requests.JoinRequest, JoinRequestOutcome] = Batcher(
            self._process_requests, name="join-request-batcher", max_batch=max_batch
        )

    def add_port(self, port: PlatformPort) -> None:
        self._ports[port.platform] = port

    def _port(self, platform: str) -> PlatformPort:
        port = self._ports.get(platform)
        if port is None:
            raise PlatformUnavailable(f"no adapter for {platform!r} is running")
        return port

    # --- programs -------------------------------------------------------------------

    async def create_program(
        self,
        platform: str,
        destination_id: int,
        kind: str,
        title: str,
        *,
        created_by: int | None = None,
        **settings: Any,
    ) -> Program:
        """Create the program of a destination; raises :class:`ProgramExists` if it has one."""
        if platform not in PLATFORMS:
            raise SettingsError("platform", f"must be one of {', '.join(PLATFORMS)}")
        if kind not in KINDS:
            raise SettingsError("kind", f"must be one of {', '.join(KINDS)}")
        username = settings.get("username")
        values = validate_settings({"title": title, **settings}, kind=kind, username=username)
        if "join_mode" not in values:
            # DESIGN.md: public chats go through the bot; private chats may use direct links,
            # but the through-the-bot mode is the default everywhere (it can DM the friend).
            values["join_mode"] = "bot"
        now = self._clock.now()
        async with self._db.write() as conn:
            program_id = await db_programs.insert_program(
                conn,
                {
                    **values,
                    "platform": platform,
                    "destination_id": destination_id,
                    "kind": kind,
                    "created_by": created_by,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if program_id is None:
                raise ProgramExists(
                    f"{platform} destination {destination_id} already has a program"
                )
            await db_events.insert_events(
                conn,
                [
                    {
                        "program_id": program_id,
                        "user_id": None,
                        "actor_id": created_by,
                        "kind": "program.created",
                        "at": now,
                        "data": {"destination_id": destination_id, "kind": kind},
                    }
                ],
            )
            row = await db_programs.program_by_id(conn, program_id)
        assert row is not None
        return program_from_row(row)

    async def get_program(self, program_id: int) -> Program:
        async with self._db.read() as conn:
            row = await db_programs.program_by_id(conn, program_id)
        if row is None:
            raise ProgramNotFound(f"no program {program_id}")
        return program_from_row(row)

    async def find_program_by_id(self, program_id: int) -> Program | None:
        async with self._db.read() as conn:
            row = await db_programs.program_by_id(conn, program_id)
        return program_from_row(row) if row else None

    async def program_totals(self, program_id: int) -> dict[str, int]:
        """Readers with referrals, referrals by state, and joins nobody referred."""
        async with self._db.read() as conn:
            return await db_programs.program_totals(conn, program_id)

    async def find_program(self, platform: str, destination_id: int) -> Program | None:
        async with self._db.read() as conn:
            row = await db_programs.program_by_destination(conn, platform, destination_id)
        return program_from_row(row) if row else None

    async def list_programs(self, platform: str | None = None) -> list[Program]:
        async with self._db.read() as conn:
            rows = await db_programs.list_programs(conn, platform)
        return [program_from_row(row) for row in rows]

    async def update_settings(
        self, program_id: int, actor_id: int | None, **changes: Any
    ) -> Program:
        """Change settings after checking that ``actor_id`` manages the program.

        ``actor_id=None`` is the operator (CLI, scheduler) and is not checked.
        """
        program = await self.get_program(program_id)
        values = validate_settings(changes, kind=program.kind, username=program.username)
        if "join_mode" in changes and "username" in values:
            validate_settings(
                {"join_mode": changes["join_mode"]}, kind=program.kind, username=values["username"]
            )
        await self._require_manager(program, actor_id)
        now = self._clock.now()
        async with self._db.write() as conn:
            await db_programs.update_program(conn, program_id, {**values, "updated_at": now})
            if "leave_policy" in values and values["leave_policy"] != program.leave_policy:
                await db_counts.recompute_counted(
                    conn, program_id, values["leave_policy"] == LeavePolicy.SUBTRACT
                )
            await db_events.insert_events(
                conn,
                [
                    {
                        "program_id": program_id,
                        "user_id": None,
                        "actor_id": actor_id,
                        "kind": "program.settings",
                        "at": now,
                        "data": {k: v for k, v in values.items()},
                    }
                ],
            )
            row = await db_programs.program_by_id(conn, program_id)
        assert row is not None
        return program_from_row(row)

    async def set_paused(
        self, program_id: int, paused: bool, reason: str | None = None, actor_id: int | None = None
    ) -> Program:
        """Pause (nothing confirms) or resume a program."""
        return await self.update_settings(
            program_id, actor_id, paused=paused, paused_reason=reason if paused else None
        )

    async def _require_manager(self, program: Program, actor_id: int | None) -> None:
        if actor_id is None:
            return
        result = await self._port(program.platform).is_admin(program.destination, actor_id)
        if isinstance(result, AdminResult):
            if not result.is_admin:
                raise NotAllowed("only an admin of the program's chat can do this")
            return
        raise PlatformUnavailable("could not check admin rights right now", outcome=result)

    async def setup_program(
        self,
        platform: str,
        destination_id: int,
        kind: str,
        title: str,
        *,
        created_by: int | None,
        **settings: Any,
    ) -> tuple[Program, bool]:
        """Create the destination's program, or refresh its title and resume it if it
        exists (setting up twice is harmless). Returns (program, created)."""
        existing = await self.find_program(platform, destination_id)
        if existing is None:
            try:
                program = await self.create_program(
                    platform, destination_id, kind, title, created_by=created_by, **settings
                )
                return program, True
            except ProgramExists:
                existing = await self.find_program(platform, destination_id)
                assert existing is not None
        changes: dict[str, Any] = {"title": title, "paused": False, "paused_reason": None}
        if "username" in settings:
            changes["username"] = settings["username"]
        if "join_url" in settings:
            changes["join_url"] = settings["join_url"]
        program = await self.update_settings(existing.id, None, **changes)
        return program, False

    async def migrate_destination(self, platform: str, old_id: int, new_id: int) -> Program | None:
        """Keep a program when its chat gets a new id (a group upgraded to a supergroup)."""
        now = self._clock.now()
        async with self._db.write() as conn:
            program_id = await db_programs.move_destination(conn, platform, old_id, new_id, now)
            if program_id is None:
                return None
            await db_events.insert_events(
                conn,
                [
                    {
                        "program_id": program_id,
                        "user_id": None,
                        "actor_id": None,
                        "kind": "program.migrated",
                        "at": now,
                        "data": {"from": old_id, "to": new_id},
                    }
                ],
            )
        return await self.get_program(program_id)

    async def is_manager(self, program: Program, user_id: int) -> bool:
        """Whether ``user_id`` manages ``program`` (an admin of its destination)."""
        try:
            await self._require_manager(program, user_id)
        except (NotAllowed, PlatformUnavailable):
            return False
        return True

    # --- links ----------------------------------------------------------------------

    async def get_or_create_link(
        self, program_id: int, referrer: Person, label: str | None = None
    ) -> LinkResult:
        """The reader's live link for ``label`` (their main link when empty), made once."""
        label = normalise_label(label)
        program = await self.get_program(program_id)
        async with self._db.read() as conn:
            row = await db_links.live_link(conn, program_id, referrer.user_id, label)
            others = await db_links.live_links_of(conn, program_id, referrer.user_id)
        if row is not None:
            await self._touch_person(program_id, referrer)
            return LinkResult(_link(row), created=False)
        if len(others) >= MAX_LINKS_PER_READER:
            raise TooManyLinks(f"at most {MAX_LINKS_PER_READER} links per reader")
        return LinkResult(await self._create_link(program, referrer, label), created=True)

    async def reset_link(
        self, program_id: int, referrer: Person, label: str | None = None
    ) -> Link:
        """Replace a leaked link: the old one is revoked, a new one is made."""
        label = normalise_label(label)
        program = await self.get_program(program_id)
        now = self._clock.now()
        async with self._db.write() as conn:
            old = await db_links.live_link(conn, program_id, referrer.user_id, label)
            if old is not None:
                await db_links.revoke_link(conn, old["id"], now)
                await db_events.insert_events(
                    conn,
                    [
                        {
                            "program_id": program_id,
                            "user_id": referrer.user_id,
                            "actor_id": referrer.user_id,
                            "kind": "link.revoked",
                            "at": now,
                            "data": {"code": old["code"], "label": label},
                        }
                    ],
                )
        if old is not None:
            await self._revoke_on_platform(program, old["url"])
        return await self._create_link(program, referrer, label)

    async def links_of(self, program_id: int, referrer_id: int) -> list[Link]:
        async with self._db.read() as conn:
            return [
                _link(row) for row in await db_links.live_links_of(conn, program_id, referrer_id)
            ]

    async def _create_link(self, program: Program, referrer: Person, label: str) -> Link:
        if program.paused:
            raise ProgramPaused("the program is paused")
        code = secrets.token_urlsafe(9)  # 12 characters of A-Za-z0-9_-
        name = f"{label or 'main'} {referrer.user_id}"[:32]
        created = await self._port(program.platform).create_invite(
            program.destination, code=code, name=name
        )
        if not isinstance(created, InviteCreated):
            raise PlatformUnavailable("the platform did not create the link", outcome=created)
        now = self._clock.now()
        async with self._db.write() as conn:
            await self._upsert_person(conn, program.id, referrer, now)
            link_id = await db_links.insert_link(
                conn,
                {
                    "program_id": program.id,
                    "referrer_id": referrer.user_id,
                    "label": label,
                    "code": code,
                    "url": created.url,
                    "created_at": now,
                },
            )
            if link_id is not None:
                await db_events.insert_events(
                    conn,
                    [
                        {
                            "program_id": program.id,
                            "user_id": referrer.user_id,
                            "actor_id": referrer.user_id,
                            "kind": "link.created",
                            "at": now,
                            "data": {"code": code, "label": label},
                        }
                    ],
                )
            row = await db_links.live_link(conn, program.id, referrer.user_id, label)
        assert row is not None
        if link_id is None:
            # Another request made this reader's link first: keep theirs, drop ours.
            await self._revoke_on_platform(program, created.url)
        return _link(row)

    async def _revoke_on_platform(self, program: Program, url: str) -> None:
        if program.join_mode != "direct":
            return  # a deep link is ours alone: revoking the row is enough
        try:
            outcome = await self._port(program.platform).revoke_invite(program.destination, url)
        except PlatformUnavailable:
            return
        if not isinstance(outcome, Delivered):
            logger.warning("could not revoke %s on %s: %s", url, program.platform, outcome)

    async def _touch_person(self, program_id: int, person: Person) -> None:
        async with self._db.write() as conn:
            await self._upsert_person(conn, program_id, person, self._clock.now())

    async def _upsert_person(
        self, conn: Any, program_id: int, person: Person, now: datetime
    ) -> None:
        await db_members.upsert_people(
            conn,
            [
                {
                    "program_id": program_id,
                    "user_id": person.user_id,
                    "display_name": clean_name(person.display_name),
                    "username": clean_name(person.username, 64) or None,
                    "first_seen_at": now,
                }
            ],
            joined=False,
        )

    # --- joins and leaves -------------------------------------------------------------

    async def remember(self, code: str, friend: Person) -> RememberOutcome:
        """A friend opened a reader's link in the bot (through-the-bot mode): remember the
        reader so the friend's later join is matched by user id. The first reader wins."""
        if not code or len(code) > 64:
            return RememberOutcome(RememberStatus.UNKNOWN_LINK)
        now = self._clock.now()
        async with self._db.write() as conn:
            link = await db_links.link_by_code(conn, code)
            if link is None or link["revoked_at"] is not None:
                return RememberOutcome(RememberStatus.UNKNOWN_LINK)
            program_row = await db_programs.program_by_id(conn, link["program_id"])
            assert program_row is not None
            program = program_from_row(program_row)
            referrer = await db_members.member(conn, program.id, link["referrer_id"])
            referrer_name = referrer["display_name"] if referrer else None
            base = RememberOutcome(
                RememberStatus.REMEMBERED, program, link["referrer_id"], referrer_name
            )
            if link["referrer_id"] == friend.user_id:
                return replace(base, status=RememberStatus.SELF_REFERRAL)
            existing = await db_members.member(conn, program.id, friend.user_id)
            counted = await db_referrals.referral(conn, program.id, friend.user_id)
            if counted is not None or (existing and existing["first_joined_at"] is not None):
                return replace(base, status=RememberStatus.ALREADY_MEMBER)
            await self._upsert_person(conn, program.id, friend, now)
            if not await db_members.remember_referrer(
                conn, program.id, friend.user_id, link["referrer_id"], link["id"], now
            ):
                # The invitation that stands is the earlier reader's: name them.
                friend_row = await db_members.member(conn, program.id, friend.user_id)
                first_id = friend_row["remembered_referrer_id"] if friend_row else None
                first = await db_members.member(conn, program.id, first_id) if first_id else None
                return replace(
                    base,
                    status=RememberStatus.ALREADY_REMEMBERED,
                    referrer_id=first_id,
                    referrer_name=first["display_name"] if first else None,
                )
            await db_events.insert_events(
                conn,
                [
                    {
                        "program_id": program.id,
                        "user_id": friend.user_id,
                        "actor_id": None,
                        "kind": "friend.remembered",
                        "at": now,
                        "data": {"referrer_id": link["referrer_id"]},
                    }
                ],
            )
        return base

    async def record_join_request(
        self, program_id: int, person: Person, at: datetime, link: str | None
    ) -> JoinRequestOutcome:
        """Someone asked to join through a join-request link. The reader whose link it is
        is remembered for them; the request is to be approved now (``APPROVE``), or after
        the one-button human check when the program asks for one (``CHECK``) and the check
        can still reach them: inside the DM window (``at`` + 4 minutes) and not blocked.

        A re-delivered request gets the answer it got the first time (a pending check stays
        a check); ``ALREADY`` means it was settled (declined) before: nothing more to do. A
        new request after a settled one starts over. A declined request or a failed check
        takes no slot."""
        return await self._requests.submit(
            requests.JoinRequest(program_id, person, ensure_utc(at), link)
        )

    async def _process_requests(self, batch: list[requests.JoinRequest]) -> list[requests.Result]:
        async with self._db.write() as conn:
            return await requests.decide_join_requests(conn, batch, self._clock.now())

    async def pass_human_check(self, program_id: int, user_id: int) -> PassedCheck | None:
        """The person pressed the check button: their request is to be approved. None when
        they have no request that passed (none, or it was declined)."""
        now = self._clock.now()
        async with self._db.write() as conn:
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
        now = ensure_utc(now) if now else self._clock.now()
        async with self._db.read() as conn:
            rows = await db_requests.unsettled_join_requests(conn, now, now - HUMAN_CHECK_WINDOW)
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
                        async with self._db.write() as conn:
                            await db_requests.postpone_join_request(
                                conn, *key, row["requested_at"] + HUMAN_CHECK_PATIENCE
                            )
                    continue
                decision = "declined"
            elif check in ("failed", "expired") or due:
                decision = "approved"
            else:
                continue  # the check is on its way
            program = await self.get_program(row["program_id"])
            port = self._port(program.platform)
            if decision == "declined":
                outcome = await port.decline_join_request(program.destination, row["user_id"])
            else:
                outcome = await port.approve_join_request(program.destination, row["user_id"])
            if isinstance(outcome, RetryAfter):
                continue
            async with self._db.write() as conn:
                if await db_requests.decide_join_request(conn, *key, decision, now):
                    if decision == "declined":
                        declined += 1
                    else:
                        approved += 1
        return approved, declined

    async def record_join(self, event: JoinEvent) -> JoinOutcome:
        """Count a join (DESIGN.md, referral states). Concurrent calls share a transaction."""
        return await self._batcher.submit(event)

    async def record_joins(self, events: Sequence[JoinEvent]) -> list[JoinOutcome]:
        """Several joins at once (e.g. one batch of platform updates)."""
        return list(await asyncio.gather(*(self._batcher.submit(e) for e in events)))

    async def _process_joins(self, batch: list[JoinEvent]) -> list[joins.Result]:
        async with self._db.write() as conn:
            return await joins.decide_joins(conn, batch)

    async def record_leave(self, event: LeaveEvent) -> LeaveOutcome:
        """A member left or was removed. In the hold period the referral is rejected; after
        confirmation it gets ``left_at`` and the leave policy decides if it still counts."""
        at = ensure_utc(event.at)
        async with self._db.write() as conn:
            program_row = await db_programs.program_by_id(conn, event.program_id)
            if program_row is None:
                raise ProgramNotFound(f"no program {event.program_id}")
            await db_members.set_member_left(conn, event.program_id, event.user_id, at)
            found = await db_referrals.referral(conn, event.program_id, event.user_id)
            if found is None:
                return LeaveOutcome(LeaveStatus.NO_REFERRAL)
            row: Mapping[str, Any] = dict(found)
            referrer_id = row["referrer_id"]
            subtract = program_row["leave_policy"] == LeavePolicy.SUBTRACT
            key = (event.program_id, referrer_id)
            if (
                row["state"] == "pending"
                and not program_row["paused"]
                and at >= ensure_utc(row["hold_until"])
            ):
                # They stayed the whole hold and left after it; the scheduler had not
                # confirmed them yet (it was down, or its tick is still to come).
                row = await self._confirm_on_leave(conn, event, row)
            if row["state"] in ("pending", "held"):
                reason = Reason.REMOVED_DURING_HOLD if event.removed else Reason.LEFT_DURING_HOLD
                moved = await db_referrals.transition_referrals(
                    conn,
                    [(event.program_id, event.user_id)],
                    ("pending", "held"),
                    {"state": "rejected", "reason": str(reason), "decided_at": at},
                )
                if not moved:
                    return LeaveOutcome(LeaveStatus.NO_REFERRAL, referrer_id)
                if referrer_id is not None:
                    await db_counts.apply_count_deltas(
                        conn, {key: {row["state"]: -1, "rejected": 1}}, self._clock.now()
                    )
                await self._event(conn, event, "referral.rejected", referrer_id, str(reason))
                return LeaveOutcome(LeaveStatus.REJECTED, referrer_id)
            if row["state"] == "confirmed" and row["left_at"] is None:
                await db_referrals.update_referral(
                    conn, event.program_id, event.user_id, {"left_at": at}
                )
                if referrer_id is not None:
                    delta = {"left": 1, "counted": -1 if subtract else 0}
                    await db_counts.apply_count_deltas(conn, {key: delta}, self._clock.now())
                await self._event(conn, event, "referral.left", referrer_id, None)
                return LeaveOutcome(LeaveStatus.LEFT_AFTER_CONFIRM, referrer_id, not subtract)
            return LeaveOutcome(
                LeaveStatus.NO_REFERRAL, referrer_id, row["state"] == "confirmed" and not subtract
            )

    async def _confirm_on_leave(
        self, conn: Any, event: LeaveEvent, row: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """Confirm a pending referral as of its hold's end (before recording the leave)."""
        key = (event.program_id, event.user_id)
        hold_until = ensure_utc(row["hold_until"])
        moved = await db_referrals.transition_referrals(
            conn,
            [key],
            ("pending",),
            {"state": "confirmed", "confirmed_at": hold_until, "decided_at": self._clock.now()},
        )
        if not moved:
            return row
        if row["referrer_id"] is not None:
            delta = {"pending": -1, "confirmed": 1, "counted": 1}
            await db_counts.apply_count_deltas(
                conn, {(event.program_id, row["referrer_id"]): delta}, self._clock.now()
            )
        await db_events.insert_events(
            conn, [_referral_event(moved[0], "referral.confirmed", hold_until, None)]
        )
        return {**row, "state": "confirmed", "confirmed_at": hold_until, "left_at": None}

    async def _event(
        self, conn: Any, event: LeaveEvent, kind: str, referrer_id: int | None, reason: str | None
    ) -> None:
        await db_events.insert_events(
            conn,
            [
                {
                    "program_id": event.program_id,
                    "user_id": event.user_id,
                    "actor_id": None,
                    "kind": kind,
                    "at": ensure_utc(event.at),
                    "data": {"referrer_id": referrer_id, "reason": reason},
                }
            ],
        )

    # --- confirmation -----------------------------------------------------------------

    async def confirm_due(self, now: datetime | None = None, *, limit: int = 500) -> ConfirmResult:
        """Confirm pending referrals past their hold whose person is still a member.

        The platform is asked first (a leave update can be missed); someone no longer a
        member is rejected, and one it cannot answer for now stays pending for the next
        tick. Paused programs confirm nothing. Returns the referrers whose count changed.
        """
        now = ensure_utc(now) if now else self._clock.now()
        confirmed = rejected = deferred = 0
        changed: dict[tuple[int, int], int] = {}
        after: tuple[datetime, int, int] | None = None
        semaphore = asyncio.Semaphore(MEMBERSHIP_CHECKS_AT_ONCE)
        while True:
            async with self._db.read() as conn:
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
                async with self._db.write() as conn:
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
        port = self._ports.get(program.platform)
        if port is None:
            return None  # no adapter running: ask again next tick
        async with semaphore:
            return await port.get_membership(program.destination, row["referred_id"])

    async def _confirm_notifications(
        self, conn: Any, moved: list[dict[str, Any]], counted: dict[tuple[int, int], int]
    ) -> list[dict[str, Any]]:
        """One DM per referrer: "N referrals confirmed, you now have M"."""
        grouped: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for row in moved:
            if row["referrer_id"] is not None:
                grouped.setdefault((row["program_id"], row["referrer_id"]), []).append(row)
        if not grouped:
            return []
        programs = await db_programs.programs_by_ids(conn, {key[0] for key in grouped})
        names = await db_members.members_by_keys(
            conn, sorted({(r["program_id"], r["referred_id"]) for r in moved})
        )
        now = self._clock.now()
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

    async def _apply_confirmations(
        self, conn: Any, stay: list[tuple[int, int]], gone: list[tuple[int, int]], now: datetime
    ) -> tuple[int, int, dict[tuple[int, int], int]]:
        deltas: dict[tuple[int, int], dict[str, int]] = {}
        events: list[dict[str, Any]] = []
        moved = await db_referrals.transition_referrals(
            conn,
            stay,
            ("pending",),
            {"state": "confirmed", "confirmed_at": now, "decided_at": now},
        )
        confirmed_keys = set()
        for row in moved:
            if row["referrer_id"] is not None:
                key = (row["program_id"], row["referrer_id"])
                delta = deltas.setdefault(key, {})
                delta["pending"] = delta.get("pending", 0) - 1
                delta["confirmed"] = delta.get("confirmed", 0) + 1
                delta["counted"] = delta.get("counted", 0) + 1
                confirmed_keys.add(key)
            events.append(_referral_event(row, "referral.confirmed", now, None))
        dropped = await db_referrals.transition_referrals(
            conn,
            gone,
            ("pending",),
            {"state": "rejected", "reason": str(Reason.LEFT_DURING_HOLD), "decided_at": now},
        )
        for row in dropped:
            await db_members.set_member_left(conn, row["program_id"], row["referred_id"], now)
            if row["referrer_id"] is not None:
                key = (row["program_id"], row["referrer_id"])
                delta = deltas.setdefault(key, {})
                delta["pending"] = delta.get("pending", 0) - 1
                delta["rejected"] = delta.get("rejected", 0) + 1
            events.append(
                _referral_event(row, "referral.rejected", now, str(Reason.LEFT_DURING_HOLD))
            )
        counted = await db_counts.apply_count_deltas(conn, deltas, now)
        await db_events.insert_events(conn, events)
        await db_outbox.enqueue(conn, await self._confirm_notifications(conn, moved, counted))
        return (
            len(moved),
            len(dropped),
            {key: counted[key] for key in confirmed_keys if key in counted},
        )

    # --- manager review ---------------------------------------------------------------

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
        program = await self.get_program(program_id)
        await self._require_manager(program, actor_id)
        note = clean_name(note, MAX_NOTE)
        now = self._clock.now()
        async with self._db.write() as conn:
            row = await db_referrals.referral(conn, program_id, referred_id)
            if row is None:
                raise NotReviewable("no such referral")
            if row["state"] not in ("pending", "held"):
                raise NotReviewable(f"the referral is already {row['state']}", state=row["state"])
            values: dict[str, Any] = {"decided_at": now, "decided_by": actor_id}
            if approve:
                values.update(state="confirmed", confirmed_at=now, reason=None)
            else:
                values.update(state="rejected", reason=str(Reason.MANUAL))
            moved = await db_referrals.transition_referrals(
                conn, [(program_id, referred_id)], ("pending", "held"), values
            )
            if not moved:
                raise NotReviewable("the referral changed meanwhile")
            referrer_id = row["referrer_id"]
            if referrer_id is not None:
                delta = {row["state"]: -1}
                if approve:
                    delta.update(confirmed=1, counted=1)
                else:
                    delta["rejected"] = 1
                await db_counts.apply_count_deltas(conn, {(program_id, referrer_id): delta}, now)
            await db_events.insert_events(
                conn,
                [
                    {
                        "program_id": program_id,
                        "user_id": referred_id,
                        "actor_id": actor_id,
                        "kind": "referral.confirmed" if approve else "referral.rejected",
                        "at": now,
                        "data": {
                            "referrer_id": referrer_id,
                            "reason": values.get("reason"),
                            "note": note or None,
                            "manual": True,
                        },
                    }
                ],
            )
        return ReviewOutcome(program_id, referred_id, referrer_id, values["state"])

    async def review_queue(self, program_id: int, limit: int = 20) -> Sequence[Mapping[Any, Any]]:
        """Held referrals waiting for a manager, oldest first."""
        async with self._db.read() as conn:
            return await db_referrals.held_referrals(conn, program_id, limit)

    # --- the reader's view ------------------------------------------------------------

    async def counts(self, program_id: int, referrer_id: int) -> Counts:
        async with self._db.read() as conn:
            return _counts(await db_counts.counts_of(conn, program_id, referrer_id))

    async def receipt(
        self, program_id: int, referrer_id: int, page: int = 1, per_page: int = 10
    ) -> Receipt:
        """Every referral and not-counted join of a reader, newest first, one page."""
        per_page = max(1, min(per_page, 50))
        page = max(1, page)
        async with self._db.read() as conn:
            counts = _counts(await db_counts.counts_of(conn, program_id, referrer_id))
            rows, total = await db_referrals.receipt_page(
                conn, program_id, referrer_id, per_page, (page - 1) * per_page
            )
        pages = max(1, -(-total // per_page))
        # Everything on the receipt that is not counted, waiting or under review: the
        # header's "not counted" then agrees with the entries listed below it.
        not_counted = max(0, total - counts.counted - counts.pending - counts.held)
        items = [
            ReceiptItem(
                user_id=row["user_id"],
                display_name=row["display_name"] or "",
                kind=row["kind"],
                state=row["state"],
                reason=row["reason"],
                at=_as_utc(row["at"]) or self._clock.now(),
                hold_until=_as_utc(row["hold_until"]) if row["state"] == "pending" else None,
                confirmed_at=_as_utc(row["confirmed_at"]),
                left_at=_as_utc(row["left_at"]),
            )
            for row in rows
        ]
        return Receipt(
            program_id, referrer_id, counts, items, page, pages, total, not_counted=not_counted
        )

    # --- personal data ----------------------------------------------------------------

    async def delete_user_data(self, user: PlatformUser) -> DeletionSummary:
        """Forget a person on one platform, in every program there.

        Deleted: their member rows (names), links, counts, receipts, remembered choices and
        events about them. Kept: the bare referral row that counted *them* for another
        reader (user id and state only), so the same account cannot be counted twice and
        that reader's count stays true. Referrals they made stay counted for nobody.
        """
        programs = await self.list_programs(user.platform)
        ids = [program.id for program in programs]
        async with self._db.read() as conn:
            live = {p.id: await db_links.live_links_of(conn, p.id, user.user_id) for p in programs}
        async with self._db.write() as conn:
            done = await db_privacy.delete_person(conn, ids, user.user_id)
        for program in programs:
            for row in live[program.id]:
                await self._revoke_on_platform(program, row["url"])
        return DeletionSummary(
            members=done.get("members", 0),
            links=done.get("links", 0),
            join_attempts=done.get("join_attempts", 0),
            events=done.get("events", 0),
            referrals_unlinked=done.get("referrals_unlinked", 0),
        )


def _referral_event(
    row: Mapping[Any, Any], kind: str, at: datetime, reason: str | None
) -> dict[str, Any]:
    return {
        "program_id": row["program_id"],
        "user_id": row["referred_id"],
        "actor_id": None,
        "kind": kind,
        "at": at,
        "data": {"referrer_id": row["referrer_id"], "reason": reason},
    }


def _as_utc(value: Any) -> datetime | None:
    """Columns of a UNION lose their type on SQLite: parse and mark them UTC again."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
