"""The reports service on a real database (SQLite and PostgreSQL): /programstats' figures
and chart from real rows, the CSV exports (neutralised cells, hostile names, fitting an
upload limit by zipping or splitting) and the manager check that comes before anything is
built."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from delivery.spool import Spool
from leaderboard.export import fit
from leaderboard.reports import Reports
from leaderboard.stats import ChartText
from referrals.models import NotAllowed
from sandbox.files import PNG_SIGNATURE, image_size
from storage.schema import grants
from tests.helpers.factories import CHANNEL_ID, join, person
from tests.leaderboard.conftest import MANAGER, BoardRig, make_rig

CHART = ChartText("Referrals per day", "referrals", "day", "counted", "waiting", "not counted")
MB = 1024 * 1024


def reports_of(rig: BoardRig, tmp_path: Path) -> Reports:
    return Reports(rig.referrals.engine, rig.rewards, Spool(tmp_path / "spool"))


async def join_via(rig: BoardRig, reader: int, name: str, label: str, count: int) -> list[int]:
    """``count`` friends join now through ``reader``'s link for ``label``."""
    link = (
        await rig.referrals.get_or_create_link(rig.program.id, person(reader, name), label)
    ).link
    friends = []
    for _ in range(count):
        rig.next_friend += 1
        friends.append(rig.next_friend)
        rig.platform.join(CHANNEL_ID, rig.next_friend)
        await rig.referrals.record_join(
            join(rig.program, rig.next_friend, rig.clock.now(), link.code)
        )
    return friends


def rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


async def test_programstats_figures_come_from_the_programs_rows(
    db: object, clock: object, platform: object, tmp_path: Path
) -> None:
    rig = await make_rig(db, clock, platform, timezone="Asia/Jakarta")  # type: ignore[arg-type]
    await rig.rewards.add_milestone(
        rig.program.id, MANAGER, count=1, title="Sticker", reward_kind="message",
        message="Thanks!", cost_cents=250,
    )  # fmt: skip
    # 2026-01-05 16:00 in Jakarta: three friends via WhatsApp, two via the main link
    await join_via(rig, 1, "Ana", "whatsapp", 3)
    ben_friends = await join_via(rig, 2, "Ben", "", 2)
    await rig.leave(ben_friends[0])  # left during the hold: not counted
    await rig.confirm()  # 2026-01-06 10:00 UTC, 17:00 in Jakarta
    await rig.rewards.evaluate()
    async with rig.db.write() as conn:  # the two rewards' messages went out
        await conn.execute(update(grants).values(state="delivered"))
    await join_via(rig, 3, "Cy", "", 1)  # waiting for its hold

    built = await reports_of(rig, tmp_path).program_stats(
        rig.program.id, MANAGER, chart=CHART, limit=10 * MB
    )

    figures = built.stats
    assert len(figures.days) == 30
    assert figures.days[-1].day == date(2026, 1, 6)
    assert (figures.days[-1].counted, figures.days[-1].waiting) == (0, 1)
    assert (figures.days[-2].day, figures.days[-2].counted, figures.days[-2].rejected) == (
        date(2026, 1, 5),
        4,
        1,
    )
    assert sum(day.total for day in figures.days[:-2]) == 0
    assert (figures.referrals, figures.counted, figures.waiting, figures.rejected) == (6, 4, 1, 1)
    assert figures.rate == pytest.approx(0.8)
    assert [(s.label, s.referrals, s.counted, s.rate) for s in figures.labels] == [
        ("whatsapp", 3, 3, 1.0),
        ("", 3, 1, 0.5),
    ]
    assert figures.rewards["grants"] == {"delivered": 2}
    assert figures.rewards["cost_cents"] == 500
    assert figures.rewards["cost_per_referral_cents"] == 125  # 5.00 over 4 counted

    chart = built.chart.path.read_bytes()
    assert chart.startswith(PNG_SIGNATURE)
    assert image_size(chart) == (900, 420)
    assert built.chart.filename == "programstats-1-20260106.png"
    assert built.chart.path.parent.parent == tmp_path / "spool"


async def test_a_day_is_the_programs_local_day_even_at_a_quarter_hour_offset(
    db: object, clock: object, platform: object, tmp_path: Path
) -> None:
    rig = await make_rig(db, clock, platform, timezone="Asia/Kathmandu")  # type: ignore[arg-type]
    rig.clock.advance(hours=9, minutes=10)  # 18:10 UTC = 23:55 in Kathmandu (UTC+05:45)
    await join_via(rig, 1, "Ana", "", 1)
    rig.clock.advance(minutes=10)  # 18:20 UTC = 00:05 the next day there
    await join_via(rig, 1, "Ana", "", 2)

    built = await reports_of(rig, tmp_path).program_stats(
        rig.program.id, MANAGER, chart=CHART, limit=10 * MB
    )

    days = {day.day: day.waiting for day in built.stats.days if day.total}
    assert days == {date(2026, 1, 5): 1, date(2026, 1, 6): 2}


async def test_someone_who_does_not_manage_the_program_gets_nothing_built(
    rig: BoardRig, tmp_path: Path
) -> None:
    await join_via(rig, 1, "Ana", "", 1)
    reports = reports_of(rig, tmp_path)
    with pytest.raises(NotAllowed):
        await reports.export(rig.program.id, 99, limit=10 * MB)
    with pytest.raises(NotAllowed):
        await reports.program_stats(rig.program.id, 99, chart=CHART, limit=10 * MB)
    assert not (tmp_path / "spool").exists() or not any((tmp_path / "spool").iterdir())


