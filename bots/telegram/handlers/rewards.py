"""/rewards: what a reader earned (a code only ever to its owner), sent again on request,
and the way to the next reward; the "Answer" button of a reward sent by hand."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bots import views
from bots.telegram.callbacks import PickProgram, RewardAct
from bots.telegram.context import PLATFORM, ProgramCache, Reply, first_name
from bots.telegram.handlers.common import GROUP_TYPES, choose, group_program, reward_rules
from bots.telegram.port import TelegramPort
from delivery.outbox import Priority
from referrals.models import Program
from referrals.people import People
from referrals.service import ReferralService
from rewards.models import RECEIVED, GrantState
from rewards.service import RewardService

router = Router(name=__name__)

RESEND_BUTTONS = 8
TITLE_ON_BUTTON = 32
SENDABLE = RECEIVED | {GrantState.UNDELIVERABLE, GrantState.UNCLAIMED}


@router.message(Command("rewards"))
async def rewards_command(
    message: Message,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
    people: People,
    programs: ProgramCache,
    port: TelegramPort,
) -> None:
    """Your rewards: what you earned, what waits, and what is next."""
    if message.from_user is None or message.from_user.is_bot:
        return
    user = message.from_user
    if message.chat.type in GROUP_TYPES:
        program = await group_program(message, reply, people, programs, port)
        if program is not None:
            await send_rewards(rewards, reply, program, user.id)
            await reply.here(
                "invite_sent_privately", views.invite_sent_privately(first_name(user))
            )
        return
    if message.chat.type != "private":
        return
    chosen = await choose(reply, await referrals.list_programs(PLATFORM), "rewards")
    if chosen is not None:
        await send_rewards(rewards, reply, chosen, user.id)


@router.callback_query(PickProgram.filter(F.action == "rewards"))
async def picked_for_rewards(
    query: CallbackQuery,
    callback_data: PickProgram,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
) -> None:
    """The program picked for /rewards."""
    await query.answer()
    program = await referrals.find_program_by_id(callback_data.program_id)
    if program is not None:
        await send_rewards(rewards, reply, program, query.from_user.id)


@router.callback_query(RewardAct.filter(F.action == "s"))
async def send_again(
    query: CallbackQuery, callback_data: RewardAct, rewards: RewardService
) -> None:
    """Send one of your rewards again (the service refuses anyone else's)."""
    await query.answer()
    await rewards.resend(callback_data.grant_id, query.from_user.id)


@router.callback_query(F.data.startswith("ans:"))
async def answer_button(query: CallbackQuery, rewards: RewardService, reply: Reply) -> None:
    """The "Answer" button of a reward sent by hand: the next message is the answer."""
    await query.answer()
    grant_id = (query.data or "")[4:]
    if not grant_id.isdigit():
        return
    grant, question = await rewards.reader_grant(int(grant_id), query.from_user.id)
    await rewards.set_flow(PLATFORM, query.from_user.id, "answer", "text", {"grant_id": grant.id})
    await reply.to_user(
        query.from_user.id,
        "answer_prompt",
        views.answer_prompt(grant, question),
        program_id=grant.program_id,
    )


async def send_rewards(
    rewards: RewardService, reply: Reply, program: Program, user_id: int
) -> None:
    """The reader's rewards in a program as a DM, with a button to send each again."""
    grants = await rewards.rewards_of(program.id, user_id)
    rules = await reward_rules(rewards, program, user_id)
    buttons: list[list[dict[str, Any]]] = []
    for grant in grants:
        if grant.state == GrantState.AWAITING_ANSWER:
            buttons.append([{"label": "answer_question", "data": f"ans:{grant.id}"}])
        elif grant.state in SENDABLE and len(buttons) < RESEND_BUTTONS:
            data = RewardAct(grant_id=grant.id, action="s").pack()
            title = grant.title[:TITLE_ON_BUTTON]
            buttons.append([{"label": "resend", "args": {"title": title}, "data": data}])
    await reply.to_user(
        user_id,
        "rewards",
        views.rewards_list(program, grants, rules),
        buttons=buttons,
        program_id=program.id,
        priority=Priority.ANSWER,
    )
