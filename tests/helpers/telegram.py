"""Helpers for the end-to-end Telegram tests: set a program up the way a manager does,
read rows, find buttons and links in what the bot sent, forge a button press."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select

from sandbox import SimChat, SimMessage, SimUser, World
from storage.schema import links, programs
from tests.bots.conftest import Harness


async def table_rows(harness: Harness, table: Table, **where: Any) -> list[dict[str, Any]]:
    """Rows of ``table`` whose columns equal ``where``, in primary-key order."""
    query = select(table).order_by(*table.primary_key.columns)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    async with harness.app.db.read() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings()]


async def program_row(harness: Harness, destination_id: int) -> dict[str, Any] | None:
    """The program of a chat (or, in the bot mode, of the bot), or None."""
    found = await table_rows(harness, programs, destination_id=destination_id)
    return found[0] if found else None


async def live_links(harness: Harness, referrer: SimUser) -> list[dict[str, Any]]:
    rows = await table_rows(harness, links, referrer_id=referrer.id)
    return [row for row in rows if row["revoked_at"] is None]


async def set_up_chat(
    harness: Harness,
    manager: SimUser,
    chat_type: str = "channel",
    title: str = "Daily Brief",
    username: str | None = None,
    join_mode: str | None = None,
) -> tuple[SimChat, dict[str, Any]]:
    """A manager starts the bot, adds it as an admin and taps the setup button it DMs;
    with ``join_mode``, the manager then picks that join mode (through the bot is the
    default everywhere)."""
    world = harness.world
    chat = world.add_chat(chat_type, title, username, owner=manager)
    if not world.private_dialog(harness.bot, manager).started:
        await harness.say(manager, "/start")
    world.add_bot_to_chat(chat, harness.bot, by=manager)
    await harness.settle()
    offer = harness.last_to(manager)
    world.press_button(manager, offer, text=f"Set up {title}")
    await harness.settle()
    assert "is ready" in harness.last_to(manager).text
    row = await program_row(harness, chat.id)
    assert row is not None
    if join_mode is not None and row["join_mode"] != join_mode:
        await harness.app.referrals.update_settings(row["id"], None, join_mode=join_mode)
        if harness.app.telegram is not None:
            harness.app.telegram.programs.forget(chat.id)
        row = await program_row(harness, chat.id)
        assert row is not None
    return chat, row


def url_in(message: SimMessage, prefix: str = "https://t.me/") -> str:
    """The first line of a message that is a link (a personal invite link)."""
    return next(line for line in (message.text or "").splitlines() if line.startswith(prefix))


def button_texts(message: SimMessage) -> list[str]:
    return [button["text"] for button in message.inline_buttons]


def forge_callback(world: World, user: SimUser, message: SimMessage, data: str) -> None:
    """A press carrying made-up ``data`` on ``message``, whatever buttons the message
    really has: what a modified client can try. The bot must not count on Telegram to
    check callback data against the keyboard it sent."""
    world._callback(world.user(user), message, {"callback_data": data})
