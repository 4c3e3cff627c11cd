"""Managers' commands through the real bot and the Discord sandbox: /setup (what the bot
lacks, in the server's language), /settings (with the rewards opt-in behind Discord's
policy note), /milestone add|list|remove (role hierarchy), /review and /post; and every
manager command refused, changing nothing, for a member without Manage Server."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.discord import Role, permissions
from storage.schema import links, milestones, outbox, programs, referrals
from tests.bots_discord.conftest import BOT_PERMISSIONS, Discord
from tests.helpers.discord_people import ask, invite_code, member, program_row, rows


def bot_role(dc: Discord) -> Role:
    return next(r for r in dc.guild.roles.values() if r.bot_id == dc.sandbox_app.id)


def move_role(dc: Discord, role: Role, position: int) -> None:
    """Move a role in Server Settings → Roles (GUILD_ROLE_UPDATE)."""
    role.position = position
    dc.world.set_role_permissions(role, role.permissions)


async def wait_for_bot(dc: Discord, check: Any) -> None:
    """Wait until the bot's cache has seen a change the world announced."""
    await dc.world.wait_for(check, what="the bot's cache")


# --- /setup -----------------------------------------------------------------------------


async def test_setup_names_exactly_what_the_bot_lacks_and_sets_nothing_up(dc: Discord) -> None:
    dc.world.set_role_permissions(
        bot_role(dc), permissions.VIEW_CHANNEL | permissions.SEND_MESSAGES
    )
    dc.world.set_overwrite(dc.channel, bot_role(dc), deny=permissions.CREATE_INSTANT_INVITE)
    await wait_for_bot(
        dc, lambda: not dc.bot.get_guild(dc.guild.id).me.guild_permissions.manage_guild
    )  # type: ignore[union-attr]
    _, answer = await ask(dc, dc.owner, "setup")
    assert answer.ephemeral
    lines = answer.content.splitlines()
    assert lines[0] == "I cannot run the referral program here yet. Missing:"
    assert lines[1:5] == [
        "• Manage Server (to read how often each invite was used)",
        "• Manage Channels (to hear when invites are made or deleted)",
        "• Create Invite in #general",
        "• Manage Roles (role rewards)",
    ]
    assert len(lines) == 6  # nothing else is missing: the members intent is there
    assert await rows(dc, programs) == []


async def test_setup_speaks_the_servers_language(dc: Discord) -> None:
    dc.guild.preferred_locale = "id"
    dc.world.set_role_permissions(
        bot_role(dc), BOT_PERMISSIONS & ~permissions.MANAGE_GUILD & ~permissions.MANAGE_ROLES
    )
    await wait_for_bot(
        dc, lambda: not dc.bot.get_guild(dc.guild.id).me.guild_permissions.manage_guild
    )  # type: ignore[union-attr]
    refused = await dc.slash(dc.owner, "setup")
    assert refused.splitlines()[:3] == [
        "Saya belum bisa menjalankan program referral di sini. Yang kurang:",
        "• Kelola Server (untuk membaca berapa kali tiap undangan dipakai)",
        "• Kelola Peran (hadiah peran)",
    ]
    dc.world.set_role_permissions(bot_role(dc), BOT_PERMISSIONS)
    await wait_for_bot(dc, lambda: dc.bot.get_guild(dc.guild.id).me.guild_permissions.manage_guild)  # type: ignore[union-attr]
    done = await dc.slash(dc.owner, "setup")
    assert "sudah siap" in done
    assert (await program_row(dc))["locale"] == "id"


async def test_setup_without_manage_roles_runs_and_says_role_rewards_need_it(
    dc: Discord,
) -> None:
    dc.world.set_role_permissions(bot_role(dc), BOT_PERMISSIONS & ~permissions.MANAGE_ROLES)
    await wait_for_bot(
        dc, lambda: not dc.bot.get_guild(dc.guild.id).me.guild_permissions.manage_roles
    )  # type: ignore[union-attr]
    done = await dc.slash(dc.owner, "setup")
    assert "is set up" in done
    assert "Role rewards need the Manage Roles permission" in done
    assert (await program_row(dc))["invite_channel_id"] == dc.channel.id


async def test_without_the_members_intent_the_bot_still_answers_setup_with_what_is_missing(
    dc: Discord,
) -> None:
    # The intent is switched off in the Developer Portal; the next IDENTIFY gets 4014.
    dc.sandbox_app.intents_enabled = 0
    dc.world.invalidate_sessions(dc.sandbox_app)
    await dc.world.wait_for(
        lambda: any(c.close_code == 4014 for c in dc.world.connections), what="4014"
    )
    await dc.world.wait_until_connected(dc.sandbox_app)
    await dc.world.wait_for(lambda: dc.bot.is_ready() and not dc.bot.intents.members)
    text = await dc.slash(dc.owner, "setup")
    assert text.splitlines()[1] == (
        "• the Server Members intent (Developer Portal → Bot → Privileged Gateway Intents), "
        "then restart the bot"
    )
    assert await rows(dc, programs) == []


