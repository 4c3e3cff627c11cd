"""Boards follow the change records: all time, week, month, ties, exclusions, names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import update

from leaderboard.export import write_export
from leaderboard.periods import Period
from referrals.clock import FakeClock
from storage.database import Database
from storage.schema import members
from tests.helpers.ports import FakePlatform
from tests.leaderboard.conftest import MANAGER, BoardRig, make_rig


async def test_top_ten_rank_and_referrals_to_the_next_place(rig: BoardRig) -> None:
    for reader, count in ((1, 5), (2, 3), (3, 3), (4, 1)):
        await rig.join(reader, count)
    await rig.confirm()
    board = await rig.boards.board(rig.program.id, Period.ALL, reader_id=3)
    assert [(e.rank, e.reader_id, e.count) for e in board.entries] == [
        (1, 1, 5),
        (2, 2, 3),  # tied: one shared rank, the one who got there first listed first
        (2, 3, 3),
        (4, 4, 1),
    ]
    assert board.total == 4
    assert board.you is not None
    assert (board.you.rank, board.you.count, board.you.to_next) == (2, 3, 2)
    top = await rig.boards.standing(rig.program.id, Period.ALL, 1)
    assert (top.rank, top.to_next) == (1, None)
    nobody = await rig.boards.standing(rig.program.id, Period.ALL, 99)
    assert (nobody.rank, nobody.count, nobody.to_next) == (None, 0, 1)
    assert await rig.histogram("all") == {5: 1, 3: 2, 1: 1}


async def test_within_a_tie_who_reached_the_count_first_ranks_first(rig: BoardRig) -> None:
    await rig.refer(2, 2)  # reader 2 reaches 2 first
    await rig.refer(1, 2)
    board = await rig.boards.board(rig.program.id, Period.ALL)
    assert [e.reader_id for e in board.entries] == [2, 1]
    await rig.refer(2, 1)
    await rig.refer(1, 1)  # 3 each again: reader 2 reached 3 first
    board = await rig.boards.board(rig.program.id, Period.ALL)
    assert [(e.reader_id, e.rank) for e in board.entries] == [(2, 1), (1, 1)]


async def test_a_referral_belongs_to_the_week_and_month_of_its_join_in_the_program_zone(
    db: Database, platform: FakePlatform
) -> None:
    # Sunday 31 Jan 2027, 23:30 in Jakarta (16:30 UTC): week of Mon 25 Jan, month January.
    clock = FakeClock(datetime(2027, 1, 31, 16, 30, tzinfo=UTC))
    rig = await make_rig(db, clock, platform, timezone="Asia/Jakarta", hold_hours=48)
    await rig.join(1)
    clock.advance(hours=1)  # 00:30 Monday 1 February in Jakarta
    await rig.join(2, 2)
    await rig.confirm()  # confirmed on Wednesday: still the join's periods
    weekly = await rig.histogram("w2027-01-25")
    assert weekly == {1: 1}
    assert await rig.histogram("w2027-02-01") == {2: 1}
    assert await rig.histogram("m2027-01") == {1: 1}
    assert await rig.histogram("m2027-02") == {2: 1}
    board = await rig.boards.board(rig.program.id, Period.WEEK, reader_id=1)
    assert board.key == "w2027-02-01"
    assert [e.reader_id for e in board.entries] == [2]
    assert board.you is not None and board.you.rank is None  # nothing this week
    month = await rig.boards.board(rig.program.id, Period.MONTH)
    assert month.key == "m2027-02"


async def test_a_program_may_start_its_week_on_sunday(rig: BoardRig) -> None:
    await rig.boards.update_settings(rig.program.id, MANAGER, week_start=6)
    await rig.refer(1)  # joined Monday 5 Jan 2026: the week of Sunday 4 Jan
    assert await rig.histogram("w2026-01-04") == {1: 1}


async def test_leavers_drop_off_period_boards_under_the_subtract_policy(rig: BoardRig) -> None:
    await rig.referrals.update_settings(rig.program.id, None, leave_policy="subtract")
    friends = await rig.refer(1, 3)
    await rig.leave(friends[0])
    assert await rig.histogram("all") == {2: 1}
    assert await rig.histogram("w2026-01-05") == {2: 1}
    # back to keeping leavers: the recount reaches the period boards too
    await rig.referrals.update_settings(rig.program.id, None, leave_policy="keep")
    await rig.boards.consume()
    assert await rig.histogram("all") == {3: 1}
    assert await rig.histogram("w2026-01-05") == {3: 1}


async def test_excluded_readers_leave_every_board_but_keep_their_counts(
    rig: BoardRig,
) -> None:
    await rig.refer(1, 3)
    await rig.refer(2, 1)
    await rig.boards.exclude(rig.program.id, MANAGER, 1)
    board = await rig.boards.board(rig.program.id, Period.ALL, reader_id=1)
    assert [(e.reader_id, e.rank) for e in board.entries] == [(2, 1)]
    assert board.you is not None and board.you.excluded
    assert (await rig.referrals.counts(rig.program.id, 1)).counted == 3
    await rig.refer(1, 1)  # still off the board as they go on
    assert await rig.histogram("all") == {1: 1}
    await rig.boards.exclude(rig.program.id, MANAGER, 1, excluded=False)
    board = await rig.boards.board(rig.program.id, Period.ALL)
    assert [(e.reader_id, e.count) for e in board.entries] == [(1, 4), (2, 1)]


async def test_hostile_names_are_cleaned_and_privacy_hides_them(rig: BoardRig) -> None:
    hostile = "\u202eevil\u200b<b>boss</b>\u0007" + "x" * 500
    await rig.people.seen("telegram", 1, display_name=hostile, started=True)
    await rig.refer(1)
    board = await rig.boards.board(rig.program.id, Period.ALL)
    [entry] = board.entries
    assert "\u202e" not in entry.name and "\u200b" not in entry.name
    assert "\u0007" not in entry.name
    assert len(entry.name) <= 32
    await rig.boards.update_settings(rig.program.id, MANAGER, public_names=False)
    [entry] = (await rig.boards.board(rig.program.id, Period.ALL)).entries
    assert entry.name == "" and entry.number == 1


async def test_pages_keep_shared_ranks(rig: BoardRig) -> None:
    for reader, count in enumerate((11, 11, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1), start=1):
        await rig.join(reader, count)
    await rig.confirm()
    second = await rig.boards.board(rig.program.id, Period.ALL, page=2)
    assert second.pages == 2
    assert [(e.rank, e.count) for e in second.entries] == [(11, 1), (11, 1)]
    first = await rig.boards.board(rig.program.id, Period.ALL)
    assert [e.rank for e in first.entries[:3]] == [1, 1, 3]


async def test_export_neutralises_formulas_and_counts_by_label(
    rig: BoardRig, tmp_path: Path
) -> None:
    await rig.refer(1, 2)
    async with rig.db.write() as conn:
        await conn.execute(update(members).values(display_name="=HYPERLINK(1)"))
    paths = await write_export(rig.db, rig.program.id, tmp_path)
    assert sorted(p.name for p in paths) == ["grants.csv", "readers.csv", "referrals.csv"]
    readers = (tmp_path / "readers.csv").read_text().splitlines()
    assert readers[0].endswith("counted,confirmed_via_default")
    assert readers[1].startswith("1,'=HYPERLINK(1)")
    assert readers[1].endswith(",2,2")
    assert len((tmp_path / "referrals.csv").read_text().splitlines()) == 3
