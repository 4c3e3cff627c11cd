"""Who the bot can write to, and in which language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from referrals.text import clean_name
from storage import outbox as store
from storage.clock import Clock
from storage.database import Database

LOCALES = ("en", "id")


@dataclass(frozen=True, slots=True)
class PersonInfo:
    user_id: int
    language: str | None
    platform_language: str | None
    started_at: datetime | None
    blocked_at: datetime | None

    @property
    def locale(self) -> str:
        """The language to write in: chosen, else the app's, else English."""
        for candidate in (self.language, self.platform_language):
            if candidate:
                short = candidate.split("-")[0].lower()
                if short in LOCALES:
                    return short
        return "en"

    @property
    def reachable(self) -> bool:
        return self.started_at is not None and self.blocked_at is None


class People:
    """Records private contact (the bot may DM someone once they started it), blocks and
    language choices. Plain values in and out."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def seen(
        self,
        platform: str,
        user_id: int,
        *,
        display_name: str | None = None,
        username: str | None = None,
        platform_language: str | None = None,
        started: bool = False,
    ) -> None:
        """Someone wrote to the bot (``started``) or acted where the bot sees them."""
        async with self._db.write() as conn:
            await store.upsert_person(
                conn,
                platform,
                user_id,
                self._clock.now(),
                display_name=clean_name(display_name) if display_name is not None else None,
                username=clean_name(username, 64) or None if username is not None else None,
                platform_language=(platform_language or "")[:16] or None,
                started=started,
            )

    async def get(self, platform: str, user_id: int) -> PersonInfo:
        async with self._db.read() as conn:
            row = await store.person(conn, platform, user_id)
        if row is None:
            return PersonInfo(user_id, None, None, None, None)
        return PersonInfo(
            user_id,
            row["language"],
            row["platform_language"],
            row["started_at"],
            row["blocked_at"],
        )

    async def set_language(self, platform: str, user_id: int, language: str) -> None:
        if language not in LOCALES:
            raise ValueError(f"language must be one of {', '.join(LOCALES)}")
        async with self._db.write() as conn:
            await store.upsert_person(
                conn, platform, user_id, self._clock.now(), language=language, started=True
            )

    async def blocked(self, platform: str, user_id: int) -> None:
        async with self._db.write() as conn:
            await store.upsert_person(conn, platform, user_id, self._clock.now())
            await store.mark_unreachable(conn, platform, [user_id], self._clock.now())

    async def unblocked(self, platform: str, user_id: int) -> None:
        async with self._db.write() as conn:
            await store.upsert_person(
                conn, platform, user_id, self._clock.now(), started=True, unblocked=True
            )

    async def forget(self, platform: str, user_id: int) -> int:
        """Delete the person's record and their queued DMs."""
        async with self._db.write() as conn:
            return await store.delete_person_record(conn, platform, user_id)
