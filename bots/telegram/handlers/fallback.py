"""Last: unknown commands in a private chat get a clear answer."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import Message

from bots.telegram.context import Reply

router = Router(name=__name__)


@router.message(F.chat.type == "private", F.text.startswith("/"))
async def unknown_command(message: Message, reply: Reply) -> None:
    await reply.error("unknown_command")


@router.message(F.chat.type == "private")
async def anything_else(message: Message, reply: Reply) -> None:
    await reply.here("help", {"manager": False})
