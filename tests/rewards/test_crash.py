"""Crashes while rewards are delivered: the bot process (``inviteloop run``) is killed with
SIGKILL in the middle of a burst of coupon messages through the sandbox and started again;
and a failure inside the delivery transaction, right after a code was taken. Every grant ends
delivered, every reader gets their code, no code goes to two readers; a message repeats only
when the kill fell between Telegram accepting it and our commit, and then with the same code.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from referrals.clock import SystemClock
from referrals.service import ReferralService
from rewards.service import RewardService
from sandbox import SandboxServer, World
from storage import rewards as db_rewards
from storage.database import Database
from storage.migrate import upgrade
from storage.schema import reward_codes
from tests.helpers.rewards import (
    make_codes,
    received_codes,
    seed_coupon_program,
    seed_earned,
)
from tests.rewards.conftest import MANAGER, READER, Rig

ROOT = Path(__file__).resolve().parents[2]
INVITELOOP = str(Path(sys.executable).parent / "inviteloop")
TEMPLATES = ROOT / "bots" / "templates" / "en" / "reward_delivered.html.j2"
READERS = 150  # 5 s of sending at Telegram's 30 messages a second
WAIT = 40.0  # a bound on each wait, never a pause


async def _spawn(env: dict[str, str], cwd: Path, log: Path) -> asyncio.subprocess.Process:
    """``inviteloop run``; until the reward texts are in bots/templates, the same entry point
    with stand-in texts (tests/helpers/rewards.py)."""
    command = [INVITELOOP, "run"]
    if not TEMPLATES.is_file():
        command = [sys.executable, "-m", "tests.helpers.rewards", "run"]
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            *command, cwd=cwd, env=env, stdout=out, stderr=out
        )


async def test_a_kill_in_the_middle_of_delivering_rewards_gives_every_code_once(
    tmp_path: Path,
) -> None:
    world = World(seed=11)  # Telegram's flood limits, on the real clock
    bot = world.add_bot("loopbot", "Loop")
    owner = world.add_user("Olga", username="olga")
    chat = world.add_chat("channel", "Open News", "opennews", owner=owner)
    world.add_bot_to_chat(chat, bot, by=owner)
    readers = [world.add_user(f"Reader {n}").id for n in range(READERS)]
    for reader in readers:
        world.dialog(bot, reader).started = True
    codes = make_codes(READERS + 10)

    # Each reader earned one coupon: the program, its pool, the milestone and the change
    # records are on the database before the bot starts; its first rewards job evaluates
    # them and queues the burst.
    db_path = tmp_path / "bot.db"
    db = Database.from_url(f"sqlite:///{db_path}")
    try:
        await upgrade(db)
        engine = ReferralService(db, SystemClock())
        program, _ = await seed_coupon_program(
            engine, RewardService(engine.engine), chat.id, codes, title="Open News"
        )
        await seed_earned(db, program.id, readers, SystemClock().now())
    finally:
        await db.dispose()

    log = tmp_path / "run.log"
    probe = sqlite3.connect(db_path)

    def states() -> Counter[str]:
        return Counter(s for (s,) in probe.execute("SELECT state FROM grants").fetchall())

    def accepted() -> int:
        return sum(
            1 for c in world.calls_of("sendMessage") if c.ok and _chat_id(c.params) in readers
        )

    async with SandboxServer(world) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INVITELOOP_")}
        env.update(
            INVITELOOP_TELEGRAM_TOKEN=bot.token,
            INVITELOOP_TELEGRAM_API_URL=server.url,
            INVITELOOP_DATABASE_URL=f"sqlite:///{db_path}",
            PYTHONPATH=str(ROOT),
        )
        first = await _spawn(env, tmp_path, log)
        second: asyncio.subprocess.Process | None = None
        try:
            await world.wait_for(
                lambda: accepted() >= READERS // 3, timeout=WAIT, what="part of the burst"
            )
            first.kill()
            assert await asyncio.wait_for(first.wait(), WAIT) == -signal.SIGKILL
            at_kill = states()
            assert at_kill["delivering"] > 0, at_kill  # queued or in flight, not settled
            assert 0 < at_kill["delivered"] < READERS, at_kill
            sent_before = accepted()

            # Two minutes pass while the bot is down: the leases the killed drain held on
            # its outbox rows run out (nothing else here depends on the time).
            probe.execute("UPDATE outbox SET lease_until = NULL WHERE state = 'queued'")
            probe.commit()
            second = await _spawn(env, tmp_path, log)
            await world.wait_for(
                lambda: states() == Counter({"delivered": READERS}),
                timeout=WAIT,
                what="every grant delivered",
            )
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), WAIT) == 0, log.read_text()
        finally:
            for proc in (first, second):
                if proc is not None and proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            probe.close()

    with sqlite3.connect(db_path) as conn:
        assigned = dict(
            conn.execute(
                "SELECT g.reader_id, c.code FROM grants g JOIN reward_codes c ON c.id = g.code_id"
            ).fetchall()
        )
        used = conn.execute("SELECT count(*) FROM reward_codes WHERE grant_id IS NOT NULL")
        codes_used = used.fetchone()[0]
        outbox = Counter(
            state
            for (state,) in conn.execute(
                "SELECT state FROM outbox WHERE idempotency_key LIKE 'grant:%'"
            ).fetchall()
        )
    got = received_codes(world.sent_log, readers, codes)
    # Every reader got their own code, and only ever that code.
    assert sorted(assigned) == sorted(readers)
    assert len(set(assigned.values())) == READERS == codes_used
    for reader in readers:
        assert got[reader] and set(got[reader]) == {assigned[reader]}, (reader, got[reader])
    # One outbox row per grant; a repeat only for a send in flight at the kill.
    assert outbox == Counter({"sent": READERS})
    repeats = sum(len(codes) - 1 for codes in got.values())
    assert repeats == accepted() - READERS
    assert repeats <= 30, repeats  # at most one drain's sends at Telegram's overall limit
    assert sent_before < READERS
    assert "Traceback" not in log.read_text()


def _chat_id(params: dict[str, Any]) -> int | None:
    try:
        return int(params.get("chat_id"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


async def _coupon_milestone(rig: Rig, codes: list[str]) -> int:
    content = ("\n".join(codes) + "\n").encode()
    report = await rig.rewards.import_codes(rig.program.id, MANAGER, "codes.txt", content)
    await rig.rewards.add_milestone(
        rig.program.id,
        MANAGER,
        count=1,
        title="Coupon",
        reward_kind="coupon",
        pool_id=report.pool_id,
    )
    assert report.pool_id is not None
    return report.pool_id


async def test_a_crash_inside_the_delivery_transaction_leaves_the_code_free(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _coupon_milestone(rig, ["FIRST-1", "SECOND-2"])
    await rig.refer(1)
    await rig.rewards.evaluate()
    [before] = await rig.grants()
    real_assign = db_rewards.assign_codes

    async def assign_then_crash(*args: Any, **kwargs: Any) -> Any:
        await real_assign(*args, **kwargs)
        raise ConnectionResetError("the database went away after the code was taken")

    monkeypatch.setattr(db_rewards, "assign_codes", assign_then_crash)
    with pytest.raises(ConnectionResetError):
        await rig.rewards.deliver()
    monkeypatch.undo()

    [grant] = await rig.grants()
    assert grant["state"] == "unlocked" and grant["code_id"] is None
    assert (grant["attempts"], grant["next_attempt_at"]) == (before["attempts"], None)
    async with rig.db.read() as conn:
        taken = (
            await conn.execute(reward_codes.select().where(reward_codes.c.grant_id.is_not(None)))
        ).all()
    assert taken == []
    await rig.outbox.drain_once()
    assert rig.sender.to(READER, "reward_delivered") == []  # nothing was queued

    await rig.tick()
    await rig.tick()
    [grant] = await rig.grants()
    assert grant["state"] == "delivered"
    [sent] = rig.sender.to(READER, "reward_delivered")
    assert sent.context["code"] == "FIRST-1"  # the oldest free code, given once
