"""Season prizes on a real database (SQLite and PostgreSQL) with the injected clock: the
manager chooses a prize rule for a season, its winners get it once when the season closes,
a winner the bot cannot message claims it in the bot, and an unclaimed prize counts as
unreachable after the claim window."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from delivery.outbox import Outbox
from leaderboard.models import BadSeasonPrize, Season, SeasonNotFound
from leaderboard.service import PRIZE_CLAIM_WINDOW, BoardService
from referrals.clock import FakeClock
from referrals.models import NotAllowed
from rewards.models import ClaimOutcome, Milestone
from rewards.service import RewardService
from storage import rewards as db_rewards
from storage.database import Database
from storage.schema import events, outbox
from tests.helpers.factories import make_program
from tests.helpers.ports import FakePlatform
from tests.leaderboard.conftest import MANAGER, BoardRig, make_rig
from tests.rewards.conftest import RecordingSender

OTHER_CHANNEL = -1009999


@dataclass
class PrizeRig:
    rig: BoardRig
    sender: RecordingSender
    outbox: Outbox

    async def tick(self) -> None:
        """A minute of ``inviteloop run``: rewards, then boards and seasons, then sends."""
        await self.rig.rewards.evaluate()
        await self.rig.rewards.deliver()
        await self.rig.boards.consume()
        await self.rig.boards.post_due()
        await self.rig.rewards.deliver()
        for _ in range(20):
            report = await self.outbox.drain_once()
            if not (report.sent or report.failed or report.retried):
                break

    async def started(self, user_id: int) -> None:
        await self.rig.people.seen(
            "telegram", user_id, display_name=f"Reader {user_id}", started=True
        )

    async def prize_grants(self, season_id: int) -> dict[int, dict[str, Any]]:
        """The season's prize grants by winner."""
        async with self.rig.db.read() as conn:
            found = {}
            for reader in (1, 2, 3, 4):
                row = await db_rewards.prize_grant(conn, "telegram", season_id, reader)
                if row is not None:
                    found[reader] = row
            return found

    async def rows_of(self, template: str) -> list[dict[str, Any]]:
        async with self.rig.db.read() as conn:
            result = await conn.execute(
                select(outbox).where(outbox.c.template == template).order_by(outbox.c.id)
            )
            return [dict(r) for r in result.mappings()]


@pytest.fixture
async def prized(db: Database, clock: FakeClock, platform: FakePlatform) -> PrizeRig:
    rig = await make_rig(db, clock, platform)
    sender = RecordingSender()
    box = Outbox(db, clock, {"telegram": sender})
    box.on_settled(rig.rewards.settled)
    await rig.people.seen("telegram", MANAGER, display_name="Manager", started=True)
    return PrizeRig(rig, sender, box)


async def _mug(rig: BoardRig, title: str = "Mug") -> Milestone:
    prize, _ = await rig.rewards.add_milestone(
        rig.program.id, MANAGER, role="prize", title=title, reward_kind="message", message="☕"
    )
    return prize


async def _season(rig: BoardRig, **kw: Any) -> Season:
    start = rig.clock.now()
    return await rig.boards.create_season(
        rig.program.id, MANAGER, "January Cup", start, start + timedelta(days=7), winners=2, **kw
    )


async def _close(prized: PrizeRig, season: Season) -> None:
    """Readers 1 (3 friends) and 2 (1 friend) win; then past the end and the hold."""
    rig = prized.rig
    await rig.refer(1, 3)
    await rig.refer(2, 1)
    rig.clock.advance(season.ends_at - rig.clock.now() + timedelta(hours=25))
    await prized.tick()


async def test_a_prize_chosen_for_a_season_is_announced_and_granted_once_at_its_close(
    prized: PrizeRig,
) -> None:
    rig = prized.rig
    await _mug(rig)
    await prized.started(1)
    await prized.started(2)
    season = await _season(rig)
    assert season.prize_id is None
    chosen = await rig.boards.set_season_prize(season.id, MANAGER, "mug")  # by its title
    assert chosen.prize_title == "Mug" and (await rig.boards.season(season.id)).prize_id
    [told] = await prized.rows_of("season_prize")
    assert json.loads(told["context"])["prize"] == "Mug"
    await rig.boards.set_season_prize(season.id, MANAGER, "Mug")  # the same: not told twice
    assert len(await prized.rows_of("season_prize")) == 1

    await _close(prized, season)
    grants = await prized.prize_grants(season.id)
    assert {r: (g["occurrence"], g["state"]) for r, g in grants.items()} == {
        1: (1, "delivered"),
        2: (2, "delivered"),
    }
    [delivered] = prized.sender.to(1, "reward_delivered")
    assert (delivered.context["season"], delivered.context["place"]) == ("January Cup", 1)
    [final] = await prized.rows_of("season_final")
    context = json.loads(final["context"])
    assert context["prize"] == "Mug" and context["claim_until"]
    assert [w["claim"] for w in context["results"]["winners"]] == [False, False]
    assert "claim_1" in (final["payload"] or "")  # the claim button, for anyone who needs it

    rig.clock.advance(hours=1)
    await prized.tick()
    again = await rig.boards.close_seasons()
    assert (again.seasons_closed, again.prizes) == (0, 0)
    assert len(prized.sender.to(1, "reward_delivered")) == 1
    assert len(prized.sender.to(2, "reward_delivered")) == 1


