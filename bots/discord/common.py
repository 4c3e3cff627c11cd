"""What every cog shares: answering an interaction in the reader's language with the
Discord flavour (ephemeral, no mentions), the program of a server, the person acting, and
the manager check done in code on every manager action."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bots.discord.port import MAX_MESSAGE, NO_MENTIONS
from referrals.locale import pick_locale
from referrals.models import Person, Program

if TYPE_CHECKING:
    from bots.discord.app import ReferralBot

logger = logging.getLogger(__name__)


def locale_of(interaction: discord.Interaction) -> str:
    """The reader's Discord language, else the server's, else English."""
    guild_locale = interaction.guild_locale
    return pick_locale(
        str(interaction.locale) if interaction.locale else None,
        str(guild_locale) if guild_locale else None,
    )


def person_of(user: discord.abc.User, locale: str | None = None) -> Person:
    name = getattr(user, "global_name", None) or user.name
    return Person(user.id, display_name=name, username=user.name, language_code=locale)


async def defer(interaction: discord.Interaction) -> None:
    """Answer Discord's 3 seconds at once: an ephemeral "thinking" (ephemerality is fixed
    here, so every answer that follows is ephemeral too)."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)


async def answer(
    bot: ReferralBot,
    interaction: discord.Interaction,
    template: str,
    view: dict[str, Any],
    *,
    locale: str | None = None,
    ephemeral: bool = True,
    buttons: discord.ui.View | None = None,
) -> None:
    """Render ``template`` with the Discord flavour and answer the interaction with it
    (with ``buttons``: a view of the bot's registered dynamic items)."""
    text = bot.renderer.text(locale or locale_of(interaction), template, **view)[:MAX_MESSAGE]
    extra: dict[str, Any] = {} if buttons is None else {"view": buttons}
    try:
        if interaction.response.is_done():
            await interaction.followup.send(
                text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS, **extra
            )
        else:
            await interaction.response.send_message(
                text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS, **extra
            )
    except discord.NotFound:
        # The interaction's token is gone (15 minutes, or a 3-second miss): say it by DM.
        logger.info("interaction %s expired; answering by DM", interaction.id)
        await bot.dm_later(interaction.user.id, template, view, locale or locale_of(interaction))


async def update(
    bot: ReferralBot,
    interaction: discord.Interaction,
    template: str,
    view: dict[str, Any],
    buttons: discord.ui.View | None,
) -> None:
    """A button's answer: the message it sits on, rendered anew in place."""
    text = bot.renderer.text(locale_of(interaction), template, **view)[:MAX_MESSAGE]
    await interaction.response.edit_message(
        content=text, view=buttons, allowed_mentions=NO_MENTIONS
    )


async def error(
    bot: ReferralBot, interaction: discord.Interaction, code: str, **details: Any
) -> None:
    await answer(
        bot, interaction, "discord_error", {"code": code, "key": "", "message": "", **details}
    )


async def program_here(bot: ReferralBot, interaction: discord.Interaction) -> Program | None:
    """The program of the server the command came from; answers and returns None if there
    is none (or the command came from a DM)."""
    if interaction.guild is None:
        await error(bot, interaction, "guild_only")
        return None
    program = await bot.program_of(interaction.guild.id)
    if program is None:
        await error(bot, interaction, "not_set_up")
    return program


async def manager_program(bot: ReferralBot, interaction: discord.Interaction) -> Program | None:
    """The server's program if the person manages it — checked in code, every time (the
    command's ``default_permissions`` are only a hint Discord's admins can change)."""
    if interaction.guild is None:
        await error(bot, interaction, "guild_only")
        return None
    member = interaction.user
    if not isinstance(member, discord.Member) or not member.guild_permissions.manage_guild:
        await error(bot, interaction, "not_manager")
        return None
    return await program_here(bot, interaction)
