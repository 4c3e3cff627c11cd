"""Slash commands through the real app_commands tree: sync, invoke, respond, defer, follow
up, the 3-second deadline, the 15-minute token, attachments and modals (checked as a client
checks them), and buttons on ephemeral answers and DMs reaching dynamic items."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import discord
import pytest
from discord import app_commands

from sandbox.clock import FakeClock
from sandbox.discord import Attachment, DiscordSandboxServer, DiscordWorld
from sandbox.errors import ScriptError
from tests.sandbox_discord.conftest import Cast, RecordingBot, StartBot


class Feedback(discord.ui.Modal, title="Feedback"):
    text: discord.ui.TextInput[Feedback] = discord.ui.TextInput(
        label="What do you think?", custom_id="feedback_text"
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"thanks: {self.text.value}", ephemeral=True)


class Pager(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=r"pg:(?P<n>\d+)"):
    def __init__(self, page: int, *, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(label=f"page {page}", custom_id=f"pg:{page}", disabled=disabled)
        )
        self.page = page

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Button[discord.ui.View],
        match: re.Match[str],
        /,
    ) -> Pager:
        return cls(int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(Pager(self.page + 1))
        await interaction.response.edit_message(content=f"page {self.page}", view=view)


def pager_view() -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(Pager(1))
    view.add_item(Pager(0, disabled=True))
    return view


class CommandBot(RecordingBot):
    """A bot with the slash commands the tests invoke."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.kept: list[discord.Interaction] = []
        self.errors: list[BaseException] = []
        tree = self.tree

        @tree.command(name="invite", description="Get your personal invite link")
        @app_commands.describe(source="Where you will share it")
        async def invite(interaction: discord.Interaction, source: str | None = None) -> None:
            await interaction.response.send_message(f"link for {source}", ephemeral=True)

        @tree.command(name="stats", description="Your referrals")
        async def stats(interaction: discord.Interaction) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.followup.send("3 referrals", ephemeral=True)
            await interaction.followup.send("and one pending", ephemeral=True)
            await interaction.edit_original_response(content="3 referrals (edited)")

        @tree.command(name="late", description="Answers after being held")
        async def late(interaction: discord.Interaction) -> None:
            await self.gate.wait()
            await interaction.response.send_message("too late?")

        @tree.command(name="keep", description="Answers, then keeps the interaction")
        async def keep(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("ok")
            self.kept.append(interaction)

        @tree.command(name="coupons", description="Upload coupon codes")
        async def coupons(interaction: discord.Interaction, file: discord.Attachment) -> None:
            codes = (await file.read()).decode().split()
            await interaction.response.send_message(f"{len(codes)} codes from {file.filename}")

        @tree.command(name="pages", description="An ephemeral answer with buttons")
        async def pages(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("page 0", ephemeral=True, view=pager_view())

        @tree.command(name="feedback", description="Tell us")
        async def feedback(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(Feedback())

        @tree.error
        async def on_error(
            interaction: discord.Interaction, error: app_commands.AppCommandError
        ) -> None:
            self.errors.append(error)
            self._poke()

    async def setup_hook(self) -> None:
        await self.tree.sync()


@pytest.fixture
async def bot(start_bot: StartBot) -> CommandBot:
    started = await start_bot(CommandBot())
    assert isinstance(started, CommandBot)
    return started


async def test_sync_registers_commands(world: DiscordWorld, cast: Cast, bot: CommandBot) -> None:
    names = sorted(c.name for c in cast.app.commands.values())
    assert names == ["coupons", "feedback", "invite", "keep", "late", "pages", "stats"]
    fetched = await bot.tree.fetch_commands()
    assert sorted(c.name for c in fetched) == names
    bot.tree.copy_global_to(guild=discord.Object(cast.guild.id))
    synced = await bot.tree.sync(guild=discord.Object(cast.guild.id))
    assert all(c.guild_id == cast.guild.id for c in synced) and len(synced) == 7


async def test_ephemeral_response_to_a_slash_command(
    world: DiscordWorld, cast: Cast, bot: CommandBot
) -> None:
    record = world.invoke_slash(cast.alice, cast.channel, "invite", {"source": "whatsapp"})
    await world.wait_for_response(record)
    assert [r.type for r in record.responses] == [4] and record.responses[0].ephemeral
    [message] = world.interaction_responses(record)
    assert message.content == "link for whatsapp" and message.ephemeral


async def test_defer_then_followups_and_edit(
    world: DiscordWorld, cast: Cast, bot: CommandBot
) -> None:
    record = world.invoke_slash(cast.alice, cast.channel, "stats")
    first, second = await world.wait_for_messages_of(record, 2)
    await world.wait_for(lambda: first.edited_timestamp and "edited" in first.content)
    assert [r.type for r in record.responses] == [5]
    assert first.content == "3 referrals (edited)" and first.ephemeral
    assert second.content == "and one pending" and second.ephemeral


async def test_response_after_three_seconds_is_unknown_interaction(
    world: DiscordWorld, cast: Cast, clock: FakeClock, bot: CommandBot
) -> None:
    record = world.invoke_slash(cast.alice, cast.channel, "late")
    clock.advance(3.1)
    bot.gate.set()
    await world.wait_for_response(record)
    assert record.refused == [10062] and record.responses == []
    await bot.wait_until(lambda: bot.errors)
    original = bot.errors[0].__cause__
    assert isinstance(original, discord.NotFound) and original.code == 10062


async def test_followup_token_expires_after_fifteen_minutes(
    world: DiscordWorld, cast: Cast, clock: FakeClock, bot: CommandBot
) -> None:
    world.invoke_slash(cast.alice, cast.channel, "keep")
    await bot.wait_until(lambda: bot.kept)
    await bot.kept[0].followup.send("still here")
    clock.advance(15 * 60 + 1)
    with pytest.raises(discord.HTTPException) as refused:
        await bot.kept[0].followup.send("gone")
    assert refused.value.code == 50027


async def test_attachment_option_is_resolved_and_downloadable(
    world: DiscordWorld, cast: Cast, bot: CommandBot
) -> None:
    upload = Attachment("codes.csv", content=b"A1\nB2\nC3\n", size=9)
    record = world.invoke_slash(cast.owner, cast.channel, "coupons", {"file": upload})
    [message] = await world.wait_for_messages_of(record, 1)
    assert message.content == "3 codes from codes.csv" and not message.ephemeral


async def test_modal_submit_reaches_the_modal(
    world: DiscordWorld, cast: Cast, bot: CommandBot
) -> None:
    shown = world.invoke_slash(cast.alice, cast.channel, "feedback")
    await world.wait_for_response(shown)
    assert shown.responses[0].type == 9 and shown.modal is not None
    submitted = world.submit_modal(cast.alice, shown, {"feedback_text": "love it"})
    [message] = await world.wait_for_messages_of(submitted, 1)
    assert message.content == "thanks: love it" and message.ephemeral


async def test_second_initial_response_is_refused(
    world: DiscordWorld, cast: Cast, server: DiscordSandboxServer, bot: CommandBot
) -> None:
    record = world.invoke_slash(cast.alice, cast.channel, "keep")
    await bot.wait_until(lambda: bot.kept)
    url = f"{server.endpoints.rest_base}/interactions/{record.id}/{record.token}/callback"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"type": 4, "data": {"content": "again"}}) as response:
            assert response.status == 400
            assert (await response.json())["code"] == 40060
        async with http.post(url.replace(record.token, "forged"), json={"type": 5}) as response:
            assert response.status == 404 and (await response.json())["code"] == 10062
    assert record.refused == [40060]


class Board(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Refresh", custom_id="board:refresh")
    async def refresh(
        self, interaction: discord.Interaction, button: discord.ui.Button[Board]
    ) -> None:
        await interaction.response.edit_message(content="board (refreshed)")

    @discord.ui.button(label="Quiet", custom_id="board:quiet")
    async def quiet(
        self, interaction: discord.Interaction, button: discord.ui.Button[Board]
    ) -> None:
        await interaction.response.defer()


async def test_buttons_update_or_defer_their_message(
    world: DiscordWorld, cast: Cast, bot: CommandBot
) -> None:
    bot.add_view(Board())
    channel = bot.get_channel(cast.channel.id)
    assert isinstance(channel, discord.TextChannel)
    await channel.send("board", view=Board())
    [posted] = world.channel_messages(cast.channel)
    pressed = world.press_button(cast.alice, posted, "board:refresh")
    await world.wait_for_response(pressed)
    assert pressed.responses[0].type == 7 and posted.content == "board (refreshed)"
    quiet = world.press_button(cast.alice, posted, "board:quiet")
    await world.wait_for_response(quiet)
    assert quiet.responses[0].type == 6


async def test_an_attachment_announces_its_size_and_each_download_is_seen(
    world: DiscordWorld, cast: Cast, bot: CommandBot
) -> None:
    upload = Attachment("codes.txt", content=b"A1\nB2\n")
    record = world.invoke_slash(cast.owner, cast.channel, "coupons", {"file": upload})
    await world.wait_for_messages_of(record, 1)
    resolved = record.payload["data"]["resolved"]["attachments"][str(upload.id)]
    assert resolved["size"] == 6
    assert world.downloads == [upload.id]
    told = Attachment("big.txt", size=9_000_000, content=b"A1\n")  # what Discord said
    assert told.to_json("http://x")["size"] == 9_000_000


async def test_a_modal_is_sent_only_as_a_client_would_send_it(
    world: DiscordWorld, cast: Cast, bot: CommandBot
) -> None:
    shown = world.invoke_slash(cast.alice, cast.channel, "feedback")
    await world.wait_for_response(shown)
    with pytest.raises(ScriptError, match="required"):
        world.submit_modal(cast.alice, shown, {"feedback_text": ""})
    assert shown.modal is not None
    field = shown.modal["components"][0]["components"][0]
    field["max_length"] = 5
    with pytest.raises(ScriptError, match="at most 5"):
        world.submit_modal(cast.alice, shown, {"feedback_text": "too long"})
    field["min_length"] = 3
    with pytest.raises(ScriptError, match="at least 3"):
        world.submit_modal(cast.alice, shown, {"feedback_text": "ab"})


async def test_buttons_of_ephemeral_answers_and_dms_reach_dynamic_items(
    world: DiscordWorld, cast: Cast, bot: CommandBot
) -> None:
    bot.add_dynamic_items(Pager)
    shown = world.invoke_slash(cast.alice, cast.channel, "pages")
    [private] = await world.wait_for_messages_of(shown, 1)
    assert private.ephemeral
    with pytest.raises(ScriptError, match="disabled"):
        world.press_button(cast.alice, private, "pg:0")
    pressed = world.press_button(cast.alice, private, "pg:1")
    await world.wait_for_response(pressed)
    assert pressed.responses[0].type == 7 and private.content == "page 1"
    assert [c["custom_id"] for c in private.components[0]["components"]] == ["pg:2"]
    assert private.ephemeral
    dm = await (await bot.fetch_user(cast.alice.id)).send("in a DM", view=pager_view())
    [sent] = world.dms(cast.alice)
    assert sent.id == dm.id
    pressed = world.press_button(cast.alice, sent, "pg:1")
    await world.wait_for_response(pressed)
    assert pressed.responses[0].type == 7 and sent.content == "page 1"
