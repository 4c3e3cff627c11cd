"""Managers' reports: /export sends the program's CSV files as documents and /programstats
a chart of the last 30 days as a photo with the program's figures. Files go only to the
requesting manager's private chat (typed in a group, the group hears only that they are
on their way, or gets the button that opens the bot); the reports service checks the
manager's rights again and builds the files off the event loop."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bots import report_views
from bots.render import Renderer
from bots.telegram.callbacks import PickProgram
from bots.telegram.context import ProgramCache, Reply, first_name
from bots.telegram.handlers.common import GROUP_TYPES, managed_in_private
from bots.telegram.port import TelegramPort
from delivery.actions import Action, Attachment
from delivery.outbox import Priority
from leaderboard.reports import Reports
from referrals.models import NotAllowed, Program
from referrals.people import People
from referrals.service import ReferralService

router = Router(name=__name__)


@router.message(Command("export"))
async def export_command(
    message: Message,
    referrals: ReferralService,
    reports: Reports,
    reply: Reply,
    programs: ProgramCache,
    people: People,
    port: TelegramPort,
) -> None:
    """The program's CSV files (readers, referrals, rewards), sent to you in private."""
    if message.from_user is None:
        return
    program = await managed_in_private(
        message, referrals, reply, programs, people, port, "export", "export"
    )
    if program is None:
        return
    await send_export(reports, port, reply, program, message.from_user.id)
    if message.chat.type in GROUP_TYPES:
        await reply.here(
            "report_privately",
            report_views.report_privately(first_name(message.from_user), "export"),
        )


@router.message(Command("programstats"))
async def programstats_command(
    message: Message,
    referrals: ReferralService,
    reports: Reports,
    reply: Reply,
    programs: ProgramCache,
    people: People,
    port: TelegramPort,
    renderer: Renderer,
) -> None:
    """Referrals per day as a chart, the confirmation rate, the best link labels, rewards
    and their cost: sent to you in private."""
    if message.from_user is None:
        return
    program = await managed_in_private(
        message, referrals, reply, programs, people, port, "programstats", "stats"
    )
    if program is None:
        return
    await send_stats(reports, port, renderer, reply, program, message.from_user.id)
    if message.chat.type in GROUP_TYPES:
        await reply.here(
            "report_privately",
            report_views.report_privately(first_name(message.from_user), "stats"),
        )


@router.callback_query(PickProgram.filter(F.action.in_({"export", "programstats"})))
async def picked_program(
    query: CallbackQuery,
    callback_data: PickProgram,
    referrals: ReferralService,
    reports: Reports,
    reply: Reply,
    port: TelegramPort,
    renderer: Renderer,
) -> None:
    """The program picked for /export or /programstats (its managers only)."""
    await query.answer()
    program = await referrals.get_program(callback_data.program_id)
    if not await referrals.is_manager(program, query.from_user.id):
        raise NotAllowed("not an admin")
    if callback_data.action == "export":
        await send_export(reports, port, reply, program, query.from_user.id)
    else:
        await send_stats(reports, port, renderer, reply, program, query.from_user.id)


async def send_export(
    reports: Reports, port: TelegramPort, reply: Reply, program: Program, user_id: int
) -> None:
    """Build the export (each file within Telegram's document limit) and queue one
    document per file to the manager."""
    built = await reports.export(program.id, user_id, limit=port.document_limit)
    for index, file in enumerate(built.files):
        await reply.to_user(
            user_id,
            "export_file",
            report_views.export_file(program, file, first=index == 0, count=len(built.files)),
            action=Action.SEND_DOCUMENT,
            payload=Attachment(file.spooled, file.filename),
            program_id=program.id,
            priority=Priority.ANSWER,
        )


async def send_stats(
    reports: Reports,
    port: TelegramPort,
    renderer: Renderer,
    reply: Reply,
    program: Program,
    user_id: int,
) -> None:
    """Build the figures and the chart (in the manager's language) and queue the chart as
    a photo, then the figures as a message."""
    chart = report_views.chart_text(renderer, reply.locale, program.timezone)
    built = await reports.program_stats(program.id, user_id, chart=chart, limit=port.photo_limit)
    await reply.to_user(
        user_id,
        "program_chart",
        report_views.program_chart(built),
        action=Action.SEND_PHOTO,
        payload=Attachment(built.chart.spooled, built.chart.filename),
        program_id=program.id,
        priority=Priority.ANSWER,
    )
    await reply.to_user(
        user_id,
        "program_stats",
        report_views.program_stats(built),
        program_id=program.id,
        priority=Priority.ANSWER,
    )
