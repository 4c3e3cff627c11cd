"""Deleting what identifies a person, across the tables that hold it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    delete,
    or_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schema import (
    events,
    flows,
    grants,
    join_attempts,
    links,
    members,
    referrals,
    referrer_counts,
    reward_progress,
    reward_referrals,
)


async def delete_person(
    conn: AsyncConnection, program_ids: Sequence[int], user_id: int
) -> dict[str, int]:
    """Delete what identifies ``user_id`` in ``program_ids`` (see the engine's docs)."""
    if not program_ids:
        return {}
    in_programs = list(program_ids)
    done: dict[str, int] = {}

    async def run(name: str, stmt: Any) -> None:
        done[name] = done.get(name, 0) + ((await conn.execute(stmt)).rowcount or 0)

    await run(
        "referrals_unlinked",
        update(referrals)
        .where(referrals.c.program_id.in_(in_programs), referrals.c.referrer_id == user_id)
        .values(referrer_id=None, link_id=None),
    )
    await run(
        "join_attempts",
        delete(join_attempts).where(
            join_attempts.c.program_id.in_(in_programs),
            or_(join_attempts.c.user_id == user_id, join_attempts.c.referrer_id == user_id),
        ),
    )
    await run(
        "links",
        delete(links).where(links.c.program_id.in_(in_programs), links.c.referrer_id == user_id),
    )
    await run(
        "counts",
        delete(referrer_counts).where(
            referrer_counts.c.program_id.in_(in_programs),
            referrer_counts.c.referrer_id == user_id,
        ),
    )
    await run(
        "remembered",
        update(members)
        .where(members.c.program_id.in_(in_programs), members.c.remembered_referrer_id == user_id)
        .values(remembered_referrer_id=None, remembered_link_id=None, remembered_at=None),
    )
    await run(
        "members",
        delete(members).where(members.c.program_id.in_(in_programs), members.c.user_id == user_id),
    )
    # Rewards: their grants stay (what was given, and the codes assigned to them stay used)
    # without their identity; their fulfilment answers (addresses) go.
    await run(
        "grants_anonymised",
        update(grants)
        .where(grants.c.program_id.in_(in_programs), grants.c.reader_id == user_id)
        .values(reader_id=None, answer=None),
    )
    await run(
        "reward_progress",
        delete(reward_progress).where(
            reward_progress.c.program_id.in_(in_programs),
            reward_progress.c.reader_id == user_id,
        ),
    )
    await run(
        "reward_marks",
        update(reward_referrals)
        .where(
            reward_referrals.c.program_id.in_(in_programs),
            reward_referrals.c.reader_id == user_id,
        )
        .values(reader_id=0),
    )
    await run("flows", delete(flows).where(flows.c.user_id == user_id))
    await run(
        "events",
        # Events about them go; their decisions as a manager about others stay, with the
        # bare id as actor (others' truth depends on them).
        delete(events).where(events.c.program_id.in_(in_programs), events.c.user_id == user_id),
    )
    return done
