"""/leaderboard: the top 10 of a board, the reader's place and the referrals to the next
one, with buttons to page and switch period. Asked in a group, it answers in private (so
readers cannot flood the group with boards)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bots import views
from bots.telegram.callbacks import BoardPage, PickProgram
from bots.telegram.context import PLATFORM, Buttons, ProgramCache, Reply, first_name
from bots.telegram.handlers.common import GROUP_TYPES, choose, group_program
from bots.telegram.port import TelegramPort
from leaderboard.models import BoardError
from leaderboard.periods import Period
from leaderboard.service import BoardService
from referrals.models import Program
from referrals.people import People
from referrals.service import ReferralService

router = Router(name=__name__)

PERIODS = tuple(p.value for p in (Period.WEEK, Period.MONTH, Period.ALL, Period.SEASON))


@router.message(Command("leaderboard"))
async def leaderboard(
    message: Message,
    command: CommandObject,
    referrals: ReferralService,
    boards: BoardService,
    reply: Reply,
    people: People,
    programs: ProgramCache,
    port: TelegramPort,
) -> None:
    """The top readers of a board (week, month, all time or the season) and your place."""
    if message.from_user is None or message.from_user.is_bot:
        return
    period = (command.args or Period.ALL).strip().lower()
    if period not in PERIODS:
        await reply.error("board_period")
        return
    user = message.from_user
    if message.chat.type in GROUP_TYPES:
        program = await group_program(message, reply, people, programs, port)
        if program is not None:
            await send_board(boards, reply, program, user.id, period, 1, None)
            await reply.here("board_sent_privately", views.board_sent_privately(first_name(user)))
        return
    if message.chat.type != "private":
        return
    chosen = await choose(reply, await referrals.list_programs(PLATFORM), "board", label=period)
    if chosen is not None:
        await send_board(boards, reply, chosen, user.id, period, 1, None)


@router.callback_query(PickProgram.filter(F.action == "board"))
async def picked_for_board(
    query: CallbackQuery,
    callback_data: PickProgram,
    referrals: ReferralService,
    boards: BoardService,
    reply: Reply,
) -> None:
    """The program picked for /leaderboard."""
    program = await referrals.find_program_by_id(callback_data.program_id)
    await query.answer()
    if program is None or callback_data.label not in PERIODS:
        return
    await send_board(boards, reply, program, query.from_user.id, callback_data.label, 1, None)


@router.callback_query(BoardPage.filter())
async def board_page(
    query: CallbackQuery,
    callback_data: BoardPage,
    referrals: ReferralService,
    boards: BoardService,
    reply: Reply,
) -> None:
    """Another page or period, in place of the board shown."""
    program = await referrals.find_program_by_id(callback_data.program_id)
    await query.answer()
    if program is None or query.message is None or callback_data.period not in PERIODS:
        return
    await send_board(
        boards,
        reply,
        program,
        query.from_user.id,
        callback_data.period,
        max(1, callback_data.page),
        query.message.message_id,
    )


async def send_board(
    boards: BoardService,
    reply: Reply,
    program: Program,
    user_id: int,
    period: str,
    page: int,
    edit_message_id: int | None,
) -> None:
    """One page of a board as a DM (or in place of ``edit_message_id``)."""
    try:
        board = await boards.board(program.id, period, reader_id=user_id, page=page)
    except BoardError as exc:
        await reply.to_user(user_id, "error", views.engine_error(exc))
        return
    switch = [
        {"label": f"period_{name}", "data": BoardPage(program_id=program.id, period=name).pack()}
        for name in PERIODS
        if name != period
    ]
    buttons: Buttons = [switch]
    pages = []
    if board.page > 1:
        pages.append(
            {
                "label": "board_prev",
                "data": BoardPage(
                    program_id=program.id, period=period, page=board.page - 1
                ).pack(),
            }
        )
    if board.page < board.pages:
        pages.append(
            {
                "label": "board_next",
                "data": BoardPage(
                    program_id=program.id, period=period, page=board.page + 1
                ).pack(),
            }
        )
    if pages:
        buttons.append(pages)
    view = views.board(board)
    if edit_message_id is not None:
        await reply.edit(user_id, edit_message_id, "board", view, buttons=buttons)
    else:
        await reply.to_user(user_id, "board", view, buttons=buttons, program_id=program.id)
