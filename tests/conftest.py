"""Shared fixtures: a fresh database per test on SQLite and, when
INVITELOOP_TEST_POSTGRES_URL is set, the same tests on PostgreSQL (a fresh schema each)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text

from referrals.clock import FakeClock
from referrals.service import ReferralService
from storage.database import Database
from storage.migrate import upgrade
from tests.helpers.ports import FakePlatform

POSTGRES_URL = os.environ.get("INVITELOOP_TEST_POSTGRES_URL", "")
ENGINES = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=pytest.mark.skipif(
            not POSTGRES_URL,
            reason="PostgreSQL tests need INVITELOOP_TEST_POSTGRES_URL "
            "(e.g. postgresql://postgres@127.0.0.1:5432/test); .ci/run sets it",
        ),
    ),
]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test that tries to reach a host other than this machine."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if (
            isinstance(host, str)
            and host not in ("127.0.0.1", "::1", "localhost")
            and not (host.startswith("127.") or host.startswith("/"))
        ):
            raise RuntimeError(f"tests must not reach the network (tried {address!r})")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


async def make_database(engine: str, tmp_path: Path) -> tuple[Database, str | None]:
    """A migrated, empty database; for PostgreSQL the name of its private schema."""
    if engine == "sqlite":
        db = Database.from_url(f"sqlite:///{tmp_path / 'test.db'}")
        await upgrade(db)
        return db, None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = Database.from_url(POSTGRES_URL)
    async with admin.engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    await admin.dispose()
    db = Database.from_url(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})
    await upgrade(db)
    return db, schema


async def drop_schema(schema: str) -> None:
    admin = Database.from_url(POSTGRES_URL)
    async with admin.engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await admin.dispose()


@pytest_asyncio.fixture(params=ENGINES)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    database, schema = await make_database(request.param, tmp_path)
    try:
        yield database
    finally:
        await database.dispose()
        if schema:
            await drop_schema(schema)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


@pytest.fixture
def service(db: Database, clock: FakeClock, platform: FakePlatform) -> ReferralService:
    return ReferralService(db, clock, {"telegram": platform})
