"""/rewards: what a reader earned, what waits for them, and their roles given again; an
"Answer" button for each reward sent by hand that waits for the reader's answer."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bots import views
from bots.discord.app import ReferralBot
from bots.discord.cogs.fulfil import answer_buttons
from bots.discord.common import answer, defer, locale_of, program_here
from referrals.models import Program
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
        view, buttons = await rewards_view(self.bot, interaction, program, unreachable)
        await self.bot.give_roles_again(program, interaction.user.id)
        self.bot.outbox.wake()
        await answer(self.bot, interaction, "discord_rewards", view, buttons=buttons)


async def rewards_view(
    bot: ReferralBot, interaction: discord.Interaction, program: Program, unreachable: bool
) -> tuple[dict[str, Any], discord.ui.View | None]:
    """What /rewards shows the person: their grants, the next milestone, whether the
    bot's DMs to them did not arrive; and an "Answer" button for each reward that waits
    for their answer."""
    user_id = interaction.user.id
    grants = await bot.rewards.rewards_of(program.id, user_id)
    progress = await bot.rewards.progress(program.id, user_id)
    waiting = [g.id for g in grants if g.state == GrantState.AWAITING_ANSWER]
    buttons = answer_buttons(bot, locale_of(interaction), waiting)
    return views.reader_rewards(
        program,
        grants,
        enabled=program.rewards_allowed,
        counted=progress.rewardable,
        next_title=progress.next_title,
        next_count=progress.next_at,
        unreachable=unreachable,
    ), buttons


async def show_waiting(
    bot: ReferralBot, interaction: discord.Interaction, program: Program
) -> None:
    """A reader whose DMs did not arrive typed another command: after its answer, what
    waits for them, ephemerally (it is sent to them again as well)."""
    view, buttons = await rewards_view(bot, interaction, program, unreachable=True)
    if view["enabled"] and view["items"]:
        await answer(bot, interaction, "discord_rewards", view, buttons=buttons)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, ReferralBot)
    await bot.add_cog(RewardsCog(bot))
