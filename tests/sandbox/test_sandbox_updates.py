"""getUpdates, allowed_updates, retention, long polling and webhooks, through aiogram."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramConflictError
from aiohttp import web

from sandbox import FakeClock, SandboxServer, World
from tests.sandbox.conftest import BotFactory, Cast, drain


async def test_updates_are_redelivered_until_an_offset_confirms_them(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    world.send_text(cast.alice, cast.sim, "/start")
    world.send_text(cast.alice, cast.sim, "hello")

    first = await bot.get_updates()
    again = await bot.get_updates()
    assert [u.update_id for u in first] == [u.update_id for u in again]
    # the bot being added (my_chat_member + new_chat_members), then two private messages
    assert [u.event_type for u in first] == ["my_chat_member", "message", "message", "message"]

    rest = await bot.get_updates(offset=first[0].update_id + 1)
    assert [u.update_id for u in rest] == [u.update_id for u in first[1:]]
    assert await bot.get_updates(offset=first[-1].update_id + 1) == []
    assert world.pending_updates(cast.sim) == []


async def test_update_ids_increase_and_limit_is_clamped(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    for n in range(4):
        world.send_text(cast.alice, cast.sim, f"message {n}")
    two = await bot.get_updates(limit=2)
    assert len(two) == 2
    assert two[1].update_id == two[0].update_id + 1
    one = await bot.get_updates(limit=1)
    assert [u.update_id for u in one] == [two[0].update_id]
    newest = await bot.get_updates(offset=-1)
    assert len(newest) == 1 and newest[0].message is not None
    assert newest[0].message.text == "message 3"
    assert len(world.pending_updates(cast.sim)) == 1


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    await bot.get_updates(offset=-1)
    pending = await bot.get_updates()
    offset = pending[-1].update_id + 1 if pending else None
    poll = asyncio.create_task(bot.get_updates(offset=offset, timeout=40, request_timeout=60))
    await world.wait_for(lambda: world.is_polling(cast.sim), what="the long poll")
    world.send_text(cast.alice, cast.sim, "wake up")
    updates = await asyncio.wait_for(poll, 5)
    assert [u.message.text for u in updates if u.message] == ["wake up"]


async def test_a_second_poller_terminates_the_first_with_409(
    world: World, cast: Cast, client: BotFactory
) -> None:
    first, second = client(cast.sim), client(cast.sim)
    await first.get_updates(offset=-1)
    latest = (await first.get_updates())[-1].update_id + 1
    waiting = asyncio.create_task(first.get_updates(offset=latest, timeout=40, request_timeout=60))
    await world.wait_for(lambda: world.is_polling(cast.sim), what="the long poll")
    assert await second.get_updates(offset=latest) == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await asyncio.wait_for(waiting, 5)


async def test_default_allowed_updates_exclude_chat_member_and_the_setting_persists(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    offset = await drain(bot)  # allowed_updates never set: the default
    world.add_member(cast.chat, cast.alice)
    kinds = [u.event_type for u in await bot.get_updates(offset=offset)]
    assert "chat_member" not in kinds
    assert "message" in kinds  # the new_chat_members service message

    latest = (await bot.get_updates())[-1].update_id + 1
    await bot.get_updates(offset=latest, allowed_updates=["message", "chat_member"])
    world.add_member(cast.chat, cast.bob)
    updates = await bot.get_updates(offset=latest)  # not specified: previous setting holds
    kinds = [u.event_type for u in updates]
    assert kinds == ["chat_member", "message"]
    change = updates[0].chat_member
    assert change is not None
    assert change.new_chat_member.user.id == cast.bob.id
    assert change.old_chat_member.status == "left"
    assert change.new_chat_member.status == "member"

    latest = updates[-1].update_id + 1
    await bot.get_updates(offset=latest, allowed_updates=[])  # empty list: back to default
    world.leave(cast.bob, cast.chat)
    assert [u.event_type for u in await bot.get_updates(offset=latest)] == ["message"]


async def test_allowed_updates_filter_when_updates_are_created_not_when_read(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    offset = await drain(bot)
    world.add_member(cast.chat, cast.alice)  # created under the default: no chat_member
    updates = await bot.get_updates(offset=offset, allowed_updates=["chat_member"])
    assert [u.event_type for u in updates] == ["message"]
    world.add_member(cast.chat, cast.bob)  # created under the new setting
    updates = await bot.get_updates(offset=updates[-1].update_id + 1)
    assert [u.event_type for u in updates] == ["chat_member"]


async def test_updates_older_than_a_day_are_dropped(
    world: World, cast: Cast, client: BotFactory, clock: FakeClock
) -> None:
    bot = client(cast.sim)
    world.send_text(cast.alice, cast.sim, "old")
    clock.advance(24 * 3600 + 1)
    world.send_text(cast.alice, cast.sim, "new")
    updates = await bot.get_updates()
    assert [u.message.text for u in updates if u.message] == ["new"]


async def test_webhook_makes_get_updates_conflict_until_deleted(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    world.send_text(cast.alice, cast.sim, "queued")
    with pytest.raises(TelegramBadRequest, match="HTTPS URL must be provided"):
        await bot.set_webhook("http://bots.example.org/hook")
    with pytest.raises(TelegramBadRequest, match="ports 80, 88, 443 or 8443"):
        await bot.set_webhook("https://bots.example.org:9000/hook")

    hook = SandboxServer(World())  # a closed loopback port: pushes fail and are retried
    await hook.start()
    dead_url = hook.url + "/hook"
    await hook.stop()
    assert await bot.set_webhook(dead_url, allowed_updates=["message"])
    with pytest.raises(TelegramConflictError, match="can't use getUpdates method while webhook"):
        await bot.get_updates()
    await world.wait_for(lambda: cast.sim.webhook and cast.sim.webhook.last_error_date)
    info = await bot.get_webhook_info()
    assert info.url == dead_url
    assert info.pending_update_count == 3  # joined the chat (2 updates) + one message
    assert info.allowed_updates == ["message"]
    assert info.last_error_message

    assert await bot.delete_webhook(drop_pending_updates=True)
    assert (await bot.get_webhook_info()).pending_update_count == 0
    assert await bot.get_updates() == []


async def test_webhook_receives_updates_with_the_secret_and_runs_the_reply_method(
    world: World, cast: Cast, client: BotFactory
) -> None:
    received: list[dict[str, Any]] = []
    secrets: list[str | None] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        received.append(body)
        secrets.append(request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        message = body.get("message")
        if message and message.get("text") == "/ping":
            reply = {"method": "sendMessage", "chat_id": message["chat"]["id"], "text": "pong"}
            return web.json_response(reply)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        bot = client(cast.sim)
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cr3t_token")
        world.send_text(cast.alice, cast.sim, "/ping")
        reply = await world.wait_for_message(cast.sim, cast.alice, since=0)
        assert reply.text == "pong"
        await world.wait_until_delivered(cast.sim)
        assert set(secrets) == {"s3cr3t_token"}
        kinds = [next(k for k in u if k != "update_id") for u in received]
        assert kinds == ["my_chat_member", "message", "message"]
        assert json.loads(json.dumps(received))[-1]["message"]["text"] == "/ping"
    finally:
        await runner.cleanup()


async def test_scripts_can_wait_for_a_long_poll_and_for_a_fault_to_be_hit(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    await drain(bot)
    poll = asyncio.ensure_future(bot.get_updates(timeout=30))
    try:
        await world.wait_for(lambda: world.is_polling(cast.sim), timeout=2, what="the poll")
        slow = world.inject_fault("getMe", mode="delay", delay=0.2)
        me = asyncio.ensure_future(bot.get_me())
        await world.wait_for(lambda: slow.remaining == 0, timeout=2, what="the fault")
        assert not me.done()  # hit, and still being delayed
        assert (await me).id == cast.sim.id
        world.send_text(cast.alice, cast.sim, "hello")
        assert [u.message.text for u in await poll if u.message] == ["hello"]
    finally:
        poll.cancel()
