"""The Discord bot: :class:`ReferralBot` (a ``commands.Bot`` with one cog per feature and its
services passed in), and :class:`DiscordBot`, the adapter ``main.py`` runs beside Telegram
in the same event loop.

Only the minimal intents: guilds, members (privileged: joins, leaves, the member list on
READY) and invites (create/delete events). Commands are synced only by ``inviteloop
discord sync``, never on start (Discord allows 200 command creates a day per server).
``max_ratelimit_timeout`` makes a long 429 wait raise instead of sleeping, so it reaches
the outbox as a retry-after and never holds answers to other people.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
import discord
import yarl
from discord.ext import commands

from bots.discord import errors
from bots.discord.port import DiscordPort
from bots.discord.tracker import DEFAULT_MEMBER_ADD_LAG, DEFAULT_SETTLE_SECONDS, Tracker
from bots.render import Renderer
from delivery.adapter import Job
from delivery.outbox import Outbox, Priority, message
from leaderboard.reports import Reports
from leaderboard.service import BoardService
from referrals.clock import Clock
from referrals.models import Program
from referrals.people import People
from referrals.service import ReferralService
from rewards.models import RECEIVED, RewardKind
from rewards.service import RewardService

logger = logging.getLogger(__name__)

PLATFORM = "discord"
EXTENSIONS = (
    "bots.discord.cogs.invite",
    "bots.discord.cogs.stats",
    "bots.discord.cogs.rewards",
    "bots.discord.cogs.manage",
    "bots.discord.cogs.leaderboard",
    "bots.discord.cogs.codes",
    "bots.discord.cogs.fulfil",
    "bots.discord.cogs.exports",
)
MAX_RATELIMIT_TIMEOUT = 30.0  # discord.py raises anything lower to 30 s
# Manage Server, Manage Roles, Manage Channels, Create Invite, View Channels, Send
# Messages, Embed Links: the permissions integer of the README's invite URL.
PERMISSIONS = discord.Permissions(
    manage_guild=True,
    manage_roles=True,
    manage_channels=True,
    create_instant_invite=True,
    view_channel=True,
    send_messages=True,
    embed_links=True,
)


def intents() -> discord.Intents:
    """guilds, members, invites — nothing else (never ``Intents.all()``)."""
    chosen = discord.Intents.none()
    chosen.guilds = True
    chosen.members = True
    chosen.invites = True
    return chosen


def rest_base(api_url: str) -> str:
    """``http://host:port`` or ``…/api/v10`` as discord.py's ``Route.BASE``."""
    url = api_url.rstrip("/")
    return url if "/api/v" in url else f"{url}/api/v10"


async def point_at(api_url: str, token: str) -> str:
    """Point discord.py at another Discord API: its REST base, and the gateway that API's
    ``GET /gateway/bot`` announces (a plain ``commands.Bot`` never asks; facts §10b).
    Returns the gateway URL."""
    base = rest_base(api_url)
    discord.http.Route.BASE = base
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/gateway/bot", headers={"Authorization": f"Bot {token}"}) as resp,
    ):
        resp.raise_for_status()
        data = await resp.json(content_type=None)
    gateway = str(data["url"])
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    return gateway


