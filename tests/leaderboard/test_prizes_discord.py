"""Discord's developer policy on season prizes: a prize rule made while the program's
rewards were on is not paid after a manager turned them off again."""

from __future__ import annotations

from datetime import timedelta

from leaderboard.service import BoardService
from referrals.clock import FakeClock
from referrals.models import JoinEvent
from referrals.service import ReferralService
from rewards.service import RewardService
from storage.database import Database
from storage.schema import grants
from tests.helpers.factories import person
from tests.helpers.ports import FakePlatform

GUILD = 9_000_001
MANAGER = 7


async def test_a_discord_seasons_prize_is_not_paid_once_rewards_are_off(
    db: Database, clock: FakeClock, platform: FakePlatform
) -> None:
    referrals = ReferralService(db, clock, {"discord": platform})
    rewards = RewardService(referrals.engine)
    boards = BoardService(referrals.engine, rewards)
    platform.admins[GUILD] = {MANAGER}
    program = await referrals.create_program(
        "discord", GUILD, "guild", "Readers", created_by=MANAGER, hold_hours=24
    )
    await referrals.update_settings(program.id, MANAGER, rewards_opt_in=True)
    prize, _ = await rewards.add_milestone(
        program.id, MANAGER, role="prize", title="Mug", reward_kind="message", message="☕"
    )
    start = clock.now()
    season = await boards.create_season(
        program.id, MANAGER, "Cup", start, start + timedelta(days=7), winners=1
    )
    await boards.set_season_prize(season.id, MANAGER, prize.id)
    link = (await referrals.get_or_create_link(program.id, person(1, "Ana"))).link
    platform.join(GUILD, 500)
    await referrals.record_join(
        JoinEvent(program_id=program.id, person=person(500), at=clock.now(), link=link.code)
    )
    clock.advance(hours=25)
    await referrals.confirm_due()
    await boards.consume()
    await referrals.update_settings(program.id, MANAGER, rewards_opt_in=False)

    clock.advance(timedelta(days=8))
    await boards.close_seasons()
    closed = await boards.season(season.id)
    assert closed.final_at is not None  # the season closed and its board froze
    async with db.read() as conn:
        assert (await conn.execute(grants.select())).all() == []
