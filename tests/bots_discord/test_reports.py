"""/export and /programstats through the real bot and the Discord sandbox: a manager gets
the files as ephemeral attachments (multipart, seen only by them), or by DM once the
interaction's token has expired; a member without Manage Server is refused and nothing is
built."""

from __future__ import annotations

import csv
import io
import re

import aiohttp

from sandbox.discord import Message
from sandbox.files import PNG_SIGNATURE, image_size
from tests.bots_discord.conftest import Discord


async def _download(attachment: dict[str, object]) -> bytes:
    async with aiohttp.ClientSession() as http, http.get(str(attachment["url"])) as response:
        return await response.read()


async def _one_referral(dc: Discord) -> None:
    """Alice invites Bob, who joins through her invite."""
    alice = dc.world.add_user("alice", "=Alice")
    dc.world.add_member(dc.guild, alice)
    text = await dc.slash(alice, "invite")
    found = re.search(r"https?://\S+/([A-Za-z0-9]+)", text)
    assert found, text
    dc.world.join_via_invite(dc.world.add_user("bob"), found.group(1))
    await dc.joins_settled(1)


def _attached(messages: list[Message]) -> list[dict[str, object]]:
    return [a for m in messages for a in m.attachments]


def _spool_files(dc: Discord) -> list[str]:
    root = dc.app.spool.root
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def test_export_comes_as_ephemeral_attachments_only_for_the_manager(
    set_up: Discord,
) -> None:
    dc = set_up
    await _one_referral(dc)

    record = dc.world.invoke_slash(dc.owner, dc.channel, "export")
    await dc.world.wait_for(
        lambda: len(_attached(dc.world.interaction_responses(record))) == 3,
        what="three files",
    )

    assert record.responses[0].type == 5 and record.responses[0].ephemeral  # deferred first
    messages = dc.world.interaction_responses(record)
    assert all(m.ephemeral for m in messages)
    files = _attached(messages)
    assert [f["filename"] for f in files] == ["readers.csv", "referrals.csv", "grants.csv"]
    assert messages[0].content.startswith("📦 **Readers**: the export, in 3 files.")
    readers = list(csv.reader(io.StringIO((await _download(files[0])).decode())))
    assert readers[1][1] == "'=Alice"  # a name never becomes a formula
    referrals = list(csv.reader(io.StringIO((await _download(files[1])).decode())))
    assert len(referrals) == 2
    calls = dc.world.calls("POST /webhooks/{webhook_id}/{webhook_token}")
    assert calls and all(c.status == 200 for c in calls)
    assert _spool_files(dc) == []  # sent through the interaction: nothing waits


async def test_programstats_shows_the_chart_and_the_figures_ephemerally(
    set_up: Discord,
) -> None:
    dc = set_up
    await _one_referral(dc)

    record = dc.world.invoke_slash(dc.owner, dc.channel, "programstats")
    messages = await dc.world.wait_for_messages_of(record, 2)

    [chart] = _attached(messages)
    assert str(chart["filename"]).startswith("programstats-")
    image = await _download(chart)
    assert image.startswith(PNG_SIGNATURE) and image_size(image) == (900, 420)
    assert messages[0].content.startswith("📊 **Readers**: referrals per day from ")
    figures = messages[1].content
    assert figures.startswith("📈 **Readers** — statistics")
    assert "1 referral — counted 0 · waiting 1 · not counted 0" in figures
    assert all(m.ephemeral for m in messages)


async def test_a_member_without_manage_server_is_refused_and_nothing_is_built(
    set_up: Discord,
) -> None:
    dc = set_up
    mallory = dc.world.add_user("mallory")
    dc.world.add_member(dc.guild, mallory)

    for command in ("export", "programstats"):
        text = await dc.slash(mallory, command)
        assert text == "Only a member with the Manage Server permission can do this."

    assert _spool_files(dc) == []
    assert not any(m.attachments for m in dc.world.messages.values())


async def test_once_the_interaction_expired_the_files_come_by_dm(set_up: Discord) -> None:
    dc = set_up
    await _one_referral(dc)
    dc.world.interaction_token_ttl = -1  # expired by the time the files were ready

    record = dc.world.invoke_slash(dc.owner, dc.channel, "programstats")
    await dc.world.wait_for_response(record)
    chart = await dc.world.wait_for_dm(dc.owner, since=0, timeout=10)
    figures = await dc.world.wait_for_dm(dc.owner, since=1, timeout=10)

    [attachment] = chart.attachments
    assert (await _download(attachment)).startswith(PNG_SIGNATURE)
    assert chart.content.startswith("📊 **Readers**: referrals per day")
    assert figures.content.startswith("📈 **Readers** — statistics")
    assert 50027 in [c.code for c in dc.world.calls("POST /webhooks/{webhook_id}/{webhook_token}")]
    await dc.app.outbox.wait_idle()
    assert _spool_files(dc) == []  # the DM went out: the file is gone from the spool
