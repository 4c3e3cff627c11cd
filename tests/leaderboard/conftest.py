"""The board service on a real database (SQLite and PostgreSQL), with the engine's fake
platform and the injected clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from leaderboard.service import BoardService
from referrals.clock import FakeClock
from referrals.models import LeaveEvent, Program
from referrals.people import People
from referrals.service import ReferralService
from rewards.service import RewardService
from storage.database import Database
from storage.schema import board_histogram, outbox
from tests.helpers.factories import CHANNEL_ID, join, make_program, person
from tests.helpers.ports import FakePlatform

MANAGER = 7


@dataclass
class BoardRig:
    db: Database
    clock: FakeClock
    platform: FakePlatform
    referrals: ReferralService
    rewards: RewardService
    boards: BoardService
    people: People
    program: Program
    next_friend: int = 50_000

    async def join(self, reader: int, count: int = 1) -> list[int]:
        """``count`` friends join through ``reader``'s link now (pending for the hold)."""
        link = (
            await self.referrals.get_or_create_link(
                self.program.id, person(reader, f"Reader {reader}")
            )
        ).link
        friends = []
        for _ in range(count):
            self.next_friend += 1
            friend = self.next_friend
            friends.append(friend)
            self.platform.join(CHANNEL_ID, friend)
            await self.referrals.record_join(
                join(self.program, friend, self.clock.now(), link.code)
            )
        return friends

    async def confirm(self) -> None:
        """Past the hold: due referrals confirm and the boards catch up."""
        self.clock.advance(hours=self.program.hold_hours + 1)
        await self.referrals.confirm_due()
        await self.boards.consume()

    async def refer(self, reader: int, count: int = 1) -> list[int]:
        friends = await self.join(reader, count)
        await self.confirm()
        return friends

    async def leave(self, friend: int) -> None:
        self.platform.leave(CHANNEL_ID, friend)
        await self.referrals.record_leave(LeaveEvent(self.program.id, friend, self.clock.now()))
        await self.boards.consume()

    async def histogram(self, key: str) -> dict[int, int]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(board_histogram.c.count, board_histogram.c.readers).where(
                    board_histogram.c.program_id == self.program.id,
                    board_histogram.c.period == key,
                )
            )
            return {count: readers for count, readers in rows.all()}

    async def posts(self, template: str) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(outbox).where(outbox.c.template == template).order_by(outbox.c.id)
            )
            return [dict(r) for r in rows.mappings()]


async def make_rig(
    db: Database, clock: FakeClock, platform: FakePlatform, **settings: Any
) -> BoardRig:
    referrals = ReferralService(db, clock, {"telegram": platform})
    rewards = RewardService(referrals.engine)
    boards = BoardService(referrals.engine, rewards)
    people = People(db, clock)
    settings.setdefault("hold_hours", 24)
    program = await make_program(referrals, created_by=MANAGER, **settings)
    platform.admins[CHANNEL_ID] = {MANAGER}
    return BoardRig(db, clock, platform, referrals, rewards, boards, people, program)


@pytest.fixture
async def rig(db: Database, clock: FakeClock, platform: FakePlatform) -> BoardRig:
    return await make_rig(db, clock, platform)
