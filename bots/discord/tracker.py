"""Joins, leaves and invite counters, Discord side: the listeners that feed
:class:`referrals.invites.InviteTracker`.

Discord's uses counter can lag the member-add event, and several joins can land before a
re-fetch, so a server's joins are gathered over a short settle window and the counters are
fetched once for all of them. Invite create/delete events, resyncs and settles of one
server take the same lock.

The member-add event also lags the counter (a second or two, each join its own delay), so
a reading may already carry the rise of a join whose event is still on its way, and a
window's join may have moved a counter before the previous reading. The sums alone would
then credit one person's join to another's invite. So a window may be credited only when it
is *isolated*: its first member arrived more than ``member_add_lag`` after the previous
reading (none of its rises went into that one), and nobody arrives within
``member_add_lag`` after this reading (no rise in it belongs to someone still on the way).
The settle waits that long, holding the lock, before it lets the engine decide.

Between a disconnect and the next resync the counters are not
known (a resumed session replays joins whose counters already moved; a new session replays
nothing): joins then are recorded as unattributed, and READY diffs the chunked member list
against the stored members. Leaves come from the raw member-remove event (the plain one
fires only for cached members).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bots.discord.common import person_of
from referrals.invites import InviteCount, Newcomer, Snapshot
from referrals.models import JoinStatus, LeaveEvent, Program

if TYPE_CHECKING:
    from bots.discord.app import ReferralBot

logger = logging.getLogger(__name__)

DEFAULT_SETTLE_SECONDS = 2.0
# The longest GUILD_MEMBER_ADD may reach us after the invite's counter moved (Discord: 1-2 s).
DEFAULT_MEMBER_ADD_LAG = 3.0


class Tracker(commands.Cog):
    """Settle windows per server, the per-server lock, and the resyncs."""

    def __init__(
        self,
        bot: ReferralBot,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        member_add_lag: float = DEFAULT_MEMBER_ADD_LAG,
    ) -> None:
        self.bot = bot
        self.settle_seconds = settle_seconds
        self.member_add_lag = member_add_lag
        self.locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.pending: dict[int, list[Newcomer]] = {}
        # event-loop times: the first arrival of each pending window, each last reading
        self.first_arrival: dict[int, float] = {}
        self.read_at: dict[int, float] = {}
        self.arrivals: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.windows: dict[int, asyncio.Task[None]] = {}
        self.stale: set[int] = set()
        # Servers whose pending joins include one that arrived while the counters were not
        # known (a RESUME replays joins whose counters moved before the resync that may
        # finish first): that window settles as stale whatever the resync did meanwhile.
        self.stale_window: set[int] = set()
        self.synced = False  # False until the first READY's resync: counters unknown
        self.settled_joins = 0  # joins settled so far (tests, the benchmark)

    async def cog_unload(self) -> None:
        self.cancel_windows()

    # --- counters --------------------------------------------------------------------

    async def snapshot(self, guild: discord.Guild) -> Snapshot | None:
        """Every invite's counter and the vanity URL's (None: Discord would not say)."""
        try:
            invites = await guild.invites()
            vanity_uses = None
            if "VANITY_URL" in guild.features or guild.vanity_url_code:
                vanity = await guild.vanity_invite()
                vanity_uses = vanity.uses if vanity is not None else None
        except discord.HTTPException as exc:
            logger.warning("cannot read the invites of %s: %s", guild.id, exc)
            return None
        return Snapshot(
            [
                InviteCount(
                    invite.code,
                    invite.url,
                    invite.uses or 0,
                    invite.max_uses or 0,
                    invite.inviter.id if invite.inviter else None,
                )
                for invite in invites
            ],
            vanity_uses,
        )

    async def resync(self, guild: discord.Guild, *, members: bool) -> None:
        program = await self.bot.program_of(guild.id, fresh=True)
        if program is None:
            return
        async with self.locks[guild.id]:
            snapshot = await self.snapshot(guild)
            if snapshot is None:
                self.stale.add(guild.id)
                return
            self.read_at[guild.id] = asyncio.get_running_loop().time()
            everyone = None
            if members and self.bot.intents.members:
                everyone = {m.id: newcomer(m) for m in guild.members if not m.bot and m.joined_at}
            report = await self.bot.referrals.invites.resync(program.id, snapshot, everyone)
            self.stale.discard(guild.id)
        if report.joined_while_away or report.left_while_away:
            logger.info(
                "%s: %d joined and %d left while the bot was away",
                guild.id,
                report.joined_while_away,
                report.left_while_away,
            )

    # --- connection ------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """A new session replays nothing: catch up from the member list, take new counters."""
        for guild in self.bot.guilds:
            await self.resync(guild, members=True)
        self.synced = True

    @commands.Cog.listener()
    async def on_resumed(self) -> None:
        for guild in self.bot.guilds:
            await self.resync(guild, members=False)

    @commands.Cog.listener()
    async def on_disconnect(self) -> None:
        self.stale.update(guild.id for guild in self.bot.guilds)

    # --- invites -----------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_invite_create(self, invite: discord.Invite) -> None:
        guild = invite.guild
        if guild is None:
            return
        program = await self.bot.program_of(guild.id)
        if program is None:
            return
        async with self.locks[guild.id]:
            await self.bot.referrals.invites.invite_created(
                program.id,
                InviteCount(
                    invite.code,
                    invite.url,
                    invite.uses or 0,
                    invite.max_uses or 0,
                    invite.inviter.id if invite.inviter else None,
                ),
            )

    @commands.Cog.listener()
    async def on_invite_delete(self, invite: discord.Invite) -> None:
        guild = invite.guild
        if guild is None:
            return
        program = await self.bot.program_of(guild.id)
        if program is None:
            return
        async with self.locks[guild.id]:
            await self.bot.referrals.invites.invite_deleted(program.id, invite.code, invite.url)
        self.bot.outbox.wake()

    # --- members -----------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        if member.bot:
            return
        program = await self.bot.program_of(member.guild.id)
        if program is None:
            return
        if member.guild.id in self.stale or not self.synced:
            self.stale_window.add(member.guild.id)
        waiting = self.pending.setdefault(member.guild.id, [])
        if not waiting:
            self.first_arrival[member.guild.id] = asyncio.get_running_loop().time()
        waiting.append(newcomer(member))
        self.arrivals[member.guild.id].set()
        if member.guild.id not in self.windows:
            self.windows[member.guild.id] = asyncio.create_task(
                self._settle_later(member.guild, program), name=f"settle-{member.guild.id}"
            )

    async def _settle_later(self, guild: discord.Guild, program: Program) -> None:
        try:
            await asyncio.sleep(self.settle_seconds)
        finally:
            self.windows.pop(guild.id, None)
        try:
            await self.settle(guild, program)
        except Exception:
            # Discord did not answer (or the bot is closing): those joins stay unsettled;
            # the next READY's member diff records them as joined while away.
            logger.exception("settling the joins of %s failed", guild.id)
            self.stale.add(guild.id)

    def cancel_windows(self) -> None:
        for task in list(self.windows.values()):
            task.cancel()

    async def settle(self, guild: discord.Guild, program: Program) -> None:
        """Fetch the counters once for the window's joins and let the engine decide."""
        async with self.locks[guild.id]:
            batch = self.pending.pop(guild.id, [])
            first = self.first_arrival.pop(guild.id, None)
            arrived_stale = guild.id in self.stale_window
            self.stale_window.discard(guild.id)
            if not batch:
                return
            stale = arrived_stale or guild.id in self.stale or not self.synced
            last_read = self.read_at.get(guild.id)
            snapshot = await self.snapshot(guild)
            if snapshot is None:
                snapshot, stale = Snapshot([], None), True
            else:
                self.read_at[guild.id] = asyncio.get_running_loop().time()
            isolated = not stale and await self._isolated(guild.id, first, last_read)
            try:
                outcomes = await self.bot.referrals.invites.settle(
                    program.id, batch, snapshot, stale=stale, isolated=isolated
                )
            except Exception:
                logger.exception("settling %d join(s) of %s failed", len(batch), guild.id)
                self.stale.add(guild.id)  # the baseline is not known to match any more
                return
            finally:
                self.settled_joins += len(batch)
            if not stale:
                self.stale.discard(guild.id)
        if program.rewards_allowed:
            # A member who comes back has lost their roles: whatever their join counts as
            # (a rejoin, nobody's, even someone else's referral), role rewards they
            # received are given again.
            for n, outcome in zip(batch, outcomes, strict=True):
                if outcome.status is not JoinStatus.DUPLICATE:
                    await self.bot.give_roles_again(program, n.person.user_id)
        self.bot.outbox.wake()

    async def _isolated(self, guild_id: int, first: float | None, last_read: float | None) -> bool:
        """Whether the reading just taken can only have moved for this window: its first
        member came more than ``member_add_lag`` after ``last_read``, and nobody comes
        within ``member_add_lag`` after this reading (waited for here, under the lock)."""
        lag = self.member_add_lag
        if first is None or last_read is None or first <= last_read + lag:
            return False
        loop = asyncio.get_running_loop()
        deadline = self.read_at[guild_id] + lag
        arrived = self.arrivals[guild_id]
        while True:
            arrived.clear()
            if self.pending.get(guild_id):
                return False
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), remaining)

    @commands.Cog.listener()
    async def on_raw_member_remove(self, payload: discord.RawMemberRemoveEvent) -> None:
        if payload.user.bot:
            return
        program = await self.bot.program_of(payload.guild_id)
        if program is None:
            return
        await self.bot.referrals.record_leave(
            LeaveEvent(program.id, payload.user.id, self.bot.clock.now())
        )
        self.bot.outbox.wake()


def newcomer(member: discord.Member) -> Newcomer:
    """A member as the engine sees a join: name, join time, account age, screening."""
    joined = member.joined_at or discord.utils.utcnow()
    return Newcomer(
        person=person_of(member),
        at=joined,
        account_created_at=member.created_at,
        pending=bool(member.pending),
        event_key=f"join:{member.id}:{int(joined.timestamp() * 1000)}",
    )
