"""The crash test (issue 3, item 10): the bot runs as a real process (``inviteloop run``)
against the sandbox; a burst of 1,000 joins through readers' links comes in; the process is
killed (SIGKILL) in the middle of it and started again; every join is counted exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path

from referrals.clock import SystemClock
from referrals.models import Person
from referrals.service import ReferralService
from sandbox import SandboxServer, SimChat, SimMessage, SimUser, World
from storage.database import Database

INVITELOOP = str(Path(sys.executable).parent / "inviteloop")
READERS = 20
JOINS = 1000
WAIT = 40.0  # a bound on each wait, never a pause


async def _spawn(env: dict[str, str], cwd: Path, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            INVITELOOP, "run", cwd=cwd, env=env, stdout=out, stderr=out
        )


def _card(world: World, bot: object, reader: SimUser) -> SimMessage | None:
    for message in world.sent_messages(bot, reader):  # type: ignore[arg-type]
        if any("copy_text" in b for b in message.inline_buttons):
            return message
    return None


def _code(card: SimMessage) -> str:
    [url] = [b["copy_text"]["text"] for b in card.inline_buttons if "copy_text" in b]
    assert "?start=" in url, url
    return str(url.split("?start=", 1)[1])


async def _set_up(world: World, bot: object, owner: SimUser) -> SimChat:
    """The owner adds the bot to a public channel and taps its setup button."""
    chat = world.add_chat("channel", "Open News", "opennews", owner=owner)
    world.send_text(owner, bot, "/start")  # type: ignore[arg-type]
    world.add_bot_to_chat(chat, bot, by=owner)  # type: ignore[arg-type]

    def offer() -> SimMessage | None:
        for message in world.sent_messages(bot, owner):  # type: ignore[arg-type]
            if any(b.get("text") == "Set up Open News" for b in message.inline_buttons):
                return message
        return None

    world.press_button(owner, await world.wait_for(offer, timeout=WAIT), text="Set up Open News")
    await world.wait_for_message(bot, owner, contains="is ready", since=0, timeout=WAIT)  # type: ignore[arg-type]
    return chat


async def test_a_kill_in_the_middle_of_a_burst_of_joins_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    world = World(seed=5)
    bot = world.add_bot("loopbot", "Loop")
    db_path = tmp_path / "bot.db"
    log = tmp_path / "run.log"
    async with SandboxServer(world) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INVITELOOP_")}
        env.update(
            INVITELOOP_TELEGRAM_TOKEN=bot.token,
            INVITELOOP_TELEGRAM_API_URL=server.url,
            INVITELOOP_DATABASE_URL=f"sqlite:///{db_path}",
        )
        first = await _spawn(env, tmp_path, log)
        second: asyncio.subprocess.Process | None = None
        third: asyncio.subprocess.Process | None = None
        db = None
        try:
            # Setup through the bot: a program and every reader's personal link.
            owner = world.add_user("Olga", username="olga")
            chat = await _set_up(world, bot, owner)
            readers = [world.add_user(f"Reader {n}") for n in range(READERS)]
            for reader in readers:
                world.send_text(reader, bot, "/invite")
            codes = {}
            for reader in readers:
                card = await world.wait_for(lambda r=reader: _card(world, bot, r), timeout=WAIT)
                codes[reader.id] = _code(card)

            # 1,000 friends opened a reader's link (the through-the-bot mode remembers the
            # reader for them), set up by the engine's API on the same database.
            db = Database.from_url(f"sqlite:///{db_path}")
            engine = ReferralService(db, SystemClock())
            friends = [world.add_user(f"Friend {n}") for n in range(JOINS)]
            expected = {}
            for n, friend in enumerate(friends):
                reader = readers[n % READERS]
                expected[friend.id] = reader.id
                await engine.remember(
                    codes[reader.id], Person(friend.id, friend.first_name, None, "en")
                )

            probe = sqlite3.connect(db_path)

            def counted() -> int:
                return int(probe.execute("SELECT count(*) FROM referrals").fetchone()[0])

            # The burst: friends join the channel by its name, matched by their user id.
            for n, friend in enumerate(friends[: JOINS // 2]):
                world.join_public(friend, chat)
                if n % 100 == 99:
                    await world.wait_for(lambda: len(bot.updates) < 200, timeout=WAIT)
            await world.wait_for(lambda: counted() >= 100, timeout=WAIT, what="some joins")

            # Kill 1: a batch is handled and committed, and its acknowledgement is lost
            # on the way (the connection drops): Telegram will hand the batch over again.
            lost = world.inject_fault("getUpdates", mode="disconnect")
            await world.wait_for(lambda: lost.remaining == 0, timeout=WAIT, what="the ack")
            handled_unacknowledged = counted() - (JOINS // 2 - len(bot.updates))
            first.kill()
            assert await asyncio.wait_for(first.wait(), WAIT) == -signal.SIGKILL
            assert handled_unacknowledged > 0, handled_unacknowledged
            for friend in friends[JOINS // 2 :]:
                world.join_public(friend, chat)  # joins go on while the bot is down

            # Kill 2: wherever the next process is when it has done part of the rest.
            second = await _spawn(env, tmp_path, log)
            before = counted()
            await world.wait_for(
                lambda: counted() > before + 50, timeout=WAIT, what="more joins handled"
            )
            second.kill()
            assert await asyncio.wait_for(second.wait(), WAIT) == -signal.SIGKILL
            assert counted() < JOINS

            third = await _spawn(env, tmp_path, log)
            await world.wait_for(
                lambda: not bot.updates and counted() == JOINS,
                timeout=WAIT,
                what="every join handled",
            )
            third.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(third.wait(), WAIT) == 0, log.read_text()
            probe.close()
            seen = Counter(
                u["update_id"]
                for c in world.calls_of("getUpdates")
                if c.ok
                for u in c.result or []
            )
            assert sum(1 for times in seen.values() if times > 1) >= handled_unacknowledged
        finally:
            for proc in (first, second, third):
                if proc is not None and proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            if db is not None:
                await db.dispose()

    with sqlite3.connect(db_path) as conn:
        referrals = conn.execute(
            "SELECT referred_id, referrer_id, state FROM referrals"
        ).fetchall()
        attempts = conn.execute("SELECT user_id, outcome FROM join_attempts").fetchall()
        counts = dict(conn.execute("SELECT referrer_id, pending FROM referrer_counts").fetchall())
        others = conn.execute(
            'SELECT sum(held + confirmed + rejected + "left" + counted) FROM referrer_counts'
        ).fetchone()[0]
        events = Counter(kind for (kind,) in conn.execute("SELECT kind FROM events").fetchall())
        joined = conn.execute(
            "SELECT count(*) FROM members WHERE first_joined_at IS NOT NULL"
        ).fetchone()[0]
        kept = conn.execute("SELECT count(*) FROM inbox").fetchone()[0]
    # Nothing lost, nothing doubled.
    assert sorted(referrals) == sorted(
        (friend, reader, "pending") for friend, reader in expected.items()
    )
    assert sorted(attempts) == sorted((friend, "referral") for friend in expected)
    assert counts == dict(Counter(expected.values()))
    assert others == 0
    assert events["referral.pending"] == JOINS
    assert joined == JOINS
    assert kept == 0
    assert "Traceback" not in log.read_text()
