"""A command that fails unexpectedly still answers the person (no "The application did
not respond"), in their language, and the failure is logged."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from tests.bots_discord.conftest import Discord


async def test_a_failing_command_answers_with_an_apology(
    set_up: Discord, caplog: pytest.LogCaptureFixture
) -> None:
    dc = set_up
    reader = dc.world.add_user("rina", "Rina", locale="id")
    dc.world.add_member(dc.guild, reader)
    working = await dc.slash(reader, "stats")
    assert working and "Ada yang salah" not in working
    async with dc.app.db.write() as conn:  # the database breaks under the bot
        await conn.execute(text("ALTER TABLE referrals RENAME TO referrals_gone"))
    with caplog.at_level(logging.ERROR, logger="bots.discord.errors"):
        answer = await dc.slash(reader, "stats")
    assert "Ada yang salah di pihakku" in answer
    assert any("/stats failed" in r.getMessage() for r in caplog.records)
