"""Managers: /setup, /settings (and the rewards opt-in after the policy note), /review,
/post and /milestone. Every action checks Manage Server in code (``default_permissions``
is only a hint), and the engine checks it again through the port."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bots import views
from bots.discord.app import PLATFORM, ReferralBot
from bots.discord.cogs.codes import pool_named
from bots.discord.common import answer, defer, error, manager_program
from delivery.outbox import Priority, message
from referrals.locale import pick_locale
from referrals.models import EngineError, Program
from referrals.text import clean_name
from rewards.models import MilestoneNotFound, RewardKind

# /settings key -> the engine's setting; numbers, switches and words
NUMBERS = {"hold_hours", "min_account_age_days", "referrer_cap", "burst_limit", "reward_cap"}
SWITCHES = {"rewards": "rewards_opt_in", "labels": "labels_allowed", "human_check": "human_check"}
WORDS = {"leave_policy", "locale", "timezone"}
ON = {"on", "true", "yes", "1", "ya"}
OFF = {"off", "false", "no", "0", "tidak"}


# Without these the program cannot run; Manage Roles only matters for role rewards.
REQUIRED = ("manage_guild", "manage_channels", "create_instant_invite", "members_intent")


def missing_for_setup(
    guild: discord.Guild, channel: discord.abc.GuildChannel, members_intent: bool
) -> list[str]:
    """What the bot lacks here ([] when nothing): what the program needs (see
    ``REQUIRED``), and Manage Roles for role rewards."""
    me = guild.me
    perms = me.guild_permissions
    missing = []
    if not perms.manage_guild:
        missing.append("manage_guild")
    if not perms.manage_channels:
        missing.append("manage_channels")
    if not channel.permissions_for(me).create_instant_invite:
        missing.append("create_instant_invite")
    if not perms.manage_roles:
        missing.append("manage_roles")
    if not members_intent:
        missing.append("members_intent")
    return missing


class ManageCog(commands.Cog):
    def __init__(self, bot: ReferralBot) -> None:
        self.bot = bot

    # --- setup ---------------------------------------------------------------------

    @app_commands.command(name="setup", description="Set up the referral program here")
    @app_commands.describe(channel="Where readers' invites lead (this channel by default)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def setup_program(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        """Set up (or refresh) the referral program of this server (Manage Server)."""
        guild = interaction.guild
        assert guild is not None
        # The interaction carries the server's language as it is now (the cached guild's
        # may be older).
        locale = pick_locale(str(interaction.guild_locale or guild.preferred_locale))
        member = interaction.user
        if not isinstance(member, discord.Member) or not member.guild_permissions.manage_guild:
            await answer(
                self.bot, interaction, "discord_setup", views.setup("not_manager"), locale=locale
            )
            return
        target = channel or interaction.channel
        if not isinstance(target, discord.TextChannel):
            target = guild.system_channel or next(iter(guild.text_channels), None)
        if target is None:
            await error(self.bot, interaction, "platform")
            return
        await defer(interaction)
        missing = missing_for_setup(guild, target, self.bot.intents.members)
        if any(item in REQUIRED for item in missing):
            view = views.setup(
                "missing", missing=missing, channel_name=clean_name(target.name, 100)
            )
            await answer(self.bot, interaction, "discord_setup", view, locale=locale)
            return
        program, _ = await self.bot.referrals.setup_program(
            PLATFORM,
            guild.id,
            "guild",
            clean_name(guild.name, 128) or str(guild.id),
            created_by=member.id,
        )
        changes: dict[str, Any] = {"invite_channel_id": target.id}
        if program.locale != locale and program.created_by == member.id:
            changes["locale"] = locale
        program = await self.bot.referrals.update_settings(program.id, None, **changes)
        self.bot.remember_program(program)
        await self.bot.tracker.resync(guild, members=False)
        view = views.setup(
            "done",
            program_title=program.title,
            channel_name=clean_name(target.name, 100),
            rewards_opt_in=program.rewards_opt_in,
            missing=missing,
        )
        await answer(self.bot, interaction, "discord_setup", view, locale=locale)

    # --- settings ------------------------------------------------------------------

    @app_commands.command(name="settings", description="Show or change the program's rules")
    @app_commands.describe(
        key="hold_hours, min_account_age_days, leave_policy, locale, timezone, referrer_cap, "
        "burst_limit, rewards, labels",
        value="The new value (on/off for rewards and labels; none to switch a limit off)",
        acknowledge="For rewards: you read Discord's policy note",
    )
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def settings(
        self,
        interaction: discord.Interaction,
        key: str | None = None,
        value: str | None = None,
        acknowledge: bool = False,
    ) -> None:
        """Show the settings, or change one (managers only)."""
        program = await manager_program(self.bot, interaction)
        if program is None:
            return
        await defer(interaction)
        if key is None:
            await answer(
                self.bot, interaction, "discord_settings", views.discord_settings(program)
            )
            return
        key = key.strip().lower()
        if key == "rewards":
            await self._rewards_switch(interaction, program, value, acknowledge)
            return
        try:
            changes = {_setting(key): _value(key, value)}
            program = await self.bot.referrals.update_settings(
                program.id, interaction.user.id, **changes
            )
        except KeyError:
            await error(self.bot, interaction, "unknown_setting", key=key)
            return
        except ValueError as exc:
            await error(self.bot, interaction, "bad_value", key=key, message=str(exc))
            return
        except EngineError as exc:
            await answer(self.bot, interaction, "error", views.engine_error(exc))
            return
        self.bot.remember_program(program)
        view = views.discord_settings(program, saved=True)
        await answer(self.bot, interaction, "discord_settings", view)

    async def _rewards_switch(
        self,
        interaction: discord.Interaction,
        program: Program,
        value: str | None,
        acknowledge: bool,
    ) -> None:
        """Rewards for joins go on only after the manager was shown Discord's policy note
        and acknowledged it; off needs no acknowledgement."""
        turn_on = (value or "").strip().lower() in ON
        if turn_on and not acknowledge:
            note = views.rewards_policy(program, "note")
            await answer(self.bot, interaction, "discord_rewards_policy", note)
            return
        try:
            program = await self.bot.referrals.update_settings(
                program.id, interaction.user.id, rewards_opt_in=turn_on
            )
        except EngineError as exc:
            await answer(self.bot, interaction, "error", views.engine_error(exc))
            return
        self.bot.remember_program(program)
        step = "on" if turn_on else "off"
        await answer(
            self.bot, interaction, "discord_rewards_policy", views.rewards_policy(program, step)
        )

    # --- review --------------------------------------------------------------------

    @app_commands.command(name="review", description="Referrals waiting for a decision")
    @app_commands.describe(member="Decide this friend's referral", approve="Count it or not")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def review(
        self,
        interaction: discord.Interaction,
        member: discord.User | None = None,
        approve: bool | None = None,
        page: app_commands.Range[int, 1, 1000] = 1,
    ) -> None:
        """The review queue; with a member and approve, decide their referral."""
        program = await manager_program(self.bot, interaction)
        if program is None:
            return
        await defer(interaction)
        decided = []
        try:
            if member is not None and approve is not None:
                decided.append(
                    await self.bot.referrals.review(
                        program.id, member.id, interaction.user.id, approve=approve
                    )
                )
            queue = await self.bot.referrals.review_queue(program.id, page)
        except EngineError as exc:
            await answer(self.bot, interaction, "error", views.engine_error(exc))
            return
        self.bot.outbox.wake()
        await answer(
            self.bot, interaction, "review", views.review_queue(program, queue, decided=decided)
        )

    # --- post ----------------------------------------------------------------------

    @app_commands.command(name="post", description="Post the invitation in this channel")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def post(self, interaction: discord.Interaction) -> None:
        """Post the program's invitation here (readers then type /invite)."""
        program = await manager_program(self.bot, interaction)
        if program is None or interaction.channel_id is None:
            return
        await defer(interaction)
        await self.bot.outbox.add(
            [
                message(
                    PLATFORM,
                    "chat",
                    interaction.channel_id,
                    "post_invite",
                    views.post_invite(program, by_command=True),
                    priority=Priority.BULK,
                    now=self.bot.clock.now(),
                    program_id=program.id,
                    locale=program.locale,
                )
            ]
        )
        await answer(self.bot, interaction, "posted", views.posted(program, ok=True, pinned=False))

    # --- milestones ------------------------------------------------------------------

    milestone = app_commands.Group(
        name="milestone",
        description="Rewards at a number of friends",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )

    @milestone.command(name="list", description="The program's milestones")
    async def milestone_list(self, interaction: discord.Interaction) -> None:
        """The milestones (managers only)."""
        program = await manager_program(self.bot, interaction)
        if program is None:
            return
        await defer(interaction)
        items = await self.bot.rewards.milestones(program.id)
        await answer(
            self.bot, interaction, "discord_milestones", views.milestone_list(program, items)
        )

    @milestone.command(name="add", description="A reward at a number of friends")
    @app_commands.describe(
        count="Friends counted",
        title="What the reward is called",
        text="The message a reader gets",
        role="A role to give",
        pool="A coupon code from this pool (/codes add fills it)",
        question="Sent by hand: what the reader answers first (an address, a size)",
    )
    async def milestone_add(
        self,
        interaction: discord.Interaction,
        count: app_commands.Range[int, 1, 100_000],
        title: str,
        text: str | None = None,
        role: discord.Role | None = None,
        pool: str | None = None,
        question: str | None = None,
    ) -> None:
        """Add a milestone: a message, a role (the bot's role must be above it), a coupon
        code from a pool, or a reward sent by hand after the reader answers a question."""
        program = await manager_program(self.bot, interaction)
        if program is None:
            return
        if not program.rewards_allowed:
            note = views.rewards_policy(program, "note")
            await answer(self.bot, interaction, "discord_rewards_policy", note)
            return
        guild = interaction.guild
        assert guild is not None
        values: dict[str, Any] = {"count": count, "title": title}
        if sum(choice is not None for choice in (role, pool, question)) > 1:
            await error(self.bot, interaction, "one_reward")
            return
        if pool is not None:
            found = pool_named(await self.bot.rewards.pools(program.id), pool)
            if found is None:
                await error(self.bot, interaction, "pool_not_found", key=clean_name(pool, 64))
                return
            values.update(reward_kind=RewardKind.COUPON, pool_id=found.id, message=text)
        elif question is not None:
            values.update(reward_kind=RewardKind.MANUAL, question=question, message=text)
        elif role is not None:
            problem = self.bot.port.role_problem(guild, role.id)
            if problem is not None:
                await error(
                    self.bot,
                    interaction,
                    problem if problem != "not_found" else "platform",
                    role_name=clean_name(role.name, 100),
                )
                return
            values.update(reward_kind=RewardKind.ROLE, role_id=role.id, message=text)
        else:
            values.update(reward_kind=RewardKind.MESSAGE, message=text or title)
        await defer(interaction)
        try:
            _, granted = await self.bot.rewards.add_milestone(
                program.id, interaction.user.id, **values
            )
        except EngineError as exc:
            await answer(self.bot, interaction, "error", views.engine_error(exc))
            return
        items = await self.bot.rewards.milestones(program.id)
        view = views.milestone_list(program, items, saved=True, granted=granted)
        await answer(self.bot, interaction, "discord_milestones", view)

    @milestone.command(name="remove", description="Remove a milestone")
    async def milestone_remove(self, interaction: discord.Interaction, number: int) -> None:
        """Remove milestone #number (grants already made stay)."""
        program = await manager_program(self.bot, interaction)
        if program is None:
            return
        await defer(interaction)
        try:
            found = await self.bot.rewards.milestone(number)
        except MilestoneNotFound:
            found = None
        if found is None or found.program_id != program.id:
            await error(self.bot, interaction, "unknown_milestone", number=number)
            return
        try:
            await self.bot.rewards.remove_milestone(number, interaction.user.id)
        except EngineError as exc:
            await answer(self.bot, interaction, "error", views.engine_error(exc))
            return
        items = await self.bot.rewards.milestones(program.id)
        view = views.milestone_list(program, items, saved=True)
        await answer(self.bot, interaction, "discord_milestones", view)


def _setting(key: str) -> str:
    if key in SWITCHES:
        return SWITCHES[key]
    if key in NUMBERS or key in WORDS:
        return key
    raise KeyError(key)


def _value(key: str, value: str | None) -> Any:
    text = (value or "").strip()
    if key in SWITCHES:
        if text.lower() in ON:
            return True
        if text.lower() in OFF:
            return False
        raise ValueError("on or off")
    if key in NUMBERS:
        if text.lower() in ("none", "off", ""):
            return None
        try:
            return int(text)
        except ValueError:
            raise ValueError("a whole number") from None
    return text


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, ReferralBot)
    await bot.add_cog(ManageCog(bot))


__all__ = ["ManageCog", "setup"]
