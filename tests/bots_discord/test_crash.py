"""The crash test on Discord: ``inviteloop run`` as a real process with only the Discord
bot, against the sandbox server running in this test; a burst of joins through readers'
invites comes in; the process is killed (SIGKILL) in the middle of it, more people join
and one counted friend leaves while it is down, and it is started again. Every join is
recorded exactly once, none is credited to the wrong reader, and the leave is caught up.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
from collections import Counter
from pathlib import Path

from bots.discord.tracker import DEFAULT_MEMBER_ADD_LAG
from sandbox.discord import (
    DiscordSandboxServer,
    DiscordUser,
    DiscordWorld,
    Guild,
    permissions,
)
from tests.bots_discord.conftest import BOT_PERMISSIONS

INVITELOOP = str(Path(sys.executable).parent / "inviteloop")
WAIT = 40.0  # a bound on each wait, never a pause
READERS = 4
PER_PHASE = 60
MEMBER_ADD_LAG = DEFAULT_MEMBER_ADD_LAG  # what `inviteloop run` uses


def _env(token: str, url: str, db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVITELOOP_")}
    env.update(
        INVITELOOP_DISCORD_TOKEN=token,
        INVITELOOP_DISCORD_API_URL=url,
        INVITELOOP_DATABASE_URL=f"sqlite:///{db}",
    )
    return env


async def _spawn(
    env: dict[str, str], cwd: Path, log: Path, *args: str
) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            INVITELOOP, *args, cwd=cwd, env=env, stdout=out, stderr=out
        )


async def _answer(world: DiscordWorld, user: DiscordUser, channel: object, name: str) -> str:
    record = world.invoke_slash(user, channel, name)  # type: ignore[arg-type]
    messages = await world.wait_for_messages_of(record, 1, timeout=WAIT)
    return str(await world.wait_for(lambda: messages[0].content, timeout=WAIT, what=f"/{name}"))


async def _until_counting(
    world: DiscordWorld, guild: Guild, probe: sqlite3.Connection, truth: dict[int, int]
) -> None:
    """Wait until the bot's READY resync is done (joins before it are never credited):
    a probe joins without an invite until one is judged on fresh counters (``no_invite`` or
    ``ambiguous`` rather than ``stale_cache`` or ``while_away``)."""
    for n in range(50):
        person = world.add_user(f"probe{n}")
        world.join_without_invite(person, guild)
        truth[person.id] = 0  # nobody's

        def judged(user_id: int = person.id) -> str | None:
            row = probe.execute(
                "SELECT coalesce(reason, '') FROM join_attempts WHERE user_id = ?", (user_id,)
            ).fetchone()
            return None if row is None else str(row[0])

        # ``ambiguous``: judged on fresh counters too, but too soon after the previous
        # reading for the bot to rule out a member still on the way (member_add_lag).
        reason = await world.wait_for(judged, timeout=WAIT, what="a probe's join")
        if reason in ("no_invite", "ambiguous"):
            return
    raise AssertionError("the bot never took fresh invite counters")


async def test_a_kill_during_a_burst_of_joins_loses_and_doubles_nothing(tmp_path: Path) -> None:
    world = DiscordWorld(seed=11, member_add_delay=(0.0, 0.2))  # the real clock
    owner = world.add_user("olga", "Olga")
    app = world.add_application("Invite Loop", owner=owner)
    guild = world.add_guild("Readers", owner)
    channel = next(iter(guild.channels.values()))
    world.add_bot_to_guild(app, guild, permissions=BOT_PERMISSIONS | permissions.VIEW_CHANNEL)
    readers = [world.add_user(f"reader{n}", f"Reader {n}") for n in range(READERS)]
    for reader in readers:
        world.add_member(guild, reader)
    db_path, log = tmp_path / "bot.db", tmp_path / "run.log"
    probe: sqlite3.Connection | None = None
    procs: list[asyncio.subprocess.Process] = []

    def attempts() -> int:
        assert probe is not None
        return int(probe.execute("SELECT count(*) FROM join_attempts").fetchone()[0])

    async def settled(count: int, what: str) -> None:
        await world.wait_for(lambda: attempts() >= count, timeout=WAIT, what=what)

    truth: dict[int, int] = {}  # friend -> the reader whose invite they used

    async def burst(reader: int, count: int, prefix: str, gap: float = 0.005) -> list[DiscordUser]:
        friends = []
        for n in range(count):
            friend = world.add_user(f"{prefix}{n}", f"{prefix} {n}")
            world.join_via_invite(friend, codes[reader])
            truth[friend.id] = readers[reader].id
            friends.append(friend)
            await asyncio.sleep(gap)  # joins spread over time, some land together
        return friends

    async with DiscordSandboxServer(world) as server:
        env = _env(app.token, server.url, db_path)
        try:
            sync = await _spawn(env, tmp_path, log, "discord", "sync")
            assert await asyncio.wait_for(sync.wait(), WAIT) == 0, log.read_text()
            procs.append(await _spawn(env, tmp_path, log, "run"))
            await world.wait_until_connected(app, timeout=WAIT)
            assert "is set up" in await _answer(world, owner, channel, "setup")
            codes = []
            for reader in readers:
                text = await _answer(world, reader, channel, "invite")
                found = re.search(r"discord\.gg/([A-Za-z0-9]+)", text)
                assert found, text
                codes.append(found.group(1))
            probe = sqlite3.connect(db_path)
            await _until_counting(world, guild, probe, truth)

            # Phase A: one reader's invite only — every window of it is theirs.
            first = await burst(0, PER_PHASE, "a")
            await settled(len(truth), "phase A")
            # A lone join, longer than the bot's member_add_lag (3 s) after the last reading
            # and before the next: nobody can be on the way, so it is credited.
            await asyncio.sleep(MEMBER_ADD_LAG + 1)
            [lone] = await burst(0, 1, "lone")
            await settled(len(truth), "the lone join")
            # Phase B: two readers' invites at once; killed while joins are in flight.
            # (each lasts longer than a few settle windows of 2 s)
            mixed = asyncio.create_task(burst(1, PER_PHASE, "b", gap=0.1))
            also = asyncio.create_task(burst(2, PER_PHASE, "c", gap=0.1))
            await settled(len(truth) - 2 * PER_PHASE + 1, "part of phase B")
            procs[0].kill()
            assert await asyncio.wait_for(procs[0].wait(), WAIT) == -signal.SIGKILL
            await asyncio.gather(mixed, also)  # the rest join while the bot is down
            away = await burst(3, 20, "d")
            gone = lone
            world.leave(gone, guild)
            assert attempts() < len(truth)

            procs.append(await _spawn(env, tmp_path, log, "run"))
            await settled(len(truth), "the catch-up after the restart")
            # Phase E: after the restart, one reader's invite again.
            await burst(3, PER_PHASE, "e")
            await settled(len(truth), "phase E")
            procs[1].send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(procs[1].wait(), WAIT) == 0, log.read_text()
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            if probe is not None:
                probe.close()

    with sqlite3.connect(db_path) as conn:
        recorded = Counter(
            user for (user,) in conn.execute("SELECT user_id FROM join_attempts").fetchall()
        )
        outcomes = {
            user: (outcome, reason)
            for user, outcome, reason in conn.execute(
                "SELECT user_id, outcome, reason FROM join_attempts"
            ).fetchall()
        }
        credited = dict(conn.execute("SELECT referred_id, referrer_id FROM referrals").fetchall())
        states = {
            user: (state, reason)
            for user, state, reason in conn.execute(
                "SELECT referred_id, state, reason FROM referrals"
            ).fetchall()
        }
        counts = {
            reader: (pending, rejected)
            for reader, pending, rejected in conn.execute(
                "SELECT referrer_id, pending, rejected FROM referrer_counts"
            ).fetchall()
        }
    # Nothing lost, nothing doubled: every friend's join is recorded once.
    assert recorded == Counter(truth.keys()), {u: n for u, n in recorded.items() if n != 1}
    # Nothing guessed: whoever was credited brought that friend.
    assert all(truth[friend] == reader for friend, reader in credited.items())
    # One reader's invite at a time is theirs, or (joins closer together than the bot's
    # member_add_lag, 3 s, to the previous reading) ambiguous; the catch-up says "while away".
    assert all(
        credited.get(f.id) == readers[0].id or outcomes[f.id] == ("unattributed", "ambiguous")
        for f in first
    ), {f.id: outcomes[f.id] for f in first}
    assert credited.get(lone.id) == readers[0].id
    assert {outcomes[f.id] for f in away} == {("unattributed", "while_away")}
    assert states[gone.id] == ("rejected", "left_during_hold")
    # The counts agree with the referrals.
    expected: Counter[int] = Counter()
    rejected: Counter[int] = Counter()
    for friend, reader in credited.items():
        if states[friend][0] == "rejected":
            rejected[reader] += 1
        else:
            expected[reader] += 1
    assert {r: c for r, c in counts.items() if c != (0, 0)} == {
        r: (expected[r], rejected[r]) for r in set(expected) | set(rejected)
    }
    assert "Traceback" not in log.read_text()
