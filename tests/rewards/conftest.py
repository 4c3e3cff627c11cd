"""The rewards service on a real database (SQLite and PostgreSQL), the engine's fake
platform and an outbox whose sender records what it was asked to send."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from delivery.outbox import OutboundMessage, Outbox, Refusal
from delivery.port import Delivered, SendResult
from delivery.ratelimit import Limits
from referrals.clock import FakeClock
from referrals.models import Program
from referrals.people import People
from referrals.service import ReferralService
from rewards.service import RewardService
from storage import rewards as db_rewards
from storage.database import Database
from tests.helpers.factories import CHANNEL_ID, join, make_program, person
from tests.helpers.ports import FakePlatform

READER = 1001
MANAGER = 7


@dataclass
class RecordingSender:
    """Sends nothing anywhere: records each message, answers with a scripted outcome."""

    platform: str = "telegram"
    limits: Limits = field(
        default_factory=lambda: Limits(
            global_per_second=1e6,
            global_burst=1e6,
            user_per_second=1e6,
            user_burst=1e6,
            chat_per_minute=1e6,
            chat_burst=1e6,
            chat_per_second=1e6,
        )
    )
    sent: list[OutboundMessage] = field(default_factory=list)
    outcomes: dict[int, SendResult] = field(default_factory=dict)  # by target id

    async def send(self, message: OutboundMessage) -> SendResult:
        outcome = self.outcomes.get(message.target_id)
        if outcome is not None and not isinstance(outcome, Delivered):
            return outcome
        self.sent.append(message)
        return Delivered(len(self.sent))

    def pause_for(self, refusals: Sequence[Refusal]) -> float | None:
        return None

    def to(self, target: int, template: str | None = None) -> list[OutboundMessage]:
        return [
            m
            for m in self.sent
            if m.target_id == target and (template is None or m.template == template)
        ]


@dataclass
class Rig:
    db: Database
    clock: FakeClock
    platform: FakePlatform
    referrals: ReferralService
    rewards: RewardService
    people: People
    outbox: Outbox
    sender: RecordingSender
    program: Program
    next_friend: int = 50_000

    async def started(self, user_id: int) -> None:
        await self.people.seen("telegram", user_id, display_name=f"User {user_id}", started=True)

    async def refer(self, count: int, reader: int = READER, *, confirm: bool = True) -> list[int]:
        """``count`` friends join through the reader's link; past the hold they count."""
        link = (await self.referrals.get_or_create_link(self.program.id, person(reader))).link
        friends = []
        for _ in range(count):
            self.next_friend += 1
            friend = self.next_friend
            friends.append(friend)
            self.platform.join(CHANNEL_ID, friend)
            await self.referrals.record_join(
                join(self.program, friend, self.clock.now(), link.code)
            )
        if confirm:
            self.clock.advance(hours=self.program.hold_hours + 1)
            await self.referrals.confirm_due()
        return friends

    async def tick(self) -> None:
        """What ``inviteloop run`` does each minute for rewards, then the outbox drains."""
        await self.rewards.evaluate()
        await self.rewards.deliver()
        for _ in range(20):
            report = await self.outbox.drain_once()
            if not (report.sent or report.failed or report.retried):
                break

    async def grants(self, reader: int = READER) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            return [
                dict(r) for r in await db_rewards.grants_of_reader(conn, self.program.id, reader)
            ]

    def later(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))


@pytest.fixture
async def rig(db: Database, clock: FakeClock, platform: FakePlatform) -> Rig:
    referrals = ReferralService(db, clock, {"telegram": platform})
    rewards = RewardService(referrals.engine)
    people = People(db, clock)
    sender = RecordingSender()
    outbox = Outbox(db, clock, {"telegram": sender})
    outbox.on_settled(rewards.settled)
    program = await make_program(referrals, hold_hours=24, created_by=MANAGER)
    platform.admins[CHANNEL_ID] = {MANAGER}
    await people.seen("telegram", READER, display_name="Reader", started=True)
    await people.seen("telegram", MANAGER, display_name="Manager", started=True)
    return Rig(db, clock, platform, referrals, rewards, people, outbox, sender, program)
