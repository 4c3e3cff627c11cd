"""Managers' reports on Discord: /export (the program's CSV files) and /programstats (a
chart of the last 30 days and the program's figures).

Manage Server is checked in code, then the answer is deferred as ephemeral at once
(building may take longer than Discord's 3 seconds, and ephemerality is fixed at the
defer). The files come back as ephemeral follow-up attachments, seen only by the manager
who asked; when the interaction's token is gone (it lasts 15 minutes) they go by DM
through the outbox instead, as ``SEND_DOCUMENT`` / ``SEND_PHOTO`` rows whose files wait
in the spool. Nothing the bot says pings anyone (``AllowedMentions.none()``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bots import report_views, views
from bots.discord.app import PLATFORM, ReferralBot
from bots.discord.common import answer, defer, error, locale_of, manager_program
from bots.discord.port import MAX_MESSAGE, NO_MENTIONS
from delivery.actions import Action, Attachment
from delivery.outbox import Priority, message
from leaderboard.reports import ReportFile, Reports
from referrals.models import EngineError, Program

logger = logging.getLogger(__name__)

MARGIN = 64 * 1024  # bytes left free for the rest of a follow-up's request
TOKEN_GONE = (10015, 50027)  # Unknown Webhook, Invalid Webhook Token: 15 minutes passed
# (file, action, template, view): one file and its caption
Sending = tuple[ReportFile, Action, str, dict[str, Any]]


class ExportsCog(commands.Cog):
    def __init__(self, bot: ReferralBot) -> None:
        self.bot = bot

    def _reports(self) -> Reports:
        if self.bot.reports is None:
            raise RuntimeError("the Discord bot was built without the reports service")
        return self.bot.reports

    def _limit(self, interaction: discord.Interaction) -> int:
        """The bytes one file may have: the port's, or less if the interaction says so."""
        granted = getattr(interaction, "filesize_limit", 0) or 0
        limit = self.bot.port.document_limit
        return min(limit, granted - MARGIN) if granted > MARGIN else limit

    @app_commands.command(name="export", description="The program's CSV files, only to you")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def export(self, interaction: discord.Interaction) -> None:
        """The program's CSV files: readers, referrals and rewards (Manage Server)."""
        program = await manager_program(self.bot, interaction)
        if program is None:
            return
        await defer(interaction)
        try:
            built = await self._reports().export(
                program.id, interaction.user.id, limit=self._limit(interaction)
            )
        except EngineError as exc:
            await answer(self.bot, interaction, "error", views.engine_error(exc))
            return
        count = len(built.files)
        await self._deliver(
            interaction,
            program,
            [
                (
                    file,
                    Action.SEND_DOCUMENT,
                    "export_file",
                    report_views.export_file(program, file, first=i == 0, count=count),
                )
                for i, file in enumerate(built.files)
            ],
        )

    @app_commands.command(
        name="programstats", description="Referrals per day, what works and what it costs"
    )
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def programstats(self, interaction: discord.Interaction) -> None:
        """Referrals per day as a chart, the confirmation rate, the best invite labels,
        rewards and their cost (Manage Server)."""
        program = await manager_program(self.bot, interaction)
        if program is None:
            return
        await defer(interaction)
        locale = locale_of(interaction)
        chart = report_views.chart_text(self.bot.renderer, locale, program.timezone)
        limit = min(self._limit(interaction), self.bot.port.photo_limit)
        try:
            built = await self._reports().program_stats(
                program.id, interaction.user.id, chart=chart, limit=limit
            )
        except EngineError as exc:
            await answer(self.bot, interaction, "error", views.engine_error(exc))
            return
        chart_sent = await self._deliver(
            interaction,
            program,
            [(built.chart, Action.SEND_PHOTO, "program_chart", report_views.program_chart(built))],
        )
        figures = report_views.program_stats(built)
        if chart_sent:
            await answer(self.bot, interaction, "program_stats", figures)
        else:  # the interaction is gone: the figures follow the chart by DM
            await self.bot.dm_later(interaction.user.id, "program_stats", figures, locale)

    async def _deliver(
        self, interaction: discord.Interaction, program: Program, sending: Sequence[Sending]
    ) -> bool:
        """Each file as an ephemeral follow-up with its caption; from the first that the
        interaction can no longer carry (its token expired), the rest go by DM. Returns
        whether the interaction carried them all."""
        locale = locale_of(interaction)
        for index, (file, _, template, view) in enumerate(sending):
            text = self.bot.renderer.text(locale, template, **view)[:MAX_MESSAGE]
            try:
                await interaction.followup.send(
                    text,
                    file=discord.File(file.path, filename=file.filename),
                    ephemeral=True,
                    allowed_mentions=NO_MENTIONS,
                )
            except discord.HTTPException as exc:
                if isinstance(exc, discord.NotFound) or exc.code in TOKEN_GONE:
                    logger.info("interaction %s expired (%s): files by DM", interaction.id, exc)
                    await self._by_dm(interaction, program, sending[index:], locale)
                    return False
                self._reports().discard([file for file, *_ in sending[index:]])
                await error(self.bot, interaction, "platform")
                return True
            self._reports().discard([file])
        return True

    async def _by_dm(
        self,
        interaction: discord.Interaction,
        program: Program,
        sending: Sequence[Sending],
        locale: str,
    ) -> None:
        """The files as outbox rows to the manager's DMs (they stay in the spool until
        sent, and survive a restart)."""
        now = self.bot.clock.now()
        await self.bot.outbox.add(
            [
                message(
                    PLATFORM,
                    "user",
                    interaction.user.id,
                    template,
                    view,
                    priority=Priority.ANSWER,
                    now=now,
                    program_id=program.id,
                    locale=locale,
                    action=action,
                    payload=Attachment(file.spooled, file.filename),
                    key=f"dc:{interaction.id}:file:{n}",
                )
                for n, (file, action, template, view) in enumerate(sending)
            ]
        )


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, ReferralBot)
    await bot.add_cog(ExportsCog(bot))
