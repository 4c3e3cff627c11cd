"""Membership events end to end through the sandbox: join requests through readers' links
(with and without the human check), chat_member joins, leaves and kicks in both join modes,
blocks of the bot in the bot-subscription mode, and the scheduler's confirmations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox import SimChat, SimUser
from storage.schema import join_attempts, join_requests, members, referrals, referrer_counts
from tests.bots.conftest import Bench, Harness, invite_url, running_harness
from tests.helpers.telegram import set_up_chat, table_rows


async def _referrals(h: Harness) -> dict[int, dict[str, Any]]:
    return {row["referred_id"]: row for row in await table_rows(h, referrals)}


async def _counts(h: Harness, reader: SimUser) -> dict[str, int]:
    rows = await table_rows(h, referrer_counts, referrer_id=reader.id)
    assert len(rows) == 1, rows
    keys = ("pending", "held", "confirmed", "rejected", "left", "counted")
    return {key: rows[0][key] for key in keys}


async def _attempts(h: Harness, user: SimUser) -> list[tuple[str, str | None]]:
    return [
        (row["outcome"], row["reason"])
        for row in await table_rows(h, join_attempts, user_id=user.id)
    ]


def _calls(h: Harness, *methods: str, user: SimUser) -> list[str]:
    """The bot's calls of ``methods`` that addressed ``user`` (a DM or their request)."""
    wanted = {m.lower() for m in methods}
    found = []
    for call in h.world.calls_of(bot=h.bot):
        if call.method.lower() not in wanted or not call.ok:
            continue
        if str(user.id) in (str(call.params.get("chat_id")), str(call.params.get("user_id"))):
            found.append(call.method)
    return found


async def _private_channel(h: Harness, owner: SimUser) -> tuple[SimChat, dict[str, Any]]:
    chat, program = await set_up_chat(h, owner, "channel", "Daily Brief", join_mode="direct")
    assert program["join_mode"] == "direct"
    return chat, program


async def _public_channel(h: Harness, owner: SimUser) -> tuple[SimChat, dict[str, Any]]:
    chat, program = await set_up_chat(h, owner, "channel", "Open News", username="opennews")
    assert program["join_mode"] == "bot"
    return chat, program


async def _set(h: Harness, program: dict[str, Any], **changes: Any) -> None:
    """A manager's settings change, straight through the engine (the /settings buttons
    are tested with the manager commands)."""
    await h.app.referrals.update_settings(program["id"], None, **changes)
    assert h.app.telegram is not None
    h.app.telegram.programs.forget()


# --- join requests (direct mode, private chat) ---------------------------------------------


