"""The whole direct-link loop: setup, /invite, a friend requests to join, is welcomed and
approved, the referrer is told, the hold passes, the referral confirms, /stats shows it."""

from __future__ import annotations

from sqlalchemy import select

from sandbox import SimUser
from storage.schema import referrals
from tests.bots.conftest import Harness


async def test_direct_link_loop_end_to_end(harness: Harness, owner: SimUser) -> None:
    world, bot = harness.world, harness.bot
    chat = world.add_chat("channel", "Daily Brief", owner=owner)
    await harness.say(owner, "/start")
    world.add_bot_to_chat(chat, bot, by=owner)
    await harness.settle()
    offer = harness.last_to(owner)
    assert "Daily Brief" in offer.text
    world.press_button(owner, offer, text="Set up Daily Brief")
    await harness.settle()
    assert "is ready" in harness.last_to(owner).text
    # through the bot is the default; the manager picks personal join-request links
    await harness.say(owner, "/settings")
    world.press_button(owner, harness.last_to(owner), text="Join: through the bot")
    await harness.settle()
    assert "direct join-request links" in harness.last_to(owner).text

    ana = world.add_user("Ana")
    await harness.say(ana, "/invite")
    card = harness.last_to(ana)
    url = next(line for line in card.text.splitlines() if line.startswith("https://t.me/+"))

    bob = world.add_user("Bob <b>")
    world.open_link(bob, url)
    await harness.settle()
    assert world.member(chat, bob).status == "member"
    assert "Welcome to Daily Brief" in harness.last_to(bob).text
    assert "Bob <b> joined Daily Brief" in harness.last_to(ana).text

    harness.clock.advance(days=3)
    report = await harness.tick()
    assert report["confirmed"] == 1
    assert "Bob <b> now counts for you" in harness.last_to(ana).text
    async with harness.app.db.read() as conn:
        rows = (await conn.execute(select(referrals))).mappings().all()
    assert [(r["referrer_id"], r["state"]) for r in rows] == [(ana.id, "confirmed")]

    await harness.say(ana, "/stats")
    assert "1 counted" in harness.last_to(ana).text
