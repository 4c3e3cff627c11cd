"""The Telegram routers, one per feature, in the order they must be tried."""

from __future__ import annotations

from aiogram import Router

from bots.telegram.handlers import (
    board,
    errors,
    fallback,
    help,
    invite,
    language,
    leaderboard,
    membership,
    milestones,
    privacy,
    program,
    reports,
    review,
    rewards,
    season,
    settings,
    setup,
    start,
    stats,
)


def get_routers() -> list[Router]:
    """Membership events first (the most frequent updates); the engine refusals' error
    handler anywhere (an error propagates through every router); the deep-link /start
    before the plain one (both in ``start``); the catch-alls last. ``membership`` and
    ``setup`` both handle ``my_chat_member``, for private chats and for groups: disjoint.

    aiogram attaches a router to one dispatcher only; a second bot built in the same
    process (the tests, the demo) takes the routers over from the previous one.
    """
    routers = [
        # Membership first: joins and join requests are most of the updates, and every
        # router before theirs is one more the dispatcher walks through for each of them.
        membership.router,
        errors.router,
        setup.router,
        start.router,
        invite.router,
        stats.router,
        leaderboard.router,
        language.router,
        privacy.router,
        help.router,
        settings.router,
        review.router,
        program.router,
        board.router,
        season.router,
        reports.router,
        rewards.router,
        # after every command: its text and file handlers take what a guided flow waits for
        milestones.router,
        fallback.router,
    ]
    for router in routers:
        previous = router.parent_router
        if previous is not None:
            previous.sub_routers.remove(router)
            router._parent_router = None
    return routers
