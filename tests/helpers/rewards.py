"""Coupon rewards earned in bulk, for the rewards benchmark and the rewards crash tests.

* :func:`seed_coupon_program` — a program, a pool of codes imported as a coupon file
  (``RewardService.import_codes``) and a coupon milestone at one referral;
* :func:`seed_earned` — readers who each just got one referral confirmed, written straight
  into the tables the state machine writes (people, referrals, referrer_counts and one
  ``count_changes`` row each), so the milestone job has N records to consume;
* :func:`install_reward_texts` — stand-in texts for the reward message until the Telegram
  templates for rewards land (without them the bot cannot render a reward at all); it
  does nothing once ``bots/templates/en/reward_delivered.html.j2`` exists;
* ``python -m tests.helpers.rewards run`` — ``inviteloop run`` with those texts.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jinja2 import ChoiceLoader, DictLoader
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bots.render import Renderer
from delivery.ratelimit import Limits
from main import Application, Settings
from referrals.clock import FakeClock
from referrals.models import Program
from referrals.service import ReferralService
from rewards.service import RewardService
from sandbox import DatetimeClock, RateLimits, SandboxServer, SimBot, SimMessage, World
from storage.database import Database
from storage.migrate import upgrade
from storage.schema import (
    count_changes,
    grants,
    people,
    referrals,
    referrer_counts,
    reward_codes,
)

FRIEND_OFFSET = 10_000_000_000  # reader r's friend is r + FRIEND_OFFSET
CHUNK = 5_000

# Only what the reward message of a coupon needs: its title, the code, and the buttons.
REWARD_TEXT = (
    "🎁 <b>{{ title }}</b> in {{ program }}"
    "{% if code %}: your code is <code>{{ code }}</code>{% endif %}"
)
LABELS = {
    "copy_code": "Copy code",
    "share_link": "Copy my link",
    "join_reward_chat": "Join the chat",
    "answer_question": "Answer",
}


def code_filename(codes: Sequence[str]) -> tuple[str, bytes]:
    """A coupon file as a manager uploads it."""
    return "codes.txt", ("\n".join(codes) + "\n").encode()


def make_codes(count: int, prefix: str = "CODE") -> list[str]:
    return [f"{prefix}-{n:06d}" for n in range(count)]


async def seed_coupon_program(
    referrals: ReferralService,
    rewards: RewardService,
    destination_id: int,
    codes: Sequence[str],
    *,
    title: str = "Bench Daily",
) -> tuple[Program, int]:
    """A channel's program whose readers earn one coupon at one referral; the pool holds
    ``codes``. Returns the program and the pool id."""
    program = await referrals.create_program("telegram", destination_id, "channel", title)
    filename, content = code_filename(codes)
    report = await rewards.import_codes(program.id, None, filename, content, pool_name="bench")
    assert report.added == len(codes) and report.pool_id is not None, report
    await rewards.add_milestone(
        program.id, None, count=1, title="Coupon", reward_kind="coupon", pool_id=report.pool_id
    )
    return program, report.pool_id


async def seed_earned(db: Database, program_id: int, readers: Sequence[int], at: datetime) -> None:
    """Each reader (who opened the bot) had one friend join and get confirmed: the rows the
    state machine writes for that, in bulk."""
    joined = at - timedelta(days=2)
    async with db.write() as conn:
        for start in range(0, len(readers), CHUNK):
            part = readers[start : start + CHUNK]
            await conn.execute(
                people.insert(),
                [
                    {
                        "platform": "telegram",
                        "user_id": r,
                        "display_name": f"Reader {r}",
                        "started_at": joined,
                        "updated_at": joined,
                    }
                    for r in part
                ],
            )
            await conn.execute(
                referrals.insert(),
                [
                    {
                        "program_id": program_id,
                        "referred_id": r + FRIEND_OFFSET,
                        "referrer_id": r,
                        "state": "confirmed",
                        "joined_at": joined,
                        "hold_until": at,
                        "confirmed_at": at,
                    }
                    for r in part
                ],
            )
            await conn.execute(
                referrer_counts.insert(),
                [
                    {
                        "program_id": program_id,
                        "referrer_id": r,
                        "confirmed": 1,
                        "counted": 1,
                        "updated_at": at,
                    }
                    for r in part
                ],
            )
            await conn.execute(count_changes.insert(), change_rows(program_id, part, at))


def change_rows(program_id: int, readers: Sequence[int], at: datetime) -> list[dict[str, Any]]:
    """One confirmation's change record per reader (0 → 1)."""
    return [
        {
            "program_id": program_id,
            "reader_id": r,
            "before": 0,
            "after": 1,
            "referred_id": r + FRIEND_OFFSET,
            "transition": "confirm",
            "joined_at": at - timedelta(days=2),
            "confirmed_at": at,
            "at": at,
        }
        for r in readers
    ]


def install_reward_texts(renderer: Renderer) -> bool:
    """Give ``renderer`` the reward message and its button labels if its templates lack
    them; returns whether it had to."""
    if (renderer.root / "en" / "reward_delivered.html.j2").is_file():
        return False
    extra: dict[str, str] = {}
    for locale in ("en", "id"):
        labels = (renderer.root / locale / "labels.html.j2").read_text(encoding="utf-8")
        for key, text in LABELS.items():
            if f"macro {key}(" not in labels:
                labels += f"\n{{% macro {key}() %}}{text}{{% endmacro %}}"
        extra[f"{locale}/labels.html.j2"] = labels
        extra[f"{locale}/reward_delivered.html.j2"] = REWARD_TEXT
    assert renderer.env.loader is not None
    renderer.env.loader = ChoiceLoader([DictLoader(extra), renderer.env.loader])
    if renderer.env.cache is not None:
        renderer.env.cache.clear()
    return True


