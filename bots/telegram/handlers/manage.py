"""Manager commands: /settings, /pause, /resume, /program, /post. The admin check runs in
the engine on every change, not only here."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, ChatMemberUnion, Message

from bots.telegram.callbacks import PickProgram, Setting
from bots.telegram.context import PLATFORM, ProgramCache, Reply, first_name
from bots.telegram.handlers.common import (
    GROUP_TYPES,
    answer_error,
    choose,
    is_anonymous,
    managed_programs,
)
from bots.telegram.port import TelegramPort
from delivery.outbox import Priority
from referrals.models import EngineError, NotAllowed, Program
from referrals.people import People
from referrals.service import ReferralService
from referrals.text import clean_name

router = Router(name=__name__)

HOLD_STEPS = (0, 24, 48, 72, 168, 336)
# The timezone button steps through these; any other IANA name can be typed.
TIMEZONES = (
    "UTC",
    "Asia/Jakarta",
    "Asia/Makassar",
    "Asia/Jayapura",
    "Asia/Singapore",
    "Europe/London",
    "America/New_York",
)
TYPED_SETTINGS = {
    "hold": "hold_hours",
    "timezone": "timezone",
    "tz": "timezone",
    "cap": "referrer_cap",
    "burst": "burst_limit",
    "age": "min_account_age_days",
}


def _next_timezone(current: str) -> str:
    """The timezone after ``current`` in the button's cycle (a typed one goes back to the
    start)."""
    if current not in TIMEZONES:
        return TIMEZONES[0]
    return TIMEZONES[(TIMEZONES.index(current) + 1) % len(TIMEZONES)]


MANAGER_ACTIONS = {"settings", "program", "pause", "resume", "post"}


async def _program_for(
    message: Message, referrals: ReferralService, reply: Reply, programs: ProgramCache, action: str
) -> Program | None:
    """The chat's program in a group; in private, the programs this person manages."""
    assert message.from_user is not None
    if message.chat.type in GROUP_TYPES:
        program = await programs.for_chat(message.chat.id)
        if program is None:
            await reply.here("no_programs", {"purpose": "manage"})
            return None
        if is_anonymous(message):  # nobody to check: the admin may say who they are
            await reply.error("private_only")
            return None
        if not await referrals.is_manager(program, message.from_user.id):
            await reply.error("not_allowed")
            return None
        return program
    if message.chat.type != "private":
        return None
    return await choose(
        reply, await managed_programs(referrals, message.from_user.id), action, purpose="manage"
    )


def _settings_context(program: Program, saved: bool = False) -> dict[str, Any]:
    return {
        "program_title": program.title,
        "hold_hours": program.hold_hours,
        "join_mode": program.join_mode,
        "leave_policy": program.leave_policy,
        "locale": program.locale,
        "timezone": program.timezone,
        "human_check": program.human_check,
        "paused": program.paused,
        "saved": saved,
    }


def _settings_buttons(program: Program) -> list[list[dict[str, Any]]]:
    def button(label: str, key: str, **args: Any) -> dict[str, Any]:
        return {
            "label": label,
            "args": args,
            "data": Setting(program_id=program.id, key=key).pack(),
        }

    return [
        [button("hold", "hold", hours=program.hold_hours)],
        [button("join_mode", "join_mode", mode=program.join_mode)],
        [button("leave_policy", "leave_policy", policy=program.leave_policy)],
        [button("locale", "locale", code=program.locale)],
        [button("timezone", "timezone", zone=program.timezone)],
        [button("human_check_toggle", "human_check", on=program.human_check)],
    ]


async def _show_settings(
    reply: Reply, program: Program, user_id: int, saved: bool = False
) -> None:
    await reply.to_user(
        user_id,
        "settings",
        _settings_context(program, saved),
        buttons=_settings_buttons(program),
        program_id=program.id,
    )


@router.message(Command("settings"))
async def settings(
    message: Message,
    command: CommandObject,
    referrals: ReferralService,
    reply: Reply,
    programs: ProgramCache,
    people: People,
    port: TelegramPort,
) -> None:
    """Show the settings with buttons; /settings <name> <value> for typed ones."""
    if message.from_user is None:
        return
    program = await _program_for(message, referrals, reply, programs, "settings")
    if program is None:
        return
    if message.chat.type in GROUP_TYPES and not (
        (await people.get(PLATFORM, message.from_user.id)).reachable
    ):
        # The settings answer in private; Telegram lets a bot write only to people who
        # started it, so first the button that opens the private chat.
        await reply.here(
            "open_bot",
            {"name": first_name(message.from_user), "for_setup": False, "purpose": "settings"},
            buttons=[[{"label": "open_bot", "url": port.deep_link(f"go_{program.id}")}]],
        )
        return
    words = (command.args or "").split()
    if words:
        key = TYPED_SETTINGS.get(words[0].lower())
        if key is None:
            await reply.error("bad_setting", key=clean_name(words[0], 32), problem="unknown")
            return
        if len(words) != 2:
            await reply.error("bad_setting", key=key, problem="usage")
            return
        raw = words[1]
        value: Any = raw
        if key != "timezone":
            value = (
                None if raw.lower() in ("off", "none") else (int(raw) if raw.isdigit() else raw)
            )
        try:
            program = await referrals.update_settings(
                program.id, message.from_user.id, **{key: value}
            )
        except EngineError as exc:
            await answer_error(reply, exc)
            return
        programs.forget(program.destination_id)
        await _show_settings(reply, program, message.from_user.id, saved=True)
        return
    await _show_settings(reply, program, message.from_user.id)


