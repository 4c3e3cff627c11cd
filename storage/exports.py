"""Queries of a creator's exports and program statistics: not hot paths, read in one
snapshot, streamed in partitions so a program with millions of referrals never sits in
memory at once.

Each export is a fixed list of columns and a statement (:data:`EXPORT_COLUMNS`,
:func:`export_rows`); the readers' export adds one column per link label (the most used
ones; the rest are summed into ``other``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import grants, links, members, referrals, referrer_counts

PARTITION = 1000  # rows per await: turning 1000 rows into tuples takes ~15 ms of the loop
MAX_LABEL_COLUMNS = 50  # label columns in the readers' export; the rest are summed
BUCKET_SECONDS = 900  # joins are counted per quarter hour, so any zone's days add up

READER_STATES = ("pending", "held", "confirmed", "rejected", "left", "counted")
EXPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "readers": ("reader_id", "display_name", "username", *READER_STATES),
    "referrals": (
        "referred_id",
        "referrer_id",
        "label",
        "state",
        "reason",
        "joined_at",
        "hold_until",
        "confirmed_at",
        "decided_at",
        "left_at",
    ),
    "grants": (
        "id",
        "reader_id",
        "source",
        "source_id",
        "occurrence",
        "title",
        "reward_kind",
        "state",
        "cost_cents",
        "unlocked_at",
        "delivered_at",
    ),
}

_label = func.coalesce(links.c.label, "")
_with_links = referrals.outerjoin(links, links.c.id == referrals.c.link_id)


async def top_labels(conn: AsyncConnection, program_id: int) -> tuple[list[str], bool]:
    """The link labels with confirmed referrals, most used first (at most
    :data:`MAX_LABEL_COLUMNS`; ``""`` is the main link), and whether there were more."""
    result = await conn.execute(
        select(_label.label("label"))
        .select_from(_with_links)
        .where(referrals.c.program_id == program_id, referrals.c.state == "confirmed")
        .group_by(_label)
        .order_by(func.count().desc(), _label)
        .limit(MAX_LABEL_COLUMNS + 1)
    )
    found = [str(label) for label in result.scalars()]
    return found[:MAX_LABEL_COLUMNS], len(found) > MAX_LABEL_COLUMNS


def _readers(program_id: int, labels: Sequence[str], other: bool) -> Any:
    confirmed = referrals.c.state == "confirmed"
    per_label = [
        func.sum(case((and_(confirmed, _label == label), 1), else_=0)).label(f"l{i}")
        for i, label in enumerate(labels)
    ]
    if other:  # the labels past the first MAX_LABEL_COLUMNS, summed
        rest = and_(confirmed, _label.not_in(list(labels)))
        per_label.append(func.sum(case((rest, 1), else_=0)).label(f"l{len(labels)}"))
    via = (
        select(referrals.c.referrer_id, *per_label)
        .select_from(_with_links)
        .where(referrals.c.program_id == program_id, referrals.c.referrer_id.is_not(None))
        .group_by(referrals.c.referrer_id)
        .subquery()
    )
    label_columns = [func.coalesce(via.c[f"l{i}"], 0) for i in range(len(per_label))]
    return (
        select(
            referrer_counts.c.referrer_id,
            members.c.display_name,
            members.c.username,
            *(referrer_counts.c[state] for state in READER_STATES),
            *label_columns,
        )
        .select_from(
            referrer_counts.outerjoin(
                members,
                and_(
                    members.c.program_id == referrer_counts.c.program_id,
                    members.c.user_id == referrer_counts.c.referrer_id,
                ),
            ).outerjoin(via, via.c.referrer_id == referrer_counts.c.referrer_id)
        )
        .where(referrer_counts.c.program_id == program_id)
        .order_by(referrer_counts.c.counted.desc(), referrer_counts.c.referrer_id)
    )


def _referrals(program_id: int) -> Any:
    return (
        select(
            referrals.c.referred_id,
            referrals.c.referrer_id,
            _label.label("label"),
            referrals.c.state,
            referrals.c.reason,
            referrals.c.joined_at,
            referrals.c.hold_until,
            referrals.c.confirmed_at,
            referrals.c.decided_at,
            referrals.c.left_at,
        )
        .select_from(_with_links)
        .where(referrals.c.program_id == program_id)
        .order_by(referrals.c.joined_at, referrals.c.referred_id)
    )


def _grants(program_id: int) -> Any:
    return (
        select(*(grants.c[name] for name in EXPORT_COLUMNS["grants"]))
        .where(grants.c.program_id == program_id)
        .order_by(grants.c.id)
    )


async def export_rows(
    conn: AsyncConnection,
    what: str,
    program_id: int,
    *,
    labels: Sequence[str] = (),
    other: bool = False,
    size: int = PARTITION,
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The rows of one export (``readers``, ``referrals`` or ``grants``) in partitions of
    ``size``, in the columns of :data:`EXPORT_COLUMNS` (readers: then one column per label
    of ``labels``, and one for every other label when ``other``)."""
    if what == "readers":
        stmt = _readers(program_id, labels, other)
    elif what == "referrals":
        stmt = _referrals(program_id)
    elif what == "grants":
        stmt = _grants(program_id)
    else:
        raise ValueError(f"no export named {what!r}")
    result = await conn.stream(stmt.execution_options(yield_per=size))
    async for partition in result.partitions(size):
        yield [tuple(row) for row in partition]


# --- statistics -----------------------------------------------------------------------------


def _bucket(dialect: str) -> Any:
    """The quarter hour (seconds since the epoch // 900) of a referral's join."""
    if dialect == "sqlite":
        seconds: Any = cast(func.strftime("%s", referrals.c.joined_at), Integer)
        return seconds / BUCKET_SECONDS
    return cast(func.floor(func.extract("epoch", referrals.c.joined_at) / BUCKET_SECONDS), Integer)


async def joins_by_quarter_hour(
    conn: AsyncConnection, program_id: int, since: datetime
) -> list[tuple[int, str, int]]:
    """(quarter hour since the epoch, state, referrals) of the referrals that joined since
    ``since``: at most 96 buckets a day, whatever the program's size."""
    bucket = _bucket(conn.dialect.name).label("bucket")
    result = await conn.execute(
        select(bucket, referrals.c.state, func.count())
        .where(referrals.c.program_id == program_id, referrals.c.joined_at >= since)
        .group_by(bucket, referrals.c.state)
    )
    return [(int(b), str(state), int(n)) for b, state, n in result.all()]


async def referrals_by_label(
    conn: AsyncConnection, program_id: int
) -> list[tuple[str, str, int, int]]:
    """(link label, state, referrals, of them left later) over the program's referrals."""
    result = await conn.execute(
        select(_label, referrals.c.state, func.count(), func.count(referrals.c.left_at))
        .select_from(_with_links)
        .where(referrals.c.program_id == program_id)
        .group_by(_label, referrals.c.state)
    )
    return [(str(label), str(state), int(n), int(left)) for label, state, n, left in result.all()]
