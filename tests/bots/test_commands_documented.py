"""Every command a router answers is documented: in the README's command tables and in
/help, in every language."""

from __future__ import annotations

import re
from pathlib import Path

from referrals.locale import LOCALES

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "bots" / "telegram" / "handlers"


def commands() -> set[str]:
    found: set[str] = set()
    for path in HANDLERS.glob("*.py"):
        for args in re.findall(r"Command\(([^)]*)\)", path.read_text(encoding="utf-8")):
            found.update(re.findall(r'"([a-z_]+)"', args))
    return found


def test_the_routers_answer_the_commands_we_expect() -> None:
    assert {"invite", "stats", "review", "undo", "settings", "program", "forget"} <= commands()


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = sorted(name for name in commands() if f"`/{name}" not in readme)
    assert missing == []


def test_every_command_is_in_help_in_every_language() -> None:
    for locale in LOCALES:
        text = (ROOT / "bots" / "templates" / locale / "help.html.j2").read_text("utf-8")
        missing = sorted(name for name in commands() - {"start", "help"} if f"/{name}" not in text)
        assert missing == [], locale


COGS = ROOT / "bots" / "discord" / "cogs"


def discord_commands() -> set[str]:
    found: set[str] = set()
    for path in COGS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found.update(re.findall(r'command\(\s*name="([a-z_]+)"', text))
        found.update(re.findall(r'Group\(\s*name="([a-z_]+)"', text))
    return found


def test_the_cogs_answer_the_discord_commands_we_expect() -> None:
    expected = {"invite", "stats", "rewards", "forget", "help", "setup", "settings", "review"}
    assert expected | {"post", "milestone", "add", "list", "remove"} <= discord_commands()


def test_every_discord_command_is_in_the_readme_and_in_help() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = discord_commands() - {"add", "list", "remove"}
    assert sorted(n for n in names if f"`/{n}" not in readme) == []
    for locale in LOCALES:
        path = ROOT / "bots" / "templates" / locale / "discord_help.html.j2"
        text = path.read_text("utf-8")
        assert sorted(n for n in names if f"/{n}" not in text) == [], locale
