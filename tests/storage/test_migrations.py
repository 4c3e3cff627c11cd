from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from storage.database import Database
from storage.migrate import current_revision, head_revision, upgrade
from storage.schema import metadata

TABLES = {
    "people",
    "outbox",
    "inbox",
    "join_requests",
    "programs",
    "members",
    "links",
    "join_attempts",
    "referrals",
    "referrer_counts",
    "events",
    "job_claims",
    "count_changes",
    "milestones",
    "reward_pools",
    "reward_codes",
    "grants",
    "reward_progress",
    "reward_referrals",
    "flows",
    "invite_uses",
    "invite_sync",
    "board_settings",
    "board_readers",
    "board_counts",
    "board_histogram",
    "seasons",
}


async def test_upgrade_creates_every_table_at_head(db: Database) -> None:
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert names >= TABLES | {"alembic_version"}
    assert await current_revision(db) == head_revision()


async def test_upgrade_twice_changes_nothing(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(
            text(
                "INSERT INTO job_claims (job, slot, claimed_at) "
                "VALUES ('j', 's', '2026-01-01 00:00:00')"
            )
        )
    await upgrade(db)
    await upgrade(db)
    async with db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM job_claims"))).scalar() == 1
        versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    assert [v[0] for v in versions] == [head_revision()]


async def test_migrations_match_the_schema_module(db: Database) -> None:
    def diff(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async with db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


async def test_sqlite_runs_in_wal_with_foreign_keys(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite pragmas")
    async with db.read() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() >= 5000
