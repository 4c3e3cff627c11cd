"""Reader commands: /start (with a friend's link), /invite, /stats, /lang, /forget, /help."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message

from bots.render import Renderer
from bots.telegram.callbacks import Forget, PickProgram, StatsPage
from bots.telegram.context import PLATFORM, ProgramCache, Reply, first_name, person_of
from bots.telegram.handlers.common import GROUP_TYPES, choose, send_invite_card
from bots.telegram.handlers.setup import finish_setup_in_private
from bots.telegram.port import TelegramPort
from referrals.models import (
    JoinEvent,
    PlatformUser,
    Program,
    RememberStatus,
)
from referrals.people import People
from referrals.service import ReferralService
from storage.clock import Clock

router = Router(name=__name__)

PER_PAGE = 8


@router.message(CommandStart(deep_link=True), F.chat.type == "private")
async def start_with_payload(
    message: Message,
    command: CommandObject,
    referrals: ReferralService,
    renderer: Renderer,
    reply: Reply,
    port: TelegramPort,
    clock: Clock,
) -> None:
    """Someone opened a deep link: a friend's invite, "get my link", or a setup hand-off."""
    assert message.from_user is not None
    payload = (command.args or "").strip()
    if payload.startswith("go_") and payload[3:].isdigit():
        program = await referrals.find_program_by_id(int(payload[3:]))
        if program is None:
            await reply.here("link_problem", {"problem": "unknown_link"})
            return
        await send_invite_card(referrals, renderer, reply, program, message.from_user)
        return
    if payload.startswith("setup_") and payload[6:].lstrip("-").isdigit():
        await finish_setup_in_private(int(payload[6:]), message.from_user, referrals, reply, port)
        return
    friend = person_of(message.from_user)
    outcome = await referrals.remember(payload, friend)
    program = outcome.program
    if program is None or outcome.status is RememberStatus.UNKNOWN_LINK:
        await reply.here("link_problem", {"problem": "unknown_link"})
        return
    if outcome.status is RememberStatus.SUBSCRIBED:
        # The newsletter is the bot: opening the link subscribed them (the engine did).
        await reply.here(
            "friend_subscribed",
            {"program_title": program.title, "referrer_name": outcome.referrer_name},
        )
        return
    if outcome.status is RememberStatus.REMEMBERED:
        join_url = _join_url(program)
        await reply.here(
            "friend_card",
            {
                "program_title": program.title,
                "referrer_name": outcome.referrer_name,
                "join_url": join_url,
            },
            buttons=[[{"label": "join", "url": join_url}]] if join_url else None,
            program_id=program.id,
        )
        return
    # An invitation that already stands keeps its Join button: the friend may come back
    # to the link because they never tapped it.
    join_url = _join_url(program) if outcome.status is RememberStatus.ALREADY_REMEMBERED else None
    await reply.here(
        "link_problem",
        {
            "problem": str(outcome.status),
            "program_title": program.title,
            "referrer_name": outcome.referrer_name,
        },
        buttons=[[{"label": "join", "url": join_url}]] if join_url else None,
        program_id=program.id,
    )


def _join_url(program: Program) -> str | None:
    if program.username:
        return f"https://t.me/{program.username}"
    return program.join_url


@router.message(CommandStart(), F.chat.type == "private")
async def start(message: Message, referrals: ReferralService, reply: Reply, clock: Clock) -> None:
    """Say hello and explain the commands; starting a newsletter bot subscribes."""
    assert message.from_user is not None
    programs = await referrals.list_programs(PLATFORM)
    for program in programs:
        if program.kind == "bot":
            await referrals.record_join(
                JoinEvent(
                    program.id,
                    person_of(message.from_user),
                    clock.now(),
                    event_key=f"start:{message.from_user.id}",
                )
            )
    await reply.here(
        "welcome",
        {"name": first_name(message.from_user), "programs": [p.title for p in programs]},
    )


