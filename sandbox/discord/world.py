"""The scripting API of the simulated Discord: build guilds, make people act, read results.

Everything is synchronous and runs on the event loop of the
:class:`sandbox.discord.server.DiscordSandboxServer`; only ``wait_*`` are coroutines. Actions
emit the gateway events Discord would emit, to each connected bot session whose intents and
permissions allow them. Impossible actions raise :class:`sandbox.errors.ScriptError`.

Time: dates, invite expiry, the 3-second interaction deadline, the 15-minute interaction
token and the member-add delay all read the injected clock. A delayed event is released by
:meth:`DiscordWorld.release_due` (the server calls it every few milliseconds, and
:meth:`DiscordWorld.advance` calls it after moving a :class:`sandbox.clock.FakeClock`).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import random
import secrets
import string
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sandbox.clock import Clock, FakeClock, SystemClock
from sandbox.discord import permissions as perm
from sandbox.discord.errors import DiscordApiError
from sandbox.discord.model import (
    DISCORD_EPOCH_MS,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_INVITES,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    AppCommand,
    Application,
    Attachment,
    Channel,
    DiscordUser,
    GatewayConnection,
    Guild,
    InteractionRecord,
    Invite,
    Json,
    Member,
    Message,
    Overwrite,
    Role,
)
from sandbox.discord.payloads import (
    channel_json,
    guild_json,
    invite_create_event,
    member_json,
    message_json,
    role_json,
    user_json,
)
from sandbox.discord.ratelimit import DiscordRateLimits, InjectedLimit, RateLimiter
from sandbox.errors import ScriptError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Option types of application commands (interactions/application-commands.mdx).
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(3, 12)


class Outlet(Protocol):
    """Where a gateway session writes: a connected websocket (see gateway.py)."""

    def send(self, frame: str) -> None:
        """Queue one text frame."""
        ...

    def close(self, code: int) -> None:
        """Close the socket with ``code`` after what is queued."""
        ...


@dataclass
class GatewaySession:
    """A bot's gateway session: survives a dropped socket until resumed or invalidated."""

    id: str
    app: Application
    intents: int
    seq: int = 0
    buffer: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=5000))
    outlet: Outlet | None = None
    valid: bool = True
    events: list[tuple[int, str, Json]] = field(default_factory=list)

    def dispatch(self, event: str, data: Json) -> None:
        """Number, buffer and (when connected) send one DISPATCH."""
        self.seq += 1
        frame = json.dumps({"op": 0, "t": event, "s": self.seq, "d": data})
        self.buffer.append((self.seq, frame))
        self.events.append((self.seq, event, data))
        if self.outlet is not None:
            self.outlet.send(frame)


@dataclass
class ApiRequest:
    """One REST call the server answered."""

    method: str
    path: str
    route: str
    status: int
    code: int | None
    at: float
    app_id: int | None = None
    body: Any = None


@dataclass(order=True)
class _Scheduled:
    due: float
    order: int
    action: Callable[[], None] = field(compare=False)
    what: str = field(compare=False, default="")