class ReferralBot(commands.Bot):
    """The referral program's Discord bot; services come in through the constructor."""

    def __init__(
        self,
        *,
        referrals: ReferralService,
        rewards: RewardService,
        people: People,
        outbox: Outbox,
        renderer: Renderer,
        clock: Clock,
        boards: BoardService | None = None,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        member_add_lag: float = DEFAULT_MEMBER_ADD_LAG,
        extensions: Sequence[str] = EXTENSIONS,
        **options: Any,
    ) -> None:
        """``boards`` defaults to a board service over the referrals' engine."""
        options.setdefault("max_ratelimit_timeout", MAX_RATELIMIT_TIMEOUT)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            **options,
        )
        self.referrals = referrals
        self.rewards = rewards
        self.boards = boards or BoardService(referrals.engine, rewards)
        self.people = people
        self.outbox = outbox
        self.renderer = Renderer(renderer.root, flavour="discord")
        self.clock = clock
        self.settle_seconds = settle_seconds
        self.extension_names = tuple(extensions)
        self.reports: Reports | None = None  # /export and /programstats (main.py sets it)
        self.port = DiscordPort(self, self.renderer)
        self.tracker = Tracker(self, settle_seconds, member_add_lag)
        self._programs: dict[int, Program | None] = {}

    async def setup_hook(self) -> None:
        errors.install(self)
        await self.add_cog(self.tracker)
        for name in self.extension_names:
            await self.load_extension(name)

    async def close(self) -> None:
        self.tracker.cancel_windows()
        await super().close()

    def drop_members_intent(self) -> None:
        """The application's Server Members intent is off in the Developer Portal (Discord
        closed the gateway with 4014): connect without it, so that /setup can say what is
        missing instead of the bot never answering. No join is heard meanwhile."""
        self._connection._intents.members = False
        self._connection._chunk_guilds = False

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s before every re-IDENTIFY; Discord's identify limit is per
        day, and a reconnect storm is cut short by discord.py's own backoff."""
        if not initial:
            await asyncio.sleep(1.0)

    # --- programs ------------------------------------------------------------------

    async def program_of(self, guild_id: int, *, fresh: bool = False) -> Program | None:
        """The server's program (cached; setup and settings refresh it)."""
        if fresh or guild_id not in self._programs:
            program = await self.referrals.find_program(PLATFORM, guild_id)
            self._programs[guild_id] = program
            if program is not None and program.invite_channel_id:
                self.port.invite_channels[guild_id] = program.invite_channel_id
        return self._programs[guild_id]

    def remember_program(self, program: Program) -> None:
        self._programs[program.destination_id] = program
        if program.invite_channel_id:
            self.port.invite_channels[program.destination_id] = program.invite_channel_id

    async def reader_seen(self, user: discord.abc.User, locale: str | None = None) -> bool:
        """Someone typed a command: they may be written to again (a 50007 marked them
        unreachable until now). Returns whether they were unreachable."""
        before = await self.people.get(PLATFORM, user.id)
        await self.people.seen(
            PLATFORM,
            user.id,
            display_name=getattr(user, "global_name", None) or user.name,
            username=user.name,
            platform_language=locale,
            started=True,
        )
        if before.blocked_at is not None:
            await self.people.unblocked(PLATFORM, user.id)
            await self.rewards.reader_returned(PLATFORM, user.id)
            return True
        return False

    # --- rewards -----------------------------------------------------------------------

    async def give_roles_again(self, program: Program, user_id: int) -> int:
        """A rewarded member rejoined (or typed /rewards): their role rewards again."""
        if not program.rewards_allowed:
            return 0
        given = 0
        for grant in await self.rewards.rewards_of(program.id, user_id):
            if grant.reward_kind != RewardKind.ROLE or grant.state not in RECEIVED:
                continue
            if grant.milestone_id is None:
                continue
            milestone = await self.rewards.milestone(grant.milestone_id)
            if milestone.role_id is None:
                continue
            outcome = await self.port.grant_role(program.destination, user_id, milestone.role_id)
            logger.info("role %s again for %s: %s", milestone.role_id, user_id, outcome)
            given += 1
        return given

    async def dm_later(
        self, user_id: int, template: str, view: dict[str, Any], locale: str | None
    ) -> None:
        """An answer whose interaction expired goes by DM, through the outbox."""
        await self.outbox.add(
            [
                message(
                    PLATFORM,
                    "user",
                    user_id,
                    template,
                    view,
                    priority=Priority.ANSWER,
                    now=self.clock.now(),
                    locale=locale,
                )
            ]
        )


class DiscordBot:
    """The Discord side of ``inviteloop run`` (a :class:`delivery.adapter.BotAdapter`)."""

    platform = PLATFORM

    def __init__(
        self,
        token: str,
        *,
        referrals: ReferralService,
        rewards: RewardService,
        people: People,
        outbox: Outbox,
        renderer: Renderer,
        clock: Clock,
        boards: BoardService | None = None,
        api_url: str | None = None,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        **options: Any,
    ) -> None:
        self.token = token
        self.api_url = api_url
        self.bot = ReferralBot(
            referrals=referrals,
            rewards=rewards,
            people=people,
            outbox=outbox,
            renderer=renderer,
            clock=clock,
            boards=boards,
            settle_seconds=settle_seconds,
            **options,
        )
        self.failure: BaseException | None = None

    async def start(self) -> DiscordPort:
        """The port needs no network yet: logging in happens in :meth:`serve`, so a refused
        token or an outage of Discord never stops the other bot."""
        return self.bot.port

    async def login(self) -> None:
        if self.api_url:
            await point_at(self.api_url, self.token)
        await self.bot.login(self.token)

    async def serve(self, stop: asyncio.Event) -> None:
        """Log in and hold the gateway (discord.py reconnects by itself) until ``stop``.
        A refused token or a failure is logged and kept in ``failure``; it ends only this
        bot."""
        try:
            await self.login()
        except Exception as exc:
            self.failure = exc
            logger.error("the Discord bot could not log in: %s", exc)
            return
        connection = asyncio.create_task(self._hold_gateway(), name="discord-ws")
        halt = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({connection, halt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.cancel()
            if connection.done() and connection.exception() is not None:
                self.failure = connection.exception()
                logger.error("the Discord gateway stopped: %s", self.failure)
            await self.bot.close()
            connection.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connection

    async def _hold_gateway(self) -> None:
        try:
            await self.bot.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            logger.error(
                "Discord refused the Server Members intent: switch it on in the Developer "
                "Portal (Bot → Privileged Gateway Intents) and restart; until then no join "
                "is counted and /setup says what is missing"
            )
            self.bot.drop_members_intent()
            await self.bot.connect(reconnect=True)

    def jobs(self) -> list[Job]:
        return []

    async def sync_commands(self, guild_id: int | None = None) -> int:
        """Register the slash commands with Discord (``inviteloop discord sync``)."""
        await self.login()
        guild = discord.Object(guild_id) if guild_id else None
        if guild is not None:
            self.bot.tree.copy_global_to(guild=guild)
        synced = await self.bot.tree.sync(guild=guild)
        return len(synced)

    async def close(self) -> None:
        if not self.bot.is_closed():
            await self.bot.close()
