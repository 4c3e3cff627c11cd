"""Readers' commands through the real bot and the Discord sandbox: /invite (one invite a
reader unless labels are allowed, reused, pruned at Discord's invite cap, revoked when
deleted), /stats, /forget and /help — every answer ephemeral."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage.schema import join_attempts, links, outbox, people, referrals
from tests.bots_discord.conftest import Discord
from tests.helpers.discord_people import ask, code_in, invite_code, member, rows


async def test_invite_is_ephemeral_and_the_same_invite_comes_back(set_up: Discord) -> None:
    dc = set_up
    alice = member(dc, "alice", "Alice")
    record, first = await ask(dc, alice, "invite")
    assert first.ephemeral and record.responses[0].ephemeral
    assert "**Your invite link for Readers**" in first.content
    assert "This link is new." in first.content
    code = code_in(first.content)
    [invite] = dc.world.invites(dc.guild)
    assert (invite.code, invite.max_age, invite.max_uses, invite.channel_id) == (
        code,
        0,
        0,
        dc.channel.id,
    )

    _, again = await ask(dc, alice, "invite")
    assert code_in(again.content) == code
    assert "This link is new." not in again.content
    assert len(dc.world.invites(dc.guild)) == 1  # reused, not a second invite
    [link] = await rows(dc, links)
    assert (link["referrer_id"], link["label"]) == (alice.id, "")
    assert link["url"] == f"https://discord.gg/{code}"


async def test_a_label_is_refused_until_the_manager_allows_labels(set_up: Discord) -> None:
    dc = set_up
    alice = member(dc, "alice", "Alice")
    plain = await invite_code(dc, alice)
    refused = await dc.slash(alice, "invite", {"label": "whatsapp"})
    assert "each reader has one invite" in refused
    assert "/settings key:labels value:on" in refused
    assert [r["label"] for r in await rows(dc, links)] == [""]
    assert len(dc.world.invites(dc.guild)) == 1

    saved = await dc.slash(dc.owner, "settings", {"key": "labels", "value": "on"})
    assert "Saved." in saved
    labelled = await invite_code(dc, alice, "whatsapp")
    assert labelled != plain
    assert sorted(r["label"] for r in await rows(dc, links)) == ["", "whatsapp"]
    assert await invite_code(dc, alice, "whatsapp") == labelled  # reused too


async def test_at_the_invite_cap_idle_readers_invites_are_pruned_and_they_are_told(
    set_up: Discord,
) -> None:
    dc = set_up
    idle = [member(dc, f"idle{n}", f"Idle {n}") for n in range(2)]
    idle_codes = [await invite_code(dc, reader) for reader in idle]
    dc.world.invite_limit = 2  # the server is at Discord's cap (30016 from now on)
    dc.clock.advance(timedelta(days=91))
    dc.world.advance(91 * 86400)

    newcomer = member(dc, "nora", "Nora")
    code = await invite_code(dc, newcomer)
    assert {i.code for i in dc.world.invites(dc.guild)} == {code}  # at most 25 pruned
    by_reader = {r["referrer_id"]: r for r in await rows(dc, links)}
    assert by_reader[newcomer.id]["revoked_at"] is None
    assert all(by_reader[r.id]["revoked_at"] is not None for r in idle)
    for reader, old in zip(idle, idle_codes, strict=True):
        dm = await dc.world.wait_for_dm(reader, contains="no longer works", since=0)
        assert "unused for a long time" in dm.content
        assert dc.world.live_invite(old) is None
    # A pruned reader gets a new invite on their next /invite.
    assert await invite_code(dc, idle[0]) not in idle_codes


async def test_at_the_invite_cap_with_nobody_idle_the_reader_is_told_and_nothing_changes(
    set_up: Discord,
) -> None:
    dc = set_up
    busy = member(dc, "busy", "Busy")
    kept = await invite_code(dc, busy)
    dc.world.invite_limit = 1
    late = member(dc, "late", "Late")
    text = await dc.slash(late, "invite")
    assert "reached Discord's limit on invites (error 30016" in text
    assert [(r["referrer_id"], r["revoked_at"]) for r in await rows(dc, links)] == [
        (busy.id, None)
    ]
    assert [i.code for i in dc.world.invites(dc.guild)] == [kept]


async def test_an_invite_deleted_in_the_server_is_revoked_and_its_reader_told(
    set_up: Discord,
) -> None:
    dc = set_up
    alice = member(dc, "alice", "Alice")
    code = await invite_code(dc, alice)
    invite = dc.world.live_invite(code)
    assert invite is not None
    dc.world.delete_invite(invite)
    dm = await dc.world.wait_for_dm(alice, contains="no longer works", since=0)
    assert "it was deleted in the server" in dm.content
    [link] = await rows(dc, links)
    assert link["revoked_at"] is not None
    fresh = await invite_code(dc, alice)
    assert fresh != code and dc.world.live_invite(fresh) is not None


async def test_stats_lists_each_friend_and_where_they_stand(set_up: Discord) -> None:
    dc = set_up
    alice = member(dc, "alice", "Alice")
    code = await invite_code(dc, alice)
    bob = dc.world.add_user("bob", "Bob")
    dc.world.join_via_invite(bob, code)
    await dc.joins_settled(1)
    record, answer = await ask(dc, alice, "stats")
    assert answer.ephemeral and record.responses[0].ephemeral
    assert "**Your referrals — Readers**" in answer.content
    assert "0 counted · 1 waiting" in answer.content
    assert "Bob" in answer.content


async def test_commands_before_setup_say_a_manager_sets_it_up(dc: Discord) -> None:
    alice = member(dc, "alice", "Alice")
    for command in ("invite", "stats", "rewards"):
        text = await dc.slash(alice, command)
        assert "not set up in this server yet" in text, command
    assert await rows(dc, links) == []
    assert dc.world.invites(dc.guild) == []


async def test_forget_asks_first_then_deletes_the_readers_data(set_up: Discord) -> None:
    dc = set_up
    alice = member(dc, "alice", "Alice")
    code = await invite_code(dc, alice)
    bob = dc.world.add_user("bob", "Bob")
    dc.world.join_via_invite(bob, code)
    await dc.joins_settled(1)

    asked = await dc.slash(alice, "forget")
    assert "/forget confirm:True" in asked
    assert len(await rows(dc, links)) == 1  # nothing deleted yet

    done = await dc.slash(alice, "forget", {"confirm": True})
    assert "your data is deleted" in done
    assert await rows(dc, links) == []
    assert [r["referrer_id"] for r in await rows(dc, referrals)] == [None]
    assert all(r["referrer_id"] is None for r in await rows(dc, join_attempts))
    assert await rows(dc, people, user_id=alice.id) == []


async def test_help_shows_managers_their_commands_only(set_up: Discord) -> None:
    dc = set_up
    alice = member(dc, "alice", "Alice")
    reader_help = await dc.slash(alice, "help")
    assert "/invite" in reader_help and "/forget" in reader_help
    assert "For managers" not in reader_help and "/setup" not in reader_help
    manager_help = await dc.slash(dc.owner, "help")
    assert "For managers" in manager_help
    for command in ("/setup", "/settings", "/milestone add", "/review", "/post"):
        assert command in manager_help
    assert await rows(dc, outbox) == []  # help is an answer, not a message


EVERY_COMMAND = [
    ("invite", None),
    ("stats", None),
    ("rewards", None),
    ("forget", None),
    ("help", None),
    ("setup", None),
    ("settings", None),
    ("milestone list", None),
    ("review", None),
    ("post", None),
]


@pytest.mark.parametrize(("command", "options"), EVERY_COMMAND)
async def test_every_command_answers_at_once_and_only_to_whoever_typed_it(
    set_up: Discord, command: str, options: dict[str, object] | None
) -> None:
    dc = set_up
    record, answer = await ask(dc, dc.owner, command, options)
    first = record.responses[0]
    assert first.type in (4, 5) and first.ephemeral  # a message, or "thinking", at once
    assert answer.ephemeral
    assert record.refused == []  # never past the 3 seconds (10062) or answered twice