async def test_a_season_created_with_its_prize_tells_the_chat_which_one(
    prized: PrizeRig,
) -> None:
    rig = prized.rig
    mug = await _mug(rig)
    season = await _season(rig, prize_id=mug.id)
    assert season.prize_title == "Mug"
    [started] = await prized.rows_of("season_started")
    assert json.loads(started["context"])["prize"] == "Mug"
    assert [s.prize_title for s in await rig.boards.seasons(rig.program.id)] == ["Mug"]


async def test_a_prize_that_cannot_be_chosen_is_refused_and_changes_nothing(
    prized: PrizeRig, platform: FakePlatform
) -> None:
    rig = prized.rig
    mug = await _mug(rig)
    milestone, _ = await rig.rewards.add_milestone(
        rig.program.id, MANAGER, count=3, title="Stickers", reward_kind="message", message="S"
    )
    other = await make_program(
        rig.referrals, destination_id=OTHER_CHANNEL, created_by=MANAGER, hold_hours=24
    )
    platform.admins[OTHER_CHANNEL] = {MANAGER}
    foreign, _ = await rig.rewards.add_milestone(
        other.id, MANAGER, role="prize", title="Hoodie", reward_kind="message", message="H"
    )
    paused = await _mug(rig, "Poster")
    await rig.rewards.set_milestone_paused(paused.id, MANAGER, True)
    season = await _season(rig, prize_id=mug.id)

    problems = {}
    for ref in (99_999, foreign.id, milestone.id, "Poster", "Yacht"):
        with pytest.raises(BadSeasonPrize) as refused:
            await rig.boards.set_season_prize(season.id, MANAGER, ref)
        problems[ref] = refused.value.problem
    assert problems == {
        99_999: "unknown",
        foreign.id: "other_program",
        milestone.id: "not_prize",
        "Poster": "paused",
        "Yacht": "unknown",
    }
    with pytest.raises(BadSeasonPrize):
        await rig.boards.create_season(
            rig.program.id,
            MANAGER,
            "Stolen",
            rig.clock.now(),
            rig.clock.now() + timedelta(days=1),
            prize_id=foreign.id,
        )
    with pytest.raises(NotAllowed):
        await rig.boards.set_season_prize(season.id, 4242, None)
    with pytest.raises(SeasonNotFound):
        await rig.boards.set_season_prize(season.id + 100, MANAGER, mug.id)
    assert [s.prize_id for s in await rig.boards.seasons(rig.program.id)] == [mug.id]
    assert await prized.rows_of("season_prize") == []

    await _close(prized, season)
    with pytest.raises(BadSeasonPrize) as refused:
        await rig.boards.set_season_prize(season.id, MANAGER, None)
    assert refused.value.problem == "final"
    assert (await rig.boards.season(season.id)).prize_id == mug.id


