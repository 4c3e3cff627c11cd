"""The append-only audit log (``events``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import (
    events,
)
from storage.sql import (
    execute_many,
)


async def insert_events(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append audit events. Each row: program_id, user_id, actor_id, kind, at, data."""
    if not rows:
        return
    prepared = [
        {**row, "data": json.dumps(row["data"], sort_keys=True) if row.get("data") else None}
        for row in rows
    ]
    await execute_many(conn, events.insert(), prepared)
