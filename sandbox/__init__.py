"""An offline Telegram Bot API server with Telegram's semantics, for tests and the demo.

:class:`World` holds accounts, chats, invite links, messages and each bot's update queue, and
is scripted from Python (people join, leave, type commands, press buttons, block bots).
:class:`SandboxServer` serves it over HTTP so the real aiogram client can talk to it.
This package imports nothing but aiohttp and the standard library.
"""

from sandbox.clock import Clock, DatetimeClock, FakeClock, SystemClock
from sandbox.errors import ApiError, LinkError, ScriptError
from sandbox.files import FileLimits
from sandbox.model import (
    GROUP_ANONYMOUS_BOT_ID,
    ApiCall,
    CallbackQueryRecord,
    Fault,
    JoinRequest,
    PrivateDialog,
    SimBot,
    SimChat,
    SimFile,
    SimInviteLink,
    SimMember,
    SimMessage,
    SimUser,
)
from sandbox.ratelimit import RateLimits
from sandbox.server import SandboxServer
from sandbox.world import ButtonPress, LinkOutcome, World

__all__ = [
    "GROUP_ANONYMOUS_BOT_ID",
    "ApiCall",
    "ApiError",
    "ButtonPress",
    "CallbackQueryRecord",
    "Clock",
    "DatetimeClock",
    "FakeClock",
    "Fault",
    "FileLimits",
    "JoinRequest",
    "LinkError",
    "LinkOutcome",
    "PrivateDialog",
    "RateLimits",
    "SandboxServer",
    "ScriptError",
    "SimBot",
    "SimChat",
    "SimFile",
    "SimInviteLink",
    "SimMember",
    "SimMessage",
    "SimUser",
    "SystemClock",
    "World",
]
