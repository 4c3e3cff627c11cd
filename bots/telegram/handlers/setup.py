"""Program setup: the bot added as an admin, /setup, rights lost and regained, group
migration, and the bot-subscription mode."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, ChatMemberUnion, ChatMemberUpdated, Message, User

from bots import views
from bots.telegram.callbacks import Setup
from bots.telegram.context import PLATFORM, ProgramCache, Reply
from bots.telegram.handlers.common import is_anonymous
from bots.telegram.port import TelegramPort, classify
from referrals.models import Program
from referrals.service import ReferralService
from referrals.text import clean_name

logger = logging.getLogger(__name__)
router = Router(name=__name__)


def missing_rights(member: ChatMemberUnion, chat_type: str) -> list[str]:
    """What the bot, as ``member`` of a chat, lacks to run its program ([] when nothing):
    the invite right (links, join requests), and posting in a channel (the /post button)."""
    if member.status != "administrator":
        return ["admin"]
    missing = []
    if not getattr(member, "can_invite_users", False):
        missing.append("can_invite_users")
    if chat_type == "channel" and not getattr(member, "can_post_messages", False):
        missing.append("can_post_messages")
    return missing


async def rights_problems(bot: Bot, chat_id: int, chat_type: str) -> list[str]:
    """What the bot lacks to run a program in the chat ([] when nothing)."""
    return missing_rights(await bot.get_chat_member(chat_id, bot.id), chat_type)


async def set_up(
    bot: Bot,
    referrals: ReferralService,
    port: TelegramPort,
    chat_id: int,
    user_id: int,
) -> tuple[dict[str, Any], Program | None]:
    """Check the person and the bot's rights, then create (or refresh) the program.
    Returns the ``setup`` template's view (its step says how it went) and the program."""
    try:
        chat = await bot.get_chat(chat_id)
        member = await bot.get_chat_member(chat_id, user_id)
    except Exception as exc:  # the bot is not in the chat any more, or Telegram refused
        logger.info("setup of %s failed: %s", chat_id, classify(exc))
        return views.setup("missing", chat_title=str(chat_id), missing=["admin"]), None
    title = clean_name(chat.title, 128) or str(chat_id)
    if member.status not in ("creator", "administrator"):
        return views.setup("not_admin", chat_title=title), None
    missing = await rights_problems(bot, chat_id, chat.type)
    if missing:
        return views.setup("missing", chat_title=title, missing=missing), None
    public = chat.username is not None
    settings: dict[str, object] = {"username": chat.username}
    if not public:
        link = await port.create_chat_link(chat_id)
        if isinstance(link, str):
            settings["join_url"] = link
    program, _ = await referrals.setup_program(
        PLATFORM, chat_id, chat.type, title, created_by=user_id, **settings
    )
    return views.setup_done(program), program


@router.my_chat_member(F.chat.type.in_({"group", "supergroup", "channel"}))
async def bot_status_changed(
    event: ChatMemberUpdated,
    bot: Bot,
    referrals: ReferralService,
    reply: Reply,
    programs: ProgramCache,
) -> None:
    """Added: offer setup to whoever did it, or tell them which rights are missing. Rights
    lost: pause and tell the managers. Rights back: resume."""
    chat = event.chat
    missing = missing_rights(event.new_chat_member, chat.type)
    program = await referrals.find_program(PLATFORM, chat.id)
    programs.forget(chat.id)
    if program is None:
        # Added (as an admin, or as a member who still has to be made one): tell them.
        added = event.new_chat_member.status in ("administrator", "member")
        if added and not event.from_user.is_bot:
            await reply.to_user(
                event.from_user.id,
                "setup",
                views.setup(
                    "missing" if missing else "offer",
                    chat_title=clean_name(chat.title, 128),
                    missing=missing,
                ),
                buttons=None
                if missing
                else [
                    [
                        {
                            "label": "setup",
                            "args": {"title": clean_name(chat.title, 48)},
                            "data": Setup(chat_id=chat.id).pack(),
                        }
                    ]
                ],
            )
        return
    # Only the invite right stops a running program (links, join requests, counting);
    # posting in a channel is needed for /post alone. The engine pauses or resumes, and
    # tells whoever set the program up and the admin who changed the rights.
    can_invite = "admin" not in missing and "can_invite_users" not in missing
    await referrals.rights_changed(
        PLATFORM,
        chat.id,
        can_run=can_invite,
        actor_id=None if event.from_user.is_bot else event.from_user.id,
    )


@router.message(Command("setup"), F.chat.type.in_({"group", "supergroup"}))
async def setup_in_group(
    message: Message,
    bot: Bot,
    referrals: ReferralService,
    reply: Reply,
    port: TelegramPort,
    programs: ProgramCache,
) -> None:
    """Set up the referral program of this group (admins only)."""
    user = message.from_user
    if user is None or is_anonymous(message):
        await reply.here(
            "setup",
            views.setup("anonymous", chat_title=clean_name(message.chat.title, 128)),
            buttons=[[{"label": "open_bot", "url": port.deep_link(f"setup_{message.chat.id}")}]],
        )
        return
    context, _ = await set_up(bot, referrals, port, message.chat.id, user.id)
    programs.forget(message.chat.id)
    await reply.here("setup", context)


@router.message(Command("setup"), F.chat.type == "private")
async def setup_in_private(
    message: Message, referrals: ReferralService, reply: Reply, port: TelegramPort, bot: Bot
) -> None:
    """In private: make the bot itself a newsletter (owners only)."""
    if message.from_user is None:  # a channel post: nobody to answer
        return None
    args = (message.text or "").split()[1:]
    if args[:1] != ["bot"]:
        await reply.error("group_only")
        return
    if message.from_user.id not in port.owners:
        await reply.here("setup", views.setup("owner_only"))
        return
    me = await bot.me()
    await referrals.setup_program(
        PLATFORM, me.id, "bot", me.full_name, created_by=message.from_user.id
    )
    await reply.here("setup", views.setup("bot_mode"))


@router.callback_query(Setup.filter())
async def setup_button(
    query: CallbackQuery,
    callback_data: Setup,
    referrals: ReferralService,
    reply: Reply,
    port: TelegramPort,
    bot: Bot,
    programs: ProgramCache,
) -> None:
    """The "Set up" button of the offer sent when the bot was added to a chat."""
    await query.answer()
    await finish_setup_in_private(callback_data.chat_id, query.from_user, referrals, reply, port)
    programs.forget(callback_data.chat_id)


async def finish_setup_in_private(
    chat_id: int, user: User, referrals: ReferralService, reply: Reply, port: TelegramPort
) -> None:
    context, _ = await set_up(port.bot, referrals, port, chat_id, user.id)
    await reply.to_user(user.id, "setup", context)


@router.message(F.migrate_to_chat_id)
async def group_migrated(
    message: Message, referrals: ReferralService, programs: ProgramCache
) -> None:
    """A group became a supergroup: its program moves to the new chat id."""
    if message.migrate_to_chat_id is None:
        return
    await referrals.migrate_destination(PLATFORM, message.chat.id, message.migrate_to_chat_id)
    programs.forget()
