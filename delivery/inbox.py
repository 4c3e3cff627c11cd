"""The inbox: platform updates a bot could not handle yet, kept raw for a later retry.

A bot acknowledges a batch of updates only once every update in it was handled or kept
here, so nothing the platform sent is lost while the database (say) restarts. An update is
kept either because its handler failed (it is retried after a minute, then less and less
often, and given up after ``max_attempts``) or because an earlier update of the same
person waits here (it is handled right behind that one, so their order holds). The bot
keeps its own lanes; this service speaks plain values and owns the transactions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from delivery.port import Clock
from storage import outbox as db_outbox
from storage.database import Database

FIRST_RETRY = timedelta(minutes=1)
LONGEST_WAIT = timedelta(minutes=60)
WAITING_BEHIND = "waiting behind an earlier update of this person"


@dataclass(frozen=True, slots=True)
class KeptUpdate:
    """One kept update, as the bot stored it (``payload`` is the platform's JSON)."""

    id: int
    update_id: int
    payload: dict[str, Any]
    attempts: int
    next_attempt_at: datetime

    def due(self, now: datetime) -> bool:
        return self.next_attempt_at <= now


class Inbox:
    """Keeps updates, lists the waiting ones and records each retry's outcome."""

    def __init__(self, db: Database, clock: Clock, *, max_attempts: int = 10) -> None:
        self._db = db
        self._clock = clock
        self.max_attempts = max_attempts

    async def keep(
        self, platform: str, update_id: int, payload: Mapping[str, Any], error: str | None
    ) -> bool:
        """Keep an update: ``error`` says why its handler failed (retried in a minute);
        None means it waits behind an earlier kept update of the same person (due at once).
        False if it was kept before (the platform delivered the batch again)."""
        now = self._clock.now()
        if error is None:
            note, retry_at = WAITING_BEHIND, now
        else:
            note, retry_at = error, now + FIRST_RETRY
        async with self._db.write() as conn:
            return await db_outbox.keep_update(
                conn, platform, update_id, payload, note, now, retry_at, failed=error is not None
            )

    async def waiting(self, platform: str) -> list[KeptUpdate]:
        """Every kept update of ``platform`` still to handle, oldest update first."""
        async with self._db.read() as conn:
            rows = await db_outbox.queued_updates(conn, platform)
        return [
            KeptUpdate(
                row["id"],
                row["update_id"],
                row["payload"],
                row["attempts"],
                row["next_attempt_at"],
            )
            for row in rows
        ]

    async def handled(self, kept: KeptUpdate) -> None:
        """The kept update was handled at last."""
        async with self._db.write() as conn:
            await db_outbox.settle_update(conn, kept.id, done=True, retry_at=None)

    async def failed(self, kept: KeptUpdate, error: str) -> bool:
        """The kept update failed again: it is retried later (each wait twice the last, at
        most an hour) or, after ``max_attempts``, given up. True if it was given up."""
        give_up = kept.attempts + 1 >= self.max_attempts
        delay = min(LONGEST_WAIT, FIRST_RETRY * 2**kept.attempts)
        async with self._db.write() as conn:
            await db_outbox.settle_update(
                conn,
                kept.id,
                done=False,
                error=error,
                retry_at=self._clock.now() + delay,
                give_up=give_up,
            )
        return give_up
