"""The HTTP layer, injected faults, restarts, migration, and aiogram's dispatcher end to end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import JOIN_TRANSITION, ChatMemberUpdatedFilter, CommandObject, CommandStart
from aiogram.types import ChatMemberUpdated, Message

from sandbox import DatetimeClock, SandboxServer, World
from tests.sandbox.conftest import BotFactory, Cast, LocalSession, drain


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_raw_http_forms_methods_and_errors(
    world: World, cast: Cast, server: SandboxServer, http: aiohttp.ClientSession
) -> None:
    world.send_text(cast.alice, cast.sim, "/start")
    base = f"{server.url}/bot{cast.sim.token}"
    async with http.post(f"{base}/SENDMESSAGE", json={"chat_id": cast.alice.id, "text": "a"}) as r:
        assert r.status == 200 and (await r.json())["result"]["text"] == "a"
    form = {"chat_id": str(cast.alice.id), "text": "b", "reply_markup": '{"inline_keyboard":[]}'}
    async with http.post(f"{base}/sendMessage", data=form) as r:
        assert r.status == 200 and (await r.json())["result"]["text"] == "b"
    async with http.get(f"{base}/getMe") as r:
        assert (await r.json())["result"]["username"] == "invite_loop_bot"
    async with http.get(f"{base}/getUpdates", params={"limit": "0"}) as r:
        assert len((await r.json())["result"]) == 1  # limit is clamped to 1..100
    async with http.post(f"{base}/noSuchMethod") as r:
        assert r.status == 404
        assert await r.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    async with http.post(f"{server.url}/bot123:wrong/getMe") as r:
        assert r.status == 401
        assert (await r.json())["description"] == "Unauthorized"
    async with http.post(f"{base}/sendMessage", json={"chat_id": cast.alice.id}) as r:
        body = await r.json()
        assert r.status == 400 and body["description"] == "Bad Request: message text is empty"
    assert [c.method for c in world.calls_of(bot=cast.sim)][:2] == ["sendMessage", "sendMessage"]


async def test_unknown_token_is_unauthorized(server: SandboxServer, world: World) -> None:
    session = LocalSession(api=TelegramAPIServer.from_base(server.url))
    session_bot = Bot("42:not-registered-token-000000000000000", session=session)
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await session_bot.get_me()
    finally:
        await session_bot.session.close()


async def test_injected_faults(world: World, cast: Cast, client: BotFactory) -> None:
    bot = client(cast.sim)
    world.send_text(cast.alice, cast.sim, "/start")
    world.send_text(cast.bob, cast.sim, "/start")

    world.inject_fault("sendMessage", times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(cast.alice.id, "lost")
    assert world.sent_messages(cast.sim) == []

    world.inject_fault("sendMessage", retry_after=7, chat=cast.alice)
    await bot.send_message(cast.bob.id, "other chats are unaffected")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(cast.alice.id, "throttled")
    assert caught.value.retry_after == 7

    world.inject_fault("sendMessage", mode="after")
    with pytest.raises(TelegramServerError):
        await bot.send_message(cast.alice.id, "delivered, but the answer was lost")
    assert world.last_sent(cast.sim, cast.alice).text == "delivered, but the answer was lost"

    world.inject_fault("sendMessage", mode="disconnect")
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(cast.alice.id, "connection dropped")
    await bot.send_message(cast.alice.id, "fine again")

    failed = [c for c in world.calls_of("sendMessage") if not c.ok]
    assert [c.error_code for c in failed] == [500, 500, 429, 500, 500]


async def test_restart_keeps_the_world_and_the_url(
    world: World, cast: Cast, server: SandboxServer, client: BotFactory
) -> None:
    bot = client(cast.sim)
    offset = await drain(bot)
    url = server.url
    await server.stop()
    world.send_text(cast.alice, cast.sim, "sent while the server was down")
    with pytest.raises(TelegramNetworkError):
        await bot.get_me()
    await server.start()
    assert server.url == url
    updates = await bot.get_updates(offset=offset)
    assert [u.message.text for u in updates if u.message] == ["sent while the server was down"]


async def test_group_migration(world: World, cast: Cast, client: BotFactory) -> None:
    group = world.add_chat("group", "Early readers", owner=cast.owner)
    world.add_member(group, cast.alice)
    world.add_bot_to_chat(group, cast.sim, by=cast.owner)
    bot = client(cast.sim)
    link = await bot.create_chat_invite_link(group.id, name="ref:alice")
    offset = await drain(bot)

    supergroup = world.migrate_to_supergroup(group)
    assert supergroup.type == "supergroup" and str(supergroup.id).startswith("-100")
    messages = [u.message for u in await bot.get_updates(offset=offset) if u.message]
    assert [(m.chat.id, m.migrate_to_chat_id, m.migrate_from_chat_id) for m in messages] == [
        (group.id, supergroup.id, None),
        (supergroup.id, None, group.id),
    ]
    with pytest.raises(TelegramMigrateToChat) as caught:
        await bot.send_message(group.id, "hello?")
    assert caught.value.migrate_to_chat_id == supergroup.id
    await bot.send_message(supergroup.id, "hello!")
    assert (await bot.get_chat_member(supergroup.id, cast.alice.id)).status == "member"
    assert world.open_link(cast.bob, link.invite_link).chat is supergroup


async def test_datetime_clock_adapter() -> None:
    from datetime import UTC, datetime, timedelta

    class Source:
        def __init__(self) -> None:
            self.value = datetime(2026, 3, 1, tzinfo=UTC)

        def now(self) -> datetime:
            return self.value

    source = Source()
    world = World(clock=DatetimeClock(source))
    assert world.now() == int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    source.value += timedelta(minutes=6)
    assert world.now() == int(datetime(2026, 3, 1, 0, 6, tzinfo=UTC).timestamp())


async def test_aiogram_dispatcher_polls_the_sandbox(
    world: World, cast: Cast, client: BotFactory
) -> None:
    """A real Dispatcher: /start with a payload, a join via the bot's link, a bad HTML reply."""
    bot = client(cast.sim)
    router = Router()
    joined: list[tuple[int, str | None]] = []

    @router.message(CommandStart(deep_link=True))
    async def start(message: Message, command: CommandObject) -> None:
        assert message.chat.id == cast.bob.id
        await message.answer(f"Referred by <b>{command.args}</b>", parse_mode="HTML")

    @router.message(F.text == "/broken")
    async def broken(message: Message) -> None:
        try:
            await message.answer("<b>unclosed", parse_mode="HTML")
        except TelegramBadRequest as exc:
            await message.answer(f"failed: {exc.message}")

    @router.chat_member(ChatMemberUpdatedFilter(JOIN_TRANSITION))
    async def on_join(event: ChatMemberUpdated) -> None:
        link = event.invite_link.invite_link if event.invite_link else None
        joined.append((event.new_chat_member.user.id, link))

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, handle_as_tasks=False, polling_timeout=30
        )
    )
    try:
        world.open_link(cast.bob, "https://t.me/invite_loop_bot?start=alice")
        reply = await world.wait_for_message(cast.sim, cast.bob)
        assert reply.text == "Referred by alice"

        await world.wait_for(lambda: world.is_polling(cast.sim), what="polling")
        invite = await bot.create_chat_invite_link(cast.chat.id, name="ref:alice")
        world.open_link(cast.bob, invite.invite_link)
        await world.wait_for(lambda: joined, what="the join handler")
        assert joined == [(cast.bob.id, invite.invite_link)]

        world.send_text(cast.bob, cast.sim, "/broken")
        failure = await world.wait_for_message(cast.sim, cast.bob, contains="failed")
        assert "can't find end tag" in (failure.text or "").lower()
        await world.wait_until_delivered(cast.sim)
    finally:
        await dispatcher.stop_polling()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(polling, 5)
