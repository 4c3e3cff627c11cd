"""Rewards on Discord through the real bot and the sandbox: a role reward given once, given
again when the member rejoins and by /rewards; a role the bot cannot give waits; DMs
closed (50007) make a reader unreachable until their next command, which shows what waits
for them; opening DMs too fast (40003) backs off every DM open."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sandbox.discord import DiscordUser, Role
from storage.schema import grants, outbox, people
from tests.bots_discord.conftest import Discord
from tests.helpers.discord_people import ask, invite_code, member, rows

ROLE_PUT = "PUT /guilds/{guild_id}/members/{user_id}/roles/{role_id}"
DM_OPEN = "POST /users/@me/channels"


def bot_role(dc: Discord) -> Role:
    return next(r for r in dc.guild.roles.values() if r.bot_id == dc.sandbox_app.id)


def has_role(dc: Discord, user: DiscordUser, role: Role) -> bool:
    found = dc.world.member_of(dc.guild, user)
    return found is not None and role.id in found.roles


async def move_bot_role(dc: Discord, position: int) -> None:
    """A manager drags the bot's role in Server Settings → Roles; the bot's cache follows."""
    role = bot_role(dc)
    role.position = position
    dc.world.set_role_permissions(role, role.permissions)
    guild = dc.bot.get_guild(dc.guild.id)
    assert guild is not None
    await dc.world.wait_for(lambda: guild.me.top_role.position == position)


@pytest.fixture
async def rewarding(set_up: Discord) -> tuple[Discord, Role]:
    """Rewards on (after the policy note), no hold period, and a milestone at one friend
    that gives the role Reader (below the bot's own role)."""
    dc = set_up
    await dc.slash(dc.owner, "settings", {"key": "rewards", "value": "on", "acknowledge": True})
    await dc.slash(dc.owner, "settings", {"key": "hold_hours", "value": "0"})
    reader = dc.world.add_role(dc.guild, "Reader")
    await move_bot_role(dc, reader.position + 1)
    text = await dc.slash(
        dc.owner,
        "milestone add",
        {"count": 1, "title": "Reader role", "text": "Welcome, reader", "role": reader},
    )
    assert "Reader role — 1 friend, role" in text, text
    return dc, reader


async def bring_a_friend(dc: Discord, reader: DiscordUser, name: str = "bob") -> DiscordUser:
    code = await invite_code(dc, reader)
    friend = dc.world.add_user(name, name.title())
    settled = dc.bot.tracker.settled_joins
    dc.world.join_via_invite(friend, code)
    await dc.joins_settled(settled + 1)
    return friend


async def test_a_role_reward_is_given_once_and_told_once(rewarding: tuple[Discord, Role]) -> None:
    dc, reader_role = rewarding
    alice = member(dc, "alice", "Alice")
    await bring_a_friend(dc, alice)
    await dc.app.tick()
    await dc.world.wait_for(lambda: has_role(dc, alice, reader_role), what="the role")
    dm = await dc.world.wait_for_dm(alice, contains="You earned", since=0)
    assert "Reader role" in dm.content and "Welcome, reader" in dm.content
    await dc.app.outbox.wait_idle()
    [grant] = await rows(dc, grants)
    assert grant["state"] == "delivered"

    for _ in range(2):
        dc.clock.advance(timedelta(minutes=5))
        await dc.app.tick()
        await dc.app.outbox.wait_idle()
    assert len(dc.world.calls(ROLE_PUT)) == 1
    assert len([m for m in dc.world.dms(alice) if "You earned" in m.content]) == 1


async def test_the_role_is_given_again_when_the_rewarded_member_rejoins(
    rewarding: tuple[Discord, Role],
) -> None:
    dc, reader_role = rewarding
    alice = member(dc, "alice", "Alice")
    await bring_a_friend(dc, alice)
    await dc.app.tick()
    await dc.world.wait_for(lambda: has_role(dc, alice, reader_role), what="the role")

    dc.world.leave(alice, dc.guild)
    settled = dc.bot.tracker.settled_joins
    dc.world.join_without_invite(alice, dc.guild)  # a member comes back with no roles
    await dc.joins_settled(settled + 1)
    await dc.world.wait_for(lambda: has_role(dc, alice, reader_role), what="the role again")
    assert len(await rows(dc, grants)) == 1  # given again, not earned again


async def test_rewards_lists_the_reward_and_gives_a_lost_role_again(
    rewarding: tuple[Discord, Role],
) -> None:
    dc, reader_role = rewarding
    alice = member(dc, "alice", "Alice")
    await bring_a_friend(dc, alice)
    await dc.app.tick()
    await dc.world.wait_for(lambda: has_role(dc, alice, reader_role), what="the role")
    found = dc.world.member_of(dc.guild, alice)
    assert found is not None
    found.roles.remove(reader_role.id)  # a moderator took it away
    dc.world.dispatch_member_update(dc.guild, found)

    _, answer = await ask(dc, alice, "rewards")
    assert answer.ephemeral
    assert "• Reader role (1 friend): received" in answer.content
    assert has_role(dc, alice, reader_role)


async def test_a_role_the_bot_cannot_give_waits_until_the_manager_fixes_it(
    rewarding: tuple[Discord, Role],
) -> None:
    dc, reader_role = rewarding
    await move_bot_role(dc, reader_role.position - 1)  # now below the reward's role
    alice = member(dc, "alice", "Alice")
    await bring_a_friend(dc, alice)
    await dc.app.tick()
    [grant] = await rows(dc, grants)
    assert grant["state"] == "unlocked" and grant["delivery_error"] == "role_above"
    assert not has_role(dc, alice, reader_role)
    assert dc.world.calls(ROLE_PUT) == []  # never asked Discord for what it would refuse

    await move_bot_role(dc, reader_role.position + 1)
    dc.clock.advance(timedelta(minutes=10))
    await dc.app.tick()
    await dc.world.wait_for(lambda: has_role(dc, alice, reader_role), what="the role")
    await dc.world.wait_for_dm(alice, contains="You earned", since=0)
    await dc.app.outbox.wait_idle()
    [grant] = await rows(dc, grants)
    assert grant["state"] == "delivered"


async def test_closed_dms_make_the_reader_unreachable_until_their_next_command(
    rewarding: tuple[Discord, Role],
) -> None:
    dc, _ = rewarding
    alice = member(dc, "alice", "Alice", dms_open=False)
    await bring_a_friend(dc, alice)
    await dc.app.tick()
    await dc.app.outbox.wait_idle()
    [person] = await rows(dc, people, user_id=alice.id)
    assert person["blocked_at"] is not None
    [grant] = await rows(dc, grants)
    assert grant["state"] == "undeliverable"
    assert any(c.code == 50007 for c in dc.world.calls("POST /channels/{channel_id}/messages"))

    alice.dms_open = True
    _, answer = await ask(dc, alice, "rewards")
    assert answer.ephemeral
    assert "• Reader role (1 friend):" in answer.content
    assert "My direct messages to you did not arrive" in answer.content
    [person] = await rows(dc, people, user_id=alice.id)
    assert person["blocked_at"] is None
    await dc.app.tick()
    dm = await dc.world.wait_for_dm(alice, contains="You earned", since=0)
    assert "Reader role" in dm.content


async def test_any_next_command_shows_what_waits_for_an_unreachable_reader(
    rewarding: tuple[Discord, Role],
) -> None:
    dc, _ = rewarding
    alice = member(dc, "alice", "Alice", dms_open=False)
    await bring_a_friend(dc, alice)
    await dc.app.tick()
    await dc.app.outbox.wait_idle()
    record = dc.world.invoke_slash(alice, dc.channel, "stats")
    shown = await dc.world.wait_for_messages_of(record, 2)
    assert all(m.ephemeral for m in shown)
    assert "**Your referrals — Readers**" in shown[0].content
    assert "• Reader role (1 friend):" in shown[1].content
    assert "My direct messages to you did not arrive" in shown[1].content


async def test_opening_dms_too_fast_backs_off_every_dm_open(set_up: Discord) -> None:
    dc = set_up
    dc.world.dm_open_limit = (1, 60.0)
    readers = [member(dc, f"reader{n}", f"Reader {n}") for n in range(3)]
    codes = [await invite_code(dc, reader) for reader in readers]
    for code in codes:  # each invite deleted in the server: each reader is told by DM
        invite = dc.world.live_invite(code)
        assert invite is not None
        dc.world.delete_invite(invite)
    await dc.world.wait_for(lambda: len(dc.world.calls(DM_OPEN)) >= 2, what="two DM opens")
    await dc.app.outbox.wait_idle()
    opens = dc.world.calls(DM_OPEN)
    assert [c.code for c in opens] == [None, 40003]  # the third was never tried
    told = await rows(dc, outbox, template="invite_revoked")
    assert sorted(r["state"] for r in told) == ["queued", "queued", "sent"]
    waiting = [r for r in told if r["state"] == "queued"]
    for row in waiting:  # the first refused, the other waited out the same back-off
        assert 59 < float(row["last_error"].removeprefix("retry after ").rstrip("s")) <= 60


async def test_with_rewards_turned_off_again_a_milestone_reached_gives_nothing(
    rewarding: tuple[Discord, Role],
) -> None:
    dc, reader_role = rewarding
    off = await dc.slash(dc.owner, "settings", {"key": "rewards", "value": "off"})
    assert "Rewards are off" in off
    alice = member(dc, "alice", "Alice")
    await bring_a_friend(dc, alice)
    await dc.app.tick()
    await dc.app.outbox.wait_idle()
    assert await rows(dc, grants) == []
    assert not has_role(dc, alice, reader_role)
    assert "Rewards are not on in this server." in await dc.slash(alice, "rewards")
