"""Membership events: joins and leaves (chat_member), join requests, and blocks of the bot
in private chats (the bot-subscription mode). Handlers are idempotent: a re-delivered
update changes nothing."""

from __future__ import annotations

from datetime import timedelta

from aiogram import Bot, F, Router
from aiogram.filters import JOIN_TRANSITION, LEAVE_TRANSITION, ChatMemberUpdatedFilter
from aiogram.types import CallbackQuery, ChatJoinRequest, ChatMemberUpdated, Update
from markupsafe import Markup

from bots import views
from bots.render import Renderer
from bots.telegram.callbacks import HumanCheck
from bots.telegram.context import PLATFORM, ProgramCache, Reply, person_of
from bots.telegram.port import JOIN_REQUEST_WINDOW, TelegramPort
from delivery.actions import Action, WelcomeApprove, buttons_of
from delivery.outbox import Priority
from referrals.clock import Clock
from referrals.models import JoinEvent, LeaveEvent, RequestStatus
from referrals.service import ReferralService, human_check_key
from rewards.service import RewardService

router = Router(name=__name__)
SEND_MARGIN = timedelta(seconds=30)


def _event_key(event: ChatMemberUpdated, update: Update) -> str:
    """Identifies one membership change: a re-delivered update has the same id, while a
    leave and rejoin in the same second are different updates."""
    return f"cm:{event.chat.id}:{event.new_chat_member.user.id}:{update.update_id}"


@router.chat_member(ChatMemberUpdatedFilter(JOIN_TRANSITION))
async def member_joined(
    event: ChatMemberUpdated,
    event_update: Update,
    bot: Bot,
    referrals: ReferralService,
    programs: ProgramCache,
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
            event_key=_event_key(event, event_update),
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
    rewards: RewardService,
    programs: ProgramCache,
    port: TelegramPort,
    reply: Reply,
    clock: Clock,
) -> None:
    """A request through a reader's join-request link: remember the reader, then welcome
    and approve — or send the one-button human check first when the program wants it."""
    program = await programs.for_chat(request.chat.id)
    link = None
    if request.invite_link is not None and request.invite_link.creator.id == bot.id:
        link = request.invite_link.invite_link
    if program is None:
        # A chat without a program may be a reward's private chat: only the owner of the
        # grant whose one-time link was used is let in.
        await rewards.claim_access(PLATFORM, request.chat.id, request.from_user.id, link)
        return
    outcome = await referrals.record_join_request(
        program.id, person_of(request.from_user), request.date, link
    )
    if outcome.status is RequestStatus.ALREADY:
        return  # settled before (declined): nothing more to do
    window_ends = request.date + JOIN_REQUEST_WINDOW
    context = views.join_welcome(
        program, outcome.referrer_name, friend_reward=await rewards.has_friend_reward(program.id)
    )
    if outcome.status is RequestStatus.CHECK:
        # The check is only worth sending while the DM window is open; if it cannot be
        # delivered in time the scheduler approves the request (settle_join_requests).
        await reply.send(
            "user",
            request.user_chat_id,
            "human_check",
            context,
            buttons=[[{"label": "human_check", "data": HumanCheck(program_id=program.id).pack()}]],
            priority=Priority.TIMED,
            program_id=program.id,
            # it must arrive while the bot may still write to them (a margin for the send)
            expires_in=max(window_ends - SEND_MARGIN - clock.now(), timedelta(seconds=1)),
            key=human_check_key(program.id, request.from_user.id, request.date),
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
        action=Action.WELCOME_APPROVE,
        payload=WelcomeApprove(
            request.chat.id,
            request.from_user.id,
            window_ends,
            # The friend never started the bot: this button is how a gift can reach them.
            buttons_of([[{"label": "claim_reward", "url": port.deep_link("claim")}]])
            if context["friend_reward"]
            else (),
        ),
    )


@router.callback_query(HumanCheck.filter())
async def human_check_passed(
    query: CallbackQuery,
    callback_data: HumanCheck,
    referrals: ReferralService,
    renderer: Renderer,
    reply: Reply,
) -> None:
    """The friend proved to be a person: welcome them (the request's DM window may still
    be open) and approve the request, through the outbox so a failure is retried."""
    passed = await referrals.pass_human_check(callback_data.program_id, query.from_user.id)
    if passed is None:
        await query.answer()
        return
    program = passed.program
    if passed.approved_now:
        await reply.send(
            "user",
            query.from_user.id,
            "join_welcome",
            views.join_welcome(program, passed.referrer_name),
            priority=Priority.ANSWER,
            program_id=program.id,
            action=Action.WELCOME_APPROVE,
            payload=WelcomeApprove(
                program.destination_id,
                query.from_user.id,
                passed.requested_at + JOIN_REQUEST_WINDOW,
            ),
        )
    html = renderer.text(reply.locale, "human_check_passed", **views.human_check_passed(program))
    await query.answer(text=Markup(html).striptags()[:200])


@router.my_chat_member(F.chat.type == "private")
async def private_block_changed(
    event: ChatMemberUpdated, event_update: Update, referrals: ReferralService
) -> None:
    """A person blocked or unblocked the bot (in a bot subscription, leaving and coming
    back: the engine decides)."""
    user = event.from_user
    if event.new_chat_member.status == "kicked":
        await referrals.blocked(PLATFORM, user.id, event.date)
    else:
        await referrals.unblocked(
            PLATFORM, person_of(user), event.date, event_key=f"{user.id}:{event_update.update_id}"
        )
