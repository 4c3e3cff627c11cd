"""Helpers the routers share: choosing a program, the invite card, error answers."""

from __future__ import annotations

from typing import Any

from aiogram.types import Message, User

from bots.render import Renderer
from bots.telegram.callbacks import PickProgram
from bots.telegram.context import ERROR_DEFAULTS, Reply, person_of
from bots.telegram.port import share_buttons
from delivery.outbox import Priority
from referrals.models import EngineError, Program, SettingsError
from referrals.service import ReferralService

GROUP_TYPES = ("group", "supergroup")
ANONYMOUS_ADMIN = 1087968824  # GroupAnonymousBot: a message "from the group itself"


def is_anonymous(message: Message) -> bool:
    """An admin writing as the group: Telegram does not say who they are."""
    if message.sender_chat is not None and message.sender_chat.id == message.chat.id:
        return True
    return message.from_user is None or message.from_user.id == ANONYMOUS_ADMIN


async def answer_error(reply: Reply, exc: EngineError, *, to_user: int | None = None) -> None:
    """The engine's refusal as the ``error`` template (a setting's problem in words the
    template translates, never the engine's English message alone)."""
    details: dict[str, Any] = {"code": exc.code, **ERROR_DEFAULTS}
    if isinstance(exc, SettingsError):
        details.update(
            key=exc.key,
            message=str(exc).split(": ", 1)[-1],
            problem=exc.problem,
            low=exc.low,
            high=exc.high,
            optional=exc.optional,
            options=list(exc.options),
        )
    if to_user is not None:
        await reply.to_user(to_user, "error", details)
    else:
        await reply.here("error", details)


async def choose(
    reply: Reply,
    programs: list[Program],
    action: str,
    *,
    purpose: str = "read",
    label: str = "",
    reset: bool = False,
) -> Program | None:
    """The one program, or None after asking the person to pick with buttons."""
    if len(programs) == 1:
        return programs[0]
    if not programs:
        await reply.here("no_programs", {"purpose": purpose})
        return None
    buttons = [
        [
            {
                "label": "program",
                "args": {"title": program.title},
                "data": PickProgram(
                    action=action, program_id=program.id, label=label, reset=reset
                ).pack(),
            }
        ]
        for program in programs[:20]
    ]
    await reply.here("choose_program", {"purpose": purpose}, buttons=buttons)
    return None


async def managed_programs(referrals: ReferralService, user_id: int) -> list[Program]:
    return [
        program
        for program in await referrals.list_programs("telegram")
        if await referrals.is_manager(program, user_id)
    ]


async def send_invite_card(
    referrals: ReferralService,
    renderer: Renderer,
    reply: Reply,
    program: Program,
    user: User,
    label: str = "",
    reset: bool = False,
) -> None:
    """The reader's personal link, the rules, their counts and share buttons — as a DM."""
    person = person_of(user)
    try:
        if reset:
            link = await referrals.reset_link(program.id, person, label)
            created = True
        else:
            result = await referrals.get_or_create_link(program.id, person, label)
            link, created = result.link, result.created
    except EngineError as exc:
        await answer_error(reply, exc, to_user=user.id)
        return
    counts = await referrals.counts(program.id, user.id)
    share_text = renderer.text(reply.locale, "share_text", program_title=program.title)
    await reply.to_user(
        user.id,
        "invite_card",
        {
            "program_title": program.title,
            "url": link.url,
            "label": link.label,
            "hold_hours": program.hold_hours,
            "counted": counts.counted,
            "pending": counts.pending,
            "held": counts.held,
            "created_new": created,
            "replaced": reset,
        },
        buttons=share_buttons(link.url, share_text),
        program_id=program.id,
        priority=Priority.ANSWER,
    )
