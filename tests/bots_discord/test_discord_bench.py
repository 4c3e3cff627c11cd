"""``benchmarks/discord_e2e.py`` runs end to end on a small schedule, as a process of its own
(it points discord.py at its sandbox for the whole process): its last line has the figures,
nobody is credited to the wrong reader, and it exits 0 only then."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "joins",
    "e2e_joins_per_s",
    "transport_joins_per_s",
    "attributed",
    "unattributed_ratio",
    "unattributed_by_reason",
    "misattributed",
    "verified",
}


def test_the_discord_benchmark_credits_nobody_to_the_wrong_reader() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVITELOOP_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "discord_e2e.py"), "--joins", "40"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    figures = json.loads(lines[-1])
    assert KEYS <= set(figures), figures
    assert figures["joins"] == 40
    assert figures["misattributed"] == 0, result.stdout
    assert figures["attributed"] > 0  # isolated joins are credited, with the guard on
    assert figures["attributed"] + sum(figures["unattributed_by_reason"].values()) == 40
    assert "bar: misattributed 0 is met" in result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
