"""/settings: a program's settings, changed with buttons or typed. The admin check runs in
the engine on every change, not only here."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bots import views
from bots.telegram.callbacks import PickProgram, Setting
from bots.telegram.context import ProgramCache, Reply
from bots.telegram.handlers.common import answerable_in_private, managed_program
from bots.telegram.port import TelegramPort
from referrals.models import NotAllowed, Program
from referrals.people import People
from referrals.service import ReferralService
from referrals.text import clean_name
from rewards.service import RewardService

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
    "rewardcap": "reward_cap",
    "rewardcap_period": "reward_cap_period",
    "currency": "currency",
}


def _next_timezone(current: str) -> str:
    """The timezone after ``current`` in the button's cycle (a typed one goes back to the
    start)."""
    if current not in TIMEZONES:
        return TIMEZONES[0]
    return TIMEZONES[(TIMEZONES.index(current) + 1) % len(TIMEZONES)]


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
        views.settings(program, saved),
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
    program = await managed_program(message, referrals, reply, programs, "settings")
    if program is None:
        return
    if not await answerable_in_private(message, reply, people, port, program, "settings"):
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
        program = await referrals.update_settings(program.id, message.from_user.id, **{key: value})
        programs.forget(program.destination_id)
        await _show_settings(reply, program, message.from_user.id, saved=True)
        return
    await _show_settings(reply, program, message.from_user.id)


@router.callback_query(Setting.filter())
async def setting_button(
    query: CallbackQuery,
    callback_data: Setting,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
    programs: ProgramCache,
) -> None:
    """One tap changes one setting (a cycle of values, or on and off)."""
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
        preview = await rewards.preview_leave_policy(
            program.id, query.from_user.id, changes["leave_policy"]
        )
        if preview.grants:
            # counting leavers again grants rewards at once: the manager sees how many first
            await reply.to_user(
                query.from_user.id,
                "milestone_flow",
                views.policy_preview(preview),
                buttons=[
                    [
                        {
                            "label": "save",
                            "data": Setting(program_id=program.id, key="leave_keep").pack(),
                        },
                        {
                            "label": "cancel",
                            "data": Setting(program_id=program.id, key="leave_stay").pack(),
                        },
                    ]
                ],
                program_id=program.id,
            )
            return
    elif callback_data.key == "leave_keep":  # confirmed after the preview
        changes["leave_policy"] = "keep"
    elif callback_data.key == "leave_stay":
        await reply.to_user(
            query.from_user.id, "milestone_flow", views.milestone_flow("cancelled")
        )
        return
    elif callback_data.key == "locale":
        changes["locale"] = "id" if program.locale == "en" else "en"
    elif callback_data.key == "timezone":
        changes["timezone"] = _next_timezone(program.timezone)
    elif callback_data.key == "human_check":
        changes["human_check"] = not program.human_check
    else:
        return
    program = await referrals.update_settings(program.id, query.from_user.id, **changes)
    programs.forget(program.destination_id)
    if query.message is not None:
        await reply.edit(
            query.from_user.id,
            query.message.message_id,
            "settings",
            views.settings(program, saved=True),
            buttons=_settings_buttons(program),
        )


@router.callback_query(PickProgram.filter(F.action == "settings"))
async def picked_for_settings(
    query: CallbackQuery, callback_data: PickProgram, referrals: ReferralService, reply: Reply
) -> None:
    """The program picked for /settings (its managers only)."""
    await query.answer()
    program = await referrals.find_program_by_id(callback_data.program_id)
    if program is None:
        return
    if not await referrals.is_manager(program, query.from_user.id):
        raise NotAllowed("not an admin")
    await _show_settings(reply, program, query.from_user.id)