# --- /settings ----------------------------------------------------------------------------


async def test_settings_show_every_discord_setting_and_the_key_that_changes_it(
    set_up: Discord,
) -> None:
    dc = set_up
    text = await dc.slash(dc.owner, "settings")
    assert text.splitlines() == [
        "⚙️ **Settings — Readers**",
        "Hold period (hold\\_hours): 48 hours",
        "Minimum account age (min\\_account\\_age\\_days): 0 days",
        "Leavers after confirmation (leave\\_policy): keep counting",
        "Language (locale): English",
        "Timezone (timezone): UTC",
        "Friends counted per reader at most (referrer\\_cap): no limit",
        "Joins through one reader within 60 minutes before a manager reviews the rest "
        "(burst\\_limit): no limit",
        "Labelled invites besides each reader's one (labels): off",
        "Rewards for joins (rewards): off (shown Discord's policy note first)",
        "Change one with /settings key:hold\\_hours value:72 (none switches a limit off).",
    ]
    assert "Join mode" not in text and "Tap" not in text  # Telegram's, not Discord's


async def test_settings_change_one_value_and_refuse_bad_ones_changing_nothing(
    set_up: Discord,
) -> None:
    dc = set_up
    saved = await dc.slash(dc.owner, "settings", {"key": "hold_hours", "value": "0"})
    assert "Hold period (hold\\_hours): 0 hours" in saved and "Saved." in saved
    saved = await dc.slash(dc.owner, "settings", {"key": "referrer_cap", "value": "5"})
    assert "(referrer\\_cap): 5" in saved
    before = await program_row(dc)
    assert (before["hold_hours"], before["referrer_cap"]) == (0, 5)

    unknown = await dc.slash(dc.owner, "settings", {"key": "colour", "value": "red"})
    assert unknown.startswith("There is no setting colour.")
    bad = await dc.slash(dc.owner, "settings", {"key": "hold_hours", "value": "soon"})
    assert bad == "hold\\_hours: a whole number"
    bad_switch = await dc.slash(dc.owner, "settings", {"key": "labels", "value": "maybe"})
    assert bad_switch == "labels: on or off"
    after = await program_row(dc)
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }


async def test_rewards_stay_off_until_the_manager_acknowledges_the_policy_note(
    set_up: Discord,
) -> None:
    dc = set_up
    refused = await dc.slash(dc.owner, "milestone add", {"count": 3, "title": "Sticker"})
    assert "**Before you turn rewards on**" in refused
    assert await rows(dc, milestones) == []

    note = await dc.slash(dc.owner, "settings", {"key": "rewards", "value": "on"})
    assert "platform manipulation" in note
    assert "acknowledge:True" in note
    assert (await program_row(dc))["rewards_opt_in"] is False

    on = await dc.slash(
        dc.owner, "settings", {"key": "rewards", "value": "on", "acknowledge": True}
    )
    assert on.startswith("✅ Rewards are on for **Readers**")
    assert (await program_row(dc))["rewards_opt_in"] is True
    added = await dc.slash(dc.owner, "milestone add", {"count": 3, "title": "Sticker"})
    assert "#" in added and "Sticker — 3 friends, message" in added
    assert [m["title"] for m in await rows(dc, milestones)] == ["Sticker"]

    off = await dc.slash(dc.owner, "settings", {"key": "rewards", "value": "off"})
    assert off.startswith("Rewards are off for **Readers**")
    assert (await program_row(dc))["rewards_opt_in"] is False


# --- /milestone ---------------------------------------------------------------------------


@pytest.fixture
async def rewards_on(set_up: Discord) -> Discord:
    dc = set_up
    text = await dc.slash(
        dc.owner, "settings", {"key": "rewards", "value": "on", "acknowledge": True}
    )
    assert "Rewards are on" in text
    return dc


async def test_a_role_above_the_bots_own_is_refused_with_what_to_do(rewards_on: Discord) -> None:
    dc = rewards_on
    vip = dc.world.add_role(dc.guild, "VIP")  # above every role, the bot's included
    await wait_for_bot(dc, lambda: dc.bot.get_guild(dc.guild.id).get_role(vip.id))  # type: ignore[union-attr]
    text = await dc.slash(
        dc.owner, "milestone add", {"count": 5, "title": "VIP for 5", "role": vip}
    )
    assert text == (
        "I cannot give the role VIP: it is not below my highest role. "
        "Move my role above it in Server Settings → Roles."
    )
    assert await rows(dc, milestones) == []

    # The bot's own (managed) role, and @everyone, cannot be rewards either.
    for role in (bot_role(dc), dc.guild.everyone):
        text = await dc.slash(dc.owner, "milestone add", {"count": 5, "title": "x", "role": role})
        assert "I cannot give the role" in text
    assert await rows(dc, milestones) == []

    move_role(dc, bot_role(dc), vip.position + 1)
    await wait_for_bot(
        dc,
        lambda: dc.bot.get_guild(dc.guild.id).me.top_role.position > vip.position,  # type: ignore[union-attr]
    )
    text = await dc.slash(dc.owner, "milestone add", {"count": 5, "title": "VIP", "role": vip})
    assert "VIP — 5 friends, role" in text
    [row] = await rows(dc, milestones)
    assert (row["role_id"], row["reward_kind"], row["count"]) == (vip.id, "role", 5)


