"""/start: with a friend's link (or a "get my link" / setup hand-off), then the plain one.
The deep-link handler is registered first."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import CommandObject, CommandStart
from aiogram.types import Message

from bots import views
from bots.render import Renderer
from bots.telegram.context import PLATFORM, Reply, first_name, person_of
from bots.telegram.handlers.common import send_invite_card
from bots.telegram.handlers.setup import finish_setup_in_private
from bots.telegram.port import TelegramPort
from leaderboard.service import PRIZE_CLAIM_WINDOW
from referrals.clock import Clock
from referrals.models import Program, RememberStatus
from referrals.service import ReferralService
from rewards.service import RewardService

router = Router(name=__name__)


@router.message(CommandStart(deep_link=True), F.chat.type == "private")
async def start_with_payload(
    message: Message,
    command: CommandObject,
    referrals: ReferralService,
    rewards: RewardService,
    renderer: Renderer,
    reply: Reply,
    port: TelegramPort,
    clock: Clock,
) -> None:
    """Someone opened a deep link: a friend's invite, "get my link", a setup hand-off, or
    a season's claim button."""
    if message.from_user is None:  # a channel post: nobody to answer
        return None
    payload = (command.args or "").strip()
    if payload.startswith("claim_") and payload[6:].isdigit():
        # the prize first: what the claim did is the answer (the rest follows below)
        claim = await rewards.claim_prize(PLATFORM, message.from_user.id, int(payload[6:]))
        await rewards.reader_returned(PLATFORM, message.from_user.id)
        view = views.prize_claim(claim, PRIZE_CLAIM_WINDOW.days)
        await reply.here("prize_claim", view)
        return
    # Rewards that waited for them (they blocked the bot, or never opened it) go out now.
    await rewards.reader_returned(PLATFORM, message.from_user.id)
    if payload == "claim":
        await reply.here("welcome", views.welcome(first_name(message.from_user), []))
        return
    if payload.startswith("go_") and payload[3:].isdigit():
        program = await referrals.find_program_by_id(int(payload[3:]))
        if program is None:
            await reply.here("link_problem", views.link_problem("unknown_link"))
            return
        await send_invite_card(
            referrals, renderer, reply, program, message.from_user, rewards=rewards
        )
        return
    if payload.startswith("setup_") and payload[6:].lstrip("-").isdigit():
        await finish_setup_in_private(int(payload[6:]), message.from_user, referrals, reply, port)
        return
    friend = person_of(message.from_user)
    outcome = await referrals.remember(payload, friend)
    program = outcome.program
    if program is None or outcome.status is RememberStatus.UNKNOWN_LINK:
        await reply.here("link_problem", views.link_problem("unknown_link"))
        return
    if outcome.status is RememberStatus.SUBSCRIBED:
        # The newsletter is the bot: opening the link subscribed them (the engine did).
        await reply.here(
            "friend_subscribed", views.friend_subscribed(program, outcome.referrer_name)
        )
        return
    if outcome.status is RememberStatus.REMEMBERED:
        join_url = _join_url(program)
        await reply.here(
            "friend_card",
            views.friend_card(program, outcome.referrer_name, join_url),
            buttons=[[{"label": "join", "url": join_url}]] if join_url else None,
            program_id=program.id,
        )
        return
    # An invitation that already stands keeps its Join button: the friend may come back
    # to the link because they never tapped it.
    join_url = _join_url(program) if outcome.status is RememberStatus.ALREADY_REMEMBERED else None
    await reply.here(
        "link_problem",
        views.link_problem(str(outcome.status), program, outcome.referrer_name),
        buttons=[[{"label": "join", "url": join_url}]] if join_url else None,
        program_id=program.id,
    )


def _join_url(program: Program) -> str | None:
    """Where a friend joins: the public chat by its username, else the program's link."""
    if program.username:
        return f"https://t.me/{program.username}"
    return program.join_url


@router.message(CommandStart(), F.chat.type == "private")
async def start(
    message: Message,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
    clock: Clock,
) -> None:
    """Say hello and explain the commands; starting a newsletter bot subscribes."""
    if message.from_user is None:  # a channel post: nobody to answer
        return None
    await rewards.reader_returned(PLATFORM, message.from_user.id)
    programs = await referrals.started(PLATFORM, person_of(message.from_user), clock.now())
    await reply.here("welcome", views.welcome(first_name(message.from_user), programs))
