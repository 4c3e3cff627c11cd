"""Membership events: joins and leaves (chat_member), join requests, and blocks of the bot
in private chats (the bot-subscription mode). Handlers are idempotent: a re-delivered
update changes nothing."""

from __future__ import annotations

from datetime import timedelta

from aiogram import Bot, F, Router
from aiogram.filters import JOIN_TRANSITION, LEAVE_TRANSITION, ChatMemberUpdatedFilter
from aiogram.types import CallbackQuery, ChatJoinRequest, ChatMemberUpdated
from markupsafe import Markup

from bots.render import Renderer
from bots.telegram.callbacks import HumanCheck
from bots.telegram.context import PLATFORM, ProgramCache, Reply, person_of
from bots.telegram.port import JOIN_REQUEST_WINDOW, TelegramPort
from delivery.outbox import Priority
from delivery.port import Delivered
from referrals.models import JoinEvent, LeaveEvent, RequestStatus
from referrals.people import People
from referrals.service import ReferralService
from storage.clock import Clock

router = Router(name=__name__)
CHECK_WINDOW = timedelta(minutes=4, seconds=30)


def _event_key(event: ChatMemberUpdated, kind: str) -> str:
    return (
        f"cm:{event.chat.id}:{event.new_chat_member.user.id}:{int(event.date.timestamp())}:{kind}"
    )


@router.chat_member(ChatMemberUpdatedFilter(JOIN_TRANSITION))
async def member_joined(
    event: ChatMemberUpdated, bot: Bot, referrals: ReferralService, programs: ProgramCache
) -> None:
    """Someone became a member: count it (by link, or by the remembered reader)."""
    user = event.new_chat_member.user
    if user.is_bot:
        return
    program = await programs.for_chat(event.chat.id)
    if program is None:
        return
    link = None
    if event.invite_link is not None and event.invite_link.creator.id == bot.id:
        link = event.invite_link.invite_link  # only links the bot made come in full
    await referrals.record_join(
        JoinEvent(
            program.id,
            person_of(user),
            event.date,
            link=link,
            event_key=_event_key(event, "join"),
        )
    )


@router.chat_member(ChatMemberUpdatedFilter(LEAVE_TRANSITION))
async def member_left(
    event: ChatMemberUpdated, referrals: ReferralService, programs: ProgramCache
) -> None:
    """Someone left or was removed: a referral in its hold period stops counting."""
    user = event.new_chat_member.user
    if user.is_bot:
        return
    program = await programs.for_chat(event.chat.id)
    if program is None:
        return
    await referrals.record_leave(
        LeaveEvent(
            program.id,
            user.id,
            event.date,
            removed=event.new_chat_member.status == "kicked",
        )
    )


@router.chat_join_request()
async def join_requested(
    request: ChatJoinRequest,
    bot: Bot,
    referrals: ReferralService,
    programs: ProgramCache,
    reply: Reply,
    clock: Clock,
) -> None:
    """A request through a reader's join-request link: remember the reader, then welcome
    and approve — or send the one-button human check first when the program wants it."""
    program = await programs.for_chat(request.chat.id)
    if program is None:
        return
    link = None
    if request.invite_link is not None and request.invite_link.creator.id == bot.id:
        link = request.invite_link.invite_link
    outcome = await referrals.record_join_request(
        program.id, person_of(request.from_user), request.date, link
    )
    window_ends = request.date + JOIN_REQUEST_WINDOW
    context = {
        "program_title": program.title,
        "referrer_name": outcome.referrer_name,
        "_window_ends": window_ends.isoformat(),
        "_chat_id": request.chat.id,
        "_user_id": request.from_user.id,
    }
    remaining = window_ends - clock.now()
    if outcome.status is RequestStatus.CHECK:
        await reply.send(
            "user",
            request.user_chat_id,
            "human_check",
            context,
            buttons=[[{"label": "human_check", "data": HumanCheck(program_id=program.id).pack()}]],
            priority=Priority.TIMED,
            program_id=program.id,
            expires_in=min(CHECK_WINDOW, max(remaining, timedelta(seconds=1))),
            key=f"check:{program.id}:{request.from_user.id}",
        )
        return
    # The welcome can only be sent before the request is processed: the outbox sends it,
    # then approves (and approves even when the welcome cannot be delivered).
    await reply.send(
        "user",
        request.user_chat_id,
        "join_welcome",
        context,
        priority=Priority.TIMED,
        program_id=program.id,
        action="welcome_approve",
        key=f"welcome:{program.id}:{request.from_user.id}:{int(request.date.timestamp())}",
    )


@router.callback_query(HumanCheck.filter())
async def human_check_passed(
    query: CallbackQuery,
    callback_data: HumanCheck,
    referrals: ReferralService,
    port: TelegramPort,
    renderer: Renderer,
    reply: Reply,
) -> None:
    """The friend proved to be a person: approve the request."""
    program = await referrals.find_program_by_id(callback_data.program_id)
    if program is None:
        await query.answer()
        return
    await referrals.pass_human_check(program.id, query.from_user.id)
    outcome = await port.approve_join_request(program.destination, query.from_user.id)
    text = None
    if isinstance(outcome, Delivered):
        html = renderer.text(reply.locale, "human_check_passed", program_title=program.title)
        text = Markup(html).striptags()[:200]
    await query.answer(text=text)


@router.my_chat_member(F.chat.type == "private")
async def private_block_changed(
    event: ChatMemberUpdated, referrals: ReferralService, people: People, clock: Clock
) -> None:
    """A person blocked (left) or unblocked the bot; in the bot-subscription mode that is
    leaving and joining the newsletter."""
    user = event.from_user
    blocked = event.new_chat_member.status == "kicked"
    if blocked:
        await people.blocked(PLATFORM, user.id)
    else:
        await people.unblocked(PLATFORM, user.id)
    for program in await referrals.list_programs(PLATFORM):
        if program.kind != "bot":
            continue
        if blocked:
            await referrals.record_leave(LeaveEvent(program.id, user.id, event.date))
        else:
            await referrals.record_join(
                JoinEvent(
                    program.id,
                    person_of(user),
                    event.date,
                    event_key=f"unblock:{user.id}:{int(event.date.timestamp())}",
                )
            )
