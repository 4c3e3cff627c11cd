"""The REST routes of the simulated Discord API v10, as pure functions of the world.

Each handler takes a :class:`RestRequest` and returns ``(status, body)`` (``None`` for 204);
failures raise :class:`sandbox.discord.errors.DiscordApiError`. The server does the HTTP,
authentication and rate limits. Permission rules follow the "Permissions" notes of each
endpoint in developers/resources/*.mdx.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.discord import permissions as perm
from sandbox.discord.errors import (
    DiscordApiError,
    invalid_form,
    missing_access,
    missing_permissions,
    unknown,
)
from sandbox.discord.model import (
    INTENT_GUILD_MEMBERS,
    AppCommand,
    Application,
    Channel,
    Guild,
    InteractionRecord,
    InteractionResponse,
    Invite,
    Json,
    Message,
)
from sandbox.discord.payloads import (
    application_json,
    channel_json,
    guild_json,
    invite_json,
    member_json,
    message_json,
    role_json,
    user_json,
)
from sandbox.discord.world import DiscordWorld

LOADING = 128
EPHEMERAL = 64
_MESSAGE_FLAGS = EPHEMERAL | 4 | 4096  # ephemeral, suppress embeds, suppress notifications


@dataclass
class RestRequest:
    """One parsed REST call."""

    method: str
    route: str  # "METHOD /template"
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    app: Application | None
    attachments: list[Json] = field(default_factory=list)
    gateway_url: str = ""

    def json(self) -> Json:
        """The body as an object (empty when there is none)."""
        return self.body if isinstance(self.body, dict) else {}


Result = tuple[int, Any]
Handler = Callable[[DiscordWorld, RestRequest], Result]


@dataclass
class Route:
    """A REST route: method, path template, handler and how it is authenticated."""

    method: str
    template: str
    handler: Handler
    bot_auth: bool = True
    exempt_global: bool = False
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        self.pattern = re.compile(f"^{regex}$")

    @property
    def key(self) -> str:
        """``"METHOD /template"``: the rate-limit key and the call-log name."""
        return f"{self.method} {self.template}"


# --- helpers ---------------------------------------------------------------------------------


def _app(req: RestRequest) -> Application:
    assert req.app is not None
    return req.app


def _guild(world: DiscordWorld, req: RestRequest) -> Guild:
    guild = world.guilds.get(_int(req.params["guild_id"]))
    if guild is None:
        raise unknown("Guild", 10004)
    if _app(req).user.id not in guild.members:
        raise missing_access()
    return guild


def _channel(world: DiscordWorld, req: RestRequest) -> Channel:
    channel = world.channel_of(_int(req.params["channel_id"]))
    if channel is None:
        raise unknown("Channel", 10003)
    app = _app(req)
    if channel.type == 1:
        if channel.name != str(app.user.id):
            raise missing_access()
        return channel
    guild = world.guilds[channel.guild_id or 0]
    if app.user.id not in guild.members:
        raise missing_access()
    if not perm.channel_permissions(guild, channel, app.user.id) & perm.VIEW_CHANNEL:
        raise missing_access()
    return channel


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise invalid_form("id", "Value is not snowflake.", "NUMBER_TYPE_COERCE") from None


def _bot_perms(world: DiscordWorld, req: RestRequest, channel: Channel) -> int:
    guild = world.guilds[channel.guild_id or 0]
    return perm.channel_permissions(guild, channel, _app(req).user.id)


def _invite_body(
    world: DiscordWorld, invite: Invite, *, metadata: bool, counts: bool = False
) -> Json:
    guild = world.guilds[invite.guild_id]
    inviter = world.users.get(invite.inviter_id) if invite.inviter_id else None
    return invite_json(invite, guild, inviter, metadata=metadata, with_counts=counts)


def _message_body(world: DiscordWorld, message: Message) -> Json:
    return message_json(message, world.users[message.author_id])


def _message_fields(body: Json, attachments: list[Json]) -> Json:
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        content = str(content)
    if content is not None and len(content) > 2000:
        raise invalid_form("content", "Must be 2000 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
    embeds = body.get("embeds") or ([body["embed"]] if body.get("embed") else [])
    if len(embeds) > 10:
        raise invalid_form("embeds", "Must be 10 or fewer in length.", "BASE_TYPE_MAX_LENGTH")
    return {
        "content": content,
        "embeds": embeds,
        "components": body.get("components"),
        "flags": int(body.get("flags") or 0) & _MESSAGE_FLAGS,
        "attachments": attachments,
    }


# --- gateway, users, application ------------------------------------------------------------


def get_gateway(world: DiscordWorld, req: RestRequest) -> Result:
    return 200, {"url": req.gateway_url}


def get_gateway_bot(world: DiscordWorld, req: RestRequest) -> Result:
    limit = {"total": 1000, "remaining": 1000, "reset_after": 86_400_000, "max_concurrency": 1}
    return 200, {"url": req.gateway_url, "shards": 1, "session_start_limit": limit}


def get_me(world: DiscordWorld, req: RestRequest) -> Result:
    body = user_json(_app(req).user)
    body.update(verified=True, mfa_enabled=False, locale="en-US", email=None)
    return 200, body


def get_user(world: DiscordWorld, req: RestRequest) -> Result:
    user = world.users.get(_int(req.params["user_id"]))
    if user is None:
        raise unknown("User", 10013)
    return 200, user_json(user)


def get_my_guilds(world: DiscordWorld, req: RestRequest) -> Result:
    app = _app(req)
    return 200, [
        {
            "id": str(g.id),
            "name": g.name,
            "icon": None,
            "banner": None,
            "owner": g.owner_id == app.user.id,
            "permissions": str(perm.base_permissions(g, app.user.id)),
            "features": guild_json(g)["features"],
        }
        for g in world.guilds_of(app)
    ]


def get_application(world: DiscordWorld, req: RestRequest) -> Result:
    return 200, application_json(_app(req))


def open_dm(world: DiscordWorld, req: RestRequest) -> Result:
    raw = req.json().get("recipient_id")
    if raw is None:
        raise invalid_form("recipient_id", "This field is required", "BASE_TYPE_REQUIRED")
    user = world.users.get(_int(str(raw)))
    if user is None:
        raise unknown("User", 10013)
    channel = world.open_dm(_app(req), user)
    return 200, channel_json(channel, user)


# --- guilds, members, roles ---------------------------------------------------------------


def get_guild(world: DiscordWorld, req: RestRequest) -> Result:
    guild = _guild(world, req)
    body = guild_json(guild)
    if req.query.get("with_counts") in ("true", "1", "True"):
        body["approximate_member_count"] = len(guild.members)
        body["approximate_presence_count"] = 0
    return 200, body


def get_guild_channels(world: DiscordWorld, req: RestRequest) -> Result:
    guild = _guild(world, req)
    return 200, [channel_json(c) for c in guild.channels.values()]


def get_roles(world: DiscordWorld, req: RestRequest) -> Result:
    guild = _guild(world, req)
    return 200, [role_json(r) for r in sorted(guild.roles.values(), key=lambda r: r.position)]


def get_member(world: DiscordWorld, req: RestRequest) -> Result:
    guild = _guild(world, req)
    member = guild.members.get(_int(req.params["user_id"]))
    if member is None:
        raise unknown("Member", 10007)
    return 200, member_json(member, world.users[member.user_id])


def list_members(world: DiscordWorld, req: RestRequest) -> Result:
    guild = _guild(world, req)
    if not _app(req).intents_enabled & INTENT_GUILD_MEMBERS:
        raise missing_access()  # restricted to apps with the GUILD_MEMBERS intent enabled
    limit = int(req.query.get("limit", "1"))
    if not 1 <= limit <= 1000:
        raise invalid_form("limit", "int value should be between 1 and 1000.", "NUMBER_TYPE_MAX")
    after = int(req.query.get("after", "0"))
    members = sorted(
        (m for m in guild.members.values() if m.user_id > after), key=lambda m: m.user_id
    )
    return 200, [member_json(m, world.users[m.user_id]) for m in members[:limit]]


def _role_change(world: DiscordWorld, req: RestRequest, add: bool) -> Result:
    guild = _guild(world, req)
    member = guild.members.get(_int(req.params["user_id"]))
    if member is None:
        raise unknown("Member", 10007)
    role = guild.roles.get(_int(req.params["role_id"]))
    if role is None or role.id == guild.id:
        raise unknown("Role", 10011)
    bot_id = _app(req).user.id
    if bot_id != guild.owner_id:
        if not perm.base_permissions(guild, bot_id) & perm.MANAGE_ROLES:
            raise missing_permissions()
        if role.position >= perm.top_role_position(guild, bot_id) or role.managed:
            raise missing_permissions()  # only roles below the bot's highest role
    changed = False
    if add and role.id not in member.roles:
        member.roles.append(role.id)
        changed = True
    elif not add and role.id in member.roles:
        member.roles.remove(role.id)
        changed = True
    if changed:
        world.dispatch_member_update(guild, member)
    return 204, None


def add_role(world: DiscordWorld, req: RestRequest) -> Result:
    return _role_change(world, req, True)


def remove_role(world: DiscordWorld, req: RestRequest) -> Result:
    return _role_change(world, req, False)


# --- invites ---------------------------------------------------------------------------------


def create_invite(world: DiscordWorld, req: RestRequest) -> Result:
    channel = _channel(world, req)
    if channel.type == 1:
        raise DiscordApiError(400, 50003, "Cannot execute action on a DM channel")
    if not _bot_perms(world, req, channel) & perm.CREATE_INSTANT_INVITE:
        raise missing_permissions()
    body = req.json()
    max_age = int(body.get("max_age", 86400))
    max_uses = int(body.get("max_uses", 0))
    if not 0 <= max_age <= 604800:
        raise invalid_form("max_age", "int value should be less than or equal to 604800.")
    if not 0 <= max_uses <= 100:
        raise invalid_form("max_uses", "int value should be less than or equal to 100.")
    invite = world.create_invite(
        _app(req),
        channel,
        max_age=max_age,
        max_uses=max_uses,
        temporary=bool(body.get("temporary", False)),
        unique=bool(body.get("unique", False)),
    )
    return 200, _invite_body(world, invite, metadata=True)


def guild_invites(world: DiscordWorld, req: RestRequest) -> Result:
    guild = _guild(world, req)
    rights = perm.base_permissions(guild, _app(req).user.id)
    if not rights & (perm.MANAGE_GUILD | perm.VIEW_AUDIT_LOG):
        raise missing_permissions()
    metadata = bool(rights & perm.MANAGE_GUILD)  # uses/max_uses only with MANAGE_GUILD
    return 200, [_invite_body(world, i, metadata=metadata) for i in world.invites(guild)]


def channel_invites(world: DiscordWorld, req: RestRequest) -> Result:
    channel = _channel(world, req)
    if channel.type == 1 or not _bot_perms(world, req, channel) & perm.MANAGE_CHANNELS:
        raise missing_permissions()
    guild = world.guilds[channel.guild_id or 0]
    invites = [i for i in world.invites(guild) if i.channel_id == channel.id]
    return 200, [_invite_body(world, i, metadata=True) for i in invites]


def get_invite(world: DiscordWorld, req: RestRequest) -> Result:
    code = req.params["invite_code"]
    counts = req.query.get("with_counts") in ("true", "1", "True")
    invite = world.live_invite(code)
    if invite is None:
        guild = next((g for g in world.guilds.values() if g.vanity_code == code), None)
        if guild is None:
            raise unknown("Invite", 10006)
        # The vanity URL as an invite: the guild's first channel, no inviter, no expiry.
        channel = next(iter(guild.channels.values()))
        vanity = Invite(code, guild.id, channel.id, None, world.now(), max_age=0)
        return 200, invite_json(vanity, guild, None, metadata=False, with_counts=counts)
    return 200, _invite_body(world, invite, metadata=False, counts=counts)


def delete_invite(world: DiscordWorld, req: RestRequest) -> Result:
    invite = world.live_invite(req.params["invite_code"])
    if invite is None:
        raise unknown("Invite", 10006)
    guild = world.guilds[invite.guild_id]
    bot_id = _app(req).user.id
    if bot_id not in guild.members:
        raise missing_access()
    channel = guild.channels[invite.channel_id]
    channel_rights = perm.channel_permissions(guild, channel, bot_id)
    if not (
        channel_rights & perm.MANAGE_CHANNELS
        or perm.base_permissions(guild, bot_id) & perm.MANAGE_GUILD
    ):
        raise missing_permissions()
    world.delete_invite(invite)
    return 200, _invite_body(world, invite, metadata=True)


def vanity_url(world: DiscordWorld, req: RestRequest) -> Result:
    guild = _guild(world, req)
    if not perm.base_permissions(guild, _app(req).user.id) & perm.MANAGE_GUILD:
        raise missing_permissions()
    return 200, {"code": guild.vanity_code, "uses": guild.vanity_uses if guild.vanity_code else 0}


# --- messages --------------------------------------------------------------------------------


def create_message(world: DiscordWorld, req: RestRequest) -> Result:
    channel = _channel(world, req)
    app = _app(req)
    if channel.type == 1:
        recipient = world.users[channel.recipient_id or 0]
        if not recipient.dms_open or not world.shares_guild(app.user, recipient):
            raise DiscordApiError(403, 50007, "Cannot send messages to this user")
    elif not _bot_perms(world, req, channel) & perm.SEND_MESSAGES:
        raise missing_permissions()
    fields = _message_fields(req.json(), req.attachments)
    if not fields["content"] and not fields["embeds"] and not fields["attachments"]:
        raise DiscordApiError(400, 50006, "Cannot send an empty message")
    fields["flags"] &= ~EPHEMERAL  # only interaction responses can be ephemeral
    message = world.post_message(
        channel,
        app.user,
        fields["content"] or "",
        embeds=fields["embeds"],
        components=fields["components"],
        flags=fields["flags"],
        attachments=fields["attachments"],
    )
    return 200, _message_body(world, message)


def get_messages(world: DiscordWorld, req: RestRequest) -> Result:
    channel = _channel(world, req)
    limit = int(req.query.get("limit", "50"))
    found = world.channel_messages(channel, include_ephemeral=False)[::-1][:limit]
    return 200, [_message_body(world, m) for m in found]


def get_channel(world: DiscordWorld, req: RestRequest) -> Result:
    channel = _channel(world, req)
    recipient = world.users.get(channel.recipient_id or 0)
    return 200, channel_json(channel, recipient)


# --- application commands --------------------------------------------------------------------


def _command_json(command: AppCommand) -> Json:
    body: Json = {
        "type": 1,
        "description": "",
        "options": [],
        "default_member_permissions": None,
        "dm_permission": True,
        "nsfw": False,
        "integration_types": [0],
        "contexts": None,
        **command.payload,
        "id": str(command.id),
        "application_id": str(command.application_id),
        "version": str(command.version),
        "name": command.name,
    }
    if command.guild_id is not None:
        body["guild_id"] = str(command.guild_id)
    return body


def _command_scope(world: DiscordWorld, req: RestRequest) -> tuple[Application, int | None]:
    app = _app(req)
    if _int(req.params["application_id"]) != app.id:
        raise missing_access()
    guild_id = None
    if "guild_id" in req.params:
        guild_id = _guild(world, req).id
    return app, guild_id


def _upsert_command(
    world: DiscordWorld, app: Application, guild_id: int | None, item: Json
) -> AppCommand:
    name = item.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[-_\w]{1,32}", name):
        raise invalid_form("name", "Command name is invalid", "APPLICATION_COMMAND_INVALID_NAME")
    kind = int(item.get("type", 1))
    for command in app.commands.values():
        if (
            command.guild_id == guild_id
            and command.name == name
            and int(command.payload.get("type", 1)) == kind
        ):
            command.payload = dict(item)
            command.version += 1
            return command
    command = AppCommand(world.snowflake(), app.id, name, dict(item), guild_id)
    app.commands[command.id] = command
    return command


def list_commands(world: DiscordWorld, req: RestRequest) -> Result:
    app, guild_id = _command_scope(world, req)
    return 200, [_command_json(c) for c in app.commands.values() if c.guild_id == guild_id]


def overwrite_commands(world: DiscordWorld, req: RestRequest) -> Result:
    app, guild_id = _command_scope(world, req)
    items = req.body if isinstance(req.body, list) else []
    kept = [_upsert_command(world, app, guild_id, item) for item in items]
    keep_ids = {c.id for c in kept}
    for command_id in [i for i, c in app.commands.items() if c.guild_id == guild_id]:
        if command_id not in keep_ids:
            del app.commands[command_id]
    world.notify_change()
    return 200, [_command_json(c) for c in kept]


def create_command(world: DiscordWorld, req: RestRequest) -> Result:
    app, guild_id = _command_scope(world, req)
    command = _upsert_command(world, app, guild_id, req.json())
    world.notify_change()
    return 201, _command_json(command)


def delete_command(world: DiscordWorld, req: RestRequest) -> Result:
    app, guild_id = _command_scope(world, req)
    command = app.commands.get(_int(req.params["command_id"]))
    if command is None or command.guild_id != guild_id:
        raise unknown("application command", 10063)
    del app.commands[command.id]
    return 204, None


# --- interactions and their webhooks ---------------------------------------------------------


def _callback_body(
    record: InteractionRecord, kind: int, message: Message | None, world: DiscordWorld
) -> Json:
    interaction: Json = {"id": str(record.id), "type": record.type}
    resource: Json = {"type": kind}
    if message is not None:
        interaction["response_message_id"] = str(message.id)
        interaction["response_message_loading"] = bool(message.flags & LOADING)
        interaction["response_message_ephemeral"] = message.ephemeral
        if kind in (4, 7):
            resource["message"] = _message_body(world, message)
    return {"interaction": interaction, "resource": resource}


def interaction_callback(world: DiscordWorld, req: RestRequest) -> Result:
    record = world.interactions.get(_int(req.params["interaction_id"]))
    if record is None or record.token != req.params["interaction_token"]:
        raise unknown("interaction", 10062)
    try:
        return _interaction_callback(world, req, record)
    except DiscordApiError as exc:
        record.refused.append(exc.code)
        world.notify_change()
        raise


def _interaction_callback(
    world: DiscordWorld, req: RestRequest, record: InteractionRecord
) -> Result:
    if record.responses:
        raise DiscordApiError(400, 40060, "Interaction has already been acknowledged.")
    if world.clock.monotonic() - record.created_monotonic > world.interaction_deadline:
        raise unknown("interaction", 10062)  # not answered within 3 s: the token is gone
    body = req.json()
    kind = int(body.get("type", 0))
    data = body.get("data") or {}
    app = world.applications[record.application_id]
    channel = world.channel_of(record.channel_id)
    assert channel is not None
    from_message = record.type in (3, 5) and record.original_message_id is not None
    message: Message | None = None
    if kind == 4:
        fields = _message_fields(data, req.attachments)
        if not fields["content"] and not fields["embeds"] and not fields["attachments"]:
            raise DiscordApiError(400, 50006, "Cannot send an empty message")
        message = world.post_message(
            channel,
            app.user,
            fields["content"] or "",
            embeds=fields["embeds"],
            components=fields["components"],
            flags=fields["flags"],
            attachments=fields["attachments"],
            interaction_id=record.id,
            webhook_id=app.id,
        )
    elif kind == 5:
        flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
        message = world.post_message(
            channel, app.user, "", flags=flags, interaction_id=record.id, webhook_id=app.id
        )
    elif kind in (6, 7):
        if not from_message:
            raise invalid_form("type", "Interaction callback type is not valid here.")
        message = world.messages[record.original_message_id or 0]
        if kind == 7:
            _edit(world, message, data, req.attachments)
    elif kind == 9:
        if record.type == 5:
            raise invalid_form("type", "A modal cannot answer a modal submit.")
        if not data.get("custom_id") or not data.get("title"):
            raise invalid_form("data", "A modal needs a custom_id and a title.")
        record.modal = data
    else:
        raise invalid_form("type", f"Value {kind} is not a valid interaction callback type.")
    record.responses.append(InteractionResponse(kind, data, world.now()))
    if message is not None and kind in (4, 5):
        record.original_message_id = message.id
        record.message_ids.append(message.id)
    world.notify_change()
    if req.query.get("with_response") not in ("1", "true", "True"):
        return 204, None
    return 200, _callback_body(record, kind, message, world)


def _edit(world: DiscordWorld, message: Message, data: Json, attachments: list[Json]) -> None:
    if "content" in data:
        message.content = data["content"] or ""
    if "embeds" in data:
        message.embeds = data["embeds"] or []
    if "components" in data:
        message.components = data["components"] or []
    if attachments or "attachments" in data:
        message.attachments = attachments
    message.flags &= ~LOADING
    message.edited_timestamp = world.now()
    world.notify_change()


def _webhook_record(world: DiscordWorld, req: RestRequest) -> InteractionRecord:
    token = req.params["webhook_token"]
    record = next((r for r in world.interactions.values() if r.token == token), None)
    if record is None or str(record.application_id) != req.params["webhook_id"]:
        raise unknown("Webhook", 10015)
    if world.now() - record.created_time > world.interaction_token_ttl:
        raise DiscordApiError(401, 50027, "Invalid Webhook Token")
    if not record.responses:
        raise unknown("Webhook", 10015)  # follow-ups need the initial response first
    return record


def _webhook_message(world: DiscordWorld, req: RestRequest, record: InteractionRecord) -> Message:
    raw = req.params["message_id"]
    message_id = record.original_message_id if raw == "@original" else _int(raw)
    if message_id is None or (message_id not in record.message_ids and raw != "@original"):
        raise unknown("Message", 10008)
    message = world.messages.get(message_id)
    if message is None or message.deleted:
        raise unknown("Message", 10008)
    return message


def execute_webhook(world: DiscordWorld, req: RestRequest) -> Result:
    record = _webhook_record(world, req)
    fields = _message_fields(req.json(), req.attachments)
    if not fields["content"] and not fields["embeds"] and not fields["attachments"]:
        raise DiscordApiError(400, 50006, "Cannot send an empty message")
    original = world.messages.get(record.original_message_id or 0)
    if original is not None and original.flags & LOADING and len(record.message_ids) == 1:
        # The first follow-up after a deferral fills in the "thinking" message.
        _edit(
            world,
            original,
            {k: fields[k] for k in ("content", "embeds", "components")},
            fields["attachments"],
        )
        message = original
    else:
        channel = world.channel_of(record.channel_id)
        assert channel is not None
        app = world.applications[record.application_id]
        message = world.post_message(
            channel,
            app.user,
            fields["content"] or "",
            embeds=fields["embeds"],
            components=fields["components"],
            flags=fields["flags"],
            attachments=fields["attachments"],
            interaction_id=record.id,
            webhook_id=app.id,
        )
        record.message_ids.append(message.id)
    world.notify_change()
    if req.query.get("wait") not in ("true", "1", "True"):
        return 204, None
    return 200, _message_body(world, message)


def get_webhook_message(world: DiscordWorld, req: RestRequest) -> Result:
    record = _webhook_record(world, req)
    return 200, _message_body(world, _webhook_message(world, req, record))


def edit_webhook_message(world: DiscordWorld, req: RestRequest) -> Result:
    record = _webhook_record(world, req)
    message = _webhook_message(world, req, record)
    body = req.json()
    fields = _message_fields(body, req.attachments)
    data: Json = {k: fields[k] for k in ("content", "embeds", "components") if k in body}
    _edit(world, message, data, req.attachments)
    return 200, _message_body(world, message)


def delete_webhook_message(world: DiscordWorld, req: RestRequest) -> Result:
    record = _webhook_record(world, req)
    message = _webhook_message(world, req, record)
    message.deleted = True
    world.notify_change()
    return 204, None


ROUTES: list[Route] = [
    Route("GET", "/gateway", get_gateway, bot_auth=False),
    Route("GET", "/gateway/bot", get_gateway_bot),
    Route("GET", "/users/@me", get_me),
    Route("GET", "/users/@me/guilds", get_my_guilds),
    Route("POST", "/users/@me/channels", open_dm),
    Route("GET", "/users/{user_id}", get_user),
    Route("GET", "/oauth2/applications/@me", get_application),
    Route("GET", "/applications/@me", get_application),
    Route("GET", "/guilds/{guild_id}", get_guild),
    Route("GET", "/guilds/{guild_id}/channels", get_guild_channels),
    Route("GET", "/guilds/{guild_id}/roles", get_roles),
    Route("GET", "/guilds/{guild_id}/members", list_members),
    Route("GET", "/guilds/{guild_id}/members/{user_id}", get_member),
    Route("PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", add_role),
    Route("DELETE", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", remove_role),
    Route("GET", "/guilds/{guild_id}/invites", guild_invites),
    Route("GET", "/guilds/{guild_id}/vanity-url", vanity_url),
    Route("GET", "/channels/{channel_id}", get_channel),
    Route("GET", "/channels/{channel_id}/invites", channel_invites),
    Route("POST", "/channels/{channel_id}/invites", create_invite),
    Route("GET", "/channels/{channel_id}/messages", get_messages),
    Route("POST", "/channels/{channel_id}/messages", create_message),
    Route("GET", "/invites/{invite_code}", get_invite),
    Route("DELETE", "/invites/{invite_code}", delete_invite),
    Route("GET", "/applications/{application_id}/commands", list_commands),
    Route("PUT", "/applications/{application_id}/commands", overwrite_commands),
    Route("POST", "/applications/{application_id}/commands", create_command),
    Route("DELETE", "/applications/{application_id}/commands/{command_id}", delete_command),
    Route("GET", "/applications/{application_id}/guilds/{guild_id}/commands", list_commands),
    Route("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", overwrite_commands),
    Route("POST", "/applications/{application_id}/guilds/{guild_id}/commands", create_command),
    Route(
        "DELETE",
        "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
        delete_command,
    ),
    Route(
        "POST",
        "/interactions/{interaction_id}/{interaction_token}/callback",
        interaction_callback,
        bot_auth=False,
        exempt_global=True,
    ),
    Route(
        "POST",
        "/webhooks/{webhook_id}/{webhook_token}",
        execute_webhook,
        bot_auth=False,
        exempt_global=True,
    ),
    Route(
        "GET",
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
        get_webhook_message,
        bot_auth=False,
        exempt_global=True,
    ),
    Route(
        "PATCH",
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
        edit_webhook_message,
        bot_auth=False,
        exempt_global=True,
    ),
    Route(
        "DELETE",
        "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
        delete_webhook_message,
        bot_auth=False,
        exempt_global=True,
    ),
]


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for a call and its path parameters."""
    for route in ROUTES:
        if route.method != method:
            continue
        found = route.pattern.match(path)
        if found is not None:
            return route, found.groupdict()
    return None


def path_exists(path: str) -> bool:
    """Whether any method serves ``path`` (405 rather than 404)."""
    return any(route.pattern.match(path) for route in ROUTES)
