"""/rewards: what a reader earned, what waits for them, and their roles given again."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bots import views
from bots.discord.app import ReferralBot
from bots.discord.common import answer, defer, locale_of, program_here
from referrals.models import Program


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
        view = await rewards_view(self.bot, program, interaction.user.id, unreachable)
        await self.bot.give_roles_again(program, interaction.user.id)
        self.bot.outbox.wake()
        await answer(self.bot, interaction, "discord_rewards", view)


async def rewards_view(
    bot: ReferralBot, program: Program, user_id: int, unreachable: bool
) -> dict[str, Any]:
    """What /rewards shows: the reader's grants, the next milestone, and whether the
    bot's DMs to them did not arrive."""
    grants = await bot.rewards.rewards_of(program.id, user_id)
    progress = await bot.rewards.progress(program.id, user_id)
    return views.reader_rewards(
        program,
        grants,
        enabled=program.rewards_allowed,
        counted=progress.rewardable,
        next_title=progress.next_title,
        next_count=progress.next_at,
        unreachable=unreachable,
    )


async def show_waiting(
    bot: ReferralBot, interaction: discord.Interaction, program: Program
) -> None:
    """A reader whose DMs did not arrive typed another command: after its answer, what
    waits for them, ephemerally (it is sent to them again as well)."""
    view = await rewards_view(bot, program, interaction.user.id, unreachable=True)
    if view["enabled"] and view["items"]:
        await answer(bot, interaction, "discord_rewards", view)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, ReferralBot)
    await bot.add_cog(RewardsCog(bot))
