"""Managers decide held referrals in chat: /review with approve / reject buttons (one friend,
or every held friend of one reader), the undo of a decision (button and /undo), the reader
told each outcome, and /program delete. Only managers, whatever button is pressed."""

from __future__ import annotations

from typing import Any

from bots.telegram.callbacks import Review
from sandbox import SimChat, SimUser
from storage.schema import events, referrals, referrer_counts
from tests.bots.conftest import Harness, invite_url
from tests.helpers.telegram import (
    button_texts,
    forge_callback,
    program_row,
    set_up_chat,
    table_rows,
)


async def _held_program(
    harness: Harness, owner: SimUser, friends: int
) -> tuple[SimChat, dict[str, Any], SimUser, list[SimUser]]:
    """A direct-link channel whose readers may have one counted friend: Ana brings
    ``friends`` friends, every one after the first is held for a manager."""
    chat, program = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    await harness.say(owner, "/settings cap 1")
    ana = harness.world.add_user("Ana", username="anareads")
    url = await invite_url(harness, ana)
    people = []
    for n in range(friends):
        friend = harness.world.add_user(f"Friend{n}", username=f"friend{n}")
        harness.world.open_link(friend, url)
        await harness.settle()
        people.append(friend)
    return chat, program, ana, people


async def _states(harness: Harness, program: dict[str, Any]) -> dict[int, tuple[str, Any]]:
    rows = await table_rows(harness, referrals, program_id=program["id"])
    return {r["referred_id"]: (r["state"], r["decided_by"]) for r in rows}


async def test_a_manager_approves_and_rejects_held_referrals_and_the_reader_is_told(
    harness: Harness, owner: SimUser
) -> None:
    _chat, program, ana, friends = await _held_program(harness, owner, 3)
    states = await _states(harness, program)
    assert [states[f.id][0] for f in friends] == ["pending", "held", "held"]

    await harness.say(owner, "/review")
    queue = harness.last_to(owner)
    assert "2 referrals wait for a manager" in queue.text
    assert "Friend1" in queue.text and "over the program's limit" in queue.text
    assert {"✅ Friend1", "❌ Friend2", "✅ All 2 via Ana"} <= set(button_texts(queue))

    harness.world.press_button(owner, queue, text="✅ Friend1")
    await harness.settle()
    edited = harness.last_to(owner)
    assert "Done: 1 approved" in edited.text and "1 referral waits" in edited.text
    states = await _states(harness, program)
    assert states[friends[1].id] == ("confirmed", owner.id)
    assert "Friend1" in harness.last_to(ana).text and "now counts" in harness.last_to(ana).text

    harness.world.press_button(owner, edited, text="❌ Friend2")
    await harness.settle()
    assert (await _states(harness, program))[friends[2].id] == ("rejected", owner.id)
    assert "does not count" in harness.last_to(ana).text
    assert "Nothing is waiting" in harness.last_to(owner).text
    counts = (await table_rows(harness, referrer_counts, program_id=program["id"]))[0]
    assert (counts["held"], counts["confirmed"], counts["rejected"]) == (0, 1, 1)
    decisions = await table_rows(harness, events, program_id=program["id"], actor_id=owner.id)
    assert [e["kind"] for e in decisions if e["kind"].startswith("referral.")] == [
        "referral.confirmed",
        "referral.rejected",
    ]


async def test_all_held_friends_of_one_reader_at_once_and_an_undo(
    harness: Harness, owner: SimUser
) -> None:
    _chat, program, ana, friends = await _held_program(harness, owner, 3)
    await harness.say(owner, "/review")
    harness.world.press_button(owner, harness.last_to(owner), text="✅ All 2 via Ana")
    await harness.settle()
    states = await _states(harness, program)
    assert [states[f.id][0] for f in friends[1:]] == ["confirmed", "confirmed"]
    assert "2 now count" in harness.last_to(ana).text

    # any decision can be reversed by /undo (after asking), and the one just made from
    # the queue; a press delivered twice reverses once
    await harness.say(owner, "/undo @friend1")
    ask = harness.last_to(owner)
    assert "Friend1" in ask.text and "They would no longer count" in ask.text
    [press] = [b["callback_data"] for b in ask.inline_buttons if "Make it" in b["text"]]
    harness.world.press_button(owner, ask, text="↩️ Make it not count")
    await harness.settle()
    undone = harness.last_to(owner)
    assert "Changed: no longer counts" in undone.text
    forge_callback(harness.world, owner, undone, press)  # the same press once more
    await harness.settle()
    assert "cannot be changed back" in harness.last_to(owner).text
    assert (await _states(harness, program))[friends[1].id] == ("rejected", owner.id)
    assert "changed a decision" in harness.last_to(ana).text
    harness.world.press_button(owner, undone, text="↩️ Undo")
    await harness.settle()
    assert (await _states(harness, program))[friends[1].id] == ("confirmed", owner.id)

    await harness.say(owner, "/undo @nobodyhere")
    assert "cannot be changed back" in harness.last_to(owner).text
    await harness.say(owner, "/undo")
    assert "/undo @bob" in harness.last_to(owner).text


async def test_only_managers_decide_whatever_they_press_or_type(
    harness: Harness, owner: SimUser
) -> None:
    chat, program, ana, friends = await _held_program(harness, owner, 2)
    await harness.say(ana, "/review")
    assert "You do not manage any program" in harness.last_to(ana).text
    await harness.say(ana, "/undo @friend0")
    assert "You do not manage any program" in harness.last_to(ana).text
    # a forged press of a decision button on a message of her own
    own = harness.last_to(ana)
    for action in ("a", "A", "u", "p"):
        target = ana.id if action == "A" else friends[1].id
        data = Review(program_id=program["id"], action=action, target=target).pack()
        forge_callback(harness.world, ana, own, data)
        await harness.settle()
        assert "Only an admin" in harness.last_to(ana).text
    forge_callback(harness.world, ana, own, Review(program_id=program["id"], action="z").pack())
    await harness.settle()
    assert (await _states(harness, program))[friends[1].id] == ("held", None)
    assert await program_row(harness, chat.id) is not None


async def test_a_manager_deletes_the_program_after_confirming(
    harness: Harness, owner: SimUser
) -> None:
    chat, program, _ana, _friends = await _held_program(harness, owner, 2)
    await harness.say(owner, "/program delete")
    ask = harness.last_to(owner)
    assert "Delete the referral program of" in ask.text and "1 reader" in ask.text
    harness.world.press_button(owner, ask, text="Cancel")
    await harness.settle()
    assert "Nothing was deleted" in harness.last_to(owner).text
    assert await program_row(harness, chat.id) is not None

    harness.world.press_button(owner, ask, text="Yes, delete the program")
    await harness.settle()
    assert "is deleted" in harness.last_to(owner).text
    assert await program_row(harness, chat.id) is None
    assert await table_rows(harness, referrals, program_id=program["id"]) == []
    await harness.say(owner, "/program oops")
    assert "/program delete" in harness.last_to(owner).text