def _run_with_reward_texts() -> int:
    """``inviteloop run`` whose renderer has the reward texts."""
    import bots.render
    import main

    original = bots.render.Renderer.__init__

    def patched(self: Renderer, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        install_reward_texts(self)

    bots.render.Renderer.__init__ = patched  # type: ignore[method-assign]
    return main.main(["run"])


if __name__ == "__main__":
    if sys.argv[1:] != ["run"]:
        raise SystemExit("usage: python -m tests.helpers.rewards run")
    raise SystemExit(_run_with_reward_texts())


# --- the real application against the sandbox, on one fake clock ------------------------------


@dataclass
class CouponBot:
    """A started ``Application`` whose Telegram bot talks to an in-process sandbox; the
    sandbox's flood limits and our limiter read the same fake clock."""

    world: World
    sim: SimBot
    app: Application
    clock: FakeClock
    program: Program
    readers: list[int]
    codes: list[str]


@asynccontextmanager
async def coupon_bot(
    url: str, count: int, rate_limits: RateLimits | None = None
) -> AsyncIterator[CouponBot]:
    """``count`` readers who opened the bot and each earned one coupon of a pool of
    ``count`` codes (change records not yet evaluated); Telegram's limits unless
    ``rate_limits``; our outbox with the configured ``Limits()``."""
    clock = FakeClock()
    world = World(clock=DatetimeClock(clock), seed=2026, rate_limits=rate_limits or RateLimits())
    sim = world.add_bot("couponloopbot", "Coupon Loop")
    owner = world.add_user("Olga", "olga_owner")
    chat = world.add_chat("channel", "Bench Daily", owner=owner)
    world.add_bot_to_chat(chat, sim, by=owner)
    readers = [world.add_user(f"Reader {n}").id for n in range(count)]
    for reader in readers:
        world.dialog(sim, reader).started = True  # they opened the bot once
    codes = make_codes(count)
    async with SandboxServer(world) as server:
        settings = Settings(
            database_url=url,
            telegram_token=SecretStr(sim.token),
            telegram_api_url=server.url,
            log_level="WARNING",
        )
        app = Application(
            settings,
            clock=clock,
            limits=Limits(),  # Telegram's: 30/s overall, 1/s per chat
            poll_timeout=1,
            retry_delays=(0.0, 0.0),
            monotonic=lambda: clock.now().timestamp(),
        )
        install_reward_texts(app.renderer)
        try:
            await upgrade(app.db)
            await app.start()
            program, _ = await seed_coupon_program(app.referrals, app.rewards, chat.id, codes)
            await seed_earned(app.db, program.id, readers, clock.now())
            yield CouponBot(world, sim, app, clock, program, readers, codes)
        finally:
            await app.close()


async def run_until_delivered(
    app: Application, clock: FakeClock, *, tick_every: float = 60.0, max_rounds: int = 100_000
) -> float:
    """What ``inviteloop run`` does, on the fake clock: every scheduled job each
    ``tick_every`` seconds, the outbox drained in between, the clock moved by what the
    outbox asks to wait, until no grant is left to deliver. Returns the wall time spent in
    the jobs."""
    in_jobs = 0.0
    next_tick = clock.now().timestamp()
    for _ in range(max_rounds):
        if clock.now().timestamp() >= next_tick:
            began = time.perf_counter()
            await app.tick()
            in_jobs += time.perf_counter() - began
            next_tick = clock.now().timestamp() + tick_every
        report = await app.outbox.drain_once()
        if report.wait is None:
            async with app.db.read() as conn:
                states = await grant_states(conn)
            if not states.keys() & {"unlocked", "delivering"}:
                return in_jobs
            clock.advance(seconds=max(0.0, next_tick - clock.now().timestamp()))
        elif report.wait > 0:
            clock.advance(seconds=max(0.0, min(report.wait, next_tick - clock.now().timestamp())))
    raise AssertionError("the rewards were never all delivered")


async def grant_states(conn: AsyncConnection) -> Counter[str]:
    return Counter((await conn.execute(select(grants.c.state))).scalars())


async def assigned_codes(conn: AsyncConnection) -> dict[int, str]:
    """Reader → the code assigned to their grant."""
    query = select(grants.c.reader_id, reward_codes.c.code).join(
        reward_codes, reward_codes.c.id == grants.c.code_id
    )
    return {int(r): str(c) for r, c in (await conn.execute(query)).all()}


def received_codes(
    messages: Iterable[SimMessage], readers: Iterable[int], codes: Iterable[str]
) -> dict[int, list[str]]:
    """Reader → the pool's codes in each message they received (its copy button), one entry
    per message ("" for a message without one)."""
    pool = set(codes)
    got: dict[int, list[str]] = {r: [] for r in readers}
    for message in messages:
        if message.chat_id not in got:
            continue
        copied = {b["copy_text"]["text"] for b in message.inline_buttons if "copy_text" in b}
        found = sorted(copied & pool)
        got[message.chat_id].append(found[0] if len(found) == 1 else "")
    return got
