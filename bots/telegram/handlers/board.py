"""Managers' boards: /board shows and changes how the program's leaderboards work (public
names, the week's first day, a posting schedule, staff taken off the boards); seasons are
in :mod:`bots.telegram.handlers.season`. The board service checks the manager's rights on
every change."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bots import views
from bots.telegram.callbacks import PickProgram
from bots.telegram.context import ProgramCache, Reply
from bots.telegram.handlers.common import managed_program
from leaderboard.models import BadBoardSetting
from leaderboard.service import BoardService
from referrals.models import NotAllowed
from referrals.service import ReferralService

router = Router(name=__name__)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PERIODS = ("week", "month", "all", "season")


@router.message(Command("board"))
async def board_command(
    message: Message,
    command: CommandObject,
    referrals: ReferralService,
    boards: BoardService,
    reply: Reply,
    programs: ProgramCache,
) -> None:
    """``/board`` · ``names public|private`` · ``week mon|sun`` · ``schedule 0 9 * * 1
    [week|month|all|season] [chat id]`` or ``schedule off`` · ``exclude|include @user``."""
    if message.from_user is None:
        return
    program = await managed_program(message, referrals, reply, programs, "board")
    if program is None:
        return
    actor = message.from_user.id
    words = (command.args or "").split()
    what = words[0].lower() if words else ""
    rest = words[1:]
    if not what:
        pass
    elif what == "names" and rest and rest[0].lower() in ("public", "private"):
        await boards.update_settings(program.id, actor, public_names=rest[0].lower() == "public")
    elif what == "week" and rest and rest[0].lower()[:3] in WEEKDAYS:
        await boards.update_settings(program.id, actor, week_start=WEEKDAYS.index(rest[0][:3]))
    elif what == "schedule" and rest == ["off"]:
        await boards.set_schedule(program.id, actor, None)
    elif what == "schedule" and len(rest) >= 5:
        cron, extra = " ".join(rest[:5]), [w.lower() for w in rest[5:]]
        period = next((w for w in extra if w in PERIODS), "week")
        chat = next((int(w) for w in extra if w.lstrip("-").isdigit()), None)
        await boards.set_schedule(program.id, actor, cron, period=period, chat_id=chat)
    elif what in ("exclude", "include") and len(rest) == 1:
        reader = await referrals.find_member(program.id, rest[0])
        if reader is None:
            raise BadBoardSetting("no such member of the program", key="member")
        await boards.exclude(program.id, actor, reader, excluded=what == "exclude")
    else:
        await reply.error("board_usage")
        return
    settings = await boards.settings(program.id)
    await reply.here("board_settings", views.board_settings(program, settings, saved=bool(what)))


@router.callback_query(PickProgram.filter(F.action == "board"))
async def picked_program(
    query: CallbackQuery,
    callback_data: PickProgram,
    referrals: ReferralService,
    boards: BoardService,
    reply: Reply,
) -> None:
    """The program picked for /board."""
    await query.answer()
    program = await referrals.get_program(callback_data.program_id)
    if not await referrals.is_manager(program, query.from_user.id):
        raise NotAllowed("not an admin")
    settings = await boards.settings(program.id)
    await reply.to_user(
        query.from_user.id, "board_settings", views.board_settings(program, settings)
    )
