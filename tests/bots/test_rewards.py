"""Milestone rewards in chat, through the sandbox and the real bot: a manager sets up a
ladder with the guided /milestone flow (a message, a coupon file, a private chat, a
question), readers earn and receive each reward once, see their progress and /rewards,
and managers approve and fulfil. Only managers, whatever is typed or pressed."""

from __future__ import annotations

from typing import Any

from sandbox import SimChat, SimUser
from storage.schema import events, grants, reward_codes
from tests.bots.conftest import Bench, Harness, invite_url
from tests.helpers.telegram import button_texts, forge_callback, set_up_chat, table_rows


async def _program(harness: Harness, owner: SimUser) -> tuple[SimChat, dict[str, Any]]:
    return await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")


async def _refer(harness: Harness, reader: SimUser, count: int, start: int = 0) -> None:
    """``count`` friends join through the reader's link; past the hold they count."""
    url = await invite_url(harness, reader)
    for n in range(start, start + count):
        friend = harness.world.add_user(f"Friend{n}")
        harness.world.open_link(friend, url)
        await harness.settle()
    harness.clock.advance(days=3)
    await harness.tick()


async def _add_milestone(harness: Harness, owner: SimUser, command: str, kind_button: str) -> Any:
    await harness.say(owner, command)
    ask = harness.last_to(owner)
    assert "What is the reward?" in ask.text
    harness.world.press_button(owner, ask, text=kind_button)
    await harness.settle()
    return harness.last_to(owner)


async def _save(harness: Harness, owner: SimUser) -> Any:
    confirm = harness.last_to(owner)
    assert "Save" in confirm.text
    harness.world.press_button(owner, confirm, text="✅ Save")
    await harness.settle()
    return harness.last_to(owner)


async def test_a_message_milestone_set_up_in_chat_reaches_the_reader_once(
    harness: Harness, owner: SimUser
) -> None:
    await _program(harness, owner)
    step = await _add_milestone(harness, owner, "/milestone add 2 Sticker pack", "💬 A message")
    assert "Send the message readers get" in step.text
    await harness.say(owner, "Thanks {{ name }}! Here are your <b>stickers</b>.")
    confirm = harness.last_to(owner)
    assert "Nobody has reached it yet" in confirm.text
    saved = await _save(harness, owner)
    assert "Saved" in saved.text

    ana = harness.world.add_user("Ana")
    await harness.say(ana, "/invite")
    card = harness.last_to(ana).text
    assert "2 friends → Sticker pack" in card and "2 more for Sticker pack" in card

    await _refer(harness, ana, 2)
    rewarded = [m for m in harness.world.sent_messages(harness.bot, ana) if "earned" in m.text]
    assert len(rewarded) == 1
    assert "You earned Sticker pack!" in rewarded[0].text
    # typed tags without Telegram formatting are text, shown as typed (escaped)
    assert "Thanks Ana! Here are your <b>stickers</b>." in rewarded[0].text
    await harness.tick()  # nothing is granted or sent twice
    rows = await table_rows(harness, grants, reader_id=ana.id)
    assert [(r["state"], r["rung"]) for r in rows] == [("delivered", 2)]
    assert (
        len([m for m in harness.world.sent_messages(harness.bot, ana) if "earned" in m.text]) == 1
    )

    await harness.say(ana, "/rewards")
    listing = harness.last_to(ana)
    assert "Sticker pack — sent" in listing.text
    assert "🔁 Sticker pack" in button_texts(listing)
    harness.world.press_button(ana, listing, text="🔁 Sticker pack")
    await harness.settle()
    assert "You earned Sticker pack!" in harness.last_to(ana).text  # sent again, on request


async def test_a_template_error_is_shown_to_the_manager_and_nothing_is_saved(
    harness: Harness, owner: SimUser
) -> None:
    _chat, program = await _program(harness, owner)
    await _add_milestone(harness, owner, "/milestone add 2 Sticker pack", "💬 A message")
    await harness.say(owner, "Hi {{ name")
    assert "template error" in harness.last_to(owner).text
    assert harness.app.rewards is not None
    assert await harness.app.rewards.milestones(program["id"]) == []


