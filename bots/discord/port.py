"""The Discord side of the platform port: invites in the program's invite channel, member
and manager checks, role rewards, and sending outbox rows (DMs and channel posts), each
returning a typed outcome.

Discord's refusals that shape sending (platform-facts §9, sandbox README):

- 50007 (DMs closed, or no shared server): the person is unreachable until their next
  command; the outbox marks them.
- 40003 (opening DMs too fast): every DM open of the bot backs off, not just this one.
- 429: discord.py waits it out itself, but with ``max_ratelimit_timeout`` a long wait
  raises :class:`discord.RateLimited` instead: it comes back here as ``RetryAfter``, so a
  long wait never blocks answers to other people.
- 401/403/429 count towards Discord's 10,000 invalid requests per 10 minutes (a temporary
  IP ban): past a much lower budget of our own, sending pauses.

Every send uses ``AllowedMentions.none()``: texts are rendered with the Discord flavour
(markdown escaped, mentions neutralised) and nothing the bot says pings anyone.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import discord

from bots.discord.components import Buttons, forget
from bots.render import Renderer
from delivery.actions import Attachment, Edit
from delivery.outbox import OutboundMessage, Refusal
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
    SendResult,
    TransientFailure,
    Unreachable,
    UnreachableReason,
)
from delivery.ratelimit import Limits
from referrals.locale import pick_locale

logger = logging.getLogger(__name__)
T = TypeVar("T")

NO_MENTIONS = discord.AllowedMentions.none()
# Discord's global limit is 50 requests a second per bot; DMs and channel posts also have
# per-route buckets discord.py honours. Stay well below.
DISCORD_LIMITS = Limits(
    global_per_second=25.0,
    global_burst=25.0,
    user_per_second=1.0,
    user_burst=3.0,
    chat_per_minute=30.0,
    chat_burst=5.0,
    chat_per_second=1.0,
)
DM_OPEN_BACKOFF = 60.0  # seconds every DM open waits after a 40003
TRANSIENT_RETRY = RetryAfter(5)
INVALID_BUDGET = 1_000  # our own ceiling of 401/403/429 per 10 minutes (Discord bans at 10,000)
INVALID_WINDOW = 600.0
MAX_MESSAGE = 2000
INVITE_CAP = 30016
DMS_CLOSED = 50007
DM_OPEN_TOO_FAST = 40003
# A bot's attachments: 10 MiB each by default (an interaction says its own
# ``attachment_size_limit``); a margin stays free for the rest of the request.
ATTACHMENT_LIMIT = 10 * 1024 * 1024 - 64 * 1024


def classify(exc: Exception) -> Failure | TransientFailure:
    """Discord's errors as the outcomes the engine and the outbox understand."""
    if isinstance(exc, discord.RateLimited):
        return RetryAfter(float(exc.retry_after))
    if isinstance(exc, discord.HTTPException):
        code, text = exc.code, f"{exc.code} {exc.text}"[:200]
        if code == DMS_CLOSED:
            # Marked unreachable by the outbox until their next command (bots.discord.app
            # ReferralBot.reader_seen); on a server that is not a leave.
            return Unreachable(UnreachableReason.BLOCKED, text)
        if code == DM_OPEN_TOO_FAST:
            return RetryAfter(DM_OPEN_BACKOFF)
        if exc.status == 429:
            return RetryAfter(float(exc.response.headers.get("Retry-After", 5) or 5))
        if isinstance(exc, discord.Forbidden):
            return Unreachable(UnreachableReason.NO_RIGHTS, text)
        if isinstance(exc, discord.NotFound):
            return Unreachable(UnreachableReason.NOT_FOUND, text)
        if isinstance(exc, discord.DiscordServerError):
            return TransientFailure(text)
        return Unreachable(UnreachableReason.REJECTED, text)
    if isinstance(exc, TimeoutError | OSError | discord.GatewayNotFound):
        return TransientFailure(str(exc) or type(exc).__name__)
    return TransientFailure(f"{type(exc).__name__}: {exc}")


