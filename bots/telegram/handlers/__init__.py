"""The Telegram routers, in the order they must be tried."""

from __future__ import annotations

from aiogram import Router

from bots.telegram.handlers import fallback, manage, membership, readers, setup


def get_routers() -> list[Router]:
    """Deep-link /start before the plain one (both in ``readers``); catch-alls last.

    aiogram attaches a router to one dispatcher only; a second bot built in the same
    process (the tests, the demo) takes the routers over from the previous one.
    """
    routers = [setup.router, membership.router, readers.router, manage.router, fallback.router]
    for router in routers:
        previous = router.parent_router
        if previous is not None:
            previous.sub_routers.remove(router)
            router._parent_router = None
    return routers
