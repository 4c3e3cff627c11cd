"""/stats (the reader's receipt), /help and /forget."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bots import views
from bots.discord.app import PLATFORM, ReferralBot
from bots.discord.cogs.rewards import show_waiting
from bots.discord.common import answer, defer, locale_of, program_here
from referrals.models import PlatformUser


class StatsCog(commands.Cog):
    def __init__(self, bot: ReferralBot) -> None:
        self.bot = bot

    @app_commands.command(name="stats", description="Your friends and where each stands")
    @app_commands.describe(page="Which page of your friends")
    @app_commands.guild_only()
    async def stats(
        self, interaction: discord.Interaction, page: app_commands.Range[int, 1, 1000] = 1
    ) -> None:
        """Your receipt: every referral and join attempt, and where each stands."""
        program = await program_here(self.bot, interaction)
        if program is None:
            return
        await defer(interaction)
        unreachable = await self.bot.reader_seen(interaction.user, locale_of(interaction))
        receipt = await self.bot.referrals.receipt(program.id, interaction.user.id, page)
        await answer(self.bot, interaction, "stats", views.receipt(program, receipt))
        if unreachable:
            await show_waiting(self.bot, interaction, program)

    @app_commands.command(name="help", description="What this bot does and its commands")
    async def help(self, interaction: discord.Interaction) -> None:
        """The commands (managers see theirs too)."""
        member = interaction.user
        manager = isinstance(member, discord.Member) and member.guild_permissions.manage_guild
        await answer(self.bot, interaction, "discord_help", views.help_text(manager))

    @app_commands.command(name="forget", description="Delete your data")
    @app_commands.describe(confirm="True to delete; without it you see what would go")
    async def forget(self, interaction: discord.Interaction, confirm: bool = False) -> None:
        """Delete your links, counts and the list of your friends."""
        if not confirm:
            await answer(self.bot, interaction, "forget", views.forget("confirm", by_command=True))
            return
        await defer(interaction)
        await self.bot.referrals.forget(PlatformUser(PLATFORM, interaction.user.id))
        await answer(self.bot, interaction, "forget", views.forget("done"))


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, ReferralBot)
    await bot.add_cog(StatsCog(bot))
