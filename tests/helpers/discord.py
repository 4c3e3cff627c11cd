"""Steps of Discord stories through the sandbox and the real bot: readers' invites, friends
joining through them, the hold passing, and the messages (with their buttons) the bot
answers with."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

from sqlalchemy import Table, select

from sandbox.discord import DiscordUser, InteractionRecord
from sandbox.discord.model import Message
from tests.bots_discord.conftest import Discord

ANSWERED = 5.0  # seconds: a bound on a wait for the bot, never a pause


async def answered(dc: Discord, record: InteractionRecord) -> Message:
    """The message the bot answered ``record`` with, once it has its text."""
    await dc.world.wait_for_response(record)
    async with asyncio.timeout(ANSWERED):
        while True:
            shown = dc.world.interaction_responses(record)
            if shown and shown[-1].content:
                return shown[-1]
            await asyncio.sleep(0.01)


async def slash(
    dc: Discord, user: DiscordUser, name: str, options: dict[str, Any] | None = None
) -> Message:
    """``/name`` by ``user``; the message the bot answered with (text and buttons)."""
    return await answered(dc, dc.world.invoke_slash(user, dc.channel, name, options))


async def press(
    dc: Discord, user: DiscordUser, message: Message, custom_id: str
) -> InteractionRecord:
    """``user`` presses a button of ``message``; returns once the bot answered the press."""
    record = dc.world.press_button(user, message, custom_id)
    await dc.world.wait_for_response(record)
    return record


def custom_ids(message: Message) -> list[str]:
    return [
        c["custom_id"]
        for row in message.components
        for c in row.get("components", [])
        if "custom_id" in c
    ]


def labels(message: Message) -> dict[str, str]:
    """custom id → label of every button of ``message``."""
    return {
        c["custom_id"]: c.get("label", "")
        for row in message.components
        for c in row.get("components", [])
        if "custom_id" in c
    }


async def invite_code(dc: Discord, reader: DiscordUser) -> str:
    message = await slash(dc, reader, "invite")
    found = re.search(r"https?://\S+/([A-Za-z0-9]+)", message.content)
    assert found, message.content
    return found.group(1)


async def member(dc: Discord, username: str, name: str | None = None) -> DiscordUser:
    user = dc.world.add_user(username, name)
    dc.world.add_member(dc.guild, user)
    return user


async def bring_friends(dc: Discord, reader: DiscordUser, count: int) -> list[DiscordUser]:
    """``count`` friends join through ``reader``'s invite, one settle window each (joins in
    one window through two invites would be ambiguous)."""
    code = await invite_code(dc, reader)
    friends = []
    for _ in range(count):
        friend = dc.world.add_user(f"friend{len(dc.world.users)}")
        settled = dc.bot.tracker.settled_joins
        dc.world.join_via_invite(friend, code)
        await dc.joins_settled(settled + 1)
        friends.append(friend)
    return friends


async def hold_passes(dc: Discord) -> dict[str, Any]:
    """The clock passes every hold; the scheduled jobs run once (confirmations, rewards,
    boards), and the outbox sends what they queued."""
    dc.clock.advance(timedelta(days=30))
    report = await dc.app.tick()
    await dc.app.outbox.wait_idle(ANSWERED)
    return report


async def rows(dc: Discord, table: Table, **where: Any) -> list[dict[str, Any]]:
    query = select(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    async with dc.app.db.read() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def rewards_on(dc: Discord) -> None:
    """The manager reads Discord's policy note and turns rewards on."""
    text = await dc.slash(
        dc.owner, "settings", {"key": "rewards", "value": "on", "acknowledge": True}
    )
    assert "on" in text.lower(), text
