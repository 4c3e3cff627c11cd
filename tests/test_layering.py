"""DESIGN.md's rules of the house: services never import aiogram or discord, only storage/
holds SQL, adapters never reach storage/ and reach their platform only through their own
library (and the engine only through services and the port)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("referrals", "delivery", "rewards", "leaderboard", "storage")
PLATFORM_LIBS = ("aiogram", "discord")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_services_never_import_platform_libraries() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for package in SERVICES
        for path in _python_files(package)
        for name in _imports(path)
        if name.split(".")[0] in PLATFORM_LIBS
    ]
    assert offenders == []


def test_the_rule_would_catch_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from aiogram import Bot\nimport discord.ext\n", encoding="utf-8")
    assert {"aiogram", "discord.ext"} <= _imports(bad)


def test_only_storage_builds_sql() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for package in ("referrals", "delivery", "rewards", "leaderboard")
        for path in _python_files(package)
        for name in _imports(path)
        if name == "sqlalchemy"
        or (name.startswith("sqlalchemy.") and name != "sqlalchemy.ext.asyncio")
    ]
    assert offenders == []


def test_storage_imports_nothing_of_ours() -> None:
    ours = {"referrals", "delivery", "rewards", "leaderboard", "bots", "sandbox", "main"}
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _python_files("storage")
        for name in _imports(path)
        if name.split(".")[0] in ours
    ]
    assert offenders == []


def test_delivery_imports_only_storage() -> None:
    ours = {"referrals", "rewards", "leaderboard", "bots", "sandbox", "main"}
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _python_files("delivery")
        for name in _imports(path)
        if name.split(".")[0] in ours
    ]
    assert offenders == []


def test_bots_import_nothing_of_storage() -> None:
    """Adapters call services; they never open transactions or run queries (the clock
    belongs with the domain: ``referrals.clock``)."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _python_files("bots")
        for name in _imports(path)
        if name.split(".")[0] == "storage"
    ]
    assert offenders == []


def test_each_adapter_reaches_only_its_own_platform_library() -> None:
    """bots/telegram speaks aiogram, bots/discord discord.py; the shared views and the
    renderer speak neither."""
    allowed = {"telegram": {"aiogram"}, "discord": {"discord"}}
    offenders = []
    for path in _python_files("bots"):
        part = path.relative_to(ROOT / "bots").parts[0]
        own = allowed.get(part, set())
        for name in _imports(path):
            top = name.split(".")[0]
            if top in PLATFORM_LIBS and top not in own:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_the_shared_views_are_plain_values() -> None:
    """What the templates receive is built outside any adapter, from the engine's values."""
    for name in ("views.py", "render.py"):
        imported = {n.split(".")[0] for n in _imports(ROOT / "bots" / name)}
        assert not imported & {"aiogram", "discord", "storage", "sandbox"}, (name, imported)


def test_the_discord_adapter_never_imports_aiogram() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _python_files("bots/discord")
        for name in _imports(path)
        if name.split(".")[0] in ("aiogram", "storage", "sandbox")
    ]
    assert offenders == []
