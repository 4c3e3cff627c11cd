"""The state of the simulated Discord: accounts, guilds, roles, channels, invites, messages.

Plain dataclasses; :class:`sandbox.discord.world.DiscordWorld` owns and changes them. Ids are
snowflakes made from the world's clock (milliseconds since the Discord epoch in the high bits),
so they look and sort like Discord's and discord.py's ``created_at`` works on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000

# Gateway intents (developers/events/gateway.mdx, "List of Intents").
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_INVITES = 1 << 6
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Application flags READY reports for the privileged intents an app may use (the
# "_LIMITED" variants: toggled in the developer portal, no review).
APP_FLAG_PRESENCE_LIMITED = 1 << 13
APP_FLAG_GUILD_MEMBERS_LIMITED = 1 << 15
APP_FLAG_MESSAGE_CONTENT_LIMITED = 1 << 19
APPLICATION_COMMAND_BADGE = 1 << 23


@dataclass
class DiscordUser:
    """A person's (or a bot's) account. ``dms_open=False`` refuses DMs from bots (50007)."""

    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    dms_open: bool = True
    locale: str = "en-US"
    avatar: str | None = None


@dataclass
class Application:
    """A bot application: its bot user, token and the privileged intents it may request."""

    id: int
    name: str
    user: DiscordUser
    token: str
    owner: DiscordUser
    intents_enabled: int = 0
    verify_key: str = "0" * 64
    commands: dict[int, AppCommand] = field(default_factory=dict)

    def flags(self) -> int:
        """``application.flags`` as READY and ``/oauth2/applications/@me`` report them."""
        value = APPLICATION_COMMAND_BADGE if self.commands else 0
        if self.intents_enabled & INTENT_GUILD_PRESENCES:
            value |= APP_FLAG_PRESENCE_LIMITED
        if self.intents_enabled & INTENT_GUILD_MEMBERS:
            value |= APP_FLAG_GUILD_MEMBERS_LIMITED
        if self.intents_enabled & INTENT_MESSAGE_CONTENT:
            value |= APP_FLAG_MESSAGE_CONTENT_LIMITED
        return value


@dataclass
class Role:
    """A guild role. The @everyone role has the guild's id and position 0."""

    id: int
    guild_id: int
    name: str
    permissions: int = 0
    position: int = 0
    managed: bool = False
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    bot_id: int | None = None


@dataclass
class Overwrite:
    """A channel permission overwrite: ``type`` 0 = role, 1 = member."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0


@dataclass
class Channel:
    """A guild text channel (type 0) or a DM channel (type 1, ``recipient_id`` set)."""

    id: int
    type: int
    name: str | None = None
    guild_id: int | None = None
    position: int = 0
    overwrites: list[Overwrite] = field(default_factory=list)
    recipient_id: int | None = None
    topic: str | None = None
    last_message_id: int | None = None


@dataclass
class Member:
    """Someone's membership of a guild."""

    user_id: int
    guild_id: int
    joined_at: float
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    flags: int = 0
    pending: bool = False


@dataclass
class Invite:
    """A guild invite. ``deleted`` keeps revoked or used-up invites in the log."""

    code: str
    guild_id: int
    channel_id: int
    inviter_id: int | None
    created_at: float
    max_age: int = 86400
    max_uses: int = 0
    temporary: bool = False
    uses: int = 0
    deleted: bool = False
    deleted_reason: str | None = None

    def expires_at(self) -> float | None:
        """Unix seconds at which the invite expires, or None for a permanent one."""
        return None if self.max_age == 0 else self.created_at + self.max_age


@dataclass
class Guild:
    """A server. ``vanity_code`` set adds the ``VANITY_URL`` feature."""

    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    invites: dict[str, Invite] = field(default_factory=dict)
    vanity_code: str | None = None
    vanity_uses: int = 0
    features: list[str] = field(default_factory=list)
    preferred_locale: str = "en-US"

    @property
    def everyone(self) -> Role:
        """The @everyone role."""
        return self.roles[self.id]

    def live_invites(self) -> list[Invite]:
        """Invites that exist (not deleted); expiry is checked by the world."""
        return [i for i in self.invites.values() if not i.deleted]


@dataclass
class Attachment:
    """A file a simulated user attaches to a slash command option."""

    filename: str
    size: int | None = None  # what Discord announces; by default the content's length
    content_type: str | None = "text/csv"
    content: bytes = b""
    id: int = 0

    def to_json(self, base_url: str) -> Json:
        """The resolved attachment object."""
        url = f"{base_url}/attachments/{self.id}/{self.filename}"
        body: Json = {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.content) if self.size is None else self.size,
            "url": url,
            "proxy_url": url,
        }
        if self.content_type is not None:
            body["content_type"] = self.content_type
        return body


@dataclass
class Message:
    """A message posted by a bot or a simulated user (also interaction responses)."""

    id: int
    channel_id: int
    author_id: int
    content: str
    timestamp: float
    guild_id: int | None = None
    embeds: list[Json] = field(default_factory=list)
    components: list[Json] = field(default_factory=list)
    flags: int = 0
    attachments: list[Json] = field(default_factory=list)
    interaction_id: int | None = None
    webhook_id: int | None = None
    edited_timestamp: float | None = None
    deleted: bool = False
    type: int = 0

    @property
    def ephemeral(self) -> bool:
        """Whether the message carries the EPHEMERAL flag (64)."""
        return bool(self.flags & 64)


@dataclass
class AppCommand:
    """An application command as registered through the REST API."""

    id: int
    application_id: int
    name: str
    payload: Json
    guild_id: int | None = None
    version: int = 1

    def option_types(self) -> dict[str, int]:
        """Top-level option names and their types."""
        return {o["name"]: int(o["type"]) for o in self.payload.get("options", [])}


@dataclass
class InteractionResponse:
    """One callback the bot made for an interaction (``type`` 4, 5, 6, 7 or 9)."""

    type: int
    data: Json
    at: float

    @property
    def ephemeral(self) -> bool:
        """Whether the response was sent with flags 64."""
        return bool(int(self.data.get("flags") or 0) & 64)


@dataclass
class InteractionRecord:
    """An interaction a simulated user started, and everything the bot answered."""

    id: int
    token: str
    type: int
    application_id: int
    user_id: int
    guild_id: int | None
    channel_id: int
    created_monotonic: float
    created_time: float
    payload: Json
    name: str | None = None
    responses: list[InteractionResponse] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)
    original_message_id: int | None = None
    modal: Json | None = None
    refused: list[int] = field(default_factory=list)  # error codes the bot got back

    @property
    def responded(self) -> bool:
        """Whether an initial callback was accepted."""
        return bool(self.responses)


@dataclass
class GatewayConnection:
    """One websocket a client opened, for tests that check reconnects."""

    path: str
    kind: str | None = None  # "identify" or "resume" once the client said which
    session_id: str | None = None
    close_code: int | None = None
