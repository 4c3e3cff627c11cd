"""The one typed in-memory platform of the tests and the benchmarks: it records what it
was asked and answers at once, like a platform would. (Bot tests use the sandbox Bot API
server instead.) ``benchmarks/`` import it too, to measure the engine without a network."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from delivery.port import (
    AccessChat,
    AdminResult,
    Delivered,
    Destination,
    Failure,
    InviteCreated,
    Membership,
    MembershipResult,
    PostRights,
    RetryAfter,
    Unreachable,
    UnreachableReason,
)


@dataclass
class FakePlatform:
    """Members and admins per destination; scripted failures per user."""

    platform: str = "telegram"
    bot_username: str = "loopbot"
    supported_join_modes: frozenset[str] = frozenset({"bot", "direct"})
    join_request_window: timedelta | None = timedelta(minutes=5)
    members: dict[int, set[int]] = field(default_factory=dict)
    admins: dict[int, set[int]] = field(default_factory=dict)
    membership_failures: dict[int, Failure] = field(default_factory=dict)
    invite_failure: Failure | None = None
    created: list[tuple[int, str, str]] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    membership_calls: int = 0
    approved: list[tuple[int, int]] = field(default_factory=list)
    declined: list[tuple[int, int]] = field(default_factory=list)
    # reward chats: chat id -> (title, the bot may invite there)
    access_chats: dict[int, tuple[str, bool]] = field(default_factory=dict)
    access_links: dict[str, tuple[int, str, datetime]] = field(default_factory=dict)
    access_revoked: list[str] = field(default_factory=list)
    access_answers: list[tuple[int, int, bool]] = field(default_factory=list)
    access_failure: Failure | None = None

    async def create_invite(
        self, destination: Destination, *, code: str, name: str
    ) -> InviteCreated | Failure:
        if self.invite_failure is not None:
            return self.invite_failure
        assert len(name) <= 32
        if destination.join_mode == "direct":
            url = f"https://t.me/+{code}AAAA"
        else:
            url = f"https://t.me/{self.bot_username}?start={code}"
        self.created.append((destination.destination_id, code, url))
        return InviteCreated(url)

    async def revoke_invite(self, destination: Destination, url: str) -> Delivered | Failure:
        self.revoked.append(url)
        return Delivered()

    async def get_membership(
        self, destination: Destination, user_id: int
    ) -> MembershipResult | Failure:
        self.membership_calls += 1
        if user_id in self.membership_failures:
            return self.membership_failures[user_id]
        inside = user_id in self.members.get(destination.destination_id, set())
        return MembershipResult(Membership.MEMBER if inside else Membership.NOT_MEMBER)

    async def is_admin(self, destination: Destination, user_id: int) -> AdminResult | Failure:
        return AdminResult(user_id in self.admins.get(destination.destination_id, set()))

    async def post_rights(self, destination: Destination) -> PostRights | Failure:
        return PostRights(True, destination.kind != "bot")

    async def approve_join_request(
        self, destination: Destination, user_id: int
    ) -> Delivered | Failure:
        self.approved.append((destination.destination_id, user_id))
        self.join(destination.destination_id, user_id)
        return Delivered()

    async def decline_join_request(
        self, destination: Destination, user_id: int
    ) -> Delivered | Failure:
        self.declined.append((destination.destination_id, user_id))
        return Delivered()

    async def access_chat(self, chat_id: int) -> AccessChat | Failure:
        if chat_id not in self.access_chats:
            return Unreachable(UnreachableReason.NOT_FOUND, "chat not found")
        title, can_invite = self.access_chats[chat_id]
        return AccessChat(chat_id, title, can_invite)

    async def create_access_link(
        self, chat_id: int, *, name: str, expires_at: datetime
    ) -> InviteCreated | Failure:
        if self.access_failure is not None:
            return self.access_failure
        url = f"https://t.me/+reward{len(self.access_links) + 1:04d}"
        self.access_links[url] = (chat_id, name, expires_at)
        return InviteCreated(url)

    async def revoke_access_link(self, chat_id: int, url: str) -> Delivered | Failure:
        self.access_revoked.append(url)
        return Delivered()

    async def answer_access_request(
        self, chat_id: int, user_id: int, approve: bool
    ) -> Delivered | Failure:
        self.access_answers.append((chat_id, user_id, approve))
        if approve:
            self.join(chat_id, user_id)
        return Delivered()

    def deep_link(self, payload: str) -> str:
        """The bot's deep link with ``payload`` (a season's claim button)."""
        return f"https://t.me/{self.bot_username}?start={payload}"

    def join(self, destination_id: int, *user_ids: int) -> None:
        self.members.setdefault(destination_id, set()).update(user_ids)

    def leave(self, destination_id: int, *user_ids: int) -> None:
        self.members.setdefault(destination_id, set()).difference_update(user_ids)


__all__ = ["FakePlatform", "RetryAfter", "Unreachable"]
