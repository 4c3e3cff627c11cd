"""Helpers for the Discord end-to-end tests: people in the sandbox server, slash commands
with their whole answer, and rows read straight from the database."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, select

from sandbox.discord import DiscordUser, InteractionRecord, Message
from storage.schema import programs

if TYPE_CHECKING:
    from tests.bots_discord.conftest import Discord

INVITE_URL = re.compile(r"https?://\S+/([A-Za-z0-9]+)")
NO_MENTIONS = {"parse": []}  # discord.AllowedMentions.none() as sent


def member(dc: Discord, username: str, name: str | None = None, **options: Any) -> DiscordUser:
    """A person who is already a member of the server (before the bot heard of them)."""
    user = dc.world.add_user(username, name, **options)
    dc.world.add_member(dc.guild, user)
    return user


async def ask(
    dc: Discord, user: DiscordUser, name: str, options: dict[str, Any] | None = None
) -> tuple[InteractionRecord, Message]:
    """``/name`` by ``user``: the interaction and its (last) answer with text."""
    record = dc.world.invoke_slash(user, dc.channel, name, options)
    await dc.world.wait_for_response(record)
    assert not record.refused, f"/{name} was refused: {record.refused}"

    def answered() -> Message | None:
        found = [m for m in dc.world.interaction_responses(record) if m.content]
        return found[-1] if found else None

    message = await dc.world.wait_for(answered, what=f"the answer to /{name}")
    assert message is not None
    return record, message


def code_in(text: str) -> str:
    found = INVITE_URL.search(text)
    assert found, text
    return found.group(1)


async def invite_code(dc: Discord, user: DiscordUser, label: str | None = None) -> str:
    text = await dc.slash(user, "invite", {"label": label} if label else None)
    return code_in(text)


async def rows(dc: Discord, table: Table, **where: Any) -> list[dict[str, Any]]:
    """Every row of ``table`` (matching ``where``), in insertion order where it has an id."""
    query = select(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    if "id" in table.c:
        query = query.order_by(table.c.id)
    async with dc.app.db.read() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def program_row(dc: Discord) -> dict[str, Any]:
    [row] = await rows(dc, programs, platform="discord", destination_id=dc.guild.id)
    return row


async def wait_rows(
    dc: Discord,
    table: Table,
    count: int,
    timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait
    **where: Any,
) -> list[dict[str, Any]]:
    """Wait (real time, bounded) until ``table`` holds ``count`` matching rows."""
    async with asyncio.timeout(timeout):
        while len(found := await rows(dc, table, **where)) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    return found


def sends(dc: Discord) -> list[dict[str, Any]]:
    """The bodies of every message the bot sent or answered with (posts, DMs, interaction
    callbacks and follow-ups), as Discord received them."""
    routes = {
        "POST /channels/{channel_id}/messages",
        "POST /interactions/{interaction_id}/{interaction_token}/callback",
        "POST /webhooks/{webhook_id}/{webhook_token}",
        "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
    }
    bodies = []
    for call in dc.world.calls():
        if call.route not in routes or not isinstance(call.body, dict):
            continue
        body = call.body.get("data", call.body) if "callback" in call.route else call.body
        if isinstance(body, dict) and body.get("content"):
            bodies.append(body)
    return bodies
