"""``inviteloop demo --discord`` as a real process: the Discord story plays to its end on
the Discord sandbox, offline, and tells it in plain words."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from tests.test_cli_run import INVITELOOP, clean_env

STORY = 60.0  # seconds: a bound on the whole story, never a pause


def test_the_discord_demo_plays_the_loop_to_its_end(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = subprocess.run(
        [INVITELOOP, "demo", "--discord", "--db", str(db)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=STORY,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # nothing but the story: no library warnings
    out = result.stdout
    for said in (
        "Readers Club is set up",
        "Rewards are on for Readers Club",
        "Imported 3 codes into the pool coffee",
        "https://discord.gg/",  # a reader's invite
        "Juna joined Readers Club through your link",
        "Your code: `KOPI-0001`",
        "[✍️ Answer]",
        "Thank you! Your answer for T-shirt is with the team.",
        "answer: M, Jalan Merdeka 1, Jakarta",
        "T-shirt from Readers Club is on its way",
        "Eko via Ana's link (Readers Club): rejected, left during the hold period",
        "Gita (Readers Club): credited to nobody, came through the server's vanity URL",
        "Hana (Readers Club): credited to nobody, two invites' counters moved at once",
        "1. Ana — 2",
        "[This week] [This month] [Season]",
    ):
        assert said in out, said
    with sqlite3.connect(db) as conn:
        states = dict(conn.execute("SELECT state, COUNT(*) FROM referrals GROUP BY state"))
        grants = dict(conn.execute("SELECT state, COUNT(*) FROM grants GROUP BY state"))
    assert states == {"confirmed": 3, "rejected": 1}
    assert grants == {"delivered": 2, "fulfilled": 1}


def test_demo_help_names_the_discord_story(tmp_path: Path) -> None:
    result = subprocess.run(
        [INVITELOOP, "demo", "--help"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=STORY,
        check=False,
    )
    assert result.returncode == 0 and "--discord" in result.stdout
