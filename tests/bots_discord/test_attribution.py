"""Attribution through the real bot: a join is credited only when the counters say for
certain whose invite carried it; everything else is unattributed with its reason."""

from __future__ import annotations

import re

import pytest

from storage.schema import join_attempts, referrals
from tests.bots_discord.conftest import Discord


async def _invite_code(dc: Discord, user: object) -> str:
    text = await dc.slash(user, "invite")  # type: ignore[arg-type]
    found = re.search(r"https?://\S+/([A-Za-z0-9]+)", text)
    assert found, text
    return found.group(1)


async def _rows(dc: Discord, table: object) -> list[dict[str, object]]:
    from sqlalchemy import select

    async with dc.app.db.read() as conn:
        return [dict(r) for r in (await conn.execute(select(table))).mappings()]  # type: ignore[call-overload]


async def _reasons(dc: Discord) -> dict[int, tuple[object, object]]:
    return {r["user_id"]: (r["outcome"], r["reason"]) for r in await _rows(dc, join_attempts)}  # type: ignore[misc]


async def test_a_join_through_a_readers_invite_counts_for_them(set_up: Discord) -> None:
    dc = set_up
    alice = dc.world.add_user("alice", "Alice")
    dc.world.add_member(dc.guild, alice)
    code = await _invite_code(dc, alice)
    bob = dc.world.add_user("bob")
    dc.world.join_via_invite(bob, code)
    await dc.joins_settled(1)
    rows = await _rows(dc, referrals)
    assert [(r["referred_id"], r["referrer_id"]) for r in rows] == [(bob.id, alice.id)]


ATTRIBUTION_RULES = [
    ("two_readers_at_once", "ambiguous"),
    ("vanity", "vanity"),
    ("invite_made_outside_the_bot", "foreign_invite"),
    ("without_invite_beside_a_readers_join", "ambiguous"),
    ("without_invite", "no_invite"),
    ("invite_at_max_uses", "invite_vanished"),
]


@pytest.mark.parametrize(("case", "reason"), ATTRIBUTION_RULES)
async def test_attribution_never_guesses(set_up: Discord, case: str, reason: str) -> None:
    dc = set_up
    world = dc.world
    alice = world.add_user("alice", "Alice")
    carol = world.add_user("carol", "Carol")
    world.add_member(dc.guild, alice)
    world.add_member(dc.guild, carol)
    a_code = await _invite_code(dc, alice)
    c_code = await _invite_code(dc, carol)
    bob, dan = world.add_user("bob"), world.add_user("dan")
    world.member_add_delay = 1.0  # the events wait until the clock moves: they come together
    if case == "two_readers_at_once":
        world.join_via_invite(bob, a_code)
        world.join_via_invite(dan, c_code)
        joined = [bob, dan]
    elif case == "vanity":
        world.join_via_vanity(bob, dc.guild)
        joined = [bob]
    elif case == "invite_made_outside_the_bot":
        outside = world.create_invite(
            dc.sandbox_app, dc.channel, max_age=0, max_uses=0, temporary=False, unique=True
        )
        world.join_via_invite(bob, outside.code)
        joined = [bob]
    elif case == "without_invite_beside_a_readers_join":
        world.join_via_invite(bob, a_code)
        world.join_without_invite(dan, dc.guild)
        joined = [bob, dan]
    elif case == "without_invite":
        world.join_without_invite(bob, dc.guild)
        joined = [bob]
    else:
        limited = world.create_invite(
            dc.sandbox_app, dc.channel, max_age=0, max_uses=1, temporary=False, unique=True
        )
        world.join_via_invite(bob, limited.code)
        joined = [bob]
    world.advance(1.0)
    await dc.joins_settled(len(joined))
    reasons = await _reasons(dc)
    assert {reasons[u.id] for u in joined} == {("unattributed", reason)}
    assert await _rows(dc, referrals) == []
