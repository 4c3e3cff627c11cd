"""Last: unknown commands in a private chat get a clear answer, anything else the help."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message

from bots import views
from bots.telegram.context import Reply

router = Router(name=__name__)


@router.message(F.chat.type == "private", F.text.startswith("/"))
async def unknown_command(message: Message, reply: Reply) -> None:
    """A command this bot does not have."""
    await reply.error("unknown_command")


@router.message(F.chat.type == "private")
async def anything_else(message: Message, reply: Reply) -> None:
    """Any other private message: the reader's commands."""
    await reply.here("help", views.help_text(False))
