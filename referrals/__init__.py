"""The platform-neutral referral engine: programs, links, attribution, hold rules."""

from referrals.models import (
    ConfirmResult,
    JoinEvent,
    JoinOutcome,
    JoinStatus,
    LeaveEvent,
    LeaveOutcome,
    Person,
    PlatformUser,
    Program,
    Reason,
)
from referrals.service import ReferralService

__all__ = [
    "ConfirmResult",
    "JoinEvent",
    "JoinOutcome",
    "JoinStatus",
    "LeaveEvent",
    "LeaveOutcome",
    "Person",
    "PlatformUser",
    "Program",
    "Reason",
    "ReferralService",
]
