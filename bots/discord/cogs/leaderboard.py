"""/leaderboard: the top 10 of a board, the reader's place and the referrals to the next
one, with buttons to page and to switch period — Telegram's board, Discord-flavoured.

The answer is ephemeral (only the reader sees it, so readers cannot flood a channel with
boards), and a button redraws that message in place. A button's custom id holds the period
and the page (``lb:week:2``) and the program is the server's, so any instance of the bot
answers a press, also after a restart. A page is at most ten entries of names cut to 32
characters: it renders in well under a millisecond, so it stays on the event loop.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bots import views
from bots.discord.app import ReferralBot
from bots.discord.common import answer, defer, error, locale_of, program_here, update
from leaderboard.models import Board, BoardError
from leaderboard.periods import Period
from referrals.models import Program

PERIODS = tuple(p.value for p in (Period.WEEK, Period.MONTH, Period.ALL, Period.SEASON))
PeriodName = Literal["week", "month", "all", "season"]
MAX_PAGE = 1000


class BoardButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"lb:(?P<period>week|month|all|season):(?P<page>[0-9]{1,4})",
):
    """A board's period or page button; pressing it redraws the board in place."""

    def __init__(self, period: str, page: int, label: str = "", *, primary: bool = False) -> None:
        style = discord.ButtonStyle.primary if primary else discord.ButtonStyle.secondary
        super().__init__(
            discord.ui.Button(label=label or period, custom_id=f"lb:{period}:{page}", style=style)
        )
        self.period = period
        self.page = page

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> BoardButton:
        return cls(match["period"], int(match["page"]), getattr(item, "label", None) or "")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = interaction.client
        assert isinstance(bot, ReferralBot)
        program = await program_here(bot, interaction)
        if program is None:
            return
        page = min(max(1, self.page), MAX_PAGE)
        try:
            board = await _board(bot, program, interaction.user.id, self.period, page)
        except BoardError as exc:
            await answer(bot, interaction, "error", views.engine_error(exc))
            return
        buttons = board_buttons(bot, locale_of(interaction), board)
        await update(bot, interaction, "board", views.board(board), buttons)


async def _board(
    bot: ReferralBot, program: Program, user_id: int, period: str, page: int
) -> Board:
    return await bot.boards.board(program.id, period, reader_id=user_id, page=page)


def board_buttons(bot: ReferralBot, locale: str, board: Board) -> discord.ui.View:
    """Telegram's buttons for a board: the other periods, then the pages up and down."""
    view = discord.ui.View(timeout=None)
    for name in PERIODS:
        if name != board.period:
            label = bot.renderer.label(locale, f"period_{name}")
            view.add_item(BoardButton(name, 1, label))
    if board.page > 1:
        label = bot.renderer.label(locale, "board_prev")
        view.add_item(BoardButton(board.period, board.page - 1, label, primary=True))
    if board.page < board.pages:
        label = bot.renderer.label(locale, "board_next")
        view.add_item(BoardButton(board.period, board.page + 1, label, primary=True))
    return view


class LeaderboardCog(commands.Cog):
    def __init__(self, bot: ReferralBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.port.buttons.register(self.bot, BoardButton)

    async def cog_unload(self) -> None:
        self.bot.port.buttons.unregister(self.bot, BoardButton)

    @app_commands.command(name="leaderboard", description="The top readers and your place")
    @app_commands.describe(
        period="week, month, all time (the default) or the season", page="Which page"
    )
    @app_commands.guild_only()
    async def leaderboard(
        self,
        interaction: discord.Interaction,
        period: PeriodName = "all",
        page: app_commands.Range[int, 1, MAX_PAGE] = 1,
    ) -> None:
        """The top readers of a board (week, month, all time or the season) and your place,
        shown to you alone."""
        program = await program_here(self.bot, interaction)
        if program is None:
            return
        if period not in PERIODS:
            await error(self.bot, interaction, "board_period")
            return
        await defer(interaction)
        locale = locale_of(interaction)
        await self.bot.reader_seen(interaction.user, locale)
        try:
            board = await _board(self.bot, program, interaction.user.id, period, page)
        except BoardError as exc:
            await answer(self.bot, interaction, "error", views.engine_error(exc))
            return
        buttons = board_buttons(self.bot, locale, board)
        await answer(self.bot, interaction, "board", views.board(board), buttons=buttons)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, ReferralBot)
    await bot.add_cog(LeaderboardCog(bot))


__all__ = ["BoardButton", "LeaderboardCog", "board_buttons", "setup"]