class DiscordPort:
    """Implements :class:`delivery.port.PlatformPort`, :class:`delivery.port.RolePort` and
    :class:`delivery.outbox.Sender` over a running discord.py client."""

    platform = "discord"
    supported_join_modes = frozenset({"bot"})
    join_request_window: timedelta | None = None  # Discord has no join requests

    def __init__(
        self,
        client: discord.Client,
        renderer: Renderer,
        *,
        limits: Limits = DISCORD_LIMITS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.renderer = renderer
        self.limits = limits
        self.document_limit = ATTACHMENT_LIMIT  # bytes one file may have
        self.photo_limit = ATTACHMENT_LIMIT
        self._monotonic = monotonic
        self.invite_channels: dict[int, int] = {}  # guild -> the program's invite channel
        self.buttons = Buttons(renderer)  # the custom ids the bot's cogs answer
        self._dm_channels: dict[int, discord.DMChannel] = {}
        self._dm_open_after = 0.0
        self._invalid: deque[float] = deque()

    # --- plumbing -----------------------------------------------------------------------

    def _note_invalid(self, exc: Exception) -> None:
        status = getattr(exc, "status", None)
        if isinstance(exc, discord.RateLimited) or status in (401, 403, 429):
            now = self._monotonic()
            self._invalid.append(now)
            while self._invalid and self._invalid[0] < now - INVALID_WINDOW:
                self._invalid.popleft()

    def invalid_recently(self) -> int:
        now = self._monotonic()
        while self._invalid and self._invalid[0] < now - INVALID_WINDOW:
            self._invalid.popleft()
        return len(self._invalid)

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T | Failure | TransientFailure:
        try:
            return await call()
        except (discord.DiscordException, TimeoutError, OSError) as exc:
            self._note_invalid(exc)
            return classify(exc)

    async def _ask(self, call: Callable[[], Awaitable[T]]) -> T | Failure:
        result = await self._call(call)
        return TRANSIENT_RETRY if isinstance(result, TransientFailure) else result

    def _guild(self, guild_id: int) -> discord.Guild | None:
        return self.client.get_guild(guild_id)

    async def _member(self, guild: discord.Guild, user_id: int) -> discord.Member | Failure:
        member = guild.get_member(user_id)
        if member is not None:
            return member
        return await self._ask(lambda: guild.fetch_member(user_id))

    def invite_channel(self, guild: discord.Guild) -> discord.TextChannel | None:
        chosen = guild.get_channel(self.invite_channels.get(guild.id, 0))
        if isinstance(chosen, discord.TextChannel):
            return chosen
        if guild.system_channel is not None:
            return guild.system_channel
        return next(iter(guild.text_channels), None)

    # --- PlatformPort -----------------------------------------------------------------

    async def create_invite(
        self, destination: Destination, *, code: str, name: str
    ) -> InviteCreated | Failure:
        """A never-expiring, unlimited invite in the program's invite channel; ``name``
        goes to the audit log (Discord invites have no name)."""
        guild = self._guild(destination.destination_id)
        if guild is None:
            return Unreachable(UnreachableReason.BOT_REMOVED, "not in the server")
        channel = self.invite_channel(guild)
        if channel is None:
            return Unreachable(UnreachableReason.NOT_FOUND, "no channel for invites")
        made = await self._ask(
            lambda: channel.create_invite(
                max_age=0, max_uses=0, unique=True, reason=f"inviteloop: {name}"[:512]
            )
        )
        if isinstance(made, RetryAfter | Unreachable):
            return made
        return InviteCreated(made.url)

    async def revoke_invite(self, destination: Destination, url: str) -> Delivered | Failure:
        code = url.rstrip("/").rsplit("/", 1)[-1]
        result = await self._ask(
            lambda: self.client.delete_invite(code, reason="inviteloop: revoked")
        )
        if isinstance(result, Unreachable) and result.reason is UnreachableReason.NOT_FOUND:
            return Delivered()  # gone already
        if isinstance(result, RetryAfter | Unreachable):
            return result
        return Delivered()

    async def get_membership(
        self, destination: Destination, user_id: int
    ) -> MembershipResult | Failure:
        guild = self._guild(destination.destination_id)
        if guild is None:
            return Unreachable(UnreachableReason.BOT_REMOVED, "not in the server")
        member = await self._member(guild, user_id)
        if isinstance(member, Unreachable) and member.reason is UnreachableReason.NOT_FOUND:
            return MembershipResult(Membership.NOT_MEMBER)
        if isinstance(member, RetryAfter | Unreachable):
            return member
        return MembershipResult(Membership.MEMBER)

    async def is_admin(self, destination: Destination, user_id: int) -> AdminResult | Failure:
        """A manager is a member with Manage Server (asked of Discord each time)."""
        guild = self._guild(destination.destination_id)
        if guild is None:
            return Unreachable(UnreachableReason.BOT_REMOVED, "not in the server")
        member = await self._member(guild, user_id)
        if isinstance(member, Unreachable) and member.reason is UnreachableReason.NOT_FOUND:
            return AdminResult(False)
        if isinstance(member, RetryAfter | Unreachable):
            return member
        return AdminResult(member.guild_permissions.manage_guild)

    async def post_rights(self, destination: Destination) -> PostRights | Failure:
        guild = self._guild(destination.destination_id)
        if guild is None:
            return Unreachable(UnreachableReason.BOT_REMOVED, "not in the server")
        channel = self.invite_channel(guild)
        if channel is None:
            return PostRights(False, False)
        perms = channel.permissions_for(guild.me)
        return PostRights(perms.send_messages, perms.manage_messages)

    async def approve_join_request(
        self, destination: Destination, user_id: int
    ) -> Delivered | Failure:
        return Unreachable(UnreachableReason.REJECTED, "Discord has no join requests")

    async def decline_join_request(
        self, destination: Destination, user_id: int
    ) -> Delivered | Failure:
        return Unreachable(UnreachableReason.REJECTED, "Discord has no join requests")

    async def access_chat(self, chat_id: int) -> AccessChat | Failure:
        return Unreachable(UnreachableReason.REJECTED, "on Discord, reward access is a role")

    async def create_access_link(
        self, chat_id: int, *, name: str, expires_at: Any
    ) -> InviteCreated | Failure:
        return Unreachable(UnreachableReason.REJECTED, "on Discord, reward access is a role")

    async def revoke_access_link(self, chat_id: int, url: str) -> Delivered | Failure:
        return Delivered()

    async def answer_access_request(
        self, chat_id: int, user_id: int, approve: bool
    ) -> Delivered | Failure:
        return Unreachable(UnreachableReason.REJECTED, "Discord has no join requests")

    # --- RolePort -----------------------------------------------------------------------

    def role_problem(self, guild: discord.Guild, role_id: int) -> str | None:
        """Why the bot cannot give ``role_id`` (None: it can): ``role_rights`` (no Manage
        Roles), ``role_above`` (not strictly below the bot's highest role, or managed),
        ``not_found``."""
        role = guild.get_role(role_id)
        if role is None:
            return "not_found"
        me = guild.me
        if not me.guild_permissions.manage_roles:
            return "role_rights"
        if role.managed or role.is_default() or role >= me.top_role:
            return "role_above"
        return None

    async def grant_role(
        self, destination: Destination, user_id: int, role_id: int
    ) -> Delivered | Failure:
        guild = self._guild(destination.destination_id)
        if guild is None:
            return Unreachable(UnreachableReason.BOT_REMOVED, "not in the server")
        problem = self.role_problem(guild, role_id)
        if problem is not None:
            missing = problem == "not_found"
            reason = UnreachableReason.NOT_FOUND if missing else UnreachableReason.NO_RIGHTS
            return Unreachable(reason, problem)
        member = await self._member(guild, user_id)
        if isinstance(member, RetryAfter | Unreachable):
            return member
        role = guild.get_role(role_id)
        assert role is not None
        if role in member.roles:
            return Delivered()
        done = await self._ask(lambda: member.add_roles(role, reason="inviteloop: reward"))
        if isinstance(done, RetryAfter | Unreachable):
            return done
        return Delivered()

    # --- Sender -------------------------------------------------------------------------

    def render(self, message: OutboundMessage) -> str:
        locale = pick_locale(*message.locales)
        text = self.renderer.text(locale, message.template, flavour="discord", **message.context)
        return text[:MAX_MESSAGE]

    async def send(self, message: OutboundMessage) -> SendResult:
        if self.invalid_recently() >= INVALID_BUDGET:
            return RetryAfter(60.0)  # far below the requests that earn an IP ban
        text = self.render(message)
        if message.target_kind == "user":
            channel = await self._dm(message.target_id)
            if not isinstance(channel, discord.DMChannel):
                return channel
            target: discord.abc.Messageable = channel
        else:
            target = self.client.get_partial_messageable(message.target_id)
        locale = pick_locale(*message.locales)
        view = self.buttons.view(locale, getattr(message.payload, "buttons", ()))
        try:
            if isinstance(message.payload, Edit):
                partial = target.get_partial_message(message.payload.message_id)  # type: ignore[attr-defined]
                edited = await self._call(
                    lambda: partial.edit(content=text, allowed_mentions=NO_MENTIONS, view=view)
                )
                if isinstance(edited, RetryAfter | Unreachable | TransientFailure):
                    return edited
                return Delivered(message.payload.message_id)
            if isinstance(message.payload, Attachment):
                return await self._send_file(target, message, message.payload, text)
            extra: dict[str, Any] = {"view": view} if view is not None else {}
            sent = await self._call(
                lambda: target.send(text, allowed_mentions=NO_MENTIONS, **extra)
            )
        finally:
            forget(view)
        if isinstance(sent, RetryAfter | Unreachable | TransientFailure):
            return sent
        return Delivered(sent.id)

    async def _send_file(
        self,
        target: discord.abc.Messageable,
        message: OutboundMessage,
        payload: Attachment,
        text: str,
    ) -> SendResult:
        """A spooled file as an attachment (``files[0]`` beside ``payload_json``)."""
        if message.file is None:
            return Unreachable(UnreachableReason.REJECTED, "no file to send")
        path = message.file
        sent = await self._call(
            lambda: target.send(
                text,
                file=discord.File(path, filename=payload.filename),
                allowed_mentions=NO_MENTIONS,
            )
        )
        if isinstance(sent, RetryAfter | Unreachable | TransientFailure):
            return sent
        return Delivered(sent.id)

    async def _dm(self, user_id: int) -> discord.DMChannel | SendResult:
        """The DM channel, opened once; after a 40003 no DM opens for a while."""
        known = self._dm_channels.get(user_id)
        if known is not None:
            return known
        wait = self._dm_open_after - self._monotonic()
        if wait > 0:
            return RetryAfter(wait)
        user = self.client.get_user(user_id) or discord.Object(user_id)
        opened = await self._call(lambda: self.client.create_dm(user))
        if isinstance(opened, RetryAfter) and opened.seconds >= DM_OPEN_BACKOFF:
            self._dm_open_after = self._monotonic() + opened.seconds
        if isinstance(opened, RetryAfter | Unreachable | TransientFailure):
            return opened
        if len(self._dm_channels) > 50_000:
            self._dm_channels.clear()
        self._dm_channels[user_id] = opened
        return opened

    def pause_for(self, refusals: Sequence[Refusal]) -> float | None:
        """Discord's buckets are per route and discord.py waits most of them out itself;
        several refused DMs in one drain mean the bot as a whole should slow down."""
        users = [r.seconds for r in refusals if r.target_kind == "user"]
        return min(users) if len(users) > 1 else None
