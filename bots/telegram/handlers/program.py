"""A program's running: /pause and /resume, its totals (/program), and the "Get my invite
link" post (/post). The admin check runs in the engine on every change, not only here."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bots import views
from bots.telegram.callbacks import DeleteProgram, PickProgram
from bots.telegram.context import ProgramCache, Reply
from bots.telegram.handlers.common import managed_program
from bots.telegram.port import TelegramPort
from delivery.actions import Action
from delivery.outbox import Priority
from delivery.port import PostRights
from referrals.models import NotAllowed, Program
from referrals.service import ReferralService
from rewards.service import RewardService

router = Router(name=__name__)

PROGRAM_ACTIONS = {"program", "pause", "resume", "post", "delete"}


@router.message(Command("pause", "resume"))
async def pause_resume(
    message: Message,
    command: CommandObject,
    referrals: ReferralService,
    reply: Reply,
    programs: ProgramCache,
) -> None:
    """/pause stops confirming referrals; /resume starts again."""
    if message.from_user is None:
        return
    program = await managed_program(message, referrals, reply, programs, command.command)
    if program is not None:
        await _set_paused(
            referrals, reply, programs, program, message.from_user.id, command.command == "pause"
        )


async def _set_paused(
    referrals: ReferralService,
    reply: Reply,
    programs: ProgramCache,
    program: Program,
    user_id: int,
    paused: bool,
) -> None:
    program = await referrals.set_paused(
        program.id, paused, "paused by a manager" if paused else None, actor_id=user_id
    )
    programs.forget(program.destination_id)
    await reply.here("program_state", views.program_state(program))


@router.message(Command("program"))
async def program_totals(
    message: Message,
    command: CommandObject,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
    programs: ProgramCache,
) -> None:
    """Totals of the program (readers, counted, waiting, under review, not counted);
    ``/program delete`` deletes it after asking."""
    if message.from_user is None:
        return
    words = (command.args or "").split()
    if words not in ([], ["delete"]):
        await reply.error("program_usage")
        return
    action = "delete" if words else "program"
    program = await managed_program(message, referrals, reply, programs, action)
    if program is None:
        return
    if action == "delete":
        await _ask_delete(referrals, reply, program)
    else:
        await _send_totals(referrals, rewards, reply, program)


async def _ask_delete(referrals: ReferralService, reply: Reply, program: Program) -> None:
    totals = await referrals.program_totals(program.id)
    await reply.here(
        "program_deleted",
        views.program_deleted(program, totals, step="confirm"),
        buttons=[
            [
                {
                    "label": "delete_yes",
                    "data": DeleteProgram(program_id=program.id, confirm=True).pack(),
                },
                {
                    "label": "cancel",
                    "data": DeleteProgram(program_id=program.id, confirm=False).pack(),
                },
            ]
        ],
    )


@router.callback_query(DeleteProgram.filter())
async def delete_answer(
    query: CallbackQuery,
    callback_data: DeleteProgram,
    referrals: ReferralService,
    reply: Reply,
    programs: ProgramCache,
) -> None:
    """Yes (the engine checks the admin right and deletes) or cancel."""
    await query.answer()
    program = await referrals.get_program(callback_data.program_id)
    if not callback_data.confirm:
        view = views.program_deleted(program, {"readers": 0, "confirmed": 0}, step="cancelled")
        await reply.to_user(query.from_user.id, "program_deleted", view)
        return
    deleted = await referrals.delete_program(program.id, query.from_user.id)
    programs.forget(program.destination_id)
    view = views.program_deleted(deleted.program, deleted.totals, step="done")
    await reply.to_user(query.from_user.id, "program_deleted", view)


async def _send_totals(
    referrals: ReferralService, rewards: RewardService, reply: Reply, program: Program
) -> None:
    totals = await referrals.program_totals(program.id)
    await reply.here(
        "program_totals",
        views.program_totals(program, totals, await rewards.report(program.id)),
    )


@router.message(Command("post"))
async def post(
    message: Message,
    referrals: ReferralService,
    reply: Reply,
    programs: ProgramCache,
    port: TelegramPort,
) -> None:
    """Post (and pin, when allowed) a "Get my invite link" button in the program's chat."""
    if message.from_user is None:
        return
    program = await managed_program(message, referrals, reply, programs, "post")
    if program is not None:
        await _post(reply, program, port)


async def _post(reply: Reply, program: Program, port: TelegramPort) -> None:
    """Queue the button post in the program's chat, pinned when the bot may pin, and say
    what will happen (or why it cannot)."""
    rights = await port.post_rights(program.destination)
    if not isinstance(rights, PostRights):
        await reply.error("platform_unavailable")
        return
    may_post, may_pin = rights.may_post, rights.may_pin
    if may_post:
        await reply.send(
            "chat",
            program.destination_id,
            "post_invite",
            views.post_invite(program),
            buttons=[[{"label": "get_link", "url": port.deep_link(f"go_{program.id}")}]],
            priority=Priority.BULK,
            action=Action.SEND_PIN if may_pin else Action.SEND,
            program_id=program.id,
        )
    await reply.here("posted", views.posted(program, ok=may_post, pinned=may_pin))


@router.callback_query(PickProgram.filter(F.action.in_(PROGRAM_ACTIONS)))
async def picked_for_program(
    query: CallbackQuery,
    callback_data: PickProgram,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
    programs: ProgramCache,
    port: TelegramPort,
) -> None:
    """The program picked for /program, /pause, /resume or /post (its managers only)."""
    await query.answer()
    program = await referrals.find_program_by_id(callback_data.program_id)
    if program is None:
        return
    if not await referrals.is_manager(program, query.from_user.id):
        raise NotAllowed("not an admin")
    action = callback_data.action
    if action == "program":
        await _send_totals(referrals, rewards, reply, program)
    elif action == "delete":
        await _ask_delete(referrals, reply, program)
    elif action in ("pause", "resume"):
        await _set_paused(
            referrals, reply, programs, program, query.from_user.id, action == "pause"
        )
    elif action == "post":
        await _post(reply, program, port)
