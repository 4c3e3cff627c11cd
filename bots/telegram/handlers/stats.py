"""/stats: the reader's receipt, page by page (a DM, also when asked in a group)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bots import views
from bots.telegram.callbacks import PickProgram, StatsPage
from bots.telegram.context import PLATFORM, ProgramCache, Reply, first_name
from bots.telegram.handlers.common import GROUP_TYPES, choose, group_program, reward_rules
from bots.telegram.port import TelegramPort
from referrals.models import Program
from referrals.people import People
from referrals.service import ReferralService
from rewards.service import RewardService

router = Router(name=__name__)

PER_PAGE = 8


@router.message(Command("stats"))
async def stats(
    message: Message,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
    people: People,
    programs: ProgramCache,
    port: TelegramPort,
) -> None:
    """Everyone who joined through your links, and where each one stands."""
    if message.from_user is None or message.from_user.is_bot:
        return
    user = message.from_user
    if message.chat.type in GROUP_TYPES:
        program = await group_program(message, reply, people, programs, port)
        if program is not None:
            await send_stats(referrals, rewards, reply, program, user.id, 1, None)
            await reply.here(
                "invite_sent_privately", views.invite_sent_privately(first_name(user))
            )
        return
    if message.chat.type != "private":
        return
    chosen = await choose(reply, await referrals.list_programs(PLATFORM), "stats")
    if chosen is not None:
        await send_stats(referrals, rewards, reply, chosen, user.id, 1, None)


@router.callback_query(PickProgram.filter(F.action == "stats"))
async def picked_for_stats(
    query: CallbackQuery,
    callback_data: PickProgram,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
) -> None:
    """The program picked for /stats."""
    program = await referrals.find_program_by_id(callback_data.program_id)
    await query.answer()
    if program is None:
        return
    await send_stats(referrals, rewards, reply, program, query.from_user.id, 1, None)


@router.callback_query(StatsPage.filter())
async def stats_page(
    query: CallbackQuery,
    callback_data: StatsPage,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
) -> None:
    """Another page of the receipt, in place of the one shown."""
    program = await referrals.find_program_by_id(callback_data.program_id)
    await query.answer()
    if program is None or query.message is None:
        return
    await send_stats(
        referrals,
        rewards,
        reply,
        program,
        query.from_user.id,
        callback_data.page,
        query.message.message_id,
    )


async def send_stats(
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
    program: Program,
    user_id: int,
    page: int,
    edit_message_id: int | None,
) -> None:
    """One page of the reader's receipt as a DM (or in place of ``edit_message_id``)."""
    receipt = await referrals.receipt(program.id, user_id, page=page, per_page=PER_PAGE)
    if receipt.page > receipt.pages:
        # A page past the end (an old button after the list shrank): show the last one.
        receipt = await referrals.receipt(
            program.id, user_id, page=receipt.pages, per_page=PER_PAGE
        )
    row = []
    if receipt.page > 1:
        row.append(
            {
                "label": "prev",
                "data": StatsPage(program_id=program.id, page=receipt.page - 1).pack(),
            }
        )
    if receipt.page < receipt.pages:
        row.append(
            {
                "label": "next",
                "data": StatsPage(program_id=program.id, page=receipt.page + 1).pack(),
            }
        )
    buttons = [row] if row else None
    view = views.receipt(program, receipt, await reward_rules(rewards, program, user_id))
    if edit_message_id is not None:
        await reply.edit(user_id, edit_message_id, "stats", view, buttons=buttons)
    else:
        await reply.to_user(user_id, "stats", view, buttons=buttons, program_id=program.id)