@router.callback_query(Setting.filter())
async def setting_button(
    query: CallbackQuery,
    callback_data: Setting,
    referrals: ReferralService,
    reply: Reply,
    programs: ProgramCache,
) -> None:
    program = await referrals.find_program_by_id(callback_data.program_id)
    await query.answer()
    if program is None:
        return
    changes: dict[str, Any] = {}
    if callback_data.key == "hold":
        later = [step for step in HOLD_STEPS if step > program.hold_hours]
        changes["hold_hours"] = later[0] if later else HOLD_STEPS[0]
    elif callback_data.key == "join_mode":
        changes["join_mode"] = "direct" if program.join_mode == "bot" else "bot"
    elif callback_data.key == "leave_policy":
        changes["leave_policy"] = "subtract" if program.leave_policy == "keep" else "keep"
    elif callback_data.key == "locale":
        changes["locale"] = "id" if program.locale == "en" else "en"
    elif callback_data.key == "timezone":
        changes["timezone"] = _next_timezone(program.timezone)
    elif callback_data.key == "human_check":
        changes["human_check"] = not program.human_check
    else:
        return
    try:
        program = await referrals.update_settings(program.id, query.from_user.id, **changes)
    except EngineError as exc:
        await answer_error(reply, exc, to_user=query.from_user.id)
        return
    programs.forget(program.destination_id)
    if query.message is not None:
        await reply.edit(
            query.from_user.id,
            query.message.message_id,
            "settings",
            _settings_context(program, saved=True),
            buttons=_settings_buttons(program),
        )


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
    program = await _program_for(message, referrals, reply, programs, command.command)
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
    try:
        program = await referrals.set_paused(
            program.id, paused, "paused by a manager" if paused else None, actor_id=user_id
        )
    except EngineError as exc:
        await answer_error(reply, exc)
        return
    programs.forget(program.destination_id)
    await reply.here("program_state", {"paused": program.paused})


@router.message(Command("program"))
async def program_totals(
    message: Message, referrals: ReferralService, reply: Reply, programs: ProgramCache
) -> None:
    """Totals of the program: readers, counted, waiting, under review, not counted."""
    if message.from_user is None:
        return
    program = await _program_for(message, referrals, reply, programs, "program")
    if program is not None:
        await _send_totals(referrals, reply, program)


async def _send_totals(referrals: ReferralService, reply: Reply, program: Program) -> None:
    totals = await referrals.program_totals(program.id)
    await reply.here(
        "program_totals", {"program_title": program.title, "paused": program.paused, **totals}
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
    program = await _program_for(message, referrals, reply, programs, "post")
    if program is not None:
        await _post(reply, program, port)


def post_rights(member: ChatMemberUnion, chat_type: str) -> tuple[bool, bool]:
    """(may post, may pin) for the bot as ``member`` of a chat: a channel needs the post
    right (and editing, to pin); in groups an admin posts, and pins with the pin right."""
    status = member.status
    if chat_type == "channel":
        if status != "administrator":
            return False, False
        return bool(getattr(member, "can_post_messages", False)), bool(
            getattr(member, "can_edit_messages", False)
        )
    if status == "administrator":
        return True, bool(getattr(member, "can_pin_messages", False))
    if status == "member":
        return True, False
    if status == "restricted":
        return bool(getattr(member, "can_send_messages", False)), False
    return False, False


async def _post(reply: Reply, program: Program, port: TelegramPort) -> None:
    """Queue the button post in the program's chat, pinned when the bot may pin, and say
    what will happen (or why it cannot)."""
    bot = port.bot
    try:
        me = await bot.get_chat_member(program.destination_id, bot.id)
    except (TelegramAPIError, TelegramNetworkError):
        await reply.error("platform_unavailable")
        return
    may_post, may_pin = post_rights(me, program.kind)
    if may_post:
        await reply.send(
            "chat",
            program.destination_id,
            "post_invite",
            {"program_title": program.title},
            buttons=[[{"label": "get_link", "url": port.deep_link(f"go_{program.id}")}]],
            priority=Priority.BULK,
            action="send_pin" if may_pin else "send",
            program_id=program.id,
        )
    await reply.here(
        "posted", {"ok": may_post, "pinned": may_post and may_pin, "program_title": program.title}
    )


@router.callback_query(PickProgram.filter(F.action.in_(MANAGER_ACTIONS)))
async def picked_for_manager(
    query: CallbackQuery,
    callback_data: PickProgram,
    referrals: ReferralService,
    reply: Reply,
    programs: ProgramCache,
    port: TelegramPort,
) -> None:
    await query.answer()
    program = await referrals.find_program_by_id(callback_data.program_id)
    if program is None:
        return
    if not await referrals.is_manager(program, query.from_user.id):
        await answer_error(reply, NotAllowed("not an admin"), to_user=query.from_user.id)
        return
    action = callback_data.action
    if action == "settings":
        await _show_settings(reply, program, query.from_user.id)
    elif action == "program":
        await _send_totals(referrals, reply, program)
    elif action in ("pause", "resume"):
        await _set_paused(
            referrals, reply, programs, program, query.from_user.id, action == "pause"
        )
    elif action == "post":
        await _post(reply, program, port)
