"""Files through the outbox against the sandbox: a spooled document waits out a 429 and
the very same file goes out afterwards (also from a new outbox, as after a restart); the
file is deleted once sent or given up; a row whose file is gone fails alone."""

from __future__ import annotations

import time
from pathlib import Path

from delivery.actions import Action, Attachment
from delivery.outbox import Outbox, Priority, message
from delivery.ratelimit import Limits, RateLimiter
from delivery.spool import Spool
from sandbox import SimUser
from tests.delivery.conftest import PLATFORM, Rig

CSV = b"reader_id,display_name\n1,'=HYPERLINK(1)\n"


def spool_file(spool: Spool, name: str, content: bytes) -> str:
    path = spool.new_batch() / name
    path.write_bytes(content)
    return spool.name_of(path)


def document_row(rig: Rig, user: SimUser, spooled: str, filename: str) -> dict[str, object]:
    return message(
        PLATFORM,
        "user",
        user.id,
        "export_file",
        {
            "program_title": "Daily Brief",
            "source": "readers",
            "form": "csv",
            "part": 1,
            "parts": 1,
            "size": "1 KB",
            "original": "1 KB",
            "first": True,
            "count": 1,
        },
        priority=Priority.ANSWER,
        now=rig.clock.now(),
        action=Action.SEND_DOCUMENT,
        payload=Attachment(spooled, filename),
    )


async def test_a_document_waits_out_a_429_and_the_same_file_goes_out(
    rig: Rig, tmp_path: Path
) -> None:
    spool = rig.outbox.spool = Spool(tmp_path / "spool")
    ana = await rig.reader("Ana")
    spooled = spool_file(spool, "readers.csv", CSV)
    rig.world.inject_fault("sendDocument", chat=ana, retry_after=7)
    await rig.add([document_row(rig, ana, spooled, "readers.csv")])

    report = await rig.drain()

    assert (report.sent, report.retried) == (0, 1)
    [row] = await rig.rows()
    assert (row["state"], row["last_error"]) == ("queued", "retry after 7s")
    assert spool.path_of(spooled) is not None  # kept for the retry
    # the next drain comes from a new outbox, as after a restart
    again = Outbox(rig.db, rig.clock, {PLATFORM: rig.port}, spool=Spool(tmp_path / "spool"))
    again.limiters[PLATFORM] = RateLimiter(Limits(), rig.monotonic)
    rig.clock.advance(seconds=7)
    assert (await again.drain_once()).sent == 1

    [sent] = [m for m in rig.world.sent_messages(rig.sim, ana) if m.document is not None]
    assert sent.document is not None
    assert (sent.document.file_name, sent.document.content) == ("readers.csv", CSV)
    assert (sent.caption or "").startswith("📦 Daily Brief: the export, in 1 file.")
    refused, accepted = rig.world.calls_of("sendDocument", rig.sim)
    assert (refused.ok, refused.error_code, accepted.ok) == (False, 429, True)
    assert {r["state"] for r in await rig.rows()} == {"sent"}
    assert spool.path_of(spooled) is None
    assert list(spool.root.iterdir()) == []  # the batch directory went with it


async def test_a_file_the_platform_refuses_for_good_is_deleted_with_its_failed_row(
    rig: Rig, tmp_path: Path
) -> None:
    spool = rig.outbox.spool = Spool(tmp_path / "spool")
    ana = await rig.reader("Ana")
    rig.world.block_bot(ana, rig.sim)
    spooled = spool_file(spool, "readers.csv", CSV)
    await rig.add([document_row(rig, ana, spooled, "readers.csv")])

    report = await rig.drain()

    assert report.failed == 1
    [row] = await rig.rows()
    assert row["state"] == "failed" and row["last_error"].startswith("blocked")
    assert spool.path_of(spooled) is None


async def test_a_row_whose_file_is_gone_fails_alone_and_sends_nothing_else(
    rig: Rig, tmp_path: Path
) -> None:
    spool = rig.outbox.spool = Spool(tmp_path / "spool")
    ana, ben = await rig.reader("Ana"), await rig.reader("Ben")
    gone = spool_file(spool, "readers.csv", CSV)
    spool.discard([gone])
    kept = spool_file(spool, "grants.csv", b"id\n")
    await rig.add(
        [
            document_row(rig, ana, gone, "readers.csv"),
            document_row(rig, ben, kept, "grants.csv"),
        ]
    )

    report = await rig.drain()

    assert (report.sent, report.malformed) == (1, 1)
    failed = next(r for r in await rig.rows() if r["target_id"] == ana.id)
    assert failed["state"] == "failed"
    assert "gone from the spool" in failed["last_error"]
    assert rig.world.calls_of("sendDocument", rig.sim)[0].params["chat_id"] == str(ben.id)
    assert [m.document.file_name for m in rig.world.sent_messages(rig.sim, ben) if m.document] == [
        "grants.csv"
    ]


async def test_the_daily_purge_sweeps_files_no_queued_row_names(rig: Rig, tmp_path: Path) -> None:
    # the spool's wall clock is a day ahead: every file in it is a day old
    spool = Spool(tmp_path / "spool", wall=lambda: time.time() + 86_400)
    rig.outbox.spool = spool
    ana = await rig.reader("Ana")
    waiting = spool_file(spool, "readers.csv", CSV)
    orphan = spool_file(spool, "orphan.csv", CSV)  # its row was never queued
    rig.world.inject_fault("sendDocument", chat=ana, retry_after=60)
    await rig.add([document_row(rig, ana, waiting, "readers.csv")])
    await rig.drain()  # refused: the row waits, queued

    await rig.outbox.purge()

    assert spool.path_of(waiting) is not None
    assert spool.path_of(orphan) is None
    assert len(list(spool.root.iterdir())) == 1  # the orphan's empty batch went too
