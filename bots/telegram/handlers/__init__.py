"""The Telegram routers, in the order they must be tried."""

from __future__ import annotations

from aiogram import Router

from bots.telegram.handlers import fallback, manage, membership, readers, setup


def get_routers() -> list[Router]:
    """Deep-link /start before the plain one (both in ``readers``); catch-alls last."""
    return [setup.router, membership.router, readers.router, manage.router, fallback.router]
