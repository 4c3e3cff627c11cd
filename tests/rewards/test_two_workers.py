"""Two processes deliver rewards from one PostgreSQL database and one coupon pool at once
(two bot instances): no code goes to two grants, every grant gets exactly one code, and no
grant's first delivery is queued twice."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest
from sqlalchemy import select

from referrals.clock import FakeClock
from referrals.service import ReferralService
from rewards.service import RewardService
from storage.database import Database
from storage.schema import grants, outbox, reward_codes
from tests.conftest import POSTGRES_URL, drop_schema, make_database
from tests.helpers.rewards import make_codes, seed_coupon_program, seed_earned

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL,
    reason="two workers on one database need PostgreSQL: set INVITELOOP_TEST_POSTGRES_URL "
    "(e.g. postgresql://postgres@127.0.0.1:5432/test); .ci/run sets it",
)

GRANTS = 400
BATCH = 15  # small batches: many transactions of the two workers interleave
READER_BASE = 900_000_000


def _worker(schema: str, go: Event, done: multiprocessing.Queue[int]) -> None:
    done.put(asyncio.run(_deliver_until_none_left(schema, go)))


async def _deliver_until_none_left(schema: str, go: Event) -> int:
    """What one instance's rewards job does, in a loop; returns how many it queued."""
    db = Database.from_url(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})
    rewards = RewardService(ReferralService(db, FakeClock()).engine)
    queued = 0
    try:
        await asyncio.to_thread(go.wait, 30)
        while True:
            report = await rewards.deliver(limit=BATCH, rounds=1)
            queued += report.queued
            if report.queued:
                continue
            async with db.read() as conn:
                query = select(grants.c.id).where(grants.c.state == "unlocked").limit(1)
                if (await conn.execute(query)).first() is None:
                    return queued
    finally:
        await db.dispose()


async def test_two_workers_never_give_one_code_twice_nor_queue_a_grant_twice(
    tmp_path: Path,
) -> None:
    db, schema = await make_database("postgres", tmp_path)
    assert schema is not None
    try:
        engine = ReferralService(db, FakeClock())
        rewards = RewardService(engine.engine)
        program, pool_id = await seed_coupon_program(
            engine, rewards, -1009000000003, make_codes(GRANTS + 50)
        )
        readers = [READER_BASE + n for n in range(GRANTS)]
        await seed_earned(db, program.id, readers, engine.engine.clock.now())
        assert (await rewards.evaluate()).grants == GRANTS

        context = multiprocessing.get_context("spawn")
        go = context.Event()
        done: multiprocessing.Queue[int] = context.Queue()
        workers = [
            context.Process(target=_worker, args=(schema, go, done), daemon=True) for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        go.set()
        queued = [await asyncio.to_thread(done.get, True, 60) for _ in workers]
        for worker in workers:
            await asyncio.to_thread(worker.join, 30)
            assert worker.exitcode == 0

        async with db.read() as conn:
            rows = (
                await conn.execute(select(grants.c.id, grants.c.code_id, grants.c.state))
            ).all()
            codes = (
                await conn.execute(
                    select(reward_codes.c.id, reward_codes.c.grant_id).where(
                        reward_codes.c.pool_id == pool_id, reward_codes.c.grant_id.is_not(None)
                    )
                )
            ).all()
            keys = list(
                (
                    await conn.execute(
                        select(outbox.c.idempotency_key).where(
                            outbox.c.idempotency_key.like("grant:%")
                        )
                    )
                ).scalars()
            )
    finally:
        await db.dispose()
        await drop_schema(schema)

    assert sum(queued) == GRANTS and all(queued), queued  # both took part, none twice
    assert Counter(state for _, _, state in rows) == Counter({"delivering": GRANTS})
    # every grant has one code, and that code points back at it alone
    by_grant = {grant_id: code_id for grant_id, code_id, _ in rows}
    assert None not in by_grant.values()
    assert len(set(by_grant.values())) == GRANTS
    assert {code_id: grant_id for code_id, grant_id in codes} == {
        code_id: grant_id for grant_id, code_id in by_grant.items()
    }
    # one outbox row per grant, for its first delivery
    assert sorted(keys) == sorted(f"grant:{grant_id}:1" for grant_id in by_grant)
