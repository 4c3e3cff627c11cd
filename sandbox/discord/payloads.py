"""Discord JSON objects built from the model, with the fields discord.py 2.7 reads.

discord.py indexes some keys without a default (user ``discriminator``/``avatar``, member
``flags``/``roles``, message ``type``/``content``/``timestamp``, interaction ``token``/
``version``/``application_id``/``attachment_size_limit``, application ``flags``, channel
``name``/``position``), so every builder here sets them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sandbox.discord.model import (
    Application,
    Channel,
    DiscordUser,
    Guild,
    Invite,
    Json,
    Member,
    Message,
    Role,
)


def iso(seconds: float) -> str:
    """Unix seconds as the ISO 8601 timestamp Discord sends."""
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def user_json(user: DiscordUser) -> Json:
    """A user object."""
    body: Json = {
        "id": str(user.id),
        "username": user.username,
        "global_name": user.global_name,
        "discriminator": "0",
        "avatar": user.avatar,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "primary_guild": None,
    }
    if user.bot:
        body["bot"] = True
    return body


def member_json(member: Member, user: DiscordUser, *, guild_id: int | None = None) -> Json:
    """A guild member object (``guild_id`` added for GUILD_MEMBER_ADD)."""
    body: Json = {
        "user": user_json(user),
        "nick": member.nick,
        "avatar": None,
        "banner": None,
        "roles": [str(r) for r in member.roles],
        "joined_at": iso(member.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": member.flags,
        "pending": member.pending,
        "communication_disabled_until": None,
    }
    if guild_id is not None:
        body["guild_id"] = str(guild_id)
    return body


def role_json(role: Role) -> Json:
    """A role object."""
    body: Json = {
        "id": str(role.id),
        "name": role.name,
        "color": role.color,
        "colors": {"primary_color": role.color, "secondary_color": None, "tertiary_color": None},
        "hoist": role.hoist,
        "icon": None,
        "unicode_emoji": None,
        "position": role.position,
        "permissions": str(role.permissions),
        "managed": role.managed,
        "mentionable": role.mentionable,
        "flags": 0,
    }
    if role.bot_id is not None:
        body["tags"] = {"bot_id": str(role.bot_id)}
    return body


def channel_json(channel: Channel, recipient: DiscordUser | None = None) -> Json:
    """A guild text channel or a DM channel object."""
    last = str(channel.last_message_id) if channel.last_message_id else None
    if channel.type == 1:
        return {
            "id": str(channel.id),
            "type": 1,
            "last_message_id": last,
            "flags": 0,
            "recipients": [user_json(recipient)] if recipient is not None else [],
        }
    return {
        "id": str(channel.id),
        "type": channel.type,
        "guild_id": str(channel.guild_id),
        "name": channel.name,
        "position": channel.position,
        "parent_id": None,
        "topic": channel.topic,
        "nsfw": False,
        "rate_limit_per_user": 0,
        "last_message_id": last,
        "flags": 0,
        "permission_overwrites": [
            {"id": str(o.id), "type": o.type, "allow": str(o.allow), "deny": str(o.deny)}
            for o in channel.overwrites
        ],
    }


def guild_json(guild: Guild) -> Json:
    """A guild object (as in ``GET /guilds/{id}``)."""
    features = list(guild.features)
    if guild.vanity_code and "VANITY_URL" not in features:
        features.append("VANITY_URL")
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(guild.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": False,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "vanity_url_code": guild.vanity_code,
        "preferred_locale": guild.preferred_locale,
        "features": features,
        "roles": [role_json(r) for r in sorted(guild.roles.values(), key=lambda r: r.position)],
        "emojis": [],
        "stickers": [],
        "max_members": 500000,
        "max_video_channel_users": 25,
        "application_id": None,
        "widget_enabled": False,
        "widget_channel_id": None,
    }


def invite_json(
    invite: Invite,
    guild: Guild,
    inviter: DiscordUser | None,
    *,
    metadata: bool,
    with_counts: bool = False,
) -> Json:
    """An invite object; ``metadata`` adds uses, max_uses, max_age, temporary, created_at."""
    channel = guild.channels[invite.channel_id]
    expires = invite.expires_at()
    body: Json = {
        "type": 0,
        "code": invite.code,
        "guild": {
            "id": str(guild.id),
            "name": guild.name,
            "splash": None,
            "banner": None,
            "description": None,
            "icon": None,
            "features": guild_json(guild)["features"],
            "verification_level": 0,
            "vanity_url_code": guild.vanity_code,
            "nsfw_level": 0,
            "premium_subscription_count": 0,
        },
        "channel": {"id": str(channel.id), "type": channel.type, "name": channel.name},
        "expires_at": iso(expires) if expires is not None else None,
        "flags": 0,
    }
    if inviter is not None:
        body["inviter"] = user_json(inviter)
    if with_counts:
        body["approximate_member_count"] = len(guild.members)
        body["approximate_presence_count"] = 0
    if metadata:
        body.update(
            uses=invite.uses,
            max_uses=invite.max_uses,
            max_age=invite.max_age,
            temporary=invite.temporary,
            created_at=iso(invite.created_at),
        )
    return body


def invite_create_event(invite: Invite, inviter: DiscordUser | None) -> Json:
    """The INVITE_CREATE payload (``uses`` is always 0 there)."""
    body: Json = {
        "channel_id": str(invite.channel_id),
        "code": invite.code,
        "created_at": iso(invite.created_at),
        "guild_id": str(invite.guild_id),
        "max_age": invite.max_age,
        "max_uses": invite.max_uses,
        "temporary": invite.temporary,
        "uses": 0,
        "type": 0,
        "expires_at": iso(invite.created_at + invite.max_age) if invite.max_age else None,
    }
    if inviter is not None:
        body["inviter"] = user_json(inviter)
    return body


def message_json(message: Message, author: DiscordUser) -> Json:
    """A message object."""
    body: Json = {
        "id": str(message.id),
        "channel_id": str(message.channel_id),
        "type": message.type,
        "author": user_json(author),
        "content": message.content,
        "timestamp": iso(message.timestamp),
        "edited_timestamp": (
            iso(message.edited_timestamp) if message.edited_timestamp is not None else None
        ),
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": message.attachments,
        "embeds": message.embeds,
        "components": message.components,
        "pinned": False,
        "flags": message.flags,
    }
    if message.guild_id is not None:
        body["guild_id"] = str(message.guild_id)
    if message.webhook_id is not None:
        body["webhook_id"] = str(message.webhook_id)
        body["application_id"] = str(message.webhook_id)
    return body


def application_json(app: Application) -> Json:
    """``GET /oauth2/applications/@me``."""
    return {
        "id": str(app.id),
        "name": app.name,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": user_json(app.owner),
        "team": None,
        "verify_key": app.verify_key,
        "flags": app.flags(),
        "bot": user_json(app.user),
        "interactions_endpoint_url": None,
        "redirect_uris": [],
        "approximate_guild_count": 0,
        "tags": [],
        "integration_types_config": {"0": {}},
    }


def error_json(code: int, message: str, errors: Json | None = None) -> Json:
    """A JSON error body."""
    body: Json = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return body