@router.message(Command("invite"))
async def invite(
    message: Message,
    command: CommandObject,
    referrals: ReferralService,
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
        program = await _group_program(message, reply, people, programs, port)
        if program is not None:
            await send_invite_card(referrals, renderer, reply, program, user, label, reset)
            await reply.here("invite_sent_privately", {"name": first_name(user)})
        return
    if message.chat.type != "private":
        return
    chosen = await choose(
        reply, await referrals.list_programs(PLATFORM), "invite", label=label, reset=reset
    )
    if chosen is not None:
        await send_invite_card(referrals, renderer, reply, chosen, user, label, reset)


async def _group_program(
    message: Message, reply: Reply, people: People, programs: ProgramCache, port: TelegramPort
) -> Program | None:
    """The group's program when the answer can go to the reader in private; otherwise
    None after saying why in the group (no program, or a button that opens the bot)."""
    assert message.from_user is not None
    program = await programs.for_chat(message.chat.id)
    if program is None:
        await reply.here("no_programs", {"purpose": "read"})
        return None
    if not (await people.get(PLATFORM, message.from_user.id)).reachable:
        await reply.here(
            "open_bot",
            {"name": first_name(message.from_user), "for_setup": False},
            buttons=[[{"label": "open_bot", "url": port.deep_link(f"go_{program.id}")}]],
        )
        return None
    return program


@router.callback_query(PickProgram.filter(F.action.in_({"invite", "stats"})))
async def picked_for_reader(
    query: CallbackQuery,
    callback_data: PickProgram,
    referrals: ReferralService,
    renderer: Renderer,
    reply: Reply,
) -> None:
    program = await referrals.find_program_by_id(callback_data.program_id)
    await query.answer()
    if program is None:
        return
    if callback_data.action == "invite":
        await send_invite_card(
            referrals,
            renderer,
            reply,
            program,
            query.from_user,
            callback_data.label,
            callback_data.reset,
        )
    else:
        await send_stats(referrals, reply, program, query.from_user.id, 1, None)


@router.message(Command("stats"))
async def stats(
    message: Message,
    referrals: ReferralService,
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
        program = await _group_program(message, reply, people, programs, port)
        if program is not None:
            await send_stats(referrals, reply, program, user.id, 1, None)
            await reply.here("invite_sent_privately", {"name": first_name(user)})
        return
    if message.chat.type != "private":
        return
    chosen = await choose(reply, await referrals.list_programs(PLATFORM), "stats")
    if chosen is not None:
        await send_stats(referrals, reply, chosen, user.id, 1, None)


@router.callback_query(StatsPage.filter())
async def stats_page(
    query: CallbackQuery, callback_data: StatsPage, referrals: ReferralService, reply: Reply
) -> None:
    program = await referrals.find_program_by_id(callback_data.program_id)
    await query.answer()
    if program is None or query.message is None:
        return
    await send_stats(
        referrals, reply, program, query.from_user.id, callback_data.page, query.message.message_id
    )


async def send_stats(
    referrals: ReferralService,
    reply: Reply,
    program: Program,
    user_id: int,
    page: int,
    edit_message_id: int | None,
) -> None:
    receipt = await referrals.receipt(program.id, user_id, page=page, per_page=PER_PAGE)
    if receipt.page > receipt.pages:
        # A page past the end (an old button after the list shrank): show the last one.
        receipt = await referrals.receipt(
            program.id, user_id, page=receipt.pages, per_page=PER_PAGE
        )
    context = {
        "program_title": program.title,
        "counted": receipt.counts.counted,
        "pending": receipt.counts.pending,
        "held": receipt.counts.held,
        "not_counted": receipt.not_counted,
        "subtract": program.leave_policy == "subtract",
        "page": receipt.page,
        "pages": receipt.pages,
        "items": [
            {
                "kind": item.kind,
                "name": item.display_name,
                "state": item.state,
                "reason": item.reason,
                "at": item.at.isoformat(),
                "hold_until": item.hold_until.isoformat() if item.hold_until else None,
                "left_at": item.left_at.isoformat() if item.left_at else None,
            }
            for item in receipt.items
        ],
    }
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
    if edit_message_id is not None:
        await reply.edit(user_id, edit_message_id, "stats", context, buttons=buttons)
    else:
        await reply.to_user(user_id, "stats", context, buttons=buttons, program_id=program.id)


@router.message(Command("lang"), F.chat.type == "private")
async def lang(message: Message, command: CommandObject, people: People, reply: Reply) -> None:
    """Choose the language: /lang en or /lang id."""
    assert message.from_user is not None
    choice = (command.args or "").strip().lower()
    if choice not in ("en", "id"):
        await reply.here("lang", {"changed": False})
        return
    await people.set_language(PLATFORM, message.from_user.id, choice)
    reply.locale = choice
    await reply.here("lang", {"changed": True}, locale=choice)


@router.message(Command("forget"), F.chat.type == "private")
async def forget(message: Message, reply: Reply) -> None:
    """Delete your data (asks first)."""
    await reply.here(
        "forget",
        {"step": "confirm"},
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
    people: People,
    reply: Reply,
) -> None:
    await query.answer()
    if not callback_data.confirm:
        await reply.to_user(query.from_user.id, "forget", {"step": "cancelled"})
        return
    await referrals.delete_user_data(PlatformUser(PLATFORM, query.from_user.id))
    locale = reply.locale
    await people.forget(PLATFORM, query.from_user.id)
    await reply.to_user(query.from_user.id, "forget", {"step": "done"}, locale=locale)


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
    await reply.here("help", {"manager": manager})
