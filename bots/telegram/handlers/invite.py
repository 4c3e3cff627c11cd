"""/invite: the reader's personal link (a DM, also when asked in a group)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bots import views
from bots.render import Renderer
from bots.telegram.callbacks import PickProgram
from bots.telegram.context import PLATFORM, ProgramCache, Reply, first_name
from bots.telegram.handlers.common import GROUP_TYPES, choose, group_program, send_invite_card
from bots.telegram.port import TelegramPort
from referrals.people import People
from referrals.service import ReferralService
from rewards.service import RewardService

router = Router(name=__name__)


@router.message(Command("invite"))
async def invite(
    message: Message,
    command: CommandObject,
    referrals: ReferralService,
    rewards: RewardService,
    renderer: Renderer,
    reply: Reply,
    people: People,
    programs: ProgramCache,
    port: TelegramPort,
) -> None:
    """Your personal invite link: /invite, /invite <label>, /invite reset [label]."""
    if message.from_user is None or message.from_user.is_bot:
        return
    words = (command.args or "").split()
    reset = bool(words) and words[0].lower() == "reset"
    if reset:
        words = words[1:]
    if len(words) > 1:
        await reply.error("bad_label")
        return
    label = words[0] if words else ""
    user = message.from_user
    if message.chat.type in GROUP_TYPES:
        program = await group_program(message, reply, people, programs, port)
        if program is not None:
            await send_invite_card(
                referrals, renderer, reply, program, user, label, reset, rewards=rewards
            )
            await reply.here(
                "invite_sent_privately", views.invite_sent_privately(first_name(user))
            )
        return
    if message.chat.type != "private":
        return
    chosen = await choose(
        reply, await referrals.list_programs(PLATFORM), "invite", label=label, reset=reset
    )
    if chosen is not None:
        await send_invite_card(
            referrals, renderer, reply, chosen, user, label, reset, rewards=rewards
        )


@router.callback_query(PickProgram.filter(F.action == "invite"))
async def picked_for_invite(
    query: CallbackQuery,
    callback_data: PickProgram,
    referrals: ReferralService,
    rewards: RewardService,
    renderer: Renderer,
    reply: Reply,
) -> None:
    """The program picked for /invite."""
    program = await referrals.find_program_by_id(callback_data.program_id)
    await query.answer()
    if program is None:
        return
    await send_invite_card(
        referrals,
        renderer,
        reply,
        program,
        query.from_user,
        callback_data.label,
        callback_data.reset,
        rewards=rewards,
    )
