"""The command menu: set on start, in English by default and in Indonesian for people
whose Telegram is set to Indonesian, from the ``commands`` templates."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BotCommandScopeDefault

from bots.telegram.app import READER_COMMANDS
from tests.bots.conftest import Harness


async def test_the_command_menu_is_set_in_english_and_indonesian(harness: Harness) -> None:
    renderer = harness.app.renderer
    session = AiohttpSession(api=TelegramAPIServer.from_base(harness.server.url))
    bot = Bot(harness.bot.token, session=session)
    try:
        english = await bot.get_my_commands(scope=BotCommandScopeDefault())
        indonesian = await bot.get_my_commands(scope=BotCommandScopeDefault(), language_code="id")
    finally:
        await session.close()
    assert [c.command for c in english] == list(READER_COMMANDS)
    assert [c.command for c in indonesian] == list(READER_COMMANDS)
    assert [c.description for c in english] == [
        renderer.command("en", name) for name in READER_COMMANDS
    ]
    assert english[0].description == "Your personal invite link"
    assert [c.description for c in indonesian] == [
        renderer.command("id", name) for name in READER_COMMANDS
    ]
    assert indonesian[0].description == "Link undangan pribadimu"
