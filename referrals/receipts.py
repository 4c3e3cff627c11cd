"""What a reader sees of their own referrals: their counts and their receipt (every referral
and every join through their links that did not count, with why)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from referrals.context import Engine
from referrals.models import Counts, Receipt, ReceiptItem
from storage import counts as db_counts
from storage import referrals as db_referrals


def counts_from_row(row: Mapping[Any, Any] | None) -> Counts:
    if row is None:
        return Counts()
    return Counts(
        pending=row["pending"],
        held=row["held"],
        confirmed=row["confirmed"],
        rejected=row["rejected"],
        left=row["left"],
        counted=row["counted"],
    )


class ReceiptService:
    """A reader's counts and receipt."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def counts(self, program_id: int, referrer_id: int) -> Counts:
        async with self._engine.db.read() as conn:
            return counts_from_row(await db_counts.counts_of(conn, program_id, referrer_id))

    async def receipt(
        self, program_id: int, referrer_id: int, page: int = 1, per_page: int = 10
    ) -> Receipt:
        """Every referral and not-counted join of a reader, newest first, one page."""
        per_page = max(1, min(per_page, 50))
        page = max(1, page)
        async with self._engine.db.read() as conn:
            counts = counts_from_row(await db_counts.counts_of(conn, program_id, referrer_id))
            rows, total = await db_referrals.receipt_page(
                conn, program_id, referrer_id, per_page, (page - 1) * per_page
            )
        pages = max(1, -(-total // per_page))
        # Everything on the receipt that is not counted, waiting or under review: the
        # header's "not counted" then agrees with the entries listed below it.
        not_counted = max(0, total - counts.counted - counts.pending - counts.held)
        items = [
            ReceiptItem(
                user_id=row["user_id"],
                display_name=row["display_name"] or "",
                kind=row["kind"],
                state=row["state"],
                reason=row["reason"],
                at=_as_utc(row["at"]) or self._engine.clock.now(),
                hold_until=_as_utc(row["hold_until"]) if row["state"] == "pending" else None,
                confirmed_at=_as_utc(row["confirmed_at"]),
                left_at=_as_utc(row["left_at"]),
            )
            for row in rows
        ]
        return Receipt(
            program_id, referrer_id, counts, items, page, pages, total, not_counted=not_counted
        )


def _as_utc(value: Any) -> datetime | None:
    """Columns of a UNION lose their type on SQLite: parse and mark them UTC again."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
