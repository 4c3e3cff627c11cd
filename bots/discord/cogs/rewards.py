"""/rewards: what a reader earned, what waits for them, and their roles given again; an
"Answer" button for each reward sent by hand that waits for the reader's answer."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bots import views
from bots.discord.app import ReferralBot
from bots.discord.cogs.fulfil import answer_buttons
from bots.discord.common import answer, defer, locale_of, program_here
from rewards.models import GrantState


class RewardsCog(commands.Cog):
    def __init__(self, bot: ReferralBot) -> None:
        self.bot = bot

    @app_commands.command(name="rewards", description="Your rewards and the next milestone")
    @app_commands.guild_only()
    async def rewards(self, interaction: discord.Interaction) -> None:
        """Your rewards, the next milestone; a reader whose DMs were closed sees what waits
        for them here, and it is sent again."""
        program = await program_here(self.bot, interaction)
        if program is None:
            return
        await defer(interaction)
        unreachable = await self.bot.reader_seen(interaction.user, locale_of(interaction))
        grants = await self.bot.rewards.rewards_of(program.id, interaction.user.id)
        progress = await self.bot.rewards.progress(program.id, interaction.user.id)
        await self.bot.give_roles_again(program, interaction.user.id)
        view = views.reader_rewards(
            program,
            grants,
            enabled=program.rewards_allowed,
            counted=progress.rewardable,
            next_title=progress.next_title,
            next_count=progress.next_at,
            unreachable=unreachable,
        )
        self.bot.outbox.wake()
        waiting = [g.id for g in grants if g.state == GrantState.AWAITING_ANSWER]
        buttons = answer_buttons(self.bot, locale_of(interaction), waiting)
        await answer(self.bot, interaction, "discord_rewards", view, buttons=buttons)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, ReferralBot)
    await bot.add_cog(RewardsCog(bot))
