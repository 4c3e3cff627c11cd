"""The engine's public API as one facade over the services of ``referrals/``.

Each concern has its own service — :class:`~referrals.programs.ProgramService`,
:class:`~referrals.links.LinkService`, :class:`~referrals.attribution.AttributionService`,
:class:`~referrals.review.ReviewService`, :class:`~referrals.receipts.ReceiptService`,
:class:`~referrals.privacy.PrivacyService` — sharing one :class:`~referrals.context.Engine`
(database, clock, platform ports). Adapters may use the facade or the services (its
attributes). Plain values in and out; every change is one transaction that moves referrals,
counts, change records and the event log together (:mod:`referrals.transitions`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from delivery.port import PlatformPort
from referrals.attribution import AttributionService, PassedCheck, human_check_key
from referrals.clock import Clock
from referrals.context import Engine
from referrals.invites import InviteTracker
from referrals.links import LinkService, normalise_label
from referrals.models import (
    ConfirmResult,
    Counts,
    DeletedProgram,
    DeletionSummary,
    JoinEvent,
    JoinOutcome,
    JoinRequestOutcome,
    LeaveEvent,
    LeaveOutcome,
    Link,
    LinkResult,
    Person,
    PlatformUser,
    Program,
    Receipt,
    ReferralInfo,
    RememberOutcome,
    ReviewOutcome,
    ReviewPage,
)
from referrals.people import People
from referrals.privacy import PrivacyService
from referrals.programs import ProgramService
from referrals.receipts import ReceiptService
from referrals.review import ReviewService
from storage.database import Database

__all__ = ["PassedCheck", "ReferralService", "human_check_key", "normalise_label"]


class ReferralService:
    """Programs, links, joins, leaves, confirmations, reviews, receipts, deletion.

    ``ports`` maps a platform name (``"telegram"``) to its :class:`PlatformPort`; the
    composition root adds the running adapters' ports with :meth:`add_port`.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        ports: Mapping[str, PlatformPort] | None = None,
        *,
        people: People | None = None,
        max_batch: int = 500,
    ) -> None:
        self.engine = Engine(db, clock, ports)
        self.people = people if people is not None else People(db, clock)
        self.programs = ProgramService(self.engine)
        self.links = LinkService(self.engine, self.programs)
        self.attribution = AttributionService(
            self.engine, self.programs, self.people, max_batch=max_batch
        )
        self.reviews = ReviewService(self.engine, self.programs)
        self.receipts = ReceiptService(self.engine)
        self.privacy = PrivacyService(self.engine, self.programs, self.links, self.people)
        self.invites = InviteTracker(self.engine, self.programs, self.attribution)

    def add_port(self, port: PlatformPort) -> None:
        self.engine.add_port(port)

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
        """Create the program of a destination; raises ``ProgramExists`` if it has one."""
        return await self.programs.create_program(
            platform, destination_id, kind, title, created_by=created_by, **settings
        )

    async def get_program(self, program_id: int) -> Program:
        """The program, or ``ProgramNotFound``."""
        return await self.programs.get_program(program_id)

    async def find_program_by_id(self, program_id: int) -> Program | None:
        return await self.programs.find_program_by_id(program_id)

    async def find_program(self, platform: str, destination_id: int) -> Program | None:
        return await self.programs.find_program(platform, destination_id)

    async def list_programs(self, platform: str | None = None) -> list[Program]:
        return await self.programs.list_programs(platform)

    async def managed_programs(self, platform: str, user_id: int) -> list[Program]:
        """The programs of ``platform`` that ``user_id`` manages."""
        return await self.programs.managed_programs(platform, user_id)

    async def program_totals(self, program_id: int) -> dict[str, int]:
        """Readers with referrals, referrals by state, and joins nobody referred."""
        return await self.programs.program_totals(program_id)

    async def update_settings(
        self, program_id: int, actor_id: int | None, **changes: Any
    ) -> Program:
        """Change settings after checking that ``actor_id`` manages the program."""
        return await self.programs.update_settings(program_id, actor_id, **changes)

    async def set_paused(
        self, program_id: int, paused: bool, reason: str | None = None, actor_id: int | None = None
    ) -> Program:
        """Pause (nothing confirms) or resume a program."""
        return await self.programs.set_paused(program_id, paused, reason, actor_id)

    async def rights_changed(
        self, platform: str, destination_id: int, *, can_run: bool, actor_id: int | None
    ) -> Program | None:
        """The bot's rights changed: pause without them, resume when they are back."""
        return await self.programs.rights_changed(
            platform, destination_id, can_run=can_run, actor_id=actor_id
        )

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
        """Create or refresh the destination's program. Returns (program, created)."""
        return await self.programs.setup_program(
            platform, destination_id, kind, title, created_by=created_by, **settings
        )

    async def migrate_destination(self, platform: str, old_id: int, new_id: int) -> Program | None:
        """Keep a program when its chat gets a new id."""
        return await self.programs.migrate_destination(platform, old_id, new_id)

    async def delete_program(self, program_id: int, actor_id: int | None) -> DeletedProgram:
        """Delete a program and all it holds (managers only; ``None`` is the operator)."""
        return await self.programs.delete_program(program_id, actor_id)

    async def is_manager(self, program: Program, user_id: int) -> bool:
        """Whether ``user_id`` manages ``program`` (an admin of its destination)."""
        return await self.engine.is_manager(program, user_id)

    # --- links ----------------------------------------------------------------------

    async def get_or_create_link(
        self, program_id: int, referrer: Person, label: str | None = None
    ) -> LinkResult:
        """The reader's live link for ``label`` (their main link when empty), made once."""
        return await self.links.get_or_create_link(program_id, referrer, label)

    async def reset_link(
        self, program_id: int, referrer: Person, label: str | None = None
    ) -> Link:
        """Replace a leaked link: the old one is revoked, a new one is made."""
        return await self.links.reset_link(program_id, referrer, label)

    async def links_of(self, program_id: int, referrer_id: int) -> list[Link]:
        return await self.links.links_of(program_id, referrer_id)

    # --- attribution ----------------------------------------------------------------

    async def remember(self, code: str, friend: Person) -> RememberOutcome:
        """A friend opened a reader's link in the bot (through-the-bot mode)."""
        return await self.attribution.remember(code, friend)

    async def started(self, platform: str, person: Person, at: datetime) -> list[Program]:
        """Someone started the bot: subscribing in the platform's bot subscriptions."""
        return await self.attribution.started(platform, person, at)

    async def blocked(self, platform: str, user_id: int, at: datetime) -> None:
        """Someone blocked the bot (leaving, in a bot subscription)."""
        await self.attribution.blocked(platform, user_id, at)

    async def unblocked(
        self, platform: str, person: Person, at: datetime, *, event_key: str
    ) -> None:
        """Someone unblocked the bot (back, in a bot subscription)."""
        await self.attribution.unblocked(platform, person, at, event_key=event_key)

    async def record_join_request(
        self, program_id: int, person: Person, at: datetime, link: str | None
    ) -> JoinRequestOutcome:
        """A join request through a join-request link (the direct mode)."""
        return await self.attribution.record_join_request(program_id, person, at, link)

    async def pass_human_check(self, program_id: int, user_id: int) -> PassedCheck | None:
        """The person pressed the human-check button."""
        return await self.attribution.pass_human_check(program_id, user_id)

    async def settle_join_requests(self, now: datetime | None = None) -> tuple[int, int]:
        """Approve or decline requests whose human check is due. Returns (approved,
        declined)."""
        return await self.attribution.settle_join_requests(now)

    async def record_join(self, event: JoinEvent) -> JoinOutcome:
        """Count a join. Concurrent calls share a transaction."""
        return await self.attribution.record_join(event)

    async def record_joins(self, events: Sequence[JoinEvent]) -> list[JoinOutcome]:
        """Several joins at once."""
        return await self.attribution.record_joins(events)

    async def record_leave(self, event: LeaveEvent) -> LeaveOutcome:
        """A member left or was removed."""
        return await self.attribution.record_leave(event)

    async def confirm_due(self, now: datetime | None = None, *, limit: int = 500) -> ConfirmResult:
        """Confirm pending referrals past their hold whose person is still a member."""
        return await self.attribution.confirm_due(now, limit=limit)

    # --- managers' decisions --------------------------------------------------------

    async def review(
        self,
        program_id: int,
        referred_id: int,
        actor_id: int | None,
        *,
        approve: bool,
        note: str = "",
    ) -> ReviewOutcome:
        """A manager confirms or rejects a pending or held referral."""
        return await self.reviews.review(
            program_id, referred_id, actor_id, approve=approve, note=note
        )

    async def review_reader(
        self, program_id: int, referrer_id: int, actor_id: int | None, *, approve: bool
    ) -> list[ReviewOutcome]:
        """A manager decides every held referral of one reader."""
        return await self.reviews.review_reader(program_id, referrer_id, actor_id, approve=approve)

    async def review_queue(self, program_id: int, page: int = 1) -> ReviewPage:
        """Held referrals waiting for a manager, oldest first."""
        return await self.reviews.review_queue(program_id, page)

    async def find_member(self, program_id: int, who: str) -> int | None:
        """The user id meant by ``who`` (a number or a @username seen in the program)."""
        return await self.reviews.find_member(program_id, who)

    async def referral_of(self, program_id: int, referred_id: int) -> ReferralInfo | None:
        """One friend's referral as a manager sees it."""
        return await self.reviews.referral_of(program_id, referred_id)

    async def undo(
        self,
        program_id: int,
        referred_id: int,
        actor_id: int | None,
        *,
        expect: str | None = None,
        note: str = "",
    ) -> ReviewOutcome:
        """A manager reverses a decision (confirmed <-> rejected); ``expect`` is the state
        they saw, so a repeated press changes nothing."""
        return await self.reviews.undo(program_id, referred_id, actor_id, expect=expect, note=note)

    # --- the reader's view ------------------------------------------------------------

    async def counts(self, program_id: int, referrer_id: int) -> Counts:
        return await self.receipts.counts(program_id, referrer_id)

    async def receipt(
        self, program_id: int, referrer_id: int, page: int = 1, per_page: int = 10
    ) -> Receipt:
        """Every referral and not-counted join of a reader, newest first, one page."""
        return await self.receipts.receipt(program_id, referrer_id, page, per_page)

    # --- personal data ----------------------------------------------------------------

    async def forget(self, user: PlatformUser) -> DeletionSummary:
        """Forget a person everywhere on a platform (program data and contact record)."""
        return await self.privacy.forget(user)

    async def delete_user_data(self, user: PlatformUser) -> DeletionSummary:
        """Forget a person's program data on a platform (the contact record stays)."""
        return await self.privacy.delete_user_data(user)
