"""Who the bot can write to, and in which language."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from referrals.clock import Clock
from referrals.locale import LOCALES, pick_locale
from referrals.text import clean_name
from storage import people as db_people
from storage.batch import Batcher
from storage.database import Database


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
        return pick_locale(self.language, self.platform_language)

    @property
    def reachable(self) -> bool:
        return self.started_at is not None and self.blocked_at is None


class People:
    """Records private contact (the bot may DM someone once they started it), blocks and
    language choices. Plain values in and out."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._sightings: Batcher[_Sighting, PersonInfo] = Batcher(
            self._record_sightings, name="people-seen"
        )

    async def seen(
        self,
        platform: str,
        user_id: int,
        *,
        display_name: str | None = None,
        username: str | None = None,
        platform_language: str | None = None,
        started: bool = False,
    ) -> PersonInfo:
        """Someone wrote to the bot (``started``) or acted where the bot sees them; returns
        what we know of them now. Sightings that arrive together (the updates of one batch)
        share one transaction."""
        return await self._sightings.submit(
            _Sighting(
                platform,
                user_id,
                clean_name(display_name) if display_name is not None else None,
                clean_name(username, 64) or None if username is not None else None,
                (platform_language or "")[:16] or None if platform_language is not None else None,
                started,
            )
        )

    async def _record_sightings(self, batch: list[_Sighting]) -> list[PersonInfo]:
        merged: dict[tuple[str, int], dict[str, Any]] = {}
        for sighting in batch:
            key = (sighting.platform, sighting.user_id)
            row = merged.get(key)
            if row is None:
                merged[key] = {
                    "platform": sighting.platform,
                    "user_id": sighting.user_id,
                    "display_name": sighting.display_name,
                    "username": sighting.username,
                    "platform_language": sighting.platform_language,
                    "started": sighting.started,
                }
                continue
            if sighting.display_name is not None:  # the latest name wins
                row.update(display_name=sighting.display_name, username=sighting.username)
            if sighting.platform_language is not None:
                row["platform_language"] = sighting.platform_language
            row["started"] = row["started"] or sighting.started
        async with self._db.write() as conn:
            await db_people.record_sightings(conn, list(merged.values()), self._clock.now())
            rows = await db_people.people_by_keys(conn, sorted(merged))
        return [_info(s.user_id, rows.get((s.platform, s.user_id))) for s in batch]

    async def get(self, platform: str, user_id: int) -> PersonInfo:
        async with self._db.read() as conn:
            row = await db_people.person(conn, platform, user_id)
        return _info(user_id, row)

    async def set_language(self, platform: str, user_id: int, language: str) -> None:
        if language not in LOCALES:
            raise ValueError(f"language must be one of {', '.join(LOCALES)}")
        async with self._db.write() as conn:
            await db_people.upsert_person(
                conn, platform, user_id, self._clock.now(), language=language, started=True
            )

    async def blocked(self, platform: str, user_id: int) -> None:
        async with self._db.write() as conn:
            await db_people.upsert_person(conn, platform, user_id, self._clock.now())
            await db_people.mark_unreachable(conn, platform, [user_id], self._clock.now())

    async def unblocked(self, platform: str, user_id: int) -> None:
        async with self._db.write() as conn:
            await db_people.upsert_person(
                conn, platform, user_id, self._clock.now(), started=True, unblocked=True
            )

    async def forget(self, platform: str, user_id: int) -> int:
        """Delete the person's record and their queued DMs."""
        async with self._db.write() as conn:
            return await db_people.delete_person_record(conn, platform, user_id)


@dataclass(frozen=True, slots=True)
class _Sighting:
    platform: str
    user_id: int
    display_name: str | None
    username: str | None
    platform_language: str | None
    started: bool


def _info(user_id: int, row: Mapping[str, Any] | None) -> PersonInfo:
    if row is None:
        return PersonInfo(user_id, None, None, None, None)
    return PersonInfo(
        user_id, row["language"], row["platform_language"], row["started_at"], row["blocked_at"]
    )