class DiscordWorld:
    """An offline Discord: users, applications (bots), guilds, invites, messages, sessions.

    ``member_add_delay`` is how long GUILD_MEMBER_ADD lags behind a join (a number, or a
    ``(low, high)`` range drawn from the seeded random source; Discord takes about 1–2 s).
    ``interaction_deadline`` (3 s) and ``interaction_token_ttl`` (15 min) follow
    interactions/receiving-and-responding.mdx. ``invite_limit`` invites may exist at once per
    guild (``invite_limit_scope="guild"``) or per channel (``"channel"``); Discord answers
    30016 beyond 1000 and does not document the scope. ``dm_open_limit=(n, seconds)`` makes
    the (n+1)-th new DM channel within ``seconds`` fail with 40003 (off by default; Discord
    does not publish the threshold). ``monotonic`` overrides the clock for rate limits only.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        seed: int = 0,
        member_add_delay: float | tuple[float, float] = (1.0, 2.0),
        interaction_deadline: float = 3.0,
        interaction_token_ttl: float = 15 * 60,
        invite_limit: int = 1000,
        invite_limit_scope: str = "guild",
        dm_open_limit: tuple[int, float] | None = None,
        rate_limits: DiscordRateLimits | None = None,
        monotonic: Callable[[], float] | None = None,
        heartbeat_interval_ms: int = 41250,
    ) -> None:
        if invite_limit_scope not in ("guild", "channel"):
            raise ValueError("invite_limit_scope is 'guild' or 'channel'")
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.random = random.Random(seed)
        self.member_add_delay = member_add_delay
        self.interaction_deadline = interaction_deadline
        self.interaction_token_ttl = interaction_token_ttl
        # bytes one uploaded attachment may have (a bot's default, 10 MiB; 413 40005 above)
        self.attachment_size_limit = 10 * 1024 * 1024
        self.invite_limit = invite_limit
        self.invite_limit_scope = invite_limit_scope
        self.dm_open_limit = dm_open_limit
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.rate_limiter = RateLimiter(
            rate_limits or DiscordRateLimits(), monotonic or self.clock.monotonic
        )
        self.users: dict[int, DiscordUser] = {}
        self.applications: dict[int, Application] = {}
        self.guilds: dict[int, Guild] = {}
        self.dm_channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: list[GatewayConnection] = []
        self.requests: list[ApiRequest] = []
        self.invalid_requests: int = 0
        self._invalid_times: deque[float] = deque()
        self._dm_opens: dict[int, deque[float]] = {}
        self._scheduled: list[_Scheduled] = []
        self._order = itertools.count()
        self._snowflake_seq = itertools.count()
        self._attachment_base = "http://127.0.0.1"
        self.attachment_content: dict[int, bytes] = {}
        self.downloads: list[int] = []  # attachment ids, each time one was fetched
        self._change_waiters: list[asyncio.Future[None]] = []

    # --- time and ids -----------------------------------------------------------------------

    def now(self) -> float:
        """Wall-clock Unix seconds of the world's clock."""
        return self.clock.time()

    def snowflake(self) -> int:
        """A new id: milliseconds since the Discord epoch, then a sequence number."""
        millis = int(self.clock.time() * 1000) - DISCORD_EPOCH_MS
        return (max(millis, 0) << 22) | (next(self._snowflake_seq) & 0x3FFFFF)

    def advance(self, seconds: float) -> None:
        """Move a FakeClock forward, then release the events that became due."""
        if not isinstance(self.clock, FakeClock):
            raise ScriptError("advance() needs a FakeClock; move your clock and call release_due")
        self.clock.advance(seconds)
        self.release_due()

    def release_due(self) -> int:
        """Run every delayed action whose time has come; return how many ran."""
        ran = 0
        now = self.clock.monotonic()
        while self._scheduled and self._scheduled[0].due <= now:
            item = heapq.heappop(self._scheduled)
            item.action()
            ran += 1
        if ran:
            self.notify_change()
        return ran

    def pending_events(self) -> list[str]:
        """Descriptions of the delayed actions not yet released."""
        return [s.what for s in sorted(self._scheduled)]

    def _later(self, delay: float, action: Callable[[], None], what: str) -> None:
        if delay <= 0:
            action()
            return
        due = self.clock.monotonic() + delay
        heapq.heappush(self._scheduled, _Scheduled(due, next(self._order), action, what))

    def _member_delay(self) -> float:
        if isinstance(self.member_add_delay, tuple):
            low, high = self.member_add_delay
            return self.random.uniform(low, high)
        return float(self.member_add_delay)

    # --- building ---------------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        global_name: str | None = None,
        *,
        dms_open: bool = True,
        locale: str = "en-US",
    ) -> DiscordUser:
        """Create a person's account."""
        user = DiscordUser(
            self.snowflake(), username, global_name, dms_open=dms_open, locale=locale
        )
        self.users[user.id] = user
        return user

    def add_application(
        self,
        name: str,
        *,
        owner: DiscordUser | None = None,
        intents_enabled: int = INTENT_GUILD_MEMBERS,
        token: str | None = None,
    ) -> Application:
        """Register a bot application; ``intents_enabled`` holds the privileged intents
        switched on in its developer portal (GUILD_MEMBERS by default)."""
        bot_user = DiscordUser(self.snowflake(), name.lower().replace(" ", "_"), name, bot=True)
        self.users[bot_user.id] = bot_user
        if owner is None:
            owner = self.add_user(f"{bot_user.username}_owner")
        alphabet = string.ascii_letters + string.digits
        secret = "".join(self.random.choice(alphabet) for _ in range(38))
        app = Application(
            id=bot_user.id,
            name=name,
            user=bot_user,
            token=token or f"sandbox.{bot_user.id}.{secret}",
            owner=owner,
            intents_enabled=intents_enabled,
        )
        self.applications[app.id] = app
        return app

    def add_guild(
        self,
        name: str,
        owner: DiscordUser,
        *,
        vanity_code: str | None = None,
        features: Iterable[str] = (),
        everyone_permissions: int = perm.DEFAULT_EVERYONE,
        channel: str = "general",
    ) -> Guild:
        """Create a guild with its @everyone role, its owner and one text channel."""
        guild = Guild(
            self.snowflake(), name, owner.id, vanity_code=vanity_code, features=list(features)
        )
        guild.roles[guild.id] = Role(guild.id, guild.id, "@everyone", everyone_permissions, 0)
        guild.members[owner.id] = Member(owner.id, guild.id, self.now())
        self.guilds[guild.id] = guild
        self.add_channel(guild, channel)
        return guild

    def add_channel(self, guild: Guild, name: str, *, topic: str | None = None) -> Channel:
        """Add a text channel (GUILD_CREATE already sent? then CHANNEL_CREATE follows)."""
        channel = Channel(
            self.snowflake(), 0, name, guild.id, position=len(guild.channels), topic=topic
        )
        guild.channels[channel.id] = channel
        self._to_guild(guild, "CHANNEL_CREATE", channel_json(channel), INTENT_GUILDS)
        return channel

    def set_overwrite(
        self,
        channel: Channel,
        target: Role | DiscordUser,
        *,
        allow: int = 0,
        deny: int = 0,
    ) -> None:
        """Set a role's or a member's permission overwrite on a channel."""
        kind = 0 if isinstance(target, Role) else 1
        channel.overwrites = [
            o for o in channel.overwrites if not (o.type == kind and o.id == target.id)
        ]
        channel.overwrites.append(Overwrite(target.id, kind, allow, deny))
        guild = self.guilds[channel.guild_id or 0]
        self._to_guild(guild, "CHANNEL_UPDATE", channel_json(channel), INTENT_GUILDS)

    def add_role(
        self,
        guild: Guild,
        name: str,
        *,
        permissions: int = 0,
        position: int | None = None,
    ) -> Role:
        """Add a role; by default just above the highest existing role."""
        if position is None:
            position = max(r.position for r in guild.roles.values()) + 1
        role = Role(self.snowflake(), guild.id, name, permissions, position)
        guild.roles[role.id] = role
        data = {"guild_id": str(guild.id), "role": role_json(role)}
        self._to_guild(guild, "GUILD_ROLE_CREATE", data, INTENT_GUILDS)
        return role

    def add_bot_to_guild(
        self,
        app: Application,
        guild: Guild,
        *,
        permissions: int = perm.VIEW_CHANNEL | perm.SEND_MESSAGES,
        role_position: int | None = None,
    ) -> Role:
        """Add a bot (OAuth2 bot scope): it gets a managed role with ``permissions``.

        The role is placed at ``role_position`` (default: above every other role). A
        connected session of the bot receives GUILD_CREATE.
        """
        role = self.add_role(guild, app.name, permissions=permissions, position=role_position)
        role.managed = True
        role.bot_id = app.id
        guild.members[app.user.id] = Member(app.user.id, guild.id, self.now(), roles=[role.id])
        for session in self._sessions_of(app):
            session.dispatch("GUILD_CREATE", self.guild_create_payload(guild, session))
        return role

    def add_member(self, guild: Guild, user: DiscordUser, *, roles: Iterable[Role] = ()) -> Member:
        """Make someone a member silently (for setting up a world before bots connect)."""
        if user.id in guild.members:
            raise ScriptError(f"{user.username} is already in {guild.name}")
        member = Member(user.id, guild.id, self.now(), roles=[r.id for r in roles])
        guild.members[user.id] = member
        return member

    def set_role_permissions(self, role: Role, permissions: int) -> None:
        """Change a role's permissions (GUILD_ROLE_UPDATE)."""
        role.permissions = permissions
        guild = self.guilds[role.guild_id]
        data = {"guild_id": str(guild.id), "role": role_json(role)}
        self._to_guild(guild, "GUILD_ROLE_UPDATE", data, INTENT_GUILDS)

    # --- people acting ----------------------------------------------------------------------

    def join_via_invite(self, user: DiscordUser, code: str) -> Member:
        """Accept an invite (or a vanity code): ``uses`` moves at once (a used-up invite is
        deleted, with INVITE_DELETE); GUILD_MEMBER_ADD follows after ``member_add_delay``."""
        invite = self._live_invite(code)
        vanity = next((g for g in self.guilds.values() if g.vanity_code == code), None)
        if invite is None and vanity is not None:
            return self.join_via_vanity(user, vanity)
        if invite is None:
            raise ScriptError(f"invite {code!r} is unknown, deleted or expired")
        guild = self.guilds[invite.guild_id]
        if user.id in guild.members:
            raise ScriptError(f"{user.username} is already in {guild.name}")
        invite.uses += 1
        if invite.max_uses and invite.uses >= invite.max_uses:
            self._delete_invite(invite, "max_uses")
        return self._join(guild, user, f"join of {user.username} via {code}")

    def join_via_vanity(self, user: DiscordUser, guild: Guild) -> Member:
        """Join through the guild's vanity URL (its own ``uses`` counter moves)."""
        if not guild.vanity_code:
            raise ScriptError(f"{guild.name} has no vanity URL")
        if user.id in guild.members:
            raise ScriptError(f"{user.username} is already in {guild.name}")
        guild.vanity_uses += 1
        return self._join(guild, user, f"join of {user.username} via vanity")

    def join_without_invite(self, user: DiscordUser, guild: Guild) -> Member:
        """Join with no invite at all (Server Discovery, OAuth2 ``guilds.join``)."""
        if user.id in guild.members:
            raise ScriptError(f"{user.username} is already in {guild.name}")
        return self._join(guild, user, f"join of {user.username} without invite")

    def leave(self, user: DiscordUser, guild: Guild) -> None:
        """Leave a guild (GUILD_MEMBER_REMOVE, sent at once)."""
        if guild.members.pop(user.id, None) is None:
            raise ScriptError(f"{user.username} is not in {guild.name}")
        data = {"guild_id": str(guild.id), "user": user_json(user)}
        self._to_guild(guild, "GUILD_MEMBER_REMOVE", data, INTENT_GUILD_MEMBERS)
        self.notify_change()

    def _join(self, guild: Guild, user: DiscordUser, what: str) -> Member:
        member = Member(user.id, guild.id, self.now())
        guild.members[user.id] = member

        def announce() -> None:
            if guild.members.get(user.id) is not member:
                return  # left again before the event went out
            data = member_json(member, user, guild_id=guild.id)
            self._to_guild(guild, "GUILD_MEMBER_ADD", data, INTENT_GUILD_MEMBERS)

        self._later(self._member_delay(), announce, what)
        self.notify_change()
        return member

    def send_message(self, user: DiscordUser, channel: Channel, content: str) -> Message:
        """A person posts in a guild channel (MESSAGE_CREATE)."""
        guild = self.guilds[channel.guild_id or 0]
        if user.id not in guild.members:
            raise ScriptError(f"{user.username} is not in {guild.name}")
        return self.post_message(channel, user, content)

    def invoke_slash(
        self,
        user: DiscordUser,
        channel: Channel,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        app: Application | None = None,
    ) -> InteractionRecord:
        """Run ``/name`` (``"group sub"`` for subcommands) with ``options`` in ``channel``.

        Option values may be plain values, or a :class:`DiscordUser`, :class:`Channel`,
        :class:`Role` or :class:`Attachment` for the matching option types; their objects go
        into ``resolved``. The command must have been registered by the bot.
        """
        guild = self.guilds.get(channel.guild_id or 0)
        if guild is not None and user.id not in guild.members:
            raise ScriptError(f"{user.username} is not in {guild.name}")
        parts = name.split()
        command = self._find_command(parts[0], guild, app)
        definitions = command.payload.get("options", [])
        path: list[Json] = []
        for part in parts[1:]:
            found = next((o for o in definitions if o["name"] == part), None)
            if found is None or int(found["type"]) not in (SUB_COMMAND, SUB_COMMAND_GROUP):
                raise ScriptError(f"/{parts[0]} has no subcommand {part!r}")
            path.append(found)
            definitions = found.get("options", [])
        resolved: dict[str, dict[str, Json]] = {}
        leaf = [
            self._option(definitions, key, value, resolved, guild)
            for key, value in (options or {}).items()
        ]
        for definition in definitions:
            if definition.get("required") and definition["name"] not in (options or {}):
                raise ScriptError(f"option {definition['name']!r} is required")
        for sub in reversed(path):
            leaf = [{"name": sub["name"], "type": int(sub["type"]), "options": leaf}]
        data: Json = {
            "id": str(command.id),
            "name": command.name,
            "type": 1,
            "options": leaf,
        }
        if resolved:
            data["resolved"] = resolved
        if command.guild_id is not None:
            data["guild_id"] = str(command.guild_id)
        owner = self.applications[command.application_id]
        return self._interaction(owner, 2, user, channel, data, name=name)

    def submit_modal(
        self, user: DiscordUser, shown: InteractionRecord, values: dict[str, str]
    ) -> InteractionRecord:
        """Fill in and submit the modal the bot answered ``shown`` with (type 9)."""
        if shown.modal is None:
            raise ScriptError("the bot did not answer this interaction with a modal")
        modal = shown.modal

        def fill(components: list[Json]) -> list[Json]:
            out: list[Json] = []
            for component in components:
                kind = int(component.get("type", 0))
                if kind == 1:
                    out.append({"type": 1, "components": fill(component.get("components", []))})
                elif kind == 18:
                    inner = fill([component["component"]])[0]
                    out.append({"type": 18, "id": component.get("id", 0), "component": inner})
                elif "custom_id" in component:
                    custom_id = component["custom_id"]
                    value = values.get(custom_id, component.get("value") or "")
                    if kind == 4:
                        _check_text_input(component, value)
                    out.append({"type": kind, "custom_id": custom_id, "value": value})
            return out

        data = {"custom_id": modal["custom_id"], "components": fill(modal.get("components", []))}
        app = self.applications[shown.application_id]
        channel = self._channel(shown.channel_id)
        return self._interaction(app, 5, user, channel, data, name=modal["custom_id"])

    def press_button(
        self, user: DiscordUser, message: Message, custom_id: str
    ) -> InteractionRecord:
        """Press a button (component type 2) of a message a bot sent."""
        buttons = [
            c
            for row in message.components
            for c in row.get("components", [])
            if c.get("custom_id") == custom_id
        ]
        if not buttons:
            raise ScriptError(f"the message has no component {custom_id!r}")
        if buttons[0].get("disabled"):
            raise ScriptError(f"the button {custom_id!r} is disabled: nobody can press it")
        app = self.applications.get(message.webhook_id or message.author_id)
        if app is None:
            raise ScriptError("only a bot's messages have interactive components")
        data = {"custom_id": custom_id, "component_type": int(buttons[0]["type"])}
        channel = self._channel(message.channel_id)
        return self._interaction(app, 3, user, channel, data, name=custom_id, message=message)

    # --- test hooks for the gateway ---------------------------------------------------------

    def invalidate_sessions(self, app: Application, *, resumable: bool = False) -> int:
        """Send op 9 INVALID_SESSION to the bot's connected sessions; with
        ``resumable=False`` the sessions are forgotten and the bot must IDENTIFY again."""
        count = 0
        for session in list(self._sessions_of(app, connected_only=True)):
            assert session.outlet is not None
            session.outlet.send(json.dumps({"op": 9, "d": resumable}))
            if not resumable:
                session.valid = False
                session.outlet = None
            count += 1
        return count

    def drop_connections(self, app: Application, *, code: int = 4000) -> int:
        """Close the bot's websockets with ``code`` (4000 = unknown error: the client
        resumes); the sessions stay resumable and buffer what happens meanwhile."""
        count = 0
        for session in list(self._sessions_of(app, connected_only=True)):
            assert session.outlet is not None
            session.outlet.close(code)
            session.outlet = None
            count += 1
        return count

    def request_reconnect(self, app: Application) -> int:
        """Send op 7 RECONNECT to the bot's connected sessions."""
        count = 0
        for session in self._sessions_of(app, connected_only=True):
            assert session.outlet is not None
            session.outlet.send(json.dumps({"op": 7, "d": None}))
            count += 1
        return count

    def inject_rate_limit(
        self,
        route: str | None = None,
        *,
        times: int = 1,
        retry_after: float = 0.05,
        is_global: bool = False,
    ) -> InjectedLimit:
        """Answer the next ``times`` REST calls of ``route`` ("METHOD /template", e.g.
        ``"POST /channels/{channel_id}/messages"``; None = any) with a 429."""
        return self.rate_limiter.inject(
            route, times=times, retry_after=retry_after, is_global=is_global
        )

    # --- reading ----------------------------------------------------------------------------

    def member_of(self, guild: Guild, user: DiscordUser) -> Member | None:
        """Someone's membership, or None."""
        return guild.members.get(user.id)

    def invites(self, guild: Guild, *, include_deleted: bool = False) -> list[Invite]:
        """The guild's invites, oldest first (expired ones count as deleted)."""
        return [
            i
            for i in guild.invites.values()
            if include_deleted or self._live_invite(i.code) is not None
        ]

    def channel_messages(
        self, channel: Channel, *, include_ephemeral: bool = True
    ) -> list[Message]:
        """Messages posted in a channel, oldest first."""
        return [
            m
            for m in self.messages.values()
            if m.channel_id == channel.id
            and not m.deleted
            and (include_ephemeral or not m.ephemeral)
        ]

    def dms(self, user: DiscordUser, app: Application | None = None) -> list[Message]:
        """Messages bots sent to a person in DMs, oldest first."""
        return [
            m
            for m in self.messages.values()
            if (channel := self.dm_channels.get(m.channel_id)) is not None
            and channel.recipient_id == user.id
            and m.author_id != user.id
            and (app is None or m.author_id == app.user.id)
            and not m.deleted
        ]

    def interaction_responses(self, record: InteractionRecord) -> list[Message]:
        """Messages that answer an interaction (original first, then follow-ups)."""
        return [self.messages[i] for i in record.message_ids if not self.messages[i].deleted]

    def gateway_events(self, app: Application, name: str | None = None) -> list[Json]:
        """Payloads of the DISPATCH events sent to the bot's sessions (``name`` filters)."""
        return [
            data
            for session in self.sessions.values()
            if session.app is app
            for _, event, data in session.events
            if name is None or event == name
        ]

    def calls(self, route: str | None = None) -> list[ApiRequest]:
        """Logged REST calls, optionally of one ``"METHOD /template"``."""
        return [r for r in self.requests if route is None or r.route == route]

    def invalid_request_count(self, window: float = 600.0) -> int:
        """401, 403 and 429 answers within the last ``window`` seconds (Discord bans an IP
        for a while after 10,000 in 10 minutes; 429s of the shared scope do not count)."""
        cutoff = self.clock.monotonic() - window
        return sum(1 for t in self._invalid_times if t > cutoff)

    def record_request(self, entry: ApiRequest, *, counts_as_invalid: bool) -> None:
        """Log a REST call (used by the server)."""
        self.requests.append(entry)
        if counts_as_invalid:
            self.invalid_requests += 1
            self._invalid_times.append(self.clock.monotonic())
        self.notify_change()

    # --- waiting ----------------------------------------------------------------------------

    def notify_change(self) -> None:
        """Wake :meth:`wait_for` waiters."""
        waiters, self._change_waiters = self._change_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    async def wait_for(
        self,
        predicate: Callable[[], T],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait
        what: str = "condition",
    ) -> T:
        """Wait (in real time) until ``predicate()`` is truthy; re-checked on every change."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            future: asyncio.Future[None] = loop.create_future()
            self._change_waiters.append(future)
            try:
                await asyncio.wait_for(future, min(remaining, 0.05))
            except TimeoutError:
                continue

    async def wait_for_dm(
        self,
        user: DiscordUser,
        *,
        contains: str | None = None,
        since: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> Message:
        """Wait for a bot's DM to ``user`` (the ``since``-th onwards, default: a new one)."""
        start = len(self.dms(user)) if since is None else since

        def find() -> Message | None:
            for message in self.dms(user)[start:]:
                if contains is None or contains in message.content:
                    return message
            return None

        found = await self.wait_for(find, timeout=timeout, what=f"a DM to {user.username}")
        assert found is not None
        return found

    async def wait_for_message(
        self,
        channel: Channel,
        *,
        contains: str | None = None,
        since: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> Message:
        """Wait for a new message in a channel."""
        start = len(self.channel_messages(channel)) if since is None else since

        def find() -> Message | None:
            for message in self.channel_messages(channel)[start:]:
                if contains is None or contains in message.content:
                    return message
            return None

        found = await self.wait_for(find, timeout=timeout, what=f"a message in #{channel.name}")
        assert found is not None
        return found

    async def wait_for_response(
        self,
        record: InteractionRecord,
        *,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> InteractionRecord:
        """Wait until the bot made ``count`` callbacks (or got an error back) for it."""
        await self.wait_for(
            lambda: len(record.responses) >= count or record.refused,
            timeout=timeout,
            what=f"a response to interaction {record.name}",
        )
        return record

    async def wait_for_messages_of(
        self,
        record: InteractionRecord,
        count: int,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> list[Message]:
        """Wait until an interaction has ``count`` response messages (original included)."""
        await self.wait_for(
            lambda: len(self.interaction_responses(record)) >= count,
            timeout=timeout,
            what=f"{count} messages answering {record.name}",
        )
        return self.interaction_responses(record)

    async def wait_until_connected(
        self,
        app: Application,
        *,
        sessions: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> GatewaySession:
        """Wait until the bot has ``sessions`` identified sessions and one is connected."""

        def ready() -> GatewaySession | None:
            mine = [s for s in self.sessions.values() if s.app is app]
            connected = [s for s in mine if s.valid and s.outlet is not None]
            return connected[-1] if len(mine) >= sessions and connected else None

        session = await self.wait_for(ready, timeout=timeout, what=f"{app.name} to connect")
        assert session is not None
        return session

    # --- used by the REST and gateway layers ------------------------------------------------

    def app_by_token(self, token: str) -> Application | None:
        """The application a bot token belongs to."""
        return next((a for a in self.applications.values() if a.token == token), None)

    def guilds_of(self, app: Application) -> list[Guild]:
        """Guilds the bot is a member of."""
        return [g for g in self.guilds.values() if app.user.id in g.members]

    def guild_create_payload(self, guild: Guild, session: GatewaySession) -> Json:
        """GUILD_CREATE for a session: the guild, its channels, the bot's own member."""
        body = guild_json(guild)
        me = guild.members[session.app.user.id]
        body.update(
            unavailable=False,
            joined_at=member_json(me, session.app.user)["joined_at"],
            large=len(guild.members) > 250,
            member_count=len(guild.members),
            members=[member_json(me, session.app.user)],
            channels=[channel_json(c) for c in guild.channels.values()],
            threads=[],
            presences=[],
            voice_states=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
        )
        return body

    def new_session(self, app: Application, intents: int) -> GatewaySession:
        """Start a gateway session (after a valid IDENTIFY)."""
        session = GatewaySession(secrets.token_hex(16), app, intents)
        self.sessions[session.id] = session
        return session

    def member_chunks(
        self,
        session: GatewaySession,
        guild_id: int,
        *,
        query: str | None,
        limit: int,
        user_ids: list[int] | None,
        nonce: str | None,
        chunk_size: int = 1000,
    ) -> list[Json]:
        """GUILD_MEMBERS_CHUNK payloads answering op 8 REQUEST_GUILD_MEMBERS."""
        guild = self.guilds.get(guild_id)
        if guild is None or session.app.user.id not in guild.members:
            return []
        members = list(guild.members.values())
        not_found: list[str] = []
        if user_ids:
            wanted = set(user_ids)
            not_found = [str(u) for u in user_ids if u not in guild.members]
            members = [m for m in members if m.user_id in wanted]
        elif query:
            prefix = query.lower()
            members = [
                m
                for m in members
                if self.users[m.user_id].username.lower().startswith(prefix)
                or (m.nick or "").lower().startswith(prefix)
            ]
        if limit and not user_ids:
            members = members[:limit]
        batches = [members[i : i + chunk_size] for i in range(0, len(members), chunk_size)] or [[]]
        chunks = []
        for index, batch in enumerate(batches):
            body: Json = {
                "guild_id": str(guild.id),
                "members": [member_json(m, self.users[m.user_id]) for m in batch],
                "chunk_index": index,
                "chunk_count": len(batches),
            }
            if not_found and index == 0:
                body["not_found"] = not_found
            if nonce is not None:
                body["nonce"] = nonce
            chunks.append(body)
        return chunks

    def live_invite(self, code: str) -> Invite | None:
        """An invite that exists and has not expired."""
        return self._live_invite(code)

    def create_invite(
        self,
        app: Application,
        channel: Channel,
        *,
        max_age: int,
        max_uses: int,
        temporary: bool,
        unique: bool,
    ) -> Invite:
        """Create (or with ``unique=False`` reuse) an invite; INVITE_CREATE for a new one."""
        guild = self.guilds[channel.guild_id or 0]
        if not unique:
            for invite in self.invites(guild):
                if (
                    invite.channel_id == channel.id
                    and invite.inviter_id == app.user.id
                    and (invite.max_age, invite.max_uses, invite.temporary)
                    == (max_age, max_uses, temporary)
                ):
                    return invite
        existing = [
            i
            for i in self.invites(guild)
            if self.invite_limit_scope == "guild" or i.channel_id == channel.id
        ]
        if len(existing) >= self.invite_limit:
            raise DiscordApiError(
                400, 30016, f"Maximum number of invites reached ({self.invite_limit})"
            )
        code = self._invite_code(guild)
        invite = Invite(
            code, guild.id, channel.id, app.user.id, self.now(), max_age, max_uses, temporary
        )
        guild.invites[code] = invite
        self._invite_event("INVITE_CREATE", invite, invite_create_event(invite, app.user))
        self.notify_change()
        return invite

    def delete_invite(self, invite: Invite, reason: str = "deleted") -> None:
        """Delete an invite (INVITE_DELETE)."""
        self._delete_invite(invite, reason)

    def open_dm(self, app: Application, user: DiscordUser) -> Channel:
        """The DM channel of a bot and a person (created on first use)."""
        for channel in self.dm_channels.values():
            if channel.recipient_id == user.id and channel.name == str(app.user.id):
                return channel
        if self.dm_open_limit is not None:
            count, per = self.dm_open_limit
            now = self.clock.monotonic()
            opens = self._dm_opens.setdefault(app.id, deque())
            while opens and opens[0] <= now - per:
                opens.popleft()
            if len(opens) >= count:
                raise DiscordApiError(400, 40003, "You are opening direct messages too fast.")
            opens.append(now)
        channel = Channel(self.snowflake(), 1, str(app.user.id), recipient_id=user.id)
        self.dm_channels[channel.id] = channel
        return channel

    def shares_guild(self, a: DiscordUser, b: DiscordUser) -> bool:
        """Whether two accounts are members of one guild."""
        return any(a.id in g.members and b.id in g.members for g in self.guilds.values())

    def post_message(
        self,
        channel: Channel,
        author: DiscordUser,
        content: str,
        *,
        embeds: list[Json] | None = None,
        components: list[Json] | None = None,
        flags: int = 0,
        attachments: list[Json] | None = None,
        interaction_id: int | None = None,
        webhook_id: int | None = None,
        announce: bool = True,
    ) -> Message:
        """Store a message and send MESSAGE_CREATE where intents allow."""
        message = Message(
            self.snowflake(),
            channel.id,
            author.id,
            content,
            self.now(),
            guild_id=channel.guild_id,
            embeds=embeds or [],
            components=components or [],
            flags=flags,
            attachments=attachments or [],
            interaction_id=interaction_id,
            webhook_id=webhook_id,
            type=20 if interaction_id is not None else 0,
        )
        self.messages[message.id] = message
        channel.last_message_id = message.id
        if announce and not message.ephemeral:
            self._announce_message(channel, message, author)
        self.notify_change()
        return message

    def _announce_message(self, channel: Channel, message: Message, author: DiscordUser) -> None:
        data = message_json(message, author)
        if channel.guild_id is not None:
            guild = self.guilds[channel.guild_id]
            for session in self._sessions_in(guild):
                visible = perm.channel_permissions(guild, channel, session.app.user.id)
                if session.intents & INTENT_GUILD_MESSAGES and visible & perm.VIEW_CHANNEL:
                    session.dispatch("MESSAGE_CREATE", data)
            return
        for session in self.sessions.values():
            if (
                session.valid
                and session.intents & INTENT_DIRECT_MESSAGES
                and channel.name == str(session.app.user.id)
            ):
                session.dispatch("MESSAGE_CREATE", data)

    def channel_of(self, channel_id: int) -> Channel | None:
        """A guild or DM channel by id."""
        if channel_id in self.dm_channels:
            return self.dm_channels[channel_id]
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild.channels[channel_id]
        return None

    def set_attachment_base(self, base: str) -> None:
        """Where attachment URLs point (the server sets its own URL)."""
        self._attachment_base = base

    def dispatch_member_update(self, guild: Guild, member: Member) -> None:
        """GUILD_MEMBER_UPDATE after a role change."""
        data = member_json(member, self.users[member.user_id], guild_id=guild.id)
        self._to_guild(guild, "GUILD_MEMBER_UPDATE", data, INTENT_GUILD_MEMBERS)
        self.notify_change()

    # --- internals --------------------------------------------------------------------------

    def _sessions_of(
        self, app: Application, *, connected_only: bool = False
    ) -> list[GatewaySession]:
        return [
            s
            for s in self.sessions.values()
            if s.app is app and s.valid and (s.outlet is not None or not connected_only)
        ]

    def _sessions_in(self, guild: Guild) -> list[GatewaySession]:
        return [s for s in self.sessions.values() if s.valid and s.app.user.id in guild.members]

    def _to_guild(self, guild: Guild, event: str, data: Json, intent: int) -> None:
        for session in self._sessions_in(guild):
            if session.intents & intent:
                session.dispatch(event, data)

    def _invite_event(self, event: str, invite: Invite, data: Json) -> None:
        guild = self.guilds[invite.guild_id]
        channel = guild.channels[invite.channel_id]
        for session in self._sessions_in(guild):
            allowed = perm.channel_permissions(guild, channel, session.app.user.id)
            if session.intents & INTENT_GUILD_INVITES and allowed & perm.MANAGE_CHANNELS:
                session.dispatch(event, data)

    def _delete_invite(self, invite: Invite, reason: str) -> None:
        if invite.deleted:
            return
        invite.deleted = True
        invite.deleted_reason = reason
        data = {
            "channel_id": str(invite.channel_id),
            "guild_id": str(invite.guild_id),
            "code": invite.code,
        }
        self._invite_event("INVITE_DELETE", invite, data)
        self.notify_change()

    def _live_invite(self, code: str) -> Invite | None:
        for guild in self.guilds.values():
            invite = guild.invites.get(code)
            if invite is None or invite.deleted:
                continue
            expires = invite.expires_at()
            if expires is not None and self.now() >= expires:
                return None
            return invite
        return None

    def _invite_code(self, guild: Guild) -> str:
        alphabet = string.ascii_letters + string.digits
        taken = {c for g in self.guilds.values() for c in g.invites} | {
            g.vanity_code for g in self.guilds.values() if g.vanity_code
        }
        while True:
            code = "".join(self.random.choice(alphabet) for _ in range(8))
            if code not in taken:
                return code

    def _channel(self, channel_id: int) -> Channel:
        channel = self.channel_of(channel_id)
        if channel is None:
            raise ScriptError(f"no channel {channel_id}")
        return channel

    def _find_command(self, name: str, guild: Guild | None, app: Application | None) -> AppCommand:
        apps = [app] if app is not None else list(self.applications.values())
        for candidate in apps:
            if guild is not None and candidate.user.id not in guild.members:
                continue
            commands = list(candidate.commands.values())
            for command in commands:  # a guild command shadows a global one
                if command.name == name and guild is not None and command.guild_id == guild.id:
                    return command
            for command in commands:
                if command.name == name and command.guild_id is None:
                    return command
        raise ScriptError(f"no bot registered /{name} here")

    def _option(
        self,
        definitions: list[Json],
        name: str,
        value: Any,
        resolved: dict[str, dict[str, Json]],
        guild: Guild | None,
    ) -> Json:
        definition = next((o for o in definitions if o["name"] == name), None)
        if definition is None:
            raise ScriptError(f"the command has no option {name!r}")
        kind = int(definition["type"])
        raw: Any = value
        if kind == ATTACHMENT:
            if not isinstance(value, Attachment):
                raise ScriptError(f"option {name!r} takes an Attachment")
            if not value.id:
                value.id = self.snowflake()
            self.attachment_content[value.id] = value.content
            resolved.setdefault("attachments", {})[str(value.id)] = value.to_json(
                self._attachment_base
            )
            raw = str(value.id)
        elif kind in (USER, MENTIONABLE) and isinstance(value, DiscordUser):
            resolved.setdefault("users", {})[str(value.id)] = user_json(value)
            member = guild.members.get(value.id) if guild is not None else None
            if member is not None:
                body = member_json(member, value)
                body.pop("user")
                body["permissions"] = str(perm.base_permissions(guild, value.id))  # type: ignore[arg-type]
                resolved.setdefault("members", {})[str(value.id)] = body
            raw = str(value.id)
        elif kind == CHANNEL and isinstance(value, Channel):
            body = channel_json(value)
            body["permissions"] = str(perm.ALL)
            resolved.setdefault("channels", {})[str(value.id)] = body
            raw = str(value.id)
        elif kind in (ROLE, MENTIONABLE) and isinstance(value, Role):
            resolved.setdefault("roles", {})[str(value.id)] = role_json(value)
            raw = str(value.id)
        elif kind == INTEGER:
            raw = int(value)
        elif kind == NUMBER:
            raw = float(value)
        elif kind == BOOLEAN:
            raw = bool(value)
        elif kind == STRING:
            raw = str(value)
        return {"name": name, "type": kind, "value": raw}

    def _interaction(
        self,
        app: Application,
        kind: int,
        user: DiscordUser,
        channel: Channel,
        data: Json,
        *,
        name: str,
        message: Message | None = None,
    ) -> InteractionRecord:
        interaction_id = self.snowflake()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        guild = self.guilds.get(channel.guild_id or 0)
        body: Json = {
            "id": str(interaction_id),
            "application_id": str(app.id),
            "type": kind,
            "data": data,
            "channel_id": str(channel.id),
            "token": token,
            "version": 1,
            "locale": user.locale,
            "entitlements": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        if guild is not None:
            member = guild.members[user.id]
            member_body = member_json(member, user)
            member_body["permissions"] = str(perm.channel_permissions(guild, channel, user.id))
            bot_perms = perm.channel_permissions(guild, channel, app.user.id)
            body.update(
                guild_id=str(guild.id),
                guild_locale=guild.preferred_locale,
                guild={"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
                member=member_body,
                channel=channel_json(channel),
                app_permissions=str(bot_perms),
                authorizing_integration_owners={"0": str(guild.id)},
                context=0,
            )
        else:
            body.update(
                user=user_json(user),
                channel=channel_json(channel, user),
                app_permissions=str(perm.DEFAULT_EVERYONE),
                authorizing_integration_owners={"0": "0"},
                context=1,
            )
        if message is not None:
            author = self.users[message.author_id]
            body["message"] = message_json(message, author)
        record = InteractionRecord(
            id=interaction_id,
            token=token,
            type=kind,
            application_id=app.id,
            user_id=user.id,
            guild_id=guild.id if guild is not None else None,
            channel_id=channel.id,
            created_monotonic=self.clock.monotonic(),
            created_time=self.now(),
            payload=body,
            name=name,
            original_message_id=message.id if message is not None else None,
        )
        self.interactions[interaction_id] = record
        sessions = self._sessions_of(app)
        if sessions:  # the newest session gets it (no sharding here)
            sessions[-1].dispatch("INTERACTION_CREATE", body)
        self.notify_change()
        return record


def _check_text_input(component: Json, value: str) -> None:
    """What Discord's clients enforce before a modal can be submitted: a required field
    filled in, and the length within ``min_length``/``max_length``."""
    name = component.get("custom_id")
    if component.get("required", True) and not value:
        raise ScriptError(f"the field {name!r} is required: the form cannot be sent empty")
    if value and len(value) < int(component.get("min_length") or 0):
        raise ScriptError(
            f"the field {name!r} needs at least {component['min_length']} characters"
        )
    if len(value) > int(component.get("max_length") or 4000):
        raise ScriptError(f"the field {name!r} takes at most {component.get('max_length', 4000)}")