async def test_milestone_list_and_remove(rewards_on: Discord) -> None:
    dc = rewards_on
    assert "None yet: /milestone add" in await dc.slash(dc.owner, "milestone list")
    await dc.slash(dc.owner, "milestone add", {"count": 3, "title": "Sticker"})
    await dc.slash(dc.owner, "milestone add", {"count": 10, "title": "Mug"})
    listed = await dc.slash(dc.owner, "milestone list")
    first, second = await rows(dc, milestones)
    assert f"#{first['id']} Sticker — 3 friends, message" in listed
    assert f"#{second['id']} Mug — 10 friends, message" in listed

    removed = await dc.slash(dc.owner, "milestone remove", {"number": first["id"]})
    assert "Sticker" not in removed and "Mug" in removed
    unknown = await dc.slash(dc.owner, "milestone remove", {"number": 999_999})
    assert unknown == "There is no milestone #999999 in this server."
    assert [m["title"] for m in await rows(dc, milestones) if m["removed_at"] is None] == ["Mug"]


# --- /review and /post --------------------------------------------------------------------


async def test_review_lists_held_referrals_and_decides_one(set_up: Discord) -> None:
    dc = set_up
    await dc.slash(dc.owner, "settings", {"key": "burst_limit", "value": "1"})
    alice = member(dc, "alice", "Alice")
    code = await invite_code(dc, alice)
    bob, cat = dc.world.add_user("bob", "Bob"), dc.world.add_user("cat", "Cat")
    dc.world.join_via_invite(bob, code)
    await dc.joins_settled(1)
    dc.world.join_via_invite(cat, code)
    await dc.joins_settled(2)
    states = {r["referred_id"]: r["state"] for r in await rows(dc, referrals)}
    assert states == {bob.id: "pending", cat.id: "held"}

    queue = await dc.slash(dc.owner, "review")
    assert "1 referral waits for a manager" in queue
    assert "**Cat** via **Alice**" in queue
    decided = await dc.slash(dc.owner, "review", {"member": cat, "approve": True})
    assert "Done: 1 approved." in decided and "Nothing is waiting for a review." in decided
    states = {r["referred_id"]: r["state"] for r in await rows(dc, referrals)}
    assert states == {bob.id: "pending", cat.id: "confirmed"}


async def test_post_puts_the_invitation_in_the_channel_for_everyone(set_up: Discord) -> None:
    dc = set_up
    _, answer = await ask(dc, dc.owner, "post")
    assert answer.ephemeral and answer.content == "Posted in Readers."
    posted = await dc.world.wait_for_message(dc.channel, contains="Invite your friends", since=0)
    assert not posted.ephemeral and posted.author_id == dc.sandbox_app.user.id
    assert "Type /invite to get your personal link" in posted.content


# --- the manager check, in code -------------------------------------------------------------

MANAGER_COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("setup", {}),
    ("settings", {}),
    ("settings", {"key": "hold_hours", "value": "1"}),
    ("settings", {"key": "rewards", "value": "on", "acknowledge": True}),
    ("settings", {"key": "labels", "value": "on"}),
    ("milestone add", {"count": 1, "title": "Free"}),
    ("milestone list", {}),
    ("milestone remove", {"number": 1}),
    ("review", {}),
    ("post", {}),
]


async def _state(dc: Discord) -> dict[str, Any]:
    program = await program_row(dc)
    program.pop("updated_at")
    return {
        "program": program,
        "milestones": await rows(dc, milestones),
        "outbox": await rows(dc, outbox),
        "links": await rows(dc, links),
        "messages": len(dc.world.channel_messages(dc.channel, include_ephemeral=False)),
    }


@pytest.mark.parametrize(("command", "options"), MANAGER_COMMANDS)
async def test_a_member_without_manage_server_is_refused_and_nothing_changes(
    rewards_on: Discord, command: str, options: dict[str, Any]
) -> None:
    dc = rewards_on
    await dc.slash(dc.owner, "milestone add", {"count": 2, "title": "Kept"})
    mallory = member(dc, "mallory", "Mallory")
    if command == "review":
        options = {"member": dc.owner, "approve": False}
    before = await _state(dc)
    _, answer = await ask(dc, mallory, command, options)
    assert answer.ephemeral
    assert "Manage Server permission" in answer.content
    assert await _state(dc) == before
