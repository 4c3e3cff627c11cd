"""/export and /programstats through the real aiogram bot and the sandbox Bot API: the
documents and the chart arrive in the manager's private chat as multipart uploads with the
right names and contents; a group hears only that they are on their way; nobody else gets
anything, and nothing is built for them."""

from __future__ import annotations

import csv
import io

from sandbox import SimChat, SimUser
from sandbox.files import PNG_SIGNATURE, image_size
from sandbox.model import SimMessage, Upload
from tests.bots.conftest import Harness
from tests.helpers.telegram import set_up_chat, url_in


async def _referrals(harness: Harness, chat: SimChat, readers: dict[str, int]) -> None:
    """Each reader brings that many friends through their link; then the holds pass."""
    world = harness.world
    for name, count in readers.items():
        reader = world.add_user(name)
        await harness.say(reader, "/invite")
        url = url_in(harness.last_to(reader))
        for n in range(count):
            world.open_link(world.add_user(f"{name} friend {n}"), url)
    await harness.settle()
    harness.clock.advance(days=3)
    await harness.tick()


def _files_to(harness: Harness, who: SimUser | SimChat) -> list[SimMessage]:
    return [m for m in harness.world.sent_messages(harness.bot, who) if m.file is not None]


def _uploads(harness: Harness, method: str) -> list[Upload]:
    """The multipart file parts of the bot's successful ``method`` calls."""
    return [
        value
        for call in harness.world.calls_of(method, harness.bot)
        if call.ok
        for value in call.params.values()
        if isinstance(value, Upload)
    ]


def _spool_files(harness: Harness) -> list[str]:
    root = harness.app.spool.root
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def test_export_sends_the_csv_files_to_the_manager_in_private(
    harness: Harness, owner: SimUser
) -> None:
    chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    await _referrals(harness, chat, {"=cmd|' /C calc'!A0": 2, "Ben": 1})

    await harness.say(owner, "/export")

    files = _files_to(harness, owner)
    assert [(m.document.file_name, m.document.mime_type) for m in files if m.document] == [
        ("readers.csv", "text/csv"),
        ("referrals.csv", "text/csv"),
        ("grants.csv", "text/csv"),
    ]
    assert files[0].caption is not None
    assert files[0].caption.startswith("📦 Daily Brief: the export, in 3 files.")
    assert "Referrals — every join" in (files[1].caption or "")
    readers = list(csv.reader(io.StringIO(files[0].document.content.decode())))  # type: ignore[union-attr]
    assert readers[0][:4] == ["reader_id", "display_name", "username", "pending"]
    assert [row[1] for row in readers[1:]] == ["'=cmd|' /C calc'!A0", "Ben"]
    referrals = list(csv.reader(io.StringIO(files[1].document.content.decode())))  # type: ignore[union-attr]
    assert len(referrals) == 4 and {row[3] for row in referrals[1:]} == {"confirmed"}
    uploads = _uploads(harness, "sendDocument")
    assert [u.filename for u in uploads] == ["readers.csv", "referrals.csv", "grants.csv"]
    assert uploads[0].content == files[0].document.content  # type: ignore[union-attr]
    assert _spool_files(harness) == []  # sent: nothing waits any more


async def test_programstats_sends_the_chart_and_the_figures_in_private(
    harness: Harness, owner: SimUser
) -> None:
    chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    await _referrals(harness, chat, {"Ana": 3, "Ben": 1})

    await harness.say(owner, "/programstats")

    [chart] = _files_to(harness, owner)
    assert chart.photo is not None
    assert chart.photo.content.startswith(PNG_SIGNATURE)
    assert image_size(chart.photo.content) == (900, 420)
    assert (chart.caption or "").startswith("📊 Daily Brief: referrals per day from ")
    [upload] = _uploads(harness, "sendPhoto")
    assert upload.content == chart.photo.content
    assert upload.filename.startswith("programstats-") and upload.filename.endswith(".png")
    figures = harness.last_to(owner).text
    assert figures.startswith("📈 Daily Brief — statistics")
    assert "All time: 4 referrals — counted 4 · waiting 0 · not counted 0" in figures
    assert "Confirmation rate: 100% of the decided referrals counted." in figures
    assert "1. main link — 4 counted of 4 (100%)" in figures
    assert _spool_files(harness) == []


async def test_in_indonesian_the_chart_and_the_figures_are_in_indonesian(
    harness: Harness, owner: SimUser
) -> None:
    _chat, _ = await set_up_chat(harness, owner, "channel", "Daily Brief", join_mode="direct")
    await harness.say(owner, "/lang id")
    await harness.say(owner, "/programstats")
    [chart] = _files_to(harness, owner)
    assert (chart.caption or "").startswith("📊 Daily Brief: referal per hari dari ")
    assert harness.last_to(owner).text.startswith("📈 Daily Brief — statistik")


async def test_in_a_group_the_files_go_only_to_the_manager_in_private(
    harness: Harness, owner: SimUser
) -> None:
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")

    await harness.say(owner, "/export", to=chat)
    assert harness.last_to(chat).text == "Olga, I am sending you the export in a private message."
    await harness.say(owner, "/programstats", to=chat)
    assert harness.last_to(chat).text == (
        "Olga, I am sending you the statistics in a private message."
    )

    assert _files_to(harness, chat) == []
    assert [m.file.kind for m in _files_to(harness, owner) if m.file] == [
        "document",
        "document",
        "document",
        "photo",
    ]


async def test_an_admin_who_never_started_the_bot_is_shown_how_and_nothing_is_built(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    rina = world.add_user("Rina")
    world.add_member(chat, rina)
    world.set_admin_rights(chat, rina, by=owner)

    await harness.say(rina, "/export", to=chat)

    offer = harness.last_to(chat)
    assert offer.text == "Rina, open a private chat with me to get the program's export."
    assert any(
        b.get("url", "").startswith("https://t.me/loopbot?start=go_") for b in offer.inline_buttons
    )
    assert _files_to(harness, rina) == [] and _files_to(harness, chat) == []
    assert _spool_files(harness) == []
    assert not harness.app.spool.root.exists() or not any(harness.app.spool.root.iterdir())


async def test_someone_who_is_not_a_manager_is_refused_and_gets_no_file(
    harness: Harness, owner: SimUser
) -> None:
    world = harness.world
    chat, _ = await set_up_chat(harness, owner, "supergroup", "Readers Club", join_mode="direct")
    await _referrals(harness, chat, {"Ana": 1})
    mallory = world.add_user("Mallory")
    world.add_member(chat, mallory)
    await harness.say(mallory, "/start")

    await harness.say(mallory, "/export", to=chat)
    assert harness.last_to(chat).text == "Only an admin of the program's chat can do that."
    await harness.say(mallory, "/programstats")
    assert harness.last_to(mallory).text.startswith("You do not manage any program here.")

    assert world.calls_of("sendDocument", harness.bot) == []
    assert world.calls_of("sendPhoto", harness.bot) == []
    assert not harness.app.spool.root.exists() or not any(harness.app.spool.root.iterdir())