HOSTILE = {
    1: '=HYPERLINK("http://evil","x")',
    2: "+1 555",
    3: "-2+3",
    4: "@SUM(A1)",
    5: '<b>Eve</b>\u202e\n"quoted"',
}


async def test_the_export_neutralises_formula_cells_and_keeps_hostile_names_as_text(
    rig: BoardRig, tmp_path: Path
) -> None:
    for reader, name in HOSTILE.items():
        await join_via(rig, reader, name, "whatsapp" if reader == 1 else "", 1)
    await rig.confirm()

    built = await reports_of(rig, tmp_path).export(rig.program.id, MANAGER, limit=10 * MB)

    assert [(f.filename, f.form) for f in built.files] == [
        ("readers.csv", "csv"),
        ("referrals.csv", "csv"),
        ("grants.csv", "csv"),
    ]
    readers = rows(built.files[0].path.read_bytes())
    # the most used label first
    assert readers[0][-2:] == ["confirmed_via_default", "confirmed_via_whatsapp"]
    names = {int(row[0]): row[1] for row in readers[1:]}
    assert names == {
        1: '\'=HYPERLINK("http://evil","x")',
        2: "'+1 555",
        3: "'-2+3",
        4: "'@SUM(A1)",
        5: '<b>Eve</b>"quoted"',  # cleaned when stored; HTML is text in a CSV
    }
    by_reader = {int(row[0]): row[-2:] for row in readers[1:]}
    assert by_reader[1] == ["0", "1"] and by_reader[2] == ["1", "0"]
    referrals = rows(built.files[1].path.read_bytes())
    assert referrals[0][:4] == ["referred_id", "referrer_id", "label", "state"]
    assert len(referrals) == 1 + len(HOSTILE)
    assert {row[3] for row in referrals[1:]} == {"confirmed"}


async def test_an_export_over_the_upload_limit_is_zipped_or_split_never_dropped(
    rig: BoardRig, tmp_path: Path
) -> None:
    for reader in range(1, 41):
        noise = hashlib.sha256(str(reader).encode()).hexdigest()  # zips poorly
        await join_via(rig, reader, f"Reader {reader} {noise}", "", 1)
    await rig.confirm()
    reports = reports_of(rig, tmp_path)
    whole = await reports.export(rig.program.id, MANAGER, limit=10 * MB)
    sizes = {f.source: f.size for f in whole.files}
    original = {f.source: f.path.read_bytes() for f in whole.files}

    zipped = await reports.export(rig.program.id, MANAGER, limit=sizes["readers"] - 1)
    readers_zip = next(f for f in zipped.files if f.source == "readers")
    assert (readers_zip.filename, readers_zip.form) == ("readers.csv.zip", "zip")
    assert readers_zip.original == sizes["readers"] and readers_zip.size < sizes["readers"]
    with zipfile.ZipFile(readers_zip.path) as z:
        assert z.read("readers.csv") == original["readers"]

    split = await reports.export(rig.program.id, MANAGER, limit=400)
    parts = [f for f in split.files if f.source == "readers"]
    assert len(parts) > 2
    assert [(f.filename, f.form, f.part, f.parts) for f in parts] == [
        (f"readers.part{i}.csv", "part", i, len(parts)) for i in range(1, len(parts) + 1)
    ]
    assert all(f.size <= 400 for f in split.files)
    header, *body = rows(original["readers"])
    joined: list[list[str]] = []
    for part in parts:
        found = rows(part.path.read_bytes())
        assert found[0] == header
        joined += found[1:]
    assert joined == body


def test_splitting_keeps_a_row_with_a_line_break_whole(tmp_path: Path) -> None:
    path = tmp_path / "referrals.csv"
    path.write_bytes(b'id,name\n1,"two\nlines"\n2,plain\n3,"a,b"\n')
    parts = fit(path, 23)  # the header and one row (a zip of it is bigger)
    assert [p.form for p in parts] == ["part"] * 3
    assert [rows(p.path.read_bytes()) for p in parts] == [
        [["id", "name"], ["1", "two\nlines"]],
        [["id", "name"], ["2", "plain"]],
        [["id", "name"], ["3", "a,b"]],
    ]
    assert not path.exists()


def test_a_file_within_the_limit_is_sent_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "grants.csv"
    path.write_bytes(b"id\n")
    [fitted] = fit(path, 3)
    assert (fitted.path, fitted.form, fitted.original) == (path, "csv", 3)


def test_the_spool_sweeps_only_files_no_row_waits_for(tmp_path: Path) -> None:
    now = [datetime(2026, 1, 5, tzinfo=UTC).timestamp()]
    spool = Spool(tmp_path / "spool", wall=lambda: now[0])
    batch = spool.new_batch()
    for name in ("kept.csv", "orphan.csv"):
        (batch / name).write_bytes(b"x")
    kept = spool.name_of(batch / "kept.csv")
    assert spool.sweep([kept]) == 0  # young files stay: their row may be on its way
    now[0] += 10**9
    assert spool.sweep([kept]) == 1
    assert spool.path_of(kept) is not None
    assert spool.path_of(kept.replace("kept.csv", "orphan.csv")) is None
    assert spool.path_of("../../etc/passwd") is None and spool.path_of("a/../b") is None
    spool.discard([kept])
    assert list((tmp_path / "spool").iterdir()) == []
