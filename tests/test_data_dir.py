"""Where files wait to be sent (``INVITELOOP_DATA_DIR``): next to the SQLite database by
default, next to the config file for PostgreSQL, or the directory the setting names."""

from __future__ import annotations

from pathlib import Path

import pytest

from main import Settings


def test_files_wait_next_to_the_sqlite_database_by_default(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'data' / 'bot.db'}")
    assert settings.data_path() == tmp_path / "data"


def test_with_postgresql_files_wait_next_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INVITELOOP_CONFIG", str(tmp_path / "conf" / "inviteloop.toml"))
    settings = Settings(database_url="postgresql://bot@db.internal/inviteloop")
    assert settings.data_path() == tmp_path / "conf"


def test_the_data_dir_setting_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVITELOOP_DATA_DIR", str(tmp_path / "shared"))
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'bot.db'}")
    assert settings.data_path() == tmp_path / "shared"
