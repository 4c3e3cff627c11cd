"""Join requests (the direct-link mode): who invited the requester, and whether to approve now
or after the human check — for many requests in one transaction.

Requests that arrive together (the updates of one batch) are grouped by a
:class:`storage.batch.Batcher` and decided here with a constant number of set-based
statements, like joins (referrals/joins.py): on SQLite one writer serves everyone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from referrals.clock import ensure_utc
from referrals.models import JoinRequestOutcome, Person, ProgramNotFound, RequestStatus
from referrals.programs import program_from_row
from referrals.text import member_row
from storage import join_requests as db_requests
from storage import links as db_links
from storage import members as db_members
from storage import people as db_people
from storage import programs as db_programs

# The human check must reach the requester while the platform lets the bot write to them
# (the port's ``join_request_window``); it is offered only this much before that ends.
CHECK_MARGIN = timedelta(minutes=1)


def check_window(dm_window: timedelta | None) -> timedelta | None:
    """How long after a request its human check may still be offered (None: never, the
    platform gives no window to write to a requester)."""
    if dm_window is None or dm_window <= CHECK_MARGIN:
        return None
    return dm_window - CHECK_MARGIN


Result = JoinRequestOutcome | Exception


@dataclass(frozen=True, slots=True)
class JoinRequest:
    program_id: int
    person: Person
    at: datetime
    link: str | None


async def decide_join_requests(
    conn: AsyncConnection,
    batch: Sequence[JoinRequest],
    now: datetime,
    windows: Mapping[str, timedelta | None],
) -> list[Result]:
    """Record ``batch`` in the open transaction; one result per request, in order.
    ``windows`` maps a platform to how long after a request a human check may be offered.

    A person asking twice in one batch is decided in a second round, after the first."""
    results: list[Result | None] = [None] * len(batch)
    rounds: list[list[int]] = []
    seen_in: dict[tuple[int, int], int] = {}
    for index, request in enumerate(batch):
        key = (request.program_id, request.person.user_id)
        round_no = seen_in.get(key, -1) + 1
        seen_in[key] = round_no
        if round_no == len(rounds):
            rounds.append([])
        rounds[round_no].append(index)
    programs = await db_programs.programs_by_ids(conn, {request.program_id for request in batch})
    for indexes in rounds:
        todo = []
        for index in indexes:
            if batch[index].program_id in programs:
                todo.append(index)
            else:
                results[index] = ProgramNotFound(f"no program {batch[index].program_id}")
        if todo:
            decided = await _decide_round(conn, [batch[i] for i in todo], programs, now, windows)
            for index, outcome in zip(todo, decided, strict=True):
                results[index] = outcome
    return [r if r is not None else RuntimeError("request not processed") for r in results]


async def _decide_round(
    conn: AsyncConnection,
    requests: Sequence[JoinRequest],
    program_rows: dict[int, Any],
    now: datetime,
    windows: Mapping[str, timedelta | None],
) -> list[JoinRequestOutcome]:
    """Requests of distinct people."""
    programs = {pid: program_from_row(row) for pid, row in program_rows.items()}
    link_values = sorted({r.link for r in requests if r.link})
    links = await db_links.links_by_code_or_url(conn, link_values) if link_values else {}
    attributed: list[tuple[int | None, int | None]] = []
    for request in requests:
        row = links.get(request.link) if request.link else None
        if row is not None and row["program_id"] == request.program_id and not row["revoked_at"]:
            attributed.append((row["referrer_id"], row["id"]))
        else:
            attributed.append((None, None))

    await db_members.upsert_people(
        conn,
        sorted(
            (member_row(r.program_id, r.person, ensure_utc(r.at)) for r in requests),
            key=lambda row: (row["program_id"], row["user_id"]),
        ),
        joined=False,
    )
    await db_members.remember_referrers(
        conn,
        [
            (r.program_id, r.person.user_id, referrer_id, link_id or 0, ensure_utc(r.at))
            for r, (referrer_id, link_id) in zip(requests, attributed, strict=True)
            if referrer_id is not None and referrer_id != r.person.user_id
        ],
    )
    referrer_keys = sorted(
        {
            (r.program_id, referrer_id)
            for r, (referrer_id, _) in zip(requests, attributed, strict=True)
            if referrer_id is not None
        }
    )
    referrers = await db_members.members_by_keys(conn, referrer_keys) if referrer_keys else {}
    keys = sorted((r.program_id, r.person.user_id) for r in requests)
    earlier_rows = await db_requests.join_requests_by_keys(conn, keys)
    contacts = await db_people.people_by_keys(
        conn, sorted({(programs[r.program_id].platform, r.person.user_id) for r in requests})
    )

    outcomes: list[JoinRequestOutcome | None] = [None] * len(requests)
    new_rows: list[dict[str, Any]] = []
    new_index: dict[tuple[int, int], int] = {}
    for index, (request, (referrer_id, link_id)) in enumerate(
        zip(requests, attributed, strict=True)
    ):
        program = programs[request.program_id]
        at = ensure_utc(request.at)
        key = (request.program_id, request.person.user_id)
        referrer = referrers.get((request.program_id, referrer_id)) if referrer_id else None
        name = referrer["display_name"] if referrer else None
        earlier = earlier_rows.get(key)
        if earlier is not None and earlier["requested_at"] == at:
            # The same request again (Telegram re-delivered the update).
            status = {
                "awaiting_check": RequestStatus.CHECK,
                "approved": RequestStatus.APPROVE,
            }.get(earlier["state"], RequestStatus.ALREADY)
            outcomes[index] = JoinRequestOutcome(status, program, referrer_id, name)
            continue
        contact = contacts.get((program.platform, request.person.user_id))
        window = windows.get(program.platform)
        check = (
            program.human_check
            and window is not None
            and now < at + window
            and not (contact and contact["blocked_at"] is not None)
        )
        if earlier is not None and earlier["state"] == "approved":
            check = False  # let in before (and left since): no new check
        values = {
            "referrer_id": referrer_id,
            "link_id": link_id,
            "state": "awaiting_check" if check else "approved",
            "requested_at": at,
            "check_until": at + window if check and window is not None else None,
            "decided_at": None if check else now,
        }
        if earlier is None:
            new_rows.append({"program_id": key[0], "user_id": key[1], **values})
            new_index[key] = index
        else:
            await db_requests.reopen_join_request(conn, key[0], key[1], values)
        status = RequestStatus.CHECK if check else RequestStatus.APPROVE
        outcomes[index] = JoinRequestOutcome(status, program, referrer_id, name)

    inserted = await db_requests.insert_join_requests(conn, new_rows)
    for key, index in new_index.items():
        if key not in inserted:  # another instance recorded it first (PostgreSQL)
            earlier_outcome = outcomes[index]
            if earlier_outcome is None:
                raise RuntimeError(f"join request {key} was recorded without an outcome")
            outcomes[index] = JoinRequestOutcome(
                RequestStatus.ALREADY,
                earlier_outcome.program,
                earlier_outcome.referrer_id,
                earlier_outcome.referrer_name,
            )
    return [outcome for outcome in outcomes if outcome is not None]
