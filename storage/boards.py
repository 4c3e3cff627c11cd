"""Queries of the leaderboards: board settings, board readers (pseudonymous numbers and
exclusions), per-board counts, the count histogram that ranks come from, and seasons.

A rank is never a ``COUNT(*)`` over referrals: the top of a board is an index range of
``board_counts`` (``program, period, count, tiebreak``) read backwards, and a reader's rank is
their own row plus one sum over the histogram's few distinct counts above theirs."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, select, true, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import (
    board_counts,
    board_histogram,
    board_readers,
    board_settings,
    members,
    referrals,
    seasons,
)
from storage.sql import chunks, dialect_insert, dialect_insert_for, execute_many

# --- settings -------------------------------------------------------------------------------


async def settings_of(conn: AsyncConnection, program_ids: Sequence[int]) -> dict[int, RowMapping]:
    if not program_ids:
        return {}
    result = await conn.execute(
        select(board_settings).where(board_settings.c.program_id.in_(list(program_ids)))
    )
    return {row["program_id"]: row for row in result.mappings()}


async def save_settings(
    conn: AsyncConnection, program_id: int, values: Mapping[str, Any], now: datetime
) -> None:
    stmt = dialect_insert(conn, board_settings).values(
        program_id=program_id, updated_at=now, **values
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["program_id"], set_={**values, "updated_at": now}
    )
    await conn.execute(stmt)


async def scheduled_programs(conn: AsyncConnection) -> list[RowMapping]:
    result = await conn.execute(
        select(board_settings)
        .where(board_settings.c.schedule.is_not(None))
        .order_by(board_settings.c.program_id)
    )
    return list(result.mappings())


async def advance_slot(
    conn: AsyncConnection, program_id: int, slot: datetime, before: datetime | None
) -> bool:
    """Move the schedule's last handled slot to ``slot`` if it still is ``before``."""
    condition = (
        board_settings.c.last_slot_at.is_(None)
        if before is None
        else board_settings.c.last_slot_at == before
    )
    result = await conn.execute(
        update(board_settings)
        .where(board_settings.c.program_id == program_id, condition)
        .values(last_slot_at=slot)
    )
    return bool(result.rowcount)


# --- board readers --------------------------------------------------------------------------


async def readers_by_ids(
    conn: AsyncConnection, program_id: int, reader_ids: Sequence[int]
) -> dict[int, RowMapping]:
    found: dict[int, RowMapping] = {}
    for part in chunks(sorted(set(reader_ids))):
        result = await conn.execute(
            select(board_readers).where(
                board_readers.c.program_id == program_id,
                board_readers.c.reader_id.in_(list(part)),
            )
        )
        for row in result.mappings():
            found[row["reader_id"]] = row
    return found


async def add_readers(conn: AsyncConnection, program_id: int, reader_ids: Sequence[int]) -> None:
    """Give readers the boards have not seen the next pseudonymous numbers (in id order)."""
    if not reader_ids:
        return
    top = await conn.execute(
        select(func.coalesce(func.max(board_readers.c.number), 0)).where(
            board_readers.c.program_id == program_id
        )
    )
    start = int(top.scalar() or 0)
    rows = [
        {"program_id": program_id, "reader_id": reader, "number": start + i + 1}
        for i, reader in enumerate(sorted(set(reader_ids)))
    ]
    stmt = dialect_insert(conn, board_readers).on_conflict_do_nothing(
        index_elements=["program_id", "reader_id"]
    )
    await execute_many(conn, stmt, rows)


async def set_excluded(
    conn: AsyncConnection,
    program_id: int,
    reader_id: int,
    excluded: bool,
    actor_id: int | None,
    now: datetime,
) -> None:
    await conn.execute(
        update(board_readers)
        .where(board_readers.c.program_id == program_id, board_readers.c.reader_id == reader_id)
        .values(
            excluded=excluded,
            excluded_by=actor_id if excluded else None,
            excluded_at=now if excluded else None,
        )
    )
    await conn.execute(
        update(board_counts)
        .where(board_counts.c.program_id == program_id, board_counts.c.reader_id == reader_id)
        .values(excluded=excluded)
    )


async def excluded_readers(conn: AsyncConnection, program_id: int) -> list[RowMapping]:
    result = await conn.execute(
        select(board_readers)
        .where(board_readers.c.program_id == program_id, board_readers.c.excluded.is_(True))
        .order_by(board_readers.c.number)
    )
    return list(result.mappings())


