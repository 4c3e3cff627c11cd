"""REST semantics: DMs and their refusals, role hierarchy, 429s, the raw HTTP contract."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest

from sandbox.clock import FakeClock
from sandbox.discord import (
    DiscordEndpoints,
    DiscordRateLimits,
    DiscordSandboxServer,
    DiscordWorld,
    permissions,
)
from tests.sandbox_discord.conftest import Cast, StartBot


def _member(bot: discord.Client, cast: Cast, user_id: int) -> discord.Member:
    guild = bot.get_guild(cast.guild.id)
    assert guild is not None
    member = guild.get_member(user_id)
    assert member is not None
    return member


async def test_dm_reaches_a_member(world: DiscordWorld, cast: Cast, start_bot: StartBot) -> None:
    bot = await start_bot()
    await _member(bot, cast, cast.alice.id).send("your link: https://discord.gg/abc")
    message = await world.wait_for_dm(cast.alice, since=0)
    assert message.content == "your link: https://discord.gg/abc"
    assert world.dms(cast.alice, cast.app) == [message]


async def test_dm_refused_when_closed_or_no_shared_guild(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    stranger = world.add_user("stranger")
    bot = await start_bot()
    cast.alice.dms_open = False
    with pytest.raises(discord.Forbidden) as closed:
        await _member(bot, cast, cast.alice.id).send("hi")
    assert closed.value.code == 50007 and closed.value.text == "Cannot send messages to this user"
    user = await bot.fetch_user(stranger.id)
    with pytest.raises(discord.Forbidden) as apart:
        await user.send("hi")
    assert apart.value.code == 50007
    assert world.dms(cast.alice) == [] and world.invalid_request_count() == 2


async def test_opening_dms_too_fast_answers_40003(
    world: DiscordWorld, cast: Cast, clock: FakeClock, start_bot: StartBot
) -> None:
    world.dm_open_limit = (1, 10.0)
    world.add_member(cast.guild, cast.bob)
    bot = await start_bot()
    await _member(bot, cast, cast.alice.id).send("one")
    bob = await bot.fetch_user(cast.bob.id)
    with pytest.raises(discord.HTTPException) as refused:
        await bob.send("two")
    assert refused.value.code == 40003
    clock.advance(10)
    await bob.send("two")
    assert [m.content for m in world.dms(cast.bob)] == ["two"]


async def test_role_grant_follows_the_hierarchy(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    above = world.add_role(cast.guild, "Moderator", position=cast.bot_role.position + 1)
    bot = await start_bot()
    alice = _member(bot, cast, cast.alice.id)
    await alice.add_roles(discord.Object(cast.reader_role.id))
    assert cast.reader_role.id in cast.guild.members[cast.alice.id].roles
    with pytest.raises(discord.Forbidden) as refused:
        await alice.add_roles(discord.Object(above.id))
    assert refused.value.code == 50013
    await alice.remove_roles(discord.Object(cast.reader_role.id))
    assert cast.guild.members[cast.alice.id].roles == []


async def test_role_grant_needs_manage_roles(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    world.set_role_permissions(cast.bot_role, permissions.VIEW_CHANNEL)
    bot = await start_bot()
    with pytest.raises(discord.Forbidden) as refused:
        await _member(bot, cast, cast.alice.id).add_roles(discord.Object(cast.reader_role.id))
    assert refused.value.code == 50013
    roles = await bot.get_guild(cast.guild.id).fetch_roles()  # type: ignore[union-attr]
    assert {r.name for r in roles} >= {"@everyone", "Reader", "Invite Loop"}


async def test_channel_send_needs_send_messages(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    channel = bot.get_channel(cast.channel.id)
    assert isinstance(channel, discord.TextChannel)
    await channel.send("weekly board")
    assert [m.content for m in world.channel_messages(cast.channel)] == ["weekly board"]
    world.set_overwrite(cast.channel, cast.bot_role, deny=permissions.SEND_MESSAGES)
    with pytest.raises(discord.Forbidden) as refused:
        await channel.send("again")
    assert refused.value.code == 50013


async def test_429_is_retried_by_discord_py(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    channel = bot.get_channel(cast.channel.id)
    assert isinstance(channel, discord.TextChannel)
    route = "POST /channels/{channel_id}/messages"
    world.inject_rate_limit(route, times=2, retry_after=0.01)
    before = world.invalid_requests
    await channel.send("after two refusals")
    assert [c.status for c in world.calls(route)] == [429, 429, 200]
    assert world.invalid_requests == before + 2
    assert [m.content for m in world.channel_messages(cast.channel)] == ["after two refusals"]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_configured_bucket_limits_on_the_clock(http: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    limits = DiscordRateLimits(routes={"GET /users/@me": (2, 10.0)})
    world = DiscordWorld(clock=clock, rate_limits=limits)
    app = world.add_application("Limited")
    async with DiscordSandboxServer(world) as server:
        url = f"{server.endpoints.rest_base}/users/@me"
        auth = {"Authorization": f"Bot {app.token}"}
        for remaining in ("1", "0"):
            async with http.get(url, headers=auth) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "application/json"
                assert response.headers["X-RateLimit-Remaining"] == remaining
        async with http.get(url, headers=auth) as response:
            body = await response.json()
            assert response.status == 429 and response.headers["Via"]
            assert body["retry_after"] == 10.0 and body["global"] is False
            assert response.headers["X-RateLimit-Scope"] == "user"
            assert response.headers["Retry-After"] == "10"
        clock.advance(10)
        async with http.get(url, headers=auth) as response:
            assert response.status == 200
        async with http.get(url, headers={"Authorization": "Bot wrong"}) as response:
            assert response.status == 401
            assert await response.json() == {"message": "401: Unauthorized", "code": 0}
        async with http.get(f"{server.endpoints.rest_base}/gateway/bot", headers=auth) as response:
            assert (await response.json())["url"] == server.endpoints.gateway_url
    assert world.invalid_requests == 2


def test_endpoints_helper_names_rest_base_and_gateway() -> None:
    endpoints = DiscordEndpoints.for_server("http://127.0.0.1:8123")
    assert endpoints.rest_base == "http://127.0.0.1:8123/api/v10"
    assert endpoints.gateway_url == "ws://127.0.0.1:8123/gateway"


async def test_global_429_holds_every_route_then_retries(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    world.inject_rate_limit(None, retry_after=0.01, is_global=True)
    user = await bot.fetch_user(cast.alice.id)
    assert user.name == "alice"
    [refused, answered] = world.calls("GET /users/{user_id}")
    assert (refused.status, answered.status) == (429, 200)


async def test_member_list_needs_the_members_intent_enabled(
    world: DiscordWorld, cast: Cast, start_bot: StartBot
) -> None:
    bot = await start_bot()
    guild = bot.get_guild(cast.guild.id)
    assert guild is not None
    listed = [m.id async for m in guild.fetch_members(limit=None)]
    assert sorted(listed) == sorted(cast.guild.members)
    cast.app.intents_enabled = 0
    with pytest.raises(discord.Forbidden) as refused:
        [m async for m in guild.fetch_members(limit=None)]
    assert refused.value.code == 50001
    fetched = await guild.fetch_member(cast.alice.id)
    assert fetched.id == cast.alice.id
