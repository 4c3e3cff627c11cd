"""Plain values the engine takes and returns. No platform objects ever cross this line."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from delivery.port import Destination


@dataclass(frozen=True, slots=True)
class PlatformUser:
    """A person on one platform."""

    platform: str
    user_id: int


@dataclass(frozen=True, slots=True)
class Person:
    """What a platform tells us about a person when they act."""

    user_id: int
    display_name: str = ""
    username: str | None = None
    language_code: str | None = None


class JoinMode(enum.StrEnum):
    BOT = "bot"  # through the bot: t.me/<bot>?start=<code>, matched by user id
    DIRECT = "direct"  # a per-reader join-request link (private chats only)


class LeavePolicy(enum.StrEnum):
    KEEP = "keep"  # a confirmed referral keeps counting after the friend leaves
    SUBTRACT = "subtract"  # ... stops counting while the friend is away


@dataclass(frozen=True, slots=True)
class Program:
    """One referral program: a destination (chat, bot subscription, guild) and its rules."""

    id: int
    platform: str
    destination_id: int
    kind: str
    title: str
    username: str | None
    locale: str
    timezone: str
    hold_hours: int
    join_mode: str
    min_account_age_days: int
    leave_policy: str
    human_check: bool
    referrer_cap: int | None
    burst_limit: int | None
    burst_window_minutes: int
    paused: bool
    paused_reason: str | None
    join_url: str | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime
    reward_cap: int | None = None
    reward_cap_period: str = "year"
    currency: str | None = None
    rewards_opt_in: bool = False  # Discord: rewards for joins, after the policy note
    invite_channel_id: int | None = None  # Discord: where readers' invites are made
    labels_allowed: bool = False  # Discord: labelled invites besides the reader's one

    @property
    def rewards_allowed(self) -> bool:
        """Whether rewards for joins may run: always on Telegram; on Discord only once a
        manager turned them on after reading the policy note (DESIGN.md)."""
        return self.platform != "discord" or self.rewards_opt_in

    @property
    def destination(self) -> Destination:
        return Destination(
            platform=self.platform,
            destination_id=self.destination_id,
            kind=self.kind,
            join_mode=self.join_mode,
            username=self.username,
        )


@dataclass(frozen=True, slots=True)
class Link:
    id: int
    program_id: int
    referrer_id: int
    label: str
    code: str
    url: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class LinkResult:
    link: Link
    created: bool


class JoinStatus(enum.StrEnum):
    PENDING = "pending"  # counted once the hold period passes
    CONFIRMED = "confirmed"  # counted (a program with no hold)
    HELD = "held"  # a rule wants a manager to decide
    REJECTED = "rejected"  # a referral that will not count (reason says why)
    UNATTRIBUTED = "unattributed"  # no reader to count it for
    NOT_COUNTED = "not_counted"  # a rejoin, or a person already counted
    DUPLICATE = "duplicate"  # the same event seen before: nothing changed


class Reason(enum.StrEnum):
    SELF_REFERRAL = "self_referral"
    ACCOUNT_TOO_NEW = "account_too_new"
    LEFT_DURING_HOLD = "left_during_hold"
    REMOVED_DURING_HOLD = "removed_during_hold"
    MANUAL = "manual"
    BURST = "burst"
    OVER_CAP = "over_cap"
    NO_LINK = "no_link"
    UNKNOWN_LINK = "unknown_link"
    REVOKED_LINK = "revoked_link"
    REJOIN = "rejoin"
    COUNTED_FOR_OTHER = "counted_for_other"
    # Discord never says which invite a member used: why a join was not attributed.
    AMBIGUOUS = "ambiguous"  # the counters moved in a way more than one reading fits
    NO_INVITE = "no_invite"  # no counter moved (Discovery, OAuth2 guilds.join)
    VANITY = "vanity"  # the server's vanity URL
    FOREIGN_INVITE = "foreign_invite"  # an invite the bot did not make for a reader
    INVITE_VANISHED = "invite_vanished"  # an invite deleted at its max uses
    SCREENING = "screening"  # the member is still in membership screening
    STALE_CACHE = "stale_cache"  # counters not known since a restart or a reconnect
    WHILE_AWAY = "while_away"  # joined while the bot was disconnected


@dataclass(frozen=True, slots=True)
class JoinEvent:
    """Someone became a member of a program's destination.

    ``link`` is the code or URL the platform says they used (None when it does not say);
    ``event_key`` identifies the platform event so a re-delivery changes nothing;
    ``account_created_at`` is given when the platform tells account age.
    """

    program_id: int
    person: Person
    at: datetime
    link: str | None = None
    event_key: str | None = None
    account_created_at: datetime | None = None
    # Why nobody is credited, when the platform's adapter knows (``link`` is None then).
    unattributed_reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class JoinOutcome:
    status: JoinStatus
    reason: Reason | None = None
    referrer_id: int | None = None
    hold_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class LeaveEvent:
    """Someone stopped being a member (left, was removed, or blocked the bot)."""

    program_id: int
    user_id: int
    at: datetime
    removed: bool = False


class LeaveStatus(enum.StrEnum):
    REJECTED = "rejected"  # a referral in its hold period stopped counting
    LEFT_AFTER_CONFIRM = "left_after_confirm"  # a confirmed referral got left_at
    NO_REFERRAL = "no_referral"  # nothing to change but the membership flag


@dataclass(frozen=True, slots=True)
class LeaveOutcome:
    status: LeaveStatus
    referrer_id: int | None = None
    still_counts: bool = False


class RequestStatus(enum.StrEnum):
    APPROVE = "approve"  # approve the join request now
    CHECK = "check"  # ask the person to pass the human check first (5-minute DM window)
    ALREADY = "already"  # settled before (declined), or another instance has it: nothing to do


@dataclass(frozen=True, slots=True)
class JoinRequestOutcome:
    status: RequestStatus
    program: Program
    referrer_id: int | None = None
    referrer_name: str | None = None


class RememberStatus(enum.StrEnum):
    REMEMBERED = "remembered"
    SUBSCRIBED = "subscribed"  # a bot subscription: opening the link subscribed them
    ALREADY_REMEMBERED = "already_remembered"  # an earlier reader's link was opened first
    ALREADY_MEMBER = "already_member"  # already in, or counted before
    SELF_REFERRAL = "self_referral"
    UNKNOWN_LINK = "unknown_link"


@dataclass(frozen=True, slots=True)
class RememberOutcome:
    status: RememberStatus
    program: Program | None = None
    referrer_id: int | None = None
    referrer_name: str | None = None


@dataclass(frozen=True, slots=True)
class ConfirmedReferrer:
    """A referrer whose confirmed count changed in a ``confirm_due`` run."""

    program_id: int
    referrer_id: int
    counted: int


@dataclass(frozen=True, slots=True)
class ConfirmResult:
    confirmed: int = 0
    rejected: int = 0
    deferred: int = 0  # the platform could not tell membership now; retried next tick
    referrers: list[ConfirmedReferrer] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReviewOutcome:
    program_id: int
    referred_id: int
    referrer_id: int | None
    state: str


@dataclass(frozen=True, slots=True)
class Counts:
    pending: int = 0
    held: int = 0
    confirmed: int = 0
    rejected: int = 0
    left: int = 0
    counted: int = 0


@dataclass(frozen=True, slots=True)
class ReceiptItem:
    """One line of a reader's receipt: a referral or a join that was not counted."""

    user_id: int
    display_name: str
    kind: str  # "referral" | "attempt"
    state: str  # referral state, or the attempt's outcome
    reason: str | None
    at: datetime
    hold_until: datetime | None
    confirmed_at: datetime | None
    left_at: datetime | None


