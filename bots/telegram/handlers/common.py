"""Helpers the feature routers share: choosing a program, the program of a group, the
invite card."""

from __future__ import annotations

from aiogram.types import Message, User

from bots import views
from bots.render import Renderer
from bots.telegram.callbacks import PickProgram
from bots.telegram.context import PLATFORM, ProgramCache, Reply, first_name, person_of
from bots.telegram.handlers.errors import answer_errors_privately
from bots.telegram.port import TelegramPort, share_buttons
from delivery.outbox import Priority
from referrals.models import Program
from referrals.people import People
from referrals.service import ReferralService
from rewards.service import RewardService

GROUP_TYPES = ("group", "supergroup")
ANONYMOUS_ADMIN = 1087968824  # GroupAnonymousBot: a message "from the group itself"


def is_anonymous(message: Message) -> bool:
    """An admin writing as the group: Telegram does not say who they are."""
    if message.sender_chat is not None and message.sender_chat.id == message.chat.id:
        return True
    return message.from_user is None or message.from_user.id == ANONYMOUS_ADMIN


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
        await reply.here("no_programs", views.no_programs(purpose))
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
    await reply.here("choose_program", views.choose_program(purpose), buttons=buttons)
    return None


async def managed_programs(referrals: ReferralService, user_id: int) -> list[Program]:
    return [
        program
        for program in await referrals.list_programs(PLATFORM)
        if await referrals.is_manager(program, user_id)
    ]


async def group_program(
    message: Message, reply: Reply, people: People, programs: ProgramCache, port: TelegramPort
) -> Program | None:
    """The group's program when the answer can go to the reader in private; otherwise
    None after saying why in the group (no program, or a button that opens the bot)."""
    if message.from_user is None:  # a channel post: nobody to answer
        return None
    program = await programs.for_chat(message.chat.id)
    if program is None:
        await reply.here("no_programs", views.no_programs("read"))
        return None
    if not (await people.get(PLATFORM, message.from_user.id)).reachable:
        await reply.here(
            "open_bot",
            views.open_bot(first_name(message.from_user)),
            buttons=[[{"label": "open_bot", "url": port.deep_link(f"go_{program.id}")}]],
        )
        return None
    return program


async def managed_program(
    message: Message, referrals: ReferralService, reply: Reply, programs: ProgramCache, action: str
) -> Program | None:
    """The chat's program in a group; in private, the programs this person manages."""
    if message.from_user is None:  # a channel post: nobody to answer
        return None
    if message.chat.type in GROUP_TYPES:
        program = await programs.for_chat(message.chat.id)
        if program is None:
            await reply.here("no_programs", views.no_programs("manage"))
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


async def managed_in_private(
    message: Message,
    referrals: ReferralService,
    reply: Reply,
    programs: ProgramCache,
    people: People,
    port: TelegramPort,
    action: str,
    purpose: str,
) -> Program | None:
    """:func:`managed_program`, when its answer can also go to the manager in private
    (:func:`answerable_in_private`); None after saying why."""
    program = await managed_program(message, referrals, reply, programs, action)
    if program is None or not await answerable_in_private(
        message, reply, people, port, program, purpose
    ):
        return None
    return program


async def send_invite_card(
    referrals: ReferralService,
    renderer: Renderer,
    reply: Reply,
    program: Program,
    user: User,
    label: str = "",
    reset: bool = False,
    *,
    rewards: RewardService,
) -> None:
    """The reader's personal link, the rules (with the rewards and caps), their counts, the
    way to the next reward and share buttons — as a DM (and so is the engine's refusal,
    such as a paused program)."""
    answer_errors_privately(reply, user.id)
    person = person_of(user)
    if reset:
        link = await referrals.reset_link(program.id, person, label)
        created = True
    else:
        result = await referrals.get_or_create_link(program.id, person, label)
        link, created = result.link, result.created
    counts = await referrals.counts(program.id, user.id)
    share_text = renderer.text(reply.locale, "share_text", **views.share_text(program))
    await reply.to_user(
        user.id,
        "invite_card",
        views.invite_card(
            program,
            link,
            counts,
            created=created,
            replaced=reset,
            rewards=await reward_rules(rewards, program, user.id),
        ),
        buttons=share_buttons(link.url, share_text),
        program_id=program.id,
        priority=Priority.ANSWER,
    )


async def reward_rules(rewards: RewardService, program: Program, user_id: int) -> views.View:
    """The rewards of a program and one reader's way to the next (invite card, receipt)."""
    return views.reward_rules(
        program,
        await rewards.milestones(program.id),
        await rewards.progress(program.id, user_id),
    )


async def answerable_in_private(
    message: Message,
    reply: Reply,
    people: People,
    port: TelegramPort,
    program: Program,
    purpose: str,
) -> bool:
    """A manager's answer goes to them in private; typed in a group by someone who never
    started the bot (Telegram lets a bot write only to people who did), it is first the
    button that opens the private chat, and False."""
    if message.from_user is None or message.chat.type not in GROUP_TYPES:
        return True
    if (await people.get(PLATFORM, message.from_user.id)).reachable:
        return True
    await reply.here(
        "open_bot",
        views.open_bot(first_name(message.from_user), purpose=purpose),
        buttons=[[{"label": "open_bot", "url": port.deep_link(f"go_{program.id}")}]],
    )
    return False
