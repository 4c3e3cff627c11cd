"""The platform port: what the engine needs from a chat platform.

Each adapter (``bots/telegram``, later ``bots/discord``) implements :class:`PlatformPort`.
Every call returns a typed outcome instead of raising, so callers decide what to do:
:class:`RetryAfter` (the platform asked us to slow down), :class:`Unreachable` (with the
reason why), or the call's own result.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable


class UnreachableReason(enum.StrEnum):
    """Why a platform call cannot succeed now or later."""

    BLOCKED = "blocked"  # the person blocked the bot
    NOT_STARTED = "not_started"  # the person never opened a chat with the bot
    ACCOUNT_GONE = "account_gone"  # the account was deleted or deactivated
    BOT_REMOVED = "bot_removed"  # the bot was removed from the chat / server
    NO_RIGHTS = "no_rights"  # the bot is there but lacks an admin right it needs
    NOT_FOUND = "not_found"  # the chat, message or user does not exist
    REJECTED = "rejected"  # the platform refused the request as malformed


@dataclass(frozen=True, slots=True)
class Delivered:
    """The platform accepted the call."""

    message_id: int | None = None


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """The platform asked us to wait ``seconds`` before the next such call."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Unreachable:
    """The call cannot succeed; ``reason`` says why, ``detail`` is the platform's words."""

    reason: UnreachableReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class InviteCreated:
    """A personal invite the platform made (or a deep link that needs no platform call)."""

    url: str


class Membership(enum.StrEnum):
    MEMBER = "member"
    NOT_MEMBER = "not_member"


@dataclass(frozen=True, slots=True)
class MembershipResult:
    status: Membership


@dataclass(frozen=True, slots=True)
class AdminResult:
    is_admin: bool


@dataclass(frozen=True, slots=True)
class PostRights:
    """What the bot may do in a destination's chat: post there, and pin what it posts."""

    may_post: bool
    may_pin: bool


@dataclass(frozen=True, slots=True)
class AccessChat:
    """A private chat a reward gives one-time access to, as the bot finds it."""

    chat_id: int
    title: str
    can_invite: bool  # the bot is an admin there with the right to invite users


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a program lives on its platform, as plain values."""

    platform: str
    destination_id: int
    kind: str  # "channel" | "group" | "supergroup" | "bot" | "guild"
    join_mode: str  # "bot" (through the bot) | "direct" (join-request links)
    username: str | None = None


Failure = RetryAfter | Unreachable


class Clock(Protocol):
    """Anything that tells the current time as a timezone-aware UTC datetime (the engine's
    ``referrals.clock`` has the real and the fake one; delivery only reads the time)."""

    def now(self) -> datetime: ...


class PlatformPort(Protocol):
    """What the engine asks of a chat platform; implemented once per adapter.

    Besides its calls a port states what its platform can do: the join modes its programs
    may use (``"bot"``: through the bot; ``"direct"``: per-reader join-request links) and
    how long after a join request the bot may message the requester (None: the platform
    has no join requests). The engine reads these instead of keeping its own copies."""

    platform: str
    supported_join_modes: frozenset[str]
    join_request_window: timedelta | None

    async def create_invite(
        self, destination: Destination, *, code: str, name: str
    ) -> InviteCreated | Failure:
        """A personal invite for ``code`` (``name`` ≤ 32 chars is shown to admins)."""
        ...

    async def revoke_invite(self, destination: Destination, url: str) -> Delivered | Failure:
        """Stop ``url`` from letting anyone in."""
        ...

    async def get_membership(
        self, destination: Destination, user_id: int
    ) -> MembershipResult | Failure:
        """Whether ``user_id`` is a member of the destination now."""
        ...

    async def is_admin(self, destination: Destination, user_id: int) -> AdminResult | Failure:
        """Whether ``user_id`` may manage the destination's program."""
        ...

    async def post_rights(self, destination: Destination) -> PostRights | Failure:
        """Whether the bot may post (and pin) in the destination's chat now."""
        ...

    async def approve_join_request(
        self, destination: Destination, user_id: int
    ) -> Delivered | Failure:
        """Let a person who asked to join in."""
        ...

    async def decline_join_request(
        self, destination: Destination, user_id: int
    ) -> Delivered | Failure:
        """Turn a join request down (a failed human check)."""
        ...

    async def access_chat(self, chat_id: int) -> AccessChat | Failure:
        """A reward's private chat: its title and whether the bot may invite there."""
        ...

    async def create_access_link(
        self, chat_id: int, *, name: str, expires_at: datetime
    ) -> InviteCreated | Failure:
        """A one-time access link to a reward chat: it creates join requests (the bot lets
        in only the grant's owner), is named after the grant and expires."""
        ...

    async def revoke_access_link(self, chat_id: int, url: str) -> Delivered | Failure:
        """Revoke a reward chat's access link (used or expired)."""
        ...

    async def answer_access_request(
        self, chat_id: int, user_id: int, approve: bool
    ) -> Delivered | Failure:
        """Approve (the grant's owner) or decline (anyone else) a reward chat's join request."""
        ...


@runtime_checkable
class RolePort(Protocol):
    """A platform whose rewards may be roles (Discord): give one to a member."""

    async def grant_role(
        self, destination: Destination, user_id: int, role_id: int
    ) -> Delivered | Failure:
        """Give ``role_id`` to ``user_id`` in the destination (again, when they rejoined)."""
        ...


@dataclass(frozen=True, slots=True)
class TransientFailure:
    """Something that may work later (network trouble, a server error)."""

    detail: str = ""


SendResult = Delivered | RetryAfter | Unreachable | TransientFailure
