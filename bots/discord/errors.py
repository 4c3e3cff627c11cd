"""What a slash command that failed answers: an engine refusal in the engine's words (the
``error`` template), anything else a short apology, always within the interaction, so no
person is left with Discord's "The application did not respond". The cogs catch what they
expect; this is the net under them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bots import views
from bots.discord.common import answer, error
from referrals.models import EngineError

if TYPE_CHECKING:
    from bots.discord.app import ReferralBot

logger = logging.getLogger(__name__)


def install(bot: ReferralBot) -> None:
    """Make :func:`on_app_command_error` the command tree's error handler."""

    async def handler(interaction: discord.Interaction, exc: app_commands.AppCommandError) -> None:
        await on_app_command_error(bot, interaction, exc)

    bot.tree.on_error = handler  # type: ignore[method-assign]


async def on_app_command_error(
    bot: ReferralBot, interaction: discord.Interaction, exc: app_commands.AppCommandError
) -> None:
    original = exc.original if isinstance(exc, app_commands.CommandInvokeError) else exc
    command = interaction.command.qualified_name if interaction.command else "?"
    try:
        if isinstance(original, EngineError):
            await answer(bot, interaction, "error", views.engine_error(original))
        elif isinstance(original, app_commands.CheckFailure):
            await error(bot, interaction, "not_manager")
        else:
            logger.error("/%s failed", command, exc_info=original)
            await error(bot, interaction, "unexpected")
    except discord.HTTPException as failed:  # the answer itself failed: nothing more to do
        logger.warning("/%s: could not answer its failure: %s", command, failed)
