"""/lang: the language the bot writes to a person in."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bots import views
from bots.telegram.context import PLATFORM, Reply
from referrals.locale import LOCALES
from referrals.people import People

router = Router(name=__name__)


@router.message(Command("lang"), F.chat.type == "private")
async def lang(message: Message, command: CommandObject, people: People, reply: Reply) -> None:
    """Choose the language: /lang en or /lang id."""
    if message.from_user is None:  # a channel post: nobody to answer
        return None
    choice = (command.args or "").strip().lower()
    if choice not in LOCALES:
        await reply.here("lang", views.lang(False))
        return
    await people.set_language(PLATFORM, message.from_user.id, choice)
    reply.locale = choice
    await reply.here("lang", views.lang(True), locale=choice)
