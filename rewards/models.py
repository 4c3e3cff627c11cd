"""What the rewards service hands out: milestones, grants, pools, progress, and its
refusals (engine errors with a code templates translate)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from referrals.models import EngineError


class RewardKind(enum.StrEnum):
    MESSAGE = "message"  # a text the manager wrote
    COUPON = "coupon"  # a code from a pool
    CHAT = "chat"  # one-time access to a private chat
    MANUAL = "manual"  # the reader answers a question; a manager sends the prize
    ROLE = "role"  # a Discord role


class Approval(enum.StrEnum):
    AUTO = "auto"
    MANUAL = "manual"  # a manager approves each grant
    SEMI = "semi"  # manual only when a referral that counted toward it was held or decided


class CapPeriod(enum.StrEnum):
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class GrantState(enum.StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    UNLOCKED = "unlocked"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    WAITING_STOCK = "waiting_stock"
    UNDELIVERABLE = "undeliverable"
    UNCLAIMED = "unclaimed"
    BELOW_RUNG = "below_rung"
    AWAITING_ANSWER = "awaiting_answer"
    FULFILLING = "fulfilling"
    FULFILLED = "fulfilled"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"


# States in which a reader has their reward (for /rewards, the report and costs).
RECEIVED = frozenset(
    {
        GrantState.DELIVERED,
        GrantState.AWAITING_ANSWER,
        GrantState.FULFILLING,
        GrantState.FULFILLED,
    }
)
# States a manager can approve from, or reject.
DECIDABLE = frozenset({GrantState.AWAITING_APPROVAL, GrantState.BELOW_RUNG})


@dataclass(frozen=True, slots=True)
class Milestone:
    id: int
    program_id: int
    role: str  # "milestone" | "friend" | "prize" (a season's prize)
    count: int | None
    step: int | None
    title: str
    reward_kind: str
    message: str | None
    pool_id: int | None
    chat_id: int | None
    chat_title: str | None
    question: str | None
    role_id: int | None
    approval: str
    cost_cents: int | None
    paused: bool
    created_at: datetime

    @property
    def recurring(self) -> bool:
        return self.step is not None

    def first_rung(self) -> int:
        return int(self.step if self.step is not None else self.count or 0)

    def owed(self, highest: int) -> list[int]:
        """The occurrences a reader whose highest rewardable total is ``highest`` is owed."""
        if self.role != "milestone":
            return []
        if self.step:
            return list(range(1, highest // self.step + 1))
        return [1] if self.count is not None and highest >= self.count else []

    def rung(self, occurrence: int) -> int:
        if self.step:
            return self.step * occurrence
        return int(self.count or 0)


@dataclass(frozen=True, slots=True)
class Grant:
    id: int
    program_id: int
    reader_id: int | None
    source: str
    source_id: int
    occurrence: int
    milestone_id: int | None
    rung: int | None
    state: str
    reward_kind: str
    title: str
    cost_cents: int | None
    code: str | None
    access_url: str | None
    access_expires_at: datetime | None
    answer: str | None
    unlocked_at: datetime
    delivered_at: datetime | None
    fulfilled_at: datetime | None


@dataclass(frozen=True, slots=True)
class PoolStock:
    id: int
    name: str
    total: int
    free: int


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What a coupon file held and what went into the pool."""

    pool_id: int | None
    added: int = 0
    blank: int = 0
    duplicate_in_file: int = 0
    already_in_pool: int = 0
    too_long: int = 0
    free: int = 0  # codes left in the pool after the import


@dataclass(frozen=True, slots=True)
class Progress:
    """A reader's way to their next reward."""

    rewardable: int
    next_title: str | None = None
    next_at: int | None = None

    @property
    def missing(self) -> int | None:
        if self.next_at is None:
            return None
        return max(0, self.next_at - self.rewardable)


@dataclass(frozen=True, slots=True)
class Preview:
    """What saving a milestone (or a lower count) grants at once."""

    readers: int
    grants: int
    codes_needed: int
    codes_free: int | None  # None: the reward uses no pool


@dataclass
class EvaluateReport:
    changes: int = 0
    readers: int = 0
    grants: int = 0


@dataclass
class DeliverReport:
    queued: int = 0
    waiting_stock: int = 0
    undeliverable: int = 0
    below_rung: int = 0
    returned: int = 0
    links_minted: int = 0
    links_revoked: int = 0
    failures: list[str] = field(default_factory=list)


class ClaimOutcome(enum.StrEnum):
    """What pressing a season's "Claim my prize" button did."""

    CLAIMED = "claimed"  # it waited for them: it is sent now
    ALREADY = "already"  # sent, or on its way, already (a second press changes nothing)
    PENDING = "pending"  # a manager approves it first, or new codes must arrive
    REJECTED = "rejected"  # a manager turned it down
    EXPIRED = "expired"  # not claimed within the claim window: it counts as unreachable
    NOT_WINNER = "not_winner"  # the season has prizes, but none of them is theirs
    NO_PRIZE = "no_prize"  # no such season, or it granted no prizes (yet)


@dataclass(frozen=True, slots=True)
class PrizeClaim:
    outcome: ClaimOutcome
    title: str | None = None  # the prize, when it is theirs
    place: int | None = None


@dataclass(frozen=True, slots=True)
class ClaimDecision:
    """What the bot did with a join request to a reward chat."""

    approved: bool
    grant_id: int | None
    reason: str


class RewardError(EngineError):
    code = "reward_error"


class MilestoneNotFound(RewardError):
    code = "milestone_not_found"


class GrantNotFound(RewardError):
    code = "grant_not_found"


class BadMilestone(RewardError):
    """A milestone's settings cannot be used; ``problem`` says which in a word templates
    translate (count, step, title, kind, approval, cost, template, markup, length, chat,
    pool, role, question, platform)."""

    code = "bad_milestone"

    def __init__(self, problem: str, message: str, **details: object) -> None:
        super().__init__(message, problem=problem, **details)
        self.problem = problem


class BadCouponFile(RewardError):
    """A coupon file that cannot be imported at all (nothing was)."""

    code = "bad_coupon_file"

    def __init__(self, problem: str, message: str, **details: object) -> None:
        super().__init__(message, problem=problem, **details)
        self.problem = problem


class NotDecidable(RewardError):
    code = "grant_not_decidable"
