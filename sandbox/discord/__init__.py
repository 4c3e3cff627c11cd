"""An offline Discord (REST API v10 + gateway) with Discord's semantics, for tests and demos.

:class:`DiscordWorld` holds users, bot applications, guilds, roles, channels, invites,
messages, interactions and gateway sessions, and is scripted from Python (people join through
invites, leave, run slash commands, submit modals). :class:`DiscordSandboxServer` serves it
over HTTP and websockets so the real, unmodified discord.py client can connect;
:class:`DiscordEndpoints` says where to point it. Imports nothing but aiohttp and the
standard library.
"""

from sandbox.clock import Clock, DatetimeClock, FakeClock, SystemClock
from sandbox.discord import permissions
from sandbox.discord.endpoints import DiscordEndpoints
from sandbox.discord.errors import DiscordApiError
from sandbox.discord.model import (
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_INVITES,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILD_PRESENCES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    AppCommand,
    Application,
    Attachment,
    Channel,
    DiscordUser,
    GatewayConnection,
    Guild,
    InteractionRecord,
    InteractionResponse,
    Invite,
    Member,
    Message,
    Overwrite,
    Role,
)
from sandbox.discord.ratelimit import DiscordRateLimits
from sandbox.discord.server import DiscordSandboxServer
from sandbox.discord.world import ApiRequest, DiscordWorld, GatewaySession

__all__ = [
    "INTENT_DIRECT_MESSAGES",
    "INTENT_GUILDS",
    "INTENT_GUILD_INVITES",
    "INTENT_GUILD_MEMBERS",
    "INTENT_GUILD_MESSAGES",
    "INTENT_GUILD_PRESENCES",
    "INTENT_MESSAGE_CONTENT",
    "ApiRequest",
    "AppCommand",
    "Application",
    "Attachment",
    "Channel",
    "Clock",
    "DatetimeClock",
    "DiscordApiError",
    "DiscordEndpoints",
    "DiscordRateLimits",
    "DiscordSandboxServer",
    "DiscordUser",
    "DiscordWorld",
    "FakeClock",
    "GatewayConnection",
    "GatewaySession",
    "Guild",
    "InteractionRecord",
    "InteractionResponse",
    "Invite",
    "Member",
    "Message",
    "Overwrite",
    "Role",
    "SystemClock",
    "permissions",
]
