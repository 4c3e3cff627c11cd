"""Files through discord.py: a DM with an attachment arrives as multipart (``payload_json``
beside ``files[0]``) and downloads byte for byte; an attachment over the bot's limit is
refused as Discord refuses it (413, code 40005) and nothing is posted."""

from __future__ import annotations

import io

import aiohttp
import discord
import pytest

from sandbox.discord import DiscordWorld
from tests.sandbox_discord.conftest import Cast, StartBot

CSV = b"reader_id,display_name\n1,'=HYPERLINK(1)\n"


async def test_a_dm_with_a_file_arrives_and_downloads(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    user = await bot.fetch_user(cast.alice.id)
    await user.send(
        "your export",
        file=discord.File(io.BytesIO(CSV), filename="readers.csv"),
        allowed_mentions=discord.AllowedMentions.none(),
    )
    message = await world.wait_for_dm(cast.alice, since=0)
    assert message.content == "your export"
    [attachment] = message.attachments
    assert (attachment["filename"], attachment["size"]) == ("readers.csv", len(CSV))
    async with aiohttp.ClientSession() as http, http.get(attachment["url"]) as response:
        assert await response.read() == CSV
    [call] = world.calls("POST /channels/{channel_id}/messages")
    assert call.status == 200


async def test_an_attachment_over_the_limit_is_refused_with_40005(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    world.attachment_size_limit = 1000
    bot = await start_bot()
    user = await bot.fetch_user(cast.alice.id)
    with pytest.raises(discord.HTTPException) as refused:
        await user.send(file=discord.File(io.BytesIO(b"x" * 1001), filename="big.csv"))
    assert (refused.value.status, refused.value.code) == (413, 40005)
    assert world.dms(cast.alice, cast.app) == []
    await user.send(file=discord.File(io.BytesIO(b"x" * 1000), filename="fits.csv"))
    [message] = world.dms(cast.alice, cast.app)
    assert [a["size"] for a in message.attachments] == [1000]
