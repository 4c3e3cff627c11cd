"""The command line's settings and `inviteloop db upgrade|status`, as a user runs them: the
real console entry point, environment variables and an inviteloop.toml, a real database."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

import main
from storage.database import Database
from storage.migrate import head_revision
from tests.conftest import POSTGRES_URL


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no inviteloop settings of the machine leaking in."""
    for name in list(__import__("os").environ):
        if name.startswith(main.ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*argv: str) -> int:
    return main.main(list(argv))


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as con:
        return {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_db_upgrade_creates_the_default_sqlite_file_and_is_idempotent(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("db", "status") == 1
    assert "needs `inviteloop db upgrade`" in capsys.readouterr().out

    assert run("db", "upgrade") == 0
    out = capsys.readouterr().out
    assert f"upgraded empty -> {head_revision()}" in out
    database = workdir / "inviteloop.db"
    made = tables(database)
    assert {"programs", "members", "links", "join_attempts", "referrals"} <= made
    assert {"referrer_counts", "events", "job_claims", "alembic_version"} <= made

    assert run("db", "upgrade") == 0
    assert "nothing to do" in capsys.readouterr().out
    assert tables(database) == made
    assert run("db", "status") == 0
    assert "up to date" in capsys.readouterr().out


def test_a_bad_environment_value_names_its_key_and_touches_nothing(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INVITELOOP_LOG_LEVEL", "LOUD")
    assert run("db", "upgrade") == 2
    err = capsys.readouterr().err
    assert "INVITELOOP_LOG_LEVEL" in err and "log_level in inviteloop.toml" in err
    assert not (workdir / "inviteloop.db").exists()


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("INVITELOOP_DATABASE_URL", "mysql://root@localhost/x", "unsupported database"),
        ("INVITELOOP_TELEGRAM_TOKEN", "not-a-token", "not a bot token"),
        ("INVITELOOP_TELEGRAM_OWNERS", "12, olga", "Telegram user ids"),
        ("INVITELOOP_TELEGRAM_API_URL", "localhost:8081", "http://"),
    ],
)
def test_each_bad_setting_is_refused_with_a_reason(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    says: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert run("db", "status") == 2
    err = capsys.readouterr().err
    assert variable in err and says in err


def test_toml_settings_apply_and_the_environment_wins(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "inviteloop.toml").write_text(
        f'database_url = "sqlite:///{workdir / "from_toml.db"}"\nlog_level = "warning"\n'
    )
    assert run("db", "upgrade") == 0
    assert (workdir / "from_toml.db").exists()
    assert not (workdir / "inviteloop.db").exists()

    monkeypatch.setenv("INVITELOOP_DATABASE_URL", f"sqlite:///{workdir / 'from_env.db'}")
    assert run("db", "upgrade") == 0
    assert (workdir / "from_env.db").exists()
    capsys.readouterr()


def test_unknown_or_broken_toml_is_named(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workdir / "inviteloop.toml"
    config.write_text('databse_url = "sqlite:///x.db"\n')
    assert run("db", "status") == 2
    err = capsys.readouterr().err
    assert "databse_url" in err and "unknown setting" in err

    config.write_text("database_url = [unterminated\n")
    assert run("db", "status") == 2
    assert "inviteloop.toml" in capsys.readouterr().err

    monkeypatch.setenv("INVITELOOP_CONFIG", str(workdir / "missing.toml"))
    assert run("db", "status") == 2
    assert "INVITELOOP_CONFIG: no such file" in capsys.readouterr().err
    assert not (workdir / "x.db").exists() and not (workdir / "inviteloop.db").exists()


@pytest.fixture
def fresh_postgres_database() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip(
            "PostgreSQL tests need INVITELOOP_TEST_POSTGRES_URL "
            "(e.g. postgresql://postgres@127.0.0.1:5432/test); .ci/run sets it"
        )
    name = f"cli_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        db = Database.from_url(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            async with db.engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await db.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


def test_db_upgrade_on_a_fresh_postgresql_database(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_postgres_database: str,
) -> None:
    monkeypatch.setenv("INVITELOOP_DATABASE_URL", fresh_postgres_database)
    assert run("db", "status") == 1
    assert run("db", "upgrade") == 0
    assert f"upgraded empty -> {head_revision()}" in capsys.readouterr().out
    assert run("db", "upgrade") == 0
    assert "nothing to do" in capsys.readouterr().out
    assert run("db", "status") == 0
    out = capsys.readouterr().out
    assert "(postgresql)" in out and "up to date" in out


def test_program_list_and_delete_from_the_command_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from referrals.clock import FakeClock
    from referrals.service import ReferralService
    from storage.migrate import upgrade
    from tests.helpers.factories import join, person
    from tests.helpers.ports import FakePlatform

    async def make() -> int:
        db = Database.from_url(f"sqlite:///{workdir / 'inviteloop.db'}")
        try:
            await upgrade(db)
            clock = FakeClock()
            service = ReferralService(db, clock, {"telegram": FakePlatform()})
            program = await service.create_program(
                "telegram", -100, "channel", "Daily <Brief>", hold_hours=0
            )
            await service.create_program("telegram", -200, "channel", "Other")
            link = (await service.get_or_create_link(program.id, person(1))).link
            await service.record_join(join(program, 2, clock.now(), link.code))
            return program.id
        finally:
            await db.dispose()

    program_id = asyncio.run(make())
    assert run("program", "list") == 0
    listed = capsys.readouterr().out
    assert "'Daily <Brief>'" in listed and "readers 1, counted 1" in listed
    assert run("program", "delete", str(program_id)) == 1  # asks for --yes first
    assert "run again with --yes" in capsys.readouterr().out
    assert run("program", "delete", str(program_id), "--yes") == 0
    assert "1 counted referrals" in capsys.readouterr().out
    assert run("program", "delete", str(program_id), "--yes") == 1
    assert f"no program {program_id}" in capsys.readouterr().out
    assert run("program", "list") == 0
    out = capsys.readouterr().out
    assert "Other" in out and "Daily" not in out