async def test_a_winner_who_never_started_the_bot_claims_the_prize_once(
    prized: PrizeRig,
) -> None:
    rig = prized.rig
    mug = await _mug(rig)
    await prized.started(1)  # reader 2 never opened the bot
    season = await _season(rig, prize_id=mug.id)
    await _close(prized, season)
    grants = await prized.prize_grants(season.id)
    assert (grants[1]["state"], grants[2]["state"]) == ("delivered", "unclaimed")
    [final] = await prized.rows_of("season_final")
    winners = json.loads(final["context"])["results"]["winners"]
    assert [(w["place"], w["claim"]) for w in winners] == [(1, False), (2, True)]
    assert "https://t.me/loopbot?start=claim_" in (final["payload"] or "")

    # Someone else presses the button: refused, nothing changes.
    await prized.started(3)
    other = await rig.rewards.claim_prize("telegram", 3, season.id)
    assert other.outcome is ClaimOutcome.NOT_WINNER
    nobody = await rig.rewards.claim_prize("telegram", 3, season.id + 50)
    assert nobody.outcome is ClaimOutcome.NO_PRIZE
    assert (await prized.prize_grants(season.id))[2]["state"] == "unclaimed"

    # Six days later the winner presses it (which opens the bot): sent, once.
    rig.clock.advance(days=6)
    await prized.started(2)
    claim = await rig.rewards.claim_prize("telegram", 2, season.id)
    assert (claim.outcome, claim.title, claim.place) == (ClaimOutcome.CLAIMED, "Mug", 2)
    second = await rig.rewards.claim_prize("telegram", 2, season.id)
    assert second.outcome is ClaimOutcome.ALREADY
    await rig.rewards.reader_returned("telegram", 2)
    await prized.tick()
    assert (await prized.prize_grants(season.id))[2]["state"] == "delivered"
    assert len(prized.sender.to(2, "reward_delivered")) == 1
    late = await rig.rewards.claim_prize("telegram", 2, season.id)
    assert late.outcome is ClaimOutcome.ALREADY
    rig.clock.advance(days=2)
    await prized.tick()  # delivered prizes never expire
    assert (await prized.prize_grants(season.id))[2]["state"] == "delivered"
    assert len(prized.sender.to(2, "reward_delivered")) == 1
    async with rig.db.read() as conn:
        kinds = (await conn.execute(select(events.c.kind))).scalars().all()
    assert list(kinds).count("prize_claimed") == 1


async def test_an_unclaimed_prize_counts_as_unreachable_after_seven_days(
    prized: PrizeRig,
) -> None:
    rig = prized.rig
    mug = await _mug(rig)
    await prized.started(1)
    season = await _season(rig, prize_id=mug.id)
    await _close(prized, season)
    final_at = (await rig.boards.season(season.id)).final_at
    assert final_at is not None

    rig.clock.advance(final_at + PRIZE_CLAIM_WINDOW - rig.clock.now() - timedelta(minutes=1))
    await prized.tick()
    assert (await prized.prize_grants(season.id))[2]["state"] == "unclaimed"  # not yet
    rig.clock.advance(minutes=1)
    await prized.tick()
    grant = (await prized.prize_grants(season.id))[2]
    assert (grant["state"], grant["delivery_error"].split(":")[0]) == (
        "unreachable",
        "claim_expired",
    )
    [notice] = prized.sender.to(MANAGER, "season_prizes_unclaimed")
    assert notice.context["season"] == "January Cup"
    assert [(w["place"], w["title"]) for w in notice.context["winners"]] == [(2, "Mug")]
    report = await rig.rewards.report(rig.program.id)
    assert (report["prizes_unclaimed"], report["prizes_to_claim"]) == (1, 0)

    # A later claim, opening the bot, a resend: none brings it back.
    await prized.started(2)
    late = await rig.rewards.claim_prize("telegram", 2, season.id)
    assert late.outcome is ClaimOutcome.EXPIRED
    assert await rig.rewards.reader_returned("telegram", 2) == 0
    await rig.rewards.resend(grant["id"], 2)
    rig.clock.advance(minutes=5)
    await prized.tick()
    assert (await prized.prize_grants(season.id))[2]["state"] == "unreachable"
    assert prized.sender.to(2, "reward_delivered") == []
    assert len(prized.sender.to(MANAGER, "season_prizes_unclaimed")) == 1


async def test_a_claim_after_the_window_is_refused_before_the_job_marks_it(
    prized: PrizeRig,
) -> None:
    rig = prized.rig
    mug = await _mug(rig)
    season = await _season(rig, prize_id=mug.id)
    await _close(prized, season)
    rig.clock.advance(days=8)  # the job has not run since
    await prized.started(1)
    assert await rig.rewards.reader_returned("telegram", 1) == 0
    claim = await rig.rewards.claim_prize("telegram", 1, season.id)
    assert claim.outcome is ClaimOutcome.EXPIRED
    assert (await prized.prize_grants(season.id))[1]["state"] == "unclaimed"
    assert await rig.rewards.expire_prize_claims() == 2


async def test_two_instances_expire_each_unclaimed_prize_once(prized: PrizeRig) -> None:
    rig = prized.rig
    mug = await _mug(rig)
    season = await _season(rig, prize_id=mug.id)
    await _close(prized, season)
    rig.clock.advance(days=8)
    second = BoardService(rig.referrals.engine, RewardService(rig.referrals.engine))
    reports = await asyncio.gather(rig.boards.close_seasons(), second.close_seasons())
    assert sum(r.prizes_expired for r in reports) == 2
    assert len(await prized.rows_of("season_prizes_unclaimed")) == 1
    states = {g["state"] for g in (await prized.prize_grants(season.id)).values()}
    assert states == {"unreachable"}
