"""Invites and joins: use counters move before GUILD_MEMBER_ADD, vanity, caps, rights."""

from __future__ import annotations

import discord
import pytest

from sandbox.clock import FakeClock
from sandbox.discord import DiscordWorld, permissions
from tests.sandbox_discord.conftest import Cast, RecordingBot, StartBot


def _text_channel(bot: RecordingBot, cast: Cast) -> discord.TextChannel:
    channel = bot.get_channel(cast.channel.id)
    assert isinstance(channel, discord.TextChannel)
    return channel


def _guild(bot: RecordingBot, cast: Cast) -> discord.Guild:
    guild = bot.get_guild(cast.guild.id)
    assert guild is not None
    return guild


async def test_created_invite_is_announced_with_zero_uses(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    invite = await _text_channel(bot, cast).create_invite(max_uses=5)
    assert invite.uses == 0 and invite.max_uses == 5 and invite.max_age == 0
    await bot.wait_until(lambda: bot.invites_created)
    assert bot.invites_created[0].code == invite.code and bot.invites_created[0].uses == 0
    assert [i.code for i in world.invites(cast.guild)] == [invite.code]


async def test_uses_move_before_the_delayed_member_add(
    world: DiscordWorld, cast: Cast, clock: FakeClock, start_bot: StartBot
) -> None:
    world.member_add_delay = 1.5
    bot = await start_bot()
    invite = await _text_channel(bot, cast).create_invite()
    world.join_via_invite(cast.bob, invite.code)
    counted = {i.code: i.uses for i in await _guild(bot, cast).invites()}
    assert counted == {invite.code: 1}
    assert bot.joins == [] and world.pending_events() == [f"join of bob via {invite.code}"]
    world.advance(1.5)
    await bot.wait_until(lambda: bot.joins)
    assert bot.joins[0].id == cast.bob.id


async def test_a_join_handler_that_refetches_sees_the_used_invite(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    guild = _guild(bot, cast)
    mine = await _text_channel(bot, cast).create_invite()
    other = await _text_channel(bot, cast).create_invite()
    before = {i.code: i.uses for i in await guild.invites()}
    seen: list[dict[str, int | None]] = []

    async def diff(member: discord.Member) -> None:
        seen.append({i.code: i.uses for i in await member.guild.invites()})

    bot.join_hook = diff
    world.join_via_invite(cast.bob, mine.code)
    await bot.wait_until(lambda: seen)
    moved = [code for code, uses in seen[0].items() if uses != before[code]]
    assert moved == [mine.code] and seen[0][other.code] == 0


async def test_join_without_invite_moves_no_counter(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    invite = await _text_channel(bot, cast).create_invite()
    world.join_without_invite(cast.bob, cast.guild)
    await bot.wait_until(lambda: bot.joins)
    assert [i.uses for i in await _guild(bot, cast).invites()] == [0]
    vanity = await _guild(bot, cast).vanity_invite()
    assert vanity is not None and vanity.uses == 0
    assert invite.code != "readers"


async def test_vanity_join_counts_on_the_vanity_url_only(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    guild = _guild(bot, cast)
    assert guild.vanity_url_code == "readers"
    world.join_via_vanity(cast.bob, cast.guild)
    await bot.wait_until(lambda: bot.joins)
    vanity = await guild.vanity_invite()
    assert vanity is not None and vanity.code == "readers" and vanity.uses == 1
    assert await guild.invites() == []


async def test_invite_reaching_max_uses_is_deleted(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    invite = await _text_channel(bot, cast).create_invite(max_uses=1)
    world.join_via_invite(cast.bob, invite.code)
    await bot.wait_until(lambda: bot.invites_deleted and bot.joins)
    assert bot.invites_deleted[0].code == invite.code
    assert await _guild(bot, cast).invites() == []
    gone = world.invites(cast.guild, include_deleted=True)[0]
    assert gone.uses == 1 and gone.deleted_reason == "max_uses"
    with pytest.raises(discord.NotFound):
        await bot.fetch_invite(invite.code)


async def test_invite_cap_answers_30016(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    world.invite_limit = 2  # 1000 on Discord; counted per guild by default
    bot = await start_bot()
    channel = _text_channel(bot, cast)
    await channel.create_invite()
    await channel.create_invite()
    with pytest.raises(discord.HTTPException) as refused:
        await channel.create_invite()
    assert refused.value.code == 30016
    assert refused.value.text == "Maximum number of invites reached (2)"


async def test_invite_listing_needs_manage_guild_for_uses(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    guild = _guild(bot, cast)
    await _text_channel(bot, cast).create_invite()
    base = permissions.VIEW_CHANNEL | permissions.CREATE_INSTANT_INVITE
    world.set_role_permissions(cast.bot_role, base | permissions.VIEW_AUDIT_LOG)
    listed = await guild.invites()
    assert len(listed) == 1 and listed[0].uses is None and listed[0].max_uses is None
    world.set_role_permissions(cast.bot_role, base)
    before = world.invalid_requests
    with pytest.raises(discord.Forbidden) as refused:
        await guild.invites()
    assert refused.value.code == 50013
    assert world.invalid_requests == before + 1


async def test_invite_events_need_manage_channels(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    rights = (
        permissions.VIEW_CHANNEL | permissions.CREATE_INSTANT_INVITE | permissions.MANAGE_GUILD
    )
    world.set_role_permissions(cast.bot_role, rights)
    bot = await start_bot()
    invite = await _text_channel(bot, cast).create_invite()
    await invite.delete()
    assert world.gateway_events(cast.app, "INVITE_CREATE") == []
    assert world.gateway_events(cast.app, "INVITE_DELETE") == []
    assert world.invites(cast.guild) == []


async def test_deleted_and_expired_invites_are_unknown(
    world: DiscordWorld, cast: Cast, clock: FakeClock, start_bot: StartBot
) -> None:
    bot = await start_bot()
    channel = _text_channel(bot, cast)
    deleted = await channel.create_invite()
    await deleted.delete()
    await bot.wait_until(lambda: bot.invites_deleted)
    expiring = await channel.create_invite(max_age=60)
    fetched = await bot.fetch_invite(expiring.code)
    assert fetched.uses is None  # GET /invites/{code} carries no metadata
    clock.advance(61)
    with pytest.raises(discord.NotFound):
        await bot.fetch_invite(expiring.code)
    with pytest.raises(discord.NotFound):
        await bot.fetch_invite(deleted.code)
