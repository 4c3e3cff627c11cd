"""/help: the commands (managers see theirs too)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bots import views
from bots.telegram.context import PLATFORM, ProgramCache, Reply
from bots.telegram.handlers.common import GROUP_TYPES
from referrals.service import ReferralService

router = Router(name=__name__)


@router.message(Command("help"))
async def help_command(
    message: Message, referrals: ReferralService, reply: Reply, programs: ProgramCache
) -> None:
    """List the commands (managers see theirs too)."""
    if message.from_user is None:
        return
    manager = False
    if message.chat.type in GROUP_TYPES:
        program = await programs.for_chat(message.chat.id)
        manager = program is not None and await referrals.is_manager(program, message.from_user.id)
    else:
        for program in await referrals.list_programs(PLATFORM):
            if await referrals.is_manager(program, message.from_user.id):
                manager = True
                break
    await reply.here("help", views.help_text(manager))