async def test_coupon_codes_from_a_file_go_to_one_reader_each_and_a_dry_pool_waits(
    harness: Harness, owner: SimUser
) -> None:
    _chat, program = await _program(harness, owner)
    step = await _add_milestone(harness, owner, "/milestone add 1 Coupon", "🎟 A coupon code")
    assert ".txt" in step.text
    harness.world.send_document(owner, harness.bot, "codes.txt", b"AAA-1\n\nAAA-1\n")
    await harness.settle()
    imported = [m.text for m in harness.world.sent_messages(harness.bot, owner)][-2]
    assert "Imported 1 code" in imported and "1 repeated in the file" in imported
    await _save(harness, owner)

    ana, bea = harness.world.add_user("Ana"), harness.world.add_user("Bea")
    await _refer(harness, ana, 1, start=0)
    await _refer(harness, bea, 1, start=10)
    assert "<code>AAA-1</code>" in harness.last_to(ana).raw_text
    # the pool is dry for Bea: she waits and is told, the owner is alerted once
    assert "codes just ran out" in harness.last_to(bea).text
    assert any("is empty" in t for t in harness.texts_to(owner))
    rows = await table_rows(harness, grants, reader_id=bea.id)
    assert rows[0]["state"] == "waiting_stock"

    # a broken file changes nothing
    await harness.say(owner, "/codes")
    harness.world.send_document(owner, harness.bot, "codes.txt", b"X" * 100 + b"\nBBB-2\n")
    await harness.settle()
    assert "too long" in harness.last_to(owner).text
    assert len(await table_rows(harness, reward_codes)) == 1

    await harness.say(owner, "/codes")
    harness.world.send_document(owner, harness.bot, "more.csv", b"code\nBBB-2\nAAA-1\n")
    await harness.settle()
    assert "1 already in the pool" in harness.last_to(owner).text
    await harness.tick()
    assert "<code>BBB-2</code>" in harness.last_to(bea).raw_text
    codes = await table_rows(harness, reward_codes)
    assert sorted((c["code"], c["grant_id"] is not None) for c in codes) == [
        ("AAA-1", True),
        ("BBB-2", True),
    ]
    assert program["id"]


async def test_one_time_access_lets_in_only_the_owner_of_the_grant(
    harness: Harness, owner: SimUser
) -> None:
    await _program(harness, owner)
    vip = harness.world.add_chat("supergroup", "VIP room", owner=owner)
    harness.world.add_bot_to_chat(vip, harness.bot, by=owner, admin=True)
    await harness.settle()
    step = await _add_milestone(harness, owner, "/milestone add 1 VIP room", "🔐 A private chat")
    assert "/chatid" in step.text
    await harness.say(owner, str(vip.id))
    await _save(harness, owner)

    ana = harness.world.add_user("Ana")
    await _refer(harness, ana, 1)
    reward = harness.last_to(ana)
    assert "one-time pass" in reward.text
    link = next(b["url"] for b in reward.inline_buttons if "url" in b)

    eve = harness.world.add_user("Eve")  # the link was forwarded to her
    harness.world.open_link(eve, link)
    await harness.settle()
    assert harness.world.member(vip, eve).status != "member"
    harness.world.open_link(ana, link)
    await harness.settle()
    assert harness.world.member(vip, ana).status == "member"
    kinds = [e["kind"] for e in await table_rows(harness, events)]
    assert "reward_chat_declined" in kinds and "reward_chat_approved" in kinds


async def test_a_reward_sent_by_hand_asks_fulfils_and_tells_the_reader(
    harness: Harness, owner: SimUser
) -> None:
    await _program(harness, owner)
    await _add_milestone(harness, owner, "/milestone add 1 T-shirt", "📦 Sent by hand")
    await harness.say(owner, "Your size and postal address")
    await _save(harness, owner)
    ana = harness.world.add_user("Ana")
    await _refer(harness, ana, 1)
    reward = harness.last_to(ana)
    assert "Your size and postal address" in reward.text
    harness.world.press_button(ana, reward, text="✍️ Answer")
    await harness.settle()
    await harness.say(ana, "M, 1 Main St <script>")
    assert "Thank you" in harness.last_to(ana).text

    await harness.say(owner, "/fulfil")
    queue = harness.last_to(owner)
    assert "M, 1 Main St <script>" in queue.text
    harness.world.press_button(
        owner, queue, text=next(t for t in button_texts(queue) if t.startswith("📦 Sent"))
    )
    await harness.settle()
    assert "on its way" in harness.last_to(ana).text
    rows = await table_rows(harness, grants, reader_id=ana.id)
    assert rows[0]["state"] == "fulfilled"


