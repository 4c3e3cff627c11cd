"""Rewards sent by hand on Discord, through the real bot: the reward's DM carries an
"Answer" button that opens a form; the answer is stored once, a bad one is refused
privately; managers see it in /fulfil and mark it sent, and approve in /grants."""

from __future__ import annotations

from typing import Any

from sandbox.discord import DiscordUser
from sandbox.discord.model import Message
from storage.schema import grants, outbox
from tests.bots_discord.conftest import Discord
from tests.helpers.discord import (
    answered,
    bring_friends,
    custom_ids,
    hold_passes,
    member,
    press,
    rewards_on,
    rows,
    slash,
)

QUESTION = "Your T-shirt size and postal address?"


async def _reward_by_hand(dc: Discord) -> tuple[DiscordUser, Message, dict[str, Any]]:
    """A manual milestone at one friend, reached by Alice: her DM and her grant."""
    await rewards_on(dc)
    saved = await slash(
        dc, dc.owner, "milestone add", {"count": 1, "title": "T-shirt", "question": QUESTION}
    )
    assert "T-shirt" in saved.content
    alice = await member(dc, "alice", "Alice")
    await bring_friends(dc, alice, 1)
    await hold_passes(dc)
    dm = await dc.world.wait_for_dm(alice, contains="T-shirt", since=0)
    [grant] = await rows(dc, grants)
    assert grant["state"] == "awaiting_answer"
    return alice, dm, grant


async def test_the_answer_button_opens_a_form_and_the_answer_is_stored_once(
    set_up: Discord,
) -> None:
    dc = set_up
    alice, dm, grant = await _reward_by_hand(dc)
    assert QUESTION in dm.content and "Answer" in dm.content
    assert custom_ids(dm) == [f"ans:{grant['id']}"]

    shown = await press(dc, alice, dm, f"ans:{grant['id']}")
    assert shown.responses[0].type == 9 and shown.modal is not None
    assert shown.modal["title"] == "Answer: T-shirt"
    assert QUESTION in str(shown.modal["components"])
    first = dc.world.submit_modal(alice, shown, {"answer": "M, Jalan Merdeka 1, Jakarta"})
    thanks = await answered(dc, first)
    assert thanks.ephemeral and "Thank you! Your answer for **T-shirt**" in thanks.content
    twice = dc.world.submit_modal(alice, shown, {"answer": "M, Jalan Merdeka 1, Jakarta"})
    await answered(dc, twice)  # a double submit of the same form

    [stored] = await rows(dc, grants)
    assert stored["state"] == "fulfilling" and stored["answer"] == "M, Jalan Merdeka 1, Jakarta"
    told = await rows(dc, outbox, template="fulfilment_waiting")
    assert [(r["target_id"], r["target_kind"]) for r in told] == [(dc.owner.id, "user")]
    note = await dc.world.wait_for_dm(dc.owner, contains="answered", since=0)
    assert "/fulfil" in note.content


async def test_a_blank_answer_is_refused_privately_and_nothing_changes(set_up: Discord) -> None:
    dc = set_up
    alice, dm, grant = await _reward_by_hand(dc)
    shown = await press(dc, alice, dm, f"ans:{grant['id']}")
    refused = await answered(dc, dc.world.submit_modal(alice, shown, {"answer": "   "}))
    assert refused.ephemeral and "answer" in refused.content.lower()
    [kept] = await rows(dc, grants)
    assert kept["state"] == "awaiting_answer" and kept["answer"] is None
    assert await rows(dc, outbox, template="fulfilment_waiting") == []


async def test_someone_elses_answer_button_is_refused(set_up: Discord) -> None:
    dc = set_up
    _alice, dm, grant = await _reward_by_hand(dc)
    bob = await member(dc, "bob", "Bob")
    pressed = await press(dc, bob, dm, f"ans:{grant['id']}")
    assert pressed.modal is None
    refused = await answered(dc, pressed)
    assert "There is no such reward." in refused.content and refused.ephemeral


async def test_rewards_shows_the_answer_button_until_it_is_answered(set_up: Discord) -> None:
    dc = set_up
    alice, _dm, grant = await _reward_by_hand(dc)
    listed = await slash(dc, alice, "rewards")
    assert custom_ids(listed) == [f"ans:{grant['id']}"]
    shown = await press(dc, alice, listed, f"ans:{grant['id']}")
    await answered(dc, dc.world.submit_modal(alice, shown, {"answer": "L"}))
    assert custom_ids(await slash(dc, alice, "rewards")) == []


async def test_a_manager_marks_it_sent_in_fulfil_and_the_reader_is_told(set_up: Discord) -> None:
    dc = set_up
    alice, dm, grant = await _reward_by_hand(dc)
    shown = await press(dc, alice, dm, f"ans:{grant['id']}")
    await answered(dc, dc.world.submit_modal(alice, shown, {"answer": "XL <@1> **now**"}))

    refused = await slash(dc, alice, "fulfil")
    assert "Only a member with the Manage Server permission" in refused.content
    queue = await slash(dc, dc.owner, "fulfil")
    assert queue.ephemeral and "answer: XL \\<\u200b@1> \\*\\*now\\*\\*" in queue.content
    assert custom_ids(queue) == [f"gq:f:f:{grant['id']}:1"]
    # Alice cannot press a manager's button either (a forged press is checked in code)
    forged = await press(dc, alice, queue, f"gq:f:f:{grant['id']}:1")
    assert (
        "Only a member with the Manage Server permission" in (await answered(dc, forged)).content
    )
    assert (await rows(dc, grants))[0]["state"] == "fulfilling"

    pressed = await press(dc, dc.owner, queue, f"gq:f:f:{grant['id']}:1")
    assert pressed.responses[0].type == 7
    assert "Marked as sent: the reader is told." in queue.content and custom_ids(queue) == []
    [done] = await rows(dc, grants)
    assert done["state"] == "fulfilled" and done["decided_by"] == dc.owner.id
    told = await dc.world.wait_for_dm(alice, contains="on its way")
    assert "T-shirt" in told.content
    late = await press(dc, alice, dm, f"ans:{grant['id']}")
    assert "does not wait for your answer any more" in (await answered(dc, late)).content


async def test_grants_lists_what_waits_for_approval(set_up: Discord) -> None:
    dc = set_up
    queue = await slash(dc, dc.owner, "grants")
    assert "Rewards to approve" in queue.content and "Nothing is waiting." in queue.content
    assert custom_ids(queue) == []
