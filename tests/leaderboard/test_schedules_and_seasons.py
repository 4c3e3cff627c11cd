"""Scheduled posts (one per slot across instances, stale slots skipped, daylight saving)
and seasons (frozen after the hold, top N or a verifiable draw, prizes granted once)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from leaderboard import draw as draws
from leaderboard.models import BadBoardSetting
from leaderboard.periods import Period, latest_slot
from leaderboard.service import BoardService
from referrals.clock import FakeClock
from storage.database import Database
from tests.helpers.ports import FakePlatform
from tests.leaderboard.conftest import MANAGER, BoardRig, make_rig

BERLIN = "Europe/Berlin"


def test_a_repeated_hour_is_one_slot_and_a_skipped_one_posts_at_the_next_valid_minute() -> None:
    # 29 Mar 2026: 02:00 -> 03:00 in Berlin; 02:30 does not exist, the slot is 03:00 CEST.
    spring = latest_slot("30 2 * * *", BERLIN, datetime(2026, 3, 29, 1, 5, tzinfo=UTC))
    assert spring is not None
    wall, at = spring
    assert (wall.hour, wall.minute) == (2, 30)
    assert at == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    # 25 Oct 2026: 03:00 -> 02:00; 02:30 happens twice, the slot is the first one.
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    slot = latest_slot("30 2 * * *", BERLIN, first)
    assert slot is not None and slot[1] == first
    again = latest_slot("30 2 * * *", BERLIN, first + timedelta(hours=1), since=first)
    assert again is None  # 02:30 CET is the same slot


async def test_the_board_is_posted_once_per_slot_across_daylight_saving(
    db: Database, platform: FakePlatform
) -> None:
    clock = FakeClock(datetime(2026, 10, 23, 12, 0, tzinfo=UTC))
    rig = await make_rig(db, clock, platform, timezone=BERLIN)
    await rig.boards.set_schedule(rig.program.id, MANAGER, "30 2 * * *", period=Period.ALL)
    await rig.refer(1, 2)  # 13:00 UTC on the 24th
    posted = []
    for _ in range(4 * 48):  # every 15 minutes until the 26th at noon
        clock.advance(minutes=15)
        posted.append((await rig.boards.post_due()).posted)
        if clock.now() > datetime(2026, 10, 26, 12, tzinfo=UTC):
            break
    posts = await rig.posts("board")
    assert len(posts) == 2  # the 25th (twice 02:30, one post) and the 26th
    context = json.loads(posts[0]["context"])
    assert context["posted"] and context["entries"][0]["count"] == 2


async def test_two_instances_post_one_slot_once(db: Database, platform: FakePlatform) -> None:
    clock = FakeClock(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    rig = await make_rig(db, clock, platform)
    await rig.boards.set_schedule(rig.program.id, MANAGER, "0 9 * * 1")
    other = BoardService(rig.referrals.engine, rig.rewards)
    clock.advance(hours=1, minutes=1)
    first, second = await rig.boards.post_due(), await other.post_due()
    assert first.posted + second.posted == 1
    assert len(await rig.posts("board")) == 1


async def test_a_stale_missed_slot_is_skipped_and_a_recent_one_posted(
    db: Database, platform: FakePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    rig = await make_rig(db, clock, platform)
    await rig.boards.set_schedule(rig.program.id, MANAGER, "0 9 * * *")
    clock.advance(hours=6)  # down from 08:00 to 14:00: the 09:00 slot is stale
    with caplog.at_level("INFO"):
        report = await rig.boards.post_due()
    assert (report.posted, report.skipped) == (0, 1)
    assert "stale" in caplog.text
    clock.advance(hours=20)  # 10:00 next day: the 09:00 slot is recent
    assert (await rig.boards.post_due()).posted == 1
    assert (await rig.boards.post_due()).posted == 0


async def test_a_schedule_needs_five_fields_and_at_most_hourly_posts(rig: BoardRig) -> None:
    with pytest.raises(BadBoardSetting):
        await rig.boards.set_schedule(rig.program.id, MANAGER, "*/5 * * * *")
    with pytest.raises(BadBoardSetting):
        await rig.boards.set_schedule(rig.program.id, MANAGER, "0 9 * *")


async def test_a_season_board_freezes_after_the_hold_and_grants_prizes_once(
    rig: BoardRig,
) -> None:
    start = rig.clock.now()
    prize, _ = await rig.rewards.add_milestone(
        rig.program.id, MANAGER, role="prize", title="Mug", reward_kind="message", message="Mug!"
    )
    season = await rig.boards.create_season(
        rig.program.id,
        MANAGER,
        "January Cup",
        start,
        start + timedelta(days=7),
        winners=2,
        prize_id=prize.id,
    )
    await rig.refer(1, 3)
    await rig.refer(2, 1)
    await rig.refer(3, 2)
    rig.clock.advance(start + timedelta(days=7, hours=-4) - rig.clock.now())  # a last join
    await rig.join(2, 2)
    rig.clock.advance(hours=5)  # ended, but the last joins are still in their hold
    report = await rig.boards.post_due()
    assert report.seasons_closed == 0
    await rig.confirm()  # past the hold: the late joins count for the season
    report = await rig.boards.post_due()
    assert (report.seasons_closed, report.prizes) == (1, 2)
    results = await rig.boards.season_results(season.id)
    assert results is not None
    assert [(w["reader_id"], w["place"]) for w in results["winners"]] == [(1, 1), (2, 2)]
    # frozen: later referrals joined inside the season would not move it; counts carry on
    await rig.refer(3, 5)
    again = await rig.boards.post_due()
    assert (again.seasons_closed, again.prizes) == (0, 0)
    board = await rig.boards.board(rig.program.id, Period.SEASON, season_id=season.id)
    assert board.frozen and [e.reader_id for e in board.entries] == [1, 2, 3]
    assert len(await rig.posts("season_final")) == 1
    assert len(await rig.posts("season_started")) == 1


async def test_a_draw_is_checked_again_from_its_published_seed(rig: BoardRig) -> None:
    start = rig.clock.now()
    season = await rig.boards.create_season(
        rig.program.id,
        MANAGER,
        "Draw",
        start,
        start + timedelta(days=3),
        mode="draw",
        winners=2,
        min_referrals=2,
    )
    assert season.seed is None and season.seed_hash  # the seed stays secret until the draw
    await rig.join(1, 5)
    await rig.join(2, 2)
    await rig.join(3, 1)  # below the minimum: no tickets
    await rig.join(4, 3)
    await rig.confirm()
    rig.clock.advance(days=3)
    await rig.boards.post_due()
    results = await rig.boards.season_results(season.id)
    assert results is not None
    assert draws.commitment(results["seed"]) == season.seed_hash
    assert results["tickets"] == 10
    entries = draws.parse_ranges(results["ranges"])
    again = draws.draw(results["seed"], entries, 2)
    assert [n for _, _, n in again] == [w["number"] for w in results["winners"]]
    assert len({w["reader_id"] for w in results["winners"]}) == 2
    assert 3 not in {w["reader_id"] for w in results["winners"]}
    assert (
        draws.main(
            [
                "--seed",
                results["seed"],
                "--ranges",
                results["ranges"],
                "--winners",
                "2",
                "--commitment",
                season.seed_hash or "",
            ]
        )
        == 0
    )
