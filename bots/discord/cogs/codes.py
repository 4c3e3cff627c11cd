"""/codes add (a coupon file as an attachment) and /codes list (the pools and their stock),
for managers — Telegram's /codes, with the file attached to the command.

The file is checked before anything is downloaded (at most 5 MB) and parsed whole by the
rewards service off the event loop (a file of 200,000 codes takes a while): a broken file
gets a clear answer and nothing is imported. A pool is named (``pool:coffee``), by default
after the file (``coffee.txt`` → ``coffee``), so sending the same file name again tops the
same pool up; ``/milestone add … pool:coffee`` gives its codes as a reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bots import views
from bots.discord.app import ReferralBot
from bots.discord.common import answer, defer, error, manager_program
from referrals.models import EngineError
from referrals.text import clean_name
from rewards.coupons import MAX_FILE_BYTES
from rewards.models import PoolStock

MAX_POOL_NAME = 64


def pool_named(pools: Sequence[PoolStock], name: str) -> PoolStock | None:
    """The pool called ``name`` (case and spacing do not matter), if there is one."""
    wanted = clean_name(name, MAX_POOL_NAME).casefold()
    return next((p for p in pools if p.name.casefold() == wanted), None)


def default_pool_name(filename: str) -> str:
    """``coffee.txt`` → ``coffee``: a pool named after the file it came from."""
    return clean_name(PurePath(filename or "").stem, MAX_POOL_NAME) or "codes"


class CodesCog(commands.Cog):
    def __init__(self, bot: ReferralBot) -> None:
        self.bot = bot

    codes = app_commands.Group(
        name="codes",
        description="Coupon codes for rewards",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )

    @codes.command(name="add", description="Import a .txt or .csv file of coupon codes")
    @app_commands.describe(
        file="One code per line (.txt) or codes in the first column (.csv), at most 5 MB",
        pool="The pool to fill (by default named after the file)",
    )
    async def codes_add(
        self, interaction: discord.Interaction, file: discord.Attachment, pool: str | None = None
    ) -> None:
        """Import coupon codes into a pool (a new one when no pool has that name); a file
        that cannot be read is refused whole."""
        program = await manager_program(self.bot, interaction)
        if program is None:
            return
        if file.size > MAX_FILE_BYTES:
            await answer(self.bot, interaction, "error", views.error("file_too_big"))
            return
        await defer(interaction)
        name = clean_name(pool, MAX_POOL_NAME) if pool else default_pool_name(file.filename)
        if not name:
            await error(self.bot, interaction, "pool_name")
            return
        try:
            content = await file.read()
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError):
            await error(self.bot, interaction, "platform")
            return
        if len(content) > MAX_FILE_BYTES:  # the size Discord announced was not the truth
            await answer(self.bot, interaction, "error", views.error("file_too_big"))
            return
        actor = interaction.user.id
        try:
            existing = pool_named(await self.bot.rewards.pools(program.id), name)
            report = await self.bot.rewards.import_codes(
                program.id,
                actor,
                file.filename,
                content,
                pool_id=existing.id if existing else None,
                pool_name=name,
            )
        except EngineError as exc:
            await answer(self.bot, interaction, "error", views.engine_error(exc))
            return
        self.bot.outbox.wake()  # rewards that waited for codes go out now
        pools = await self.bot.rewards.pools(program.id)
        view = views.coupon_pools(program, pools, report=report)
        await answer(self.bot, interaction, "discord_codes", view)

    @codes.command(name="list", description="The coupon pools and the codes left")
    async def codes_list(self, interaction: discord.Interaction) -> None:
        """Every coupon pool of the program and how many of its codes are left."""
        program = await manager_program(self.bot, interaction)
        if program is None:
            return
        await defer(interaction)
        pools = await self.bot.rewards.pools(program.id)
        await answer(self.bot, interaction, "discord_codes", views.coupon_pools(program, pools))


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, ReferralBot)
    await bot.add_cog(CodesCog(bot))


__all__ = ["CodesCog", "default_pool_name", "pool_named", "setup"]