@dataclass(frozen=True, slots=True)
class Receipt:
    program_id: int
    referrer_id: int
    counts: Counts
    items: list[ReceiptItem]
    page: int
    pages: int
    total: int
    # Entries that do not count, on every page: rejected referrals, joins not counted,
    # and (when the program subtracts leavers) confirmed friends who left. With the
    # counted, pending and held counts it adds up to ``total``.
    not_counted: int = 0


@dataclass(frozen=True, slots=True)
class DeletionSummary:
    members: int = 0
    links: int = 0
    join_attempts: int = 0
    events: int = 0
    referrals_unlinked: int = 0
    grants: int = 0  # rewards kept without their identity


@dataclass(frozen=True, slots=True)
class DeletedProgram:
    """A program that was deleted, and its totals just before."""

    program: Program
    totals: dict[str, int]


@dataclass(frozen=True, slots=True)
class HeldReferral:
    """A referral waiting for a manager (``held``), as the review queue shows it."""

    program_id: int
    referred_id: int
    referred_name: str
    referrer_id: int | None
    referrer_name: str
    reason: str | None
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class ReferralInfo:
    """One friend's referral, as a manager sees it before reversing a decision."""

    program_id: int
    referred_id: int
    referred_name: str
    referrer_id: int | None
    referrer_name: str
    state: str
    reason: str | None
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class ReviewPage:
    """One page of a program's review queue, oldest first."""

    items: list[HeldReferral]
    total: int
    page: int
    pages: int


class EngineError(Exception):
    """A request the engine refuses; ``code`` names the problem for templates."""

    code = "error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.details = details


class ProgramNotFound(EngineError):
    code = "program_not_found"


class ProgramExists(EngineError):
    code = "program_exists"


class ProgramPaused(EngineError):
    code = "program_paused"


class SettingsError(EngineError):
    """A setting has a bad value; ``key`` names it, ``problem`` says what is wrong in a
    word templates can translate: ``number`` (a whole number from ``low`` to ``high``;
    ``optional`` ones may be off), ``choice`` (one of ``options``), ``timezone``,
    ``direct_public`` (direct links need a private chat), ``empty``, ``unknown`` (no such
    setting) or ``invalid``."""

    code = "bad_setting"

    def __init__(
        self,
        key: str,
        message: str,
        *,
        problem: str = "invalid",
        low: int | None = None,
        high: int | None = None,
        optional: bool = False,
        options: tuple[str, ...] = (),
    ) -> None:
        super().__init__(f"{key}: {message}", key=key)
        self.key = key
        self.problem = problem
        self.low = low
        self.high = high
        self.optional = optional
        self.options = options


class BadLabel(EngineError):
    code = "bad_label"


class TooManyLinks(EngineError):
    code = "too_many_links"


class NotAllowed(EngineError):
    code = "not_allowed"


class NotReviewable(EngineError):
    code = "not_reviewable"


class NotReversible(EngineError):
    """An undo of something that is not a manager-reversible decision."""

    code = "not_reversible"


class PlatformUnavailable(EngineError):
    """The platform could not do what was asked (rate limit, missing rights, ...)."""

    code = "platform_unavailable"