async def test_manual_approval_and_nobody_else_may_decide(
    harness: Harness, owner: SimUser
) -> None:
    _chat, program = await _program(harness, owner)
    await _add_milestone(harness, owner, "/milestone add 1 Badge", "💬 A message")
    await harness.say(owner, "You got the badge")
    await _save(harness, owner)
    milestone = (await harness.app.rewards.milestones(program["id"]))[0]
    await harness.say(owner, f"/milestone {milestone.id} approval manual")

    ana = harness.world.add_user("Ana")
    await _refer(harness, ana, 1)
    assert any(
        "wait for your approval" in t or "waits for your approval" in t
        for t in harness.texts_to(owner)
    )
    await harness.say(owner, "/grants")
    queue = harness.last_to(owner)
    mallory = harness.world.add_user("Mallory")
    await harness.say(mallory, "/start")
    approve = next(b for b in queue.inline_buttons if b["text"].startswith("✅"))
    forge_callback(harness.world, mallory, queue, approve["callback_data"])
    await harness.settle()
    assert "Only an admin" in harness.last_to(mallory).text
    assert (await table_rows(harness, grants, reader_id=ana.id))[0]["state"] == (
        "awaiting_approval"
    )
    harness.world.press_button(owner, queue, text=approve["text"])
    await harness.settle()
    await harness.tick()
    assert "You got the badge" in harness.last_to(ana).text

    # a reader cannot add milestones
    await harness.say(mallory, "/milestone add 1 Free stuff")
    assert [m.id for m in await harness.app.rewards.milestones(program["id"])] == [milestone.id]


async def test_a_half_finished_setup_survives_a_restart(bench: Bench) -> None:
    harness = await bench.start_bot()
    owner = harness.world.add_user("Olga", username="olga")
    _chat, program = await _program(harness, owner)
    await _add_milestone(harness, owner, "/milestone add 3 Stickers", "💬 A message")
    await bench.stop_bot(harness)

    harness = await bench.start_bot()
    await harness.say(owner, "Welcome aboard")
    await _save(harness, owner)
    [milestone] = await harness.app.rewards.milestones(program["id"])
    assert (milestone.count, milestone.message) == (3, "Welcome aboard")
    await bench.stop_bot(harness)


async def test_counting_leavers_again_is_confirmed_after_seeing_what_it_grants(
    harness: Harness, owner: SimUser
) -> None:
    chat, program = await _program(harness, owner)
    await harness.app.referrals.update_settings(program["id"], None, leave_policy="subtract")
    ana = harness.world.add_user("Ana")
    await _refer(harness, ana, 2)
    friend = next(u for u in harness.world.users.values() if u.first_name == "Friend0")
    harness.world.leave(friend, chat)
    await harness.settle()
    await harness.tick()
    await _refer(harness, ana, 1, start=5)  # 2 counted again, one friend who left
    await harness.app.rewards.add_milestone(
        program["id"], owner.id, count=3, title="Pin", reward_kind="message", message="A pin"
    )
    await harness.say(owner, "/settings")
    harness.world.press_button(owner, harness.last_to(owner), text="Leavers: stop counting")
    await harness.settle()
    ask = harness.last_to(owner)
    assert "1 reward is granted at once to 1 reader" in ask.text
    assert (await harness.app.referrals.get_program(program["id"])).leave_policy == "subtract"
    harness.world.press_button(owner, ask, text="✅ Save")
    await harness.settle()
    assert (await harness.app.referrals.get_program(program["id"])).leave_policy == "keep"
    await harness.tick()
    assert "A pin" in harness.last_to(ana).text
