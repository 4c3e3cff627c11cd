"""The sandbox rule of the house: sandbox/discord imports only aiohttp and the stdlib."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "sandbox" / "discord"


def test_sandbox_discord_imports_only_aiohttp_and_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"aiohttp", "sandbox"}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] not in allowed]
    assert offenders == []
