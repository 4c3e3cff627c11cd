"""/invite: the reader's personal invite, made by the bot in the program's invite channel
and never expiring, as an ephemeral answer with counts and the rules (the Telegram view)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bots import views
from bots.discord.app import ReferralBot
from bots.discord.cogs.rewards import show_waiting
from bots.discord.common import answer, defer, error, locale_of, person_of, program_here
from bots.discord.port import INVITE_CAP
from referrals.models import EngineError, LinkResult, Person, PlatformUnavailable, Program


def _cap_reached(exc: PlatformUnavailable) -> bool:
    outcome = exc.details.get("outcome")
    return str(INVITE_CAP) in str(getattr(outcome, "detail", ""))


class InviteCog(commands.Cog):
    def __init__(self, bot: ReferralBot) -> None:
        self.bot = bot

    @app_commands.command(name="invite", description="Your personal invite link")
    @app_commands.describe(label="A name for a second invite (when the server allows labels)")
    @app_commands.guild_only()
    async def invite(self, interaction: discord.Interaction, label: str | None = None) -> None:
        """Your personal invite link, your friends so far and the rules."""
        program = await program_here(self.bot, interaction)
        if program is None:
            return
        if label and not program.labels_allowed:
            await error(self.bot, interaction, "labels_off")
            return
        await defer(interaction)
        locale = locale_of(interaction)
        person = person_of(interaction.user, locale)
        unreachable = await self.bot.reader_seen(interaction.user, locale)
        try:
            result = await self._link(program, person, label or "")
        except PlatformUnavailable as exc:
            await error(self.bot, interaction, "invite_cap" if _cap_reached(exc) else "platform")
            return
        except EngineError as exc:
            await answer(self.bot, interaction, "error", views.engine_error(exc))
            return
        counts = await self.bot.referrals.counts(program.id, person.user_id)
        view = views.invite_card(
            program, result.link, counts, created=result.created, replaced=False
        )
        await answer(self.bot, interaction, "invite_card", view)
        if unreachable:
            await show_waiting(self.bot, interaction, program)

    async def _link(self, program: Program, person: Person, label: str) -> LinkResult:
        """The reader's invite; at Discord's invite cap, idle readers' invites are pruned
        once and the invite is tried again."""

        try:
            return await self.bot.referrals.get_or_create_link(program.id, person, label)
        except PlatformUnavailable as exc:
            if not _cap_reached(exc):
                raise
            pruned = await self.bot.referrals.invites.prune_idle(program)
            self.bot.outbox.wake()
            if not pruned:
                raise
            return await self.bot.referrals.get_or_create_link(program.id, person, label)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, ReferralBot)
    await bot.add_cog(InviteCog(bot))


__all__ = ["InviteCog", "setup"]
