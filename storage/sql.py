"""Statement helpers every query module shares: the dialect's upsert, chunking under the
drivers' parameter limits, executemany, and key-pair filters that use composite indexes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Table,
    and_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

CHUNK = 500


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    return dialect_insert_for(conn.dialect.name, table)


def dialect_insert_for(dialect: str, table: Table) -> Any:
    if dialect == "sqlite":
        return sqlite.insert(table)
    return postgresql.insert(table)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def execute_many(
    conn: AsyncConnection, stmt: Any, rows: Sequence[Mapping[str, Any]]
) -> list[Any]:
    """Run ``stmt`` once per row as one executemany: the statement is compiled once (and
    cached), and SQLAlchemy's "insertmanyvalues" sends the rows as a few multi-row
    statements, so a batch costs a few round trips whatever its size. Returns the
    RETURNING rows, if any. Every row must have the same keys."""
    if not rows:
        return []
    result = await conn.execute(stmt, list(rows))
    return list(result.all()) if result.returns_rows else []


def pair_filters(first: Any, second: Any, keys: Iterable[tuple[Any, Any]]) -> Iterable[Any]:
    """``first = a AND second IN (...)`` per distinct ``a``, in chunks.

    SQLite answers a row-value ``(a, b) IN (...)`` with a full table scan; this form uses
    the composite index on both engines.
    """
    grouped: dict[Any, list[Any]] = {}
    for a, b in keys:
        grouped.setdefault(a, []).append(b)
    for a in sorted(grouped):
        for part in chunks(sorted(set(grouped[a]))):
            yield and_(first == a, second.in_(list(part)))


async def rows_by_pairs(
    conn: AsyncConnection,
    table: Table,
    first: str,
    second: str,
    keys: Sequence[tuple[Any, Any]],
    columns: Sequence[str],
) -> dict[tuple[Any, Any], RowMapping]:
    # Naming the columns a hot path needs spares converting the others (datetimes above
    # all) for every row.
    selected = [table.c[name] for name in (first, second, *columns)] if columns else [table]
    found: dict[tuple[Any, Any], RowMapping] = {}
    for condition in pair_filters(table.c[first], table.c[second], keys):
        result = await conn.execute(select(*selected).where(condition))
        for row in result.mappings():
            found[(row[first], row[second])] = row
    return found
