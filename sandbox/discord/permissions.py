"""Permission bits and the computation Discord documents in topics/permissions.mdx.

Base permissions: the @everyone role's, OR-ed with every role the member has; the guild
owner and ``ADMINISTRATOR`` get everything. Channel permissions then apply the @everyone
overwrite, the member's role overwrites (all denies, then all allows) and the member's own
overwrite, in that order.
"""

from __future__ import annotations

from sandbox.discord.model import Channel, Guild

CREATE_INSTANT_INVITE = 1 << 0
KICK_MEMBERS = 1 << 1
BAN_MEMBERS = 1 << 2
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
VIEW_AUDIT_LOG = 1 << 7
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
MANAGE_ROLES = 1 << 28
USE_APPLICATION_COMMANDS = 1 << 31
ALL = (1 << 53) - 1

#: What @everyone gets in a new guild (close to Discord's default set).
DEFAULT_EVERYONE = (
    CREATE_INSTANT_INVITE
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
)


def base_permissions(guild: Guild, user_id: int) -> int:
    """Guild-level permissions of a member (0 when not a member)."""
    if user_id == guild.owner_id:
        return ALL
    member = guild.members.get(user_id)
    if member is None:
        return 0
    value = guild.everyone.permissions
    for role_id in member.roles:
        role = guild.roles.get(role_id)
        if role is not None:
            value |= role.permissions
    if value & ADMINISTRATOR:
        return ALL
    return value


def channel_permissions(guild: Guild, channel: Channel, user_id: int) -> int:
    """Permissions of a member in a channel, overwrites applied."""
    value = base_permissions(guild, user_id)
    if value == ALL:
        return ALL
    member = guild.members.get(user_id)
    if member is None:
        return 0
    by_id = {(o.type, o.id): o for o in channel.overwrites}
    everyone = by_id.get((0, guild.id))
    if everyone is not None:
        value = (value & ~everyone.deny) | everyone.allow
    allow = deny = 0
    for role_id in member.roles:
        overwrite = by_id.get((0, role_id))
        if overwrite is not None:
            allow |= overwrite.allow
            deny |= overwrite.deny
    value = (value & ~deny) | allow
    own = by_id.get((1, user_id))
    if own is not None:
        value = (value & ~own.deny) | own.allow
    if not value & VIEW_CHANNEL:
        return 0  # a channel one cannot see grants nothing
    return value


def top_role_position(guild: Guild, user_id: int) -> int:
    """The highest position among a member's roles (0 = only @everyone)."""
    member = guild.members.get(user_id)
    if member is None:
        return -1
    positions = [guild.roles[r].position for r in member.roles if r in guild.roles]
    return max(positions, default=0)
