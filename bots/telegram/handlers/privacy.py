"""/forget: delete a person's data, after asking."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bots import views
from bots.telegram.callbacks import Forget
from bots.telegram.context import PLATFORM, Reply
from referrals.models import PlatformUser
from referrals.service import ReferralService

router = Router(name=__name__)


@router.message(Command("forget"), F.chat.type == "private")
async def forget(message: Message, reply: Reply) -> None:
    """Delete your data (asks first)."""
    await reply.here(
        "forget",
        views.forget("confirm"),
        buttons=[
            [
                {"label": "forget_yes", "data": Forget(confirm=True).pack()},
                {"label": "cancel", "data": Forget(confirm=False).pack()},
            ]
        ],
    )


@router.callback_query(Forget.filter())
async def forget_answer(
    query: CallbackQuery,
    callback_data: Forget,
    referrals: ReferralService,
    reply: Reply,
) -> None:
    """Yes (delete everything of this person) or cancel."""
    await query.answer()
    if not callback_data.confirm:
        await reply.to_user(query.from_user.id, "forget", views.forget("cancelled"))
        return
    locale = reply.locale  # the chosen language is forgotten too: answer in it once more
    await referrals.forget(PlatformUser(PLATFORM, query.from_user.id))
    await reply.to_user(query.from_user.id, "forget", views.forget("done"), locale=locale)