# --- counts and the histogram ---------------------------------------------------------------


async def counts_on(
    conn: AsyncConnection, program_id: int, period: str, reader_ids: Sequence[int]
) -> dict[int, RowMapping]:
    """The rows of ``reader_ids`` on one board."""
    found: dict[int, RowMapping] = {}
    for part in chunks(sorted(set(reader_ids))):
        result = await conn.execute(
            select(
                board_counts.c.reader_id,
                board_counts.c.count,
                board_counts.c.tiebreak,
                board_counts.c.reached_at,
                board_counts.c.excluded,
            ).where(
                board_counts.c.program_id == program_id,
                board_counts.c.period == period,
                board_counts.c.reader_id.in_(list(part)),
            )
        )
        for row in result.mappings():
            found[row["reader_id"]] = row
    return found


async def counts_of_reader(
    conn: AsyncConnection, program_id: int, reader_id: int
) -> dict[str, RowMapping]:
    """Every board row of one reader, by period."""
    result = await conn.execute(
        select(board_counts).where(
            board_counts.c.program_id == program_id, board_counts.c.reader_id == reader_id
        )
    )
    return {row["period"]: row for row in result.mappings()}


async def write_counts(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Upsert board rows (program_id, period, reader_id, count, tiebreak, reached_at,
    excluded), in key order so concurrent writers lock in the same order."""
    ordered = sorted(rows, key=lambda r: (r["program_id"], r["period"], r["reader_id"]))
    await execute_many(conn, _write_counts_stmt(conn.dialect.name), ordered)


@functools.cache
def _write_counts_stmt(dialect: str) -> Any:
    stmt = dialect_insert_for(dialect, board_counts)
    return stmt.on_conflict_do_update(
        index_elements=["program_id", "period", "reader_id"],
        set_={
            "count": stmt.excluded["count"],
            "tiebreak": stmt.excluded.tiebreak,
            "reached_at": stmt.excluded.reached_at,
            "excluded": stmt.excluded.excluded,
        },
    )


async def add_histogram(conn: AsyncConnection, deltas: Mapping[tuple[int, str, int], int]) -> None:
    """Add ``deltas`` (program, period, count) → readers to the histogram; rows that fall
    to zero are removed."""
    rows = [
        {"program_id": pid, "period": period, "count": count, "readers": change}
        for (pid, period, count), change in sorted(deltas.items())
        if change and count > 0
    ]
    if not rows:
        return
    await execute_many(conn, _histogram_stmt(conn.dialect.name), rows)
    emptied = sorted({(pid, period) for (pid, period, _), change in deltas.items() if change < 0})
    for pid, period in emptied:
        await conn.execute(
            delete(board_histogram).where(
                board_histogram.c.program_id == pid,
                board_histogram.c.period == period,
                board_histogram.c.readers <= 0,
            )
        )


@functools.cache
def _histogram_stmt(dialect: str) -> Any:
    stmt = dialect_insert_for(dialect, board_histogram)
    return stmt.on_conflict_do_update(
        index_elements=["program_id", "period", "count"],
        set_={"readers": board_histogram.c.readers + stmt.excluded.readers},
    )


async def top(
    conn: AsyncConnection, program_id: int, period: str, limit: int, offset: int = 0
) -> list[RowMapping]:
    """The board's rows from ``offset``: highest count first, then who reached it first."""
    result = await conn.execute(
        select(
            board_counts.c.reader_id,
            board_counts.c.count,
            board_counts.c.reached_at,
        )
        .where(
            board_counts.c.program_id == program_id,
            board_counts.c.period == period,
            board_counts.c.count > 0,
            board_counts.c.excluded.is_(False),
        )
        .order_by(board_counts.c.count.desc(), board_counts.c.tiebreak.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(result.mappings())


async def above(
    conn: AsyncConnection, program_id: int, period: str, count: int
) -> tuple[int, int | None]:
    """How many readers of the board have more than ``count``, and the smallest count
    above it (None at the top): one range of the histogram."""
    result = await conn.execute(
        select(
            func.coalesce(func.sum(board_histogram.c.readers), 0),
            func.min(board_histogram.c.count),
        ).where(
            board_histogram.c.program_id == program_id,
            board_histogram.c.period == period,
            board_histogram.c.count > count,
        )
    )
    row = result.one()
    return int(row[0]), (int(row[1]) if row[1] is not None else None)


async def count_of(
    conn: AsyncConnection, program_id: int, period: str, reader_id: int
) -> RowMapping | None:
    result = await conn.execute(
        select(board_counts.c.count, board_counts.c.excluded, board_counts.c.reached_at).where(
            board_counts.c.program_id == program_id,
            board_counts.c.period == period,
            board_counts.c.reader_id == reader_id,
        )
    )
    return result.mappings().first()


async def standings(conn: AsyncConnection, program_id: int, period: str) -> list[RowMapping]:
    """Every ranked reader of a board (a season's final standings), in board order."""
    result = await conn.execute(
        select(board_counts.c.reader_id, board_counts.c.count, board_readers.c.number)
        .join(
            board_readers,
            and_(
                board_readers.c.program_id == board_counts.c.program_id,
                board_readers.c.reader_id == board_counts.c.reader_id,
            ),
        )
        .where(
            board_counts.c.program_id == program_id,
            board_counts.c.period == period,
            board_counts.c.count > 0,
            board_counts.c.excluded.is_(False),
        )
        .order_by(board_counts.c.count.desc(), board_counts.c.tiebreak.desc())
    )
    return list(result.mappings())


async def names_of(
    conn: AsyncConnection, program_id: int, reader_ids: Sequence[int]
) -> dict[int, tuple[str, int]]:
    """Display names (as stored, cleaned on the way in) and board numbers of readers."""
    if not reader_ids:
        return {}
    ids = sorted(set(reader_ids))
    names: dict[int, str] = {}
    for part in chunks(ids):
        result = await conn.execute(
            select(members.c.user_id, members.c.display_name).where(
                members.c.program_id == program_id, members.c.user_id.in_(list(part))
            )
        )
        names.update({row[0]: row[1] for row in result.all()})
    numbers = await readers_by_ids(conn, program_id, ids)
    return {
        reader: (names.get(reader, ""), numbers[reader]["number"] if reader in numbers else 0)
        for reader in ids
    }


# --- seasons --------------------------------------------------------------------------------


async def insert_season(conn: AsyncConnection, row: Mapping[str, Any]) -> int:
    result = await conn.execute(seasons.insert().values(**row).returning(seasons.c.id))
    return int(result.scalar_one())


async def season_by_id(conn: AsyncConnection, season_id: int) -> RowMapping | None:
    result = await conn.execute(select(seasons).where(seasons.c.id == season_id))
    return result.mappings().first()


async def seasons_of(conn: AsyncConnection, program_ids: Sequence[int]) -> list[RowMapping]:
    if not program_ids:
        return []
    result = await conn.execute(
        select(seasons)
        .where(seasons.c.program_id.in_(list(program_ids)))
        .order_by(seasons.c.program_id, seasons.c.starts_at, seasons.c.id)
    )
    return list(result.mappings())


async def season_names(conn: AsyncConnection, season_ids: Sequence[int]) -> dict[int, str]:
    """Seasons' names by id (what a prize message and a manager's notice say)."""
    found: dict[int, str] = {}
    for part in chunks(sorted(set(season_ids))):
        result = await conn.execute(
            select(seasons.c.id, seasons.c.name).where(seasons.c.id.in_(list(part)))
        )
        found.update({int(row[0]): str(row[1]) for row in result.all()})
    return found


async def seasons_to_close(conn: AsyncConnection, ended_before: datetime) -> list[RowMapping]:
    """Seasons that ended before ``ended_before`` and are not final yet, or final with
    prizes not granted yet."""
    result = await conn.execute(
        select(seasons)
        .where(
            seasons.c.ends_at <= ended_before,
            (seasons.c.final_at.is_(None))
            | (seasons.c.prize_id.is_not(None) & seasons.c.prizes_granted_at.is_(None)),
        )
        .order_by(seasons.c.ends_at, seasons.c.id)
    )
    return list(result.mappings())


async def update_season(conn: AsyncConnection, season_id: int, values: Mapping[str, Any]) -> None:
    await conn.execute(update(seasons).where(seasons.c.id == season_id).values(**values))


async def set_season_prize(conn: AsyncConnection, season_id: int, prize_id: int | None) -> bool:
    """Change a season's prize while its results are not final; False once they are (the
    update decides, so it never races the season's close)."""
    result = await conn.execute(
        update(seasons)
        .where(seasons.c.id == season_id, seasons.c.final_at.is_(None))
        .values(prize_id=prize_id)
    )
    return bool(result.rowcount)


def _counted(subtract: bool) -> Any:
    condition = referrals.c.state == "confirmed"
    if subtract:
        condition = condition & referrals.c.left_at.is_(None)
    return condition


async def counted_joins(
    conn: AsyncConnection, program_id: int, reader_id: int, subtract: bool
) -> list[datetime]:
    """When each referral of one reader that counts joined (a recount of their boards)."""
    result = await conn.execute(
        select(referrals.c.joined_at).where(
            referrals.c.program_id == program_id,
            referrals.c.referrer_id == reader_id,
            _counted(subtract),
        )
    )
    return [row[0] for row in result.all()]


async def counted_joins_between(
    conn: AsyncConnection, program_id: int, start: datetime, end: datetime, subtract: bool
) -> dict[int, tuple[int, datetime]]:
    """Per reader: referrals that count and joined in [start, end), and the latest
    confirmation among them (a season created after it started)."""
    result = await conn.execute(
        select(
            referrals.c.referrer_id,
            func.count(),
            func.max(referrals.c.confirmed_at),
        )
        .where(
            referrals.c.program_id == program_id,
            referrals.c.referrer_id.is_not(None),
            referrals.c.joined_at >= start,
            referrals.c.joined_at < end,
            _counted(subtract),
        )
        .group_by(referrals.c.referrer_id)
    )
    return {row[0]: (int(row[1]), row[2] or end) for row in result.all()}


async def board_page(
    conn: AsyncConnection,
    program_id: int,
    period: str,
    reader_id: int | None,
    limit: int,
    offset: int = 0,
) -> tuple[list[RowMapping], dict[str, Any]]:
    """A page of the board and, in the same statement, the board's size and where
    ``reader_id`` stands (their count, whether excluded, readers above them, the next count
    up): one round trip, every part an index range. The statement is built once (building
    it costs more than running it)."""
    result = await conn.execute(
        _board_page_stmt(),
        {
            "program_id": program_id,
            "period": period,
            "reader_id": reader_id if reader_id is not None else -1,
            "limit": limit,
            "offset": offset,
        },
    )
    rows = list(result.mappings())
    first = rows[0]
    mine_values = {
        "count": int(first["count"]),
        "excluded": bool(first["excluded"]),
        "above": int(first["above"]),
        "next": int(first["next"]) if first["next"] is not None else None,
        "total": int(first["total"]),
    }
    entries = [r for r in rows if r["reader_id"] is not None]
    return entries, mine_values


@functools.cache
def _board_page_stmt() -> Any:
    program_id: Any = bindparam("program_id")
    period: Any = bindparam("period")
    reader_id: Any = bindparam("reader_id")
    board = board_counts.c
    hist = board_histogram.c
    own = (board.program_id == program_id, board.period == period, board.reader_id == reader_id)
    mine = func.coalesce(select(board["count"]).where(*own).scalar_subquery(), 0)
    excluded = select(board.excluded).where(*own).scalar_subquery()

    def over(floor: Any, what: Any) -> Any:
        return (
            select(what)
            .where(hist.program_id == program_id, hist.period == period, hist["count"] > floor)
            .scalar_subquery()
        )

    page = (
        select(board.reader_id, board["count"], board.tiebreak)
        .where(
            board.program_id == program_id,
            board.period == period,
            board["count"] > 0,
            board.excluded.is_(False),
        )
        .order_by(board["count"].desc(), board.tiebreak.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery("page")
    )
    me = select(
        mine.label("count"),
        func.coalesce(excluded, False).label("excluded"),
        func.coalesce(over(mine, func.sum(hist.readers)), 0).label("above"),
        over(mine, func.min(hist["count"])).label("next"),
        func.coalesce(over(0, func.sum(hist.readers)), 0).label("total"),
    ).subquery("me")
    return (
        select(
            me.c["count"],
            me.c.excluded,
            me.c.above,
            me.c.next,
            me.c.total,
            page.c.reader_id,
            page.c["count"].label("entry_count"),
        )
        .select_from(me.outerjoin(page, true()))
        .order_by(page.c["count"].desc(), page.c.tiebreak.desc())
    )