async def test_join_request_through_a_readers_link_is_recorded_approved_and_welcomed(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await _private_channel(harness, owner)
    ana = world.add_user("Ana")
    url = await invite_url(harness, ana)
    assert url.startswith("https://t.me/+")

    bob = world.add_user("Bob")
    outcome = world.open_link(bob, url)
    assert outcome.kind == "requested"
    await harness.settle()

    assert world.member(chat, bob).status == "member"
    assert world.join_requests(chat) == []
    welcome = harness.last_to(bob)
    assert "Welcome to Daily Brief" in welcome.text
    assert "Ana invited you" in welcome.text
    # The welcome went out inside the request's window, before the approval.
    assert _calls(harness, "sendMessage", "approveChatJoinRequest", user=bob) == [
        "sendMessage",
        "approveChatJoinRequest",
    ]

    [request] = await table_rows(harness, join_requests)
    assert (request["user_id"], request["referrer_id"], request["state"]) == (
        bob.id,
        ana.id,
        "approved",
    )
    rows = await _referrals(harness)
    assert (rows[bob.id]["referrer_id"], rows[bob.id]["state"]) == (ana.id, "pending")
    assert await _attempts(harness, bob) == [("referral", None)]
    assert (await _counts(harness, ana))["pending"] == 1
    assert "Bob joined Daily Brief" in harness.last_to(ana).text
    assert program["id"] == rows[bob.id]["program_id"]


async def test_human_check_is_sent_in_the_window_and_the_press_approves(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await _private_channel(harness, owner)
    await _set(harness, program, human_check=True)
    ana = world.add_user("Ana")
    url = await invite_url(harness, ana)
    bob = world.add_user("Bob")
    world.open_link(bob, url)
    await harness.settle()

    check = harness.last_to(bob)
    assert "Tap the button below" in check.text
    assert world.member(chat, bob).status == "left"
    assert [r.user_id for r in world.join_requests(chat)] == [bob.id]
    [request] = await table_rows(harness, join_requests)
    assert request["state"] == "awaiting_check"
    assert await _referrals(harness) == {}

    world.press_button(bob, check, text="I'm a person, let me in")
    await harness.settle()
    assert world.member(chat, bob).status == "member"
    [request] = await table_rows(harness, join_requests)
    assert request["state"] == "approved"
    welcome = harness.last_to(bob)
    assert "Welcome to Daily Brief" in welcome.text and "Ana invited you" in welcome.text
    # The welcome could only go out before the request was processed.
    assert _calls(harness, "sendMessage", "approveChatJoinRequest", user=bob) == [
        "sendMessage",
        "sendMessage",
        "approveChatJoinRequest",
    ]
    rows = await _referrals(harness)
    assert (rows[bob.id]["referrer_id"], rows[bob.id]["state"]) == (ana.id, "pending")

    # Pressing again changes nothing.
    world.press_button(bob, check, text="I'm a person, let me in")
    await harness.settle()
    assert _calls(harness, "approveChatJoinRequest", user=bob) == ["approveChatJoinRequest"]
    assert len(await _referrals(harness)) == 1


async def test_a_requester_known_to_have_blocked_the_bot_is_approved_without_a_check(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await _private_channel(harness, owner)
    await _set(harness, program, human_check=True)
    ana = world.add_user("Ana")
    url = await invite_url(harness, ana)
    bob = world.add_user("Bob")
    await harness.say(bob, "/start")
    world.block_bot(bob, harness.bot)  # no check could reach Bob
    await harness.settle()
    sent_before = len(_calls(harness, "sendMessage", user=bob))
    world.open_link(bob, url)
    await harness.settle()
    assert world.member(chat, bob).status == "member"
    assert len(_calls(harness, "sendMessage", user=bob)) == sent_before  # nothing tried
    [request] = await table_rows(harness, join_requests)
    assert request["state"] == "approved"
    rows = await _referrals(harness)
    assert (rows[bob.id]["referrer_id"], rows[bob.id]["state"]) == (ana.id, "pending")


async def test_a_check_that_cannot_be_delivered_is_approved_by_the_next_tick(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await _private_channel(harness, owner)
    await _set(harness, program, human_check=True)
    ana = world.add_user("Ana")
    url = await invite_url(harness, ana)
    bob = world.add_user("Bob")
    # Bob blocked the bot at some point the bot never heard of.
    world.inject_fault(
        "sendMessage",
        chat=bob,
        error_code=403,
        description="Forbidden: bot was blocked by the user",
    )
    world.open_link(bob, url)
    await harness.settle()
    assert world.member(chat, bob).status == "left"
    [failed] = [r for r in await harness.outbox_rows("failed") if r["template"] == "human_check"]
    assert failed["target_id"] == bob.id

    harness.clock.advance(minutes=1)  # the next scheduler run, well inside the window
    report = await harness.tick()
    assert report["approved"] == 1
    assert world.member(chat, bob).status == "member"
    [request] = await table_rows(harness, join_requests)
    assert request["state"] == "approved"
    rows = await _referrals(harness)
    assert (rows[bob.id]["referrer_id"], rows[bob.id]["state"]) == (ana.id, "pending")


async def test_a_check_still_queued_when_the_window_closes_is_approved(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await _private_channel(harness, owner)
    await _set(harness, program, human_check=True)
    ana = world.add_user("Ana")
    url = await invite_url(harness, ana)
    bob = world.add_user("Bob")
    # Telegram keeps answering 429 for Bob's chat: the check cannot go out in time.
    world.inject_fault("sendMessage", chat=bob, times=1000, retry_after=120)
    world.open_link(bob, url)
    await world.wait_for(
        lambda: [c for c in world.calls_of("sendMessage") if not c.ok], what="a 429 for Bob"
    )
    assert (await harness.app.tick())["approved"] == 0  # still trying, inside the window
    assert world.member(chat, bob).status == "left"
    harness.clock.advance(minutes=4)
    report = await harness.app.tick()
    assert report["approved"] == 1
    assert world.member(chat, bob).status == "member"
    [request] = await table_rows(harness, join_requests)
    assert request["state"] == "approved"


async def test_a_check_ignored_for_a_day_is_declined_and_takes_no_slot(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await _private_channel(harness, owner)
    await _set(harness, program, human_check=True)
    ana = world.add_user("Ana")
    url = await invite_url(harness, ana)
    bob = world.add_user("Bob")
    world.open_link(bob, url)
    await harness.settle()
    assert "Tap the button below" in harness.last_to(bob).text

    harness.clock.advance(minutes=6)  # the window passed; the check was delivered
    assert (await harness.tick())["approved"] == 0
    assert [r.user_id for r in world.join_requests(chat)] == [bob.id]
    harness.clock.advance(hours=24)
    report = await harness.tick()
    assert (report["approved"], report["declined"]) == (0, 1)
    assert world.join_requests(chat) == []
    assert world.member(chat, bob).status == "left"
    [request] = await table_rows(harness, join_requests)
    assert request["state"] == "declined"
    assert await _referrals(harness) == {}

    # Bob tries again: a new check, and passing it counts him for Ana.
    world.open_link(bob, url)
    await harness.settle()
    check = harness.last_to(bob)
    assert "Tap the button below" in check.text
    assert world.member(chat, bob).status == "left"
    world.press_button(bob, check, text="I'm a person, let me in")
    await harness.settle()
    assert world.member(chat, bob).status == "member"
    rows = await _referrals(harness)
    assert (rows[bob.id]["referrer_id"], rows[bob.id]["state"]) == (ana.id, "pending")


async def test_a_request_handled_after_its_window_is_approved_without_a_check(
    bench: Bench,
) -> None:
    world = bench.world
    h = await bench.start_bot()
    owner = world.add_user("Olga", username="olga")
    chat, program = await _private_channel(h, owner)
    await _set(h, program, human_check=True)
    ana = world.add_user("Ana")
    url = await invite_url(h, ana)
    await bench.stop_bot(h)

    bob = world.add_user("Bob")
    world.open_link(bob, url)  # the bot is down while Bob asks to join
    bench.clock.advance(minutes=7)
    h = await bench.start_bot()
    await h.settle()
    assert world.member(chat, bob).status == "member"
    assert _calls(h, "sendMessage", user=bob) == []  # too late to write to Bob
    [request] = await table_rows(h, join_requests)
    assert request["state"] == "approved"
    rows = await _referrals(h)
    assert (rows[bob.id]["referrer_id"], rows[bob.id]["state"]) == (ana.id, "pending")


async def test_a_redelivered_join_request_does_not_skip_the_human_check(
    bench: Bench,
) -> None:
    world = bench.world
    h = await bench.start_bot()
    owner = world.add_user("Olga", username="olga")
    chat, program = await _private_channel(h, owner)
    await _set(h, program, human_check=True)
    ana = world.add_user("Ana")
    url = await invite_url(h, ana)

    # The bot handles Bob's request but dies before it can acknowledge it.
    world.inject_fault("getUpdates", times=100, error_code=502)
    bob = world.add_user("Bob")
    world.open_link(bob, url)
    await world.wait_for(lambda: _calls(h, "sendMessage", user=bob), what="the check")
    await bench.stop_bot(h)
    world.clear_faults()
    assert world.pending_updates(bench.bot)

    h = await bench.start_bot()
    await h.settle()
    assert world.pending_updates(bench.bot) == []
    assert world.member(chat, bob).status == "left"  # still waiting for the press
    assert _calls(h, "sendMessage", user=bob) == ["sendMessage"]  # one check, not two
    check = h.last_to(bob)
    world.press_button(bob, check, text="I'm a person, let me in")
    await h.settle()
    assert world.member(chat, bob).status == "member"


# --- chat_member: joins, leaves, kicks ------------------------------------------------------


async def test_a_join_through_another_admins_link_is_recorded_unattributed(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await _private_channel(harness, owner)
    ana = world.add_user("Ana")
    await invite_url(harness, ana)
    theirs = world.create_invite_link(owner, chat, name="owner's own")
    bob = world.add_user("Bob")
    world.open_link(bob, theirs.url)
    await harness.settle()
    assert world.member(chat, bob).status == "member"
    assert await _referrals(harness) == {}
    assert await _attempts(harness, bob) == [("unattributed", "no_link")]
    [member] = await table_rows(harness, members, user_id=bob.id)
    assert member["first_joined_at"] is not None


async def test_through_the_bot_a_join_is_matched_by_the_remembered_user_id(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    _chat, _ = await _public_channel(harness, owner)
    ana = world.add_user("Ana")
    url = await invite_url(harness, ana)
    assert url.startswith("https://t.me/loopbot?start=")

    bob = world.add_user("Bob")
    world.open_link(bob, url)
    await harness.settle()
    card = harness.last_to(bob)
    assert "Ana" in card.text and "invited you" in card.text
    press = world.press_button(bob, card, text="Join")
    assert press.link is not None and press.link.kind == "joined"
    await harness.settle()

    rows = await _referrals(harness)
    assert (rows[bob.id]["referrer_id"], rows[bob.id]["state"]) == (ana.id, "pending")
    assert await _attempts(harness, bob) == [("referral", None)]
    assert "Bob joined Open News" in harness.last_to(ana).text


async def test_a_join_by_username_without_a_link_is_unattributed_and_never_counts_later(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await _public_channel(harness, owner)
    ana = world.add_user("Ana")
    url = await invite_url(harness, ana)

    bob = world.add_user("Bob")
    world.join_public(bob, chat)  # found the channel by himself
    await harness.settle()
    assert await _attempts(harness, bob) == [("unattributed", "no_link")]

    world.leave(bob, chat)
    await harness.settle()
    world.open_link(bob, url)  # now opens Ana's link and joins again
    await harness.settle()
    assert "already part of" in harness.last_to(bob).text
    world.join_public(bob, chat)
    await harness.settle()
    assert await _referrals(harness) == {}
    # opening Ana's link shows on Ana's receipt (as a join through a direct link would);
    # the join itself is one more rejoin, nobody's
    assert await _attempts(harness, bob) == [
        ("unattributed", "no_link"),
        ("not_counted", "rejoin"),
        ("not_counted", "rejoin"),
    ]


async def test_leaving_during_the_hold_rejects_and_a_rejoin_never_counts_twice(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await _private_channel(harness, owner)
    ana = world.add_user("Ana")
    cid = world.add_user("Cid")
    ana_url = await invite_url(harness, ana)
    cid_url = await invite_url(harness, cid)
    bob = world.add_user("Bob")
    world.open_link(bob, ana_url)
    await harness.settle()
    assert (await _counts(harness, ana))["pending"] == 1

    world.leave(bob, chat)
    await harness.settle()
    rows = await _referrals(harness)
    assert (rows[bob.id]["state"], rows[bob.id]["reason"]) == ("rejected", "left_during_hold")
    assert await _counts(harness, ana) == {
        "pending": 0,
        "held": 0,
        "confirmed": 0,
        "rejected": 1,
        "left": 0,
        "counted": 0,
    }

    world.open_link(bob, cid_url)  # back, through another reader's link
    await harness.settle()
    assert world.member(chat, bob).status == "member"
    rows = await _referrals(harness)
    assert (rows[bob.id]["referrer_id"], rows[bob.id]["state"]) == (ana.id, "rejected")
    assert await _attempts(harness, bob) == [
        ("referral", None),
        ("not_counted", "counted_for_other"),
    ]
    assert all(
        row[k] == 0
        for row in await table_rows(harness, referrer_counts, referrer_id=cid.id)
        for k in ("pending", "held", "confirmed", "rejected", "left", "counted")
    )
    harness.clock.advance(days=3)
    assert (await harness.tick())["confirmed"] == 0


async def test_a_kick_during_the_hold_rejects_as_removed(harness: Harness, owner: SimUser) -> None:
    world = harness.world
    chat, _ = await _private_channel(harness, owner)
    ana = world.add_user("Ana")
    url = await invite_url(harness, ana)
    bob = world.add_user("Bob")
    world.open_link(bob, url)
    await harness.settle()
    world.kick(owner, bob, chat)
    await harness.settle()
    rows = await _referrals(harness)
    assert (rows[bob.id]["state"], rows[bob.id]["reason"]) == ("rejected", "removed_during_hold")
    assert (await _counts(harness, ana))["rejected"] == 1


async def test_in_bot_mode_blocking_the_bot_is_leaving_and_unblocking_never_counts_twice(
    tmp_path: Path,
) -> None:
    async with running_harness(tmp_path, telegram_owners=[]) as h:
        world = h.world
        owner = world.add_user("Olga", username="olga")
        assert h.app.telegram is not None
        h.app.telegram.owners = frozenset({owner.id})
        assert h.app.telegram.port is not None
        h.app.telegram.port.owners = frozenset({owner.id})
        await h.say(owner, "/setup bot")
        ana = world.add_user("Ana")
        url = await invite_url(h, ana)
        assert url.startswith("https://t.me/loopbot?start=")

        bob = world.add_user("Bob")
        world.open_link(bob, url)
        await h.settle()
        assert "You are subscribed" in h.last_to(bob).text
        rows = await _referrals(h)
        assert (rows[bob.id]["referrer_id"], rows[bob.id]["state"]) == (ana.id, "pending")

        world.block_bot(bob, h.bot)
        await h.settle()
        rows = await _referrals(h)
        assert (rows[bob.id]["state"], rows[bob.id]["reason"]) == ("rejected", "left_during_hold")

        world.unblock_bot(bob, h.bot)
        await h.settle()
        world.open_link(bob, url)
        await h.settle()
        rows = await _referrals(h)
        assert len(rows) == 1 and rows[bob.id]["state"] == "rejected"
        assert (await _counts(h, ana))["rejected"] == 1
        # back by unblocking (nobody's), then through Ana's link again (on Ana's receipt)
        assert await _attempts(h, bob) == [
            ("referral", None),
            ("not_counted", "rejoin"),
            ("not_counted", "rejoin"),
        ]


# --- the scheduler: confirmations ----------------------------------------------------------


async def test_the_tick_confirms_after_the_hold_asking_telegram_and_thanks_the_referrer(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    _chat, program = await _private_channel(harness, owner)
    ana = world.add_user("Ana")
    url = await invite_url(harness, ana)
    bob = world.add_user("Bob")
    world.open_link(bob, url)
    await harness.settle()
    assert "Bob joined Daily Brief" in harness.last_to(ana).text

    harness.clock.advance(hours=program["hold_hours"] - 1)
    assert (await harness.tick())["confirmed"] == 0
    asked = len(_calls(harness, "getChatMember", user=bob))
    harness.clock.advance(hours=1)
    report = await harness.tick()
    assert report["confirmed"] == 1
    assert len(_calls(harness, "getChatMember", user=bob)) == asked + 1
    assert "Bob now counts for you in Daily Brief" in harness.last_to(ana).text
    rows = await _referrals(harness)
    assert rows[bob.id]["state"] == "confirmed"
    assert (await _counts(harness, ana))["counted"] == 1
    assert (await harness.tick())["confirmed"] == 0  # once


async def test_a_leave_the_bot_never_saw_is_caught_by_getchatmember(bench: Bench) -> None:
    world = bench.world
    h = await bench.start_bot()
    owner = world.add_user("Olga", username="olga")
    chat, _ = await _private_channel(h, owner)
    ana = world.add_user("Ana")
    url = await invite_url(h, ana)
    bob = world.add_user("Bob")
    world.open_link(bob, url)
    await h.settle()
    await bench.stop_bot(h)

    world.leave(bob, chat)  # while the bot is down ...
    bench.clock.advance(days=3)  # ... and the update expires (24 h) before it is back
    asked = len(_calls(h, "getChatMember", user=bob))
    h = await bench.start_bot()
    await h.settle()
    assert world.pending_updates(bench.bot) == []  # nothing about Bob came in
    await h.tick()  # (the scheduler also ticks once when the bot starts)
    assert len(_calls(h, "getChatMember", user=bob)) > asked
    rows = await _referrals(h)
    assert (rows[bob.id]["state"], rows[bob.id]["reason"]) == ("rejected", "left_during_hold")
    assert (await _counts(h, ana))["rejected"] == 1
    assert not any("now counts" in text for text in h.texts_to(ana))


async def test_a_paused_program_confirms_nothing_until_it_resumes(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await _private_channel(harness, owner)
    ana = world.add_user("Ana")
    url = await invite_url(harness, ana)
    bob = world.add_user("Bob")
    world.open_link(bob, url)
    await harness.settle()

    world.set_admin_rights(chat, harness.bot, by=owner, rights={"can_invite_users": False})
    await harness.settle()
    harness.clock.advance(days=3)
    assert (await harness.tick())["confirmed"] == 0
    assert (await _referrals(harness))[bob.id]["state"] == "pending"

    world.set_admin_rights(chat, harness.bot, by=owner, rights={"can_invite_users": True})
    await harness.settle()
    assert (await harness.tick())["confirmed"] == 1
    assert (await _referrals(harness))[bob.id]["state"] == "confirmed"


async def test_a_leave_after_the_hold_that_no_tick_confirmed_yet_still_counts(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await _private_channel(harness, owner)
    ana = world.add_user("Ana")
    url = await invite_url(harness, ana)
    bob = world.add_user("Bob")
    world.open_link(bob, url)
    await harness.settle()

    # The hold passes while no tick runs (the scheduler was down); then Bob leaves.
    harness.clock.advance(hours=program["hold_hours"] + 5)
    world.leave(bob, chat)
    await harness.settle()
    rows = await _referrals(harness)
    assert rows[bob.id]["state"] == "confirmed"  # he stayed the whole hold
    assert rows[bob.id]["left_at"] is not None
    assert await _counts(harness, ana) == {
        "pending": 0,
        "held": 0,
        "confirmed": 1,
        "rejected": 0,
        "left": 1,
        "counted": 1,  # the program keeps counting friends who leave after confirmation
    }
    assert (await harness.tick())["confirmed"] == 0


async def test_a_press_after_the_dm_window_still_lets_the_friend_in(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, program = await _private_channel(harness, owner)
    await _set(harness, program, human_check=True)
    ana = world.add_user("Ana")
    url = await invite_url(harness, ana)
    bob = world.add_user("Bob")
    world.open_link(bob, url)
    await harness.settle()
    check = harness.last_to(bob)

    harness.clock.advance(minutes=10)  # the check arrived; Bob answers late
    assert (await harness.tick())["approved"] == 0  # a delivered check waits for the press
    [request] = await table_rows(harness, join_requests)
    assert request["state"] == "awaiting_check"
    world.press_button(bob, check, text="I'm a person, let me in")
    await harness.settle()
    assert world.member(chat, bob).status == "member"
    # The request's DM window is over: no welcome is attempted, only the approval.
    assert _calls(harness, "sendMessage", "approveChatJoinRequest", user=bob) == [
        "sendMessage",
        "approveChatJoinRequest",
    ]
    rows = await _referrals(harness)
    assert (rows[bob.id]["referrer_id"], rows[bob.id]["state"]) == (ana.id, "pending")
