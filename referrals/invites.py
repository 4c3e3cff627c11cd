"""Invite-use attribution: for platforms that never say which invite a member used.

Discord tells a bot that someone joined, and separately how many times each invite has
been used; it never says which invite that person used (platform-facts §8). This service
keeps each program's last-seen counters in the database and decides, for a group of joins
gathered over a short settle window, whether the counters' movement tells who brought them
— and otherwise records them as unattributed with the reason, never a guess:

- the joins seen must equal the sum of every counter's rise (our invites', invites made
  outside the bot, the vanity URL's, and what invites that vanished at their max uses could
  have carried), and exactly one of our readers' invites must carry all of it;
- a join with no counter rise at all (Discovery, OAuth2 ``guilds.join``) is never credited
  to someone else's concurrent use: the sums do not match, so nobody is credited;
- while the counters are not known (since a restart or a reconnect), nothing is credited;
- nor when the group is not *isolated*: the platform announces a join a little after its
  counter moved, so a reading may carry the rise of a join not yet announced, and a
  group's join may have moved a counter before the last reading. The adapter knows the
  times and says so; the sums alone would then credit one person's join to another's
  invite.

The adapter holds the per-destination lock around fetching the counters and calling
:meth:`InviteTracker.settle` (and around :meth:`resync` and the create/delete events), so
one settle sees one consistent baseline. Plain values in and out; nothing here knows
Discord.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from delivery.outbox import Priority, message
from referrals.attribution import AttributionService
from referrals.context import Engine
from referrals.links import link_event, link_from_row
from referrals.models import (
    JoinEvent,
    JoinOutcome,
    LeaveEvent,
    Link,
    Person,
    Program,
    Reason,
)
from referrals.programs import ProgramService, program_from_row
from storage import events as db_events
from storage import invites as db_invites
from storage import links as db_links
from storage import outbox as db_outbox
from storage import programs as db_programs

logger = logging.getLogger(__name__)

PRUNE_IDLE_AFTER = timedelta(days=90)


@dataclass(frozen=True, slots=True)
class InviteCount:
    """One invite as the platform lists it now."""

    code: str
    url: str
    uses: int
    max_uses: int = 0
    inviter_id: int | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every invite of a destination and its vanity URL's uses (None: it has none)."""

    invites: Sequence[InviteCount]
    vanity_uses: int | None = None


@dataclass(frozen=True, slots=True)
class Newcomer:
    """A member the platform announced: who, when they joined, how old their account is,
    whether they still wait in membership screening."""

    person: Person
    at: datetime
    account_created_at: datetime | None = None
    pending: bool = False
    event_key: str | None = None


@dataclass(frozen=True, slots=True)
class Baseline:
    """The counters last seen: code -> (uses, max uses, deleted since), and the vanity's."""

    uses: Mapping[str, tuple[int, int, bool]]
    vanity_uses: int | None
    known: bool  # False: never synced (a restart before the first sync)


@dataclass(frozen=True, slots=True)
class Decision:
    """Who a group of joins counts for: ``code`` of the one invite that carries them, or
    ``reason`` why nobody is credited."""

    code: str | None
    reason: Reason | None
    moved: Mapping[str, int] = field(default_factory=dict)


def decide(
    baseline: Baseline,
    snapshot: Snapshot,
    joins: int,
    ours: frozenset[str],
    *,
    stale: bool = False,
    screening: int = 0,
    isolated: bool = True,
) -> Decision:
    """The rule (pure, so tests can table it): credit ``joins`` only when they equal the sum
    of every counter's rise and exactly one of ``ours`` carries all of it, and the group is
    isolated (no join of it moved a counter before the baseline was read, no join outside
    it moved one since)."""
    if stale or not baseline.known:
        return Decision(None, Reason.STALE_CACHE)
    now = {invite.code: invite for invite in snapshot.invites}
    moved: dict[str, int] = {}
    vanished = 0
    for code, invite in now.items():
        before = baseline.uses.get(code)
        rise = invite.uses - (before[0] if before is not None else 0)
        if rise > 0:
            moved[code] = rise
        elif rise < 0:
            return Decision(None, Reason.STALE_CACHE, moved)  # a counter went back: not ours
    for code, (uses, max_uses, _deleted) in baseline.uses.items():
        if code in now:
            continue
        # Gone from the list: deleted, expired, or used up. One that reached its max uses
        # may have carried a join of this group; how many, only its max tells.
        if max_uses and uses < max_uses:
            vanished += max_uses - uses
    vanity = 0
    if snapshot.vanity_uses is not None and baseline.vanity_uses is not None:
        vanity = max(0, snapshot.vanity_uses - baseline.vanity_uses)
    total = sum(moved.values()) + vanity + vanished
    if screening:
        return Decision(None, Reason.SCREENING, moved)
    if not isolated:
        return Decision(None, Reason.AMBIGUOUS, moved)
    if total == 0:
        return Decision(None, Reason.NO_INVITE, moved)
    if vanished and not moved and not vanity and joins <= vanished:
        return Decision(None, Reason.INVITE_VANISHED, moved)
    if vanity and not moved and not vanished and joins == vanity:
        return Decision(None, Reason.VANITY, moved)
    if joins != total or len(moved) != 1 or vanity or vanished:
        return Decision(None, Reason.AMBIGUOUS, moved)
    (code,) = moved
    if code not in ours:
        return Decision(None, Reason.FOREIGN_INVITE, moved)
    return Decision(code, None, moved)


@dataclass
class ResyncReport:
    joined_while_away: int = 0
    left_while_away: int = 0


class InviteTracker:
    """Counters per program, the settle rule, resyncs and idle-invite pruning."""

    def __init__(
        self, engine: Engine, programs: ProgramService, attribution: AttributionService
    ) -> None:
        self._engine = engine
        self._programs = programs
        self._attribution = attribution

    async def baseline(self, program_id: int) -> Baseline:
        async with self._engine.db.read() as conn:
            rows = await db_invites.invite_uses_of(conn, program_id)
            sync = await db_invites.sync_state(conn, program_id)
        return Baseline(
            {
                row["code"]: (row["uses"], row["max_uses"], row["deleted_at"] is not None)
                for row in rows
            },
            sync["vanity_uses"] if sync else None,
            sync is not None,
        )

    async def settle(
        self,
        program_id: int,
        newcomers: Sequence[Newcomer],
        snapshot: Snapshot,
        *,
        stale: bool = False,
        isolated: bool = True,
    ) -> list[JoinOutcome]:
        """Decide one settle window's joins against the counters now, record them, and make
        the counters the new baseline. Returns one outcome per newcomer."""
        baseline = await self.baseline(program_id)
        urls = {invite.code: invite.url for invite in snapshot.invites}
        async with self._engine.db.read() as conn:
            live = await db_invites.live_links_by_url(conn, program_id, sorted(urls.values()))
        ours = frozenset(code for code, url in urls.items() if url in live)
        decision = decide(
            baseline,
            snapshot,
            len(newcomers),
            ours,
            stale=stale,
            screening=sum(1 for n in newcomers if n.pending),
            isolated=isolated,
        )
        url = urls[decision.code] if decision.code else None
        events = [
            JoinEvent(
                program_id,
                n.person,
                n.at,
                link=url,
                event_key=n.event_key,
                account_created_at=n.account_created_at,
                unattributed_reason=decision.reason,
            )
            for n in newcomers
        ]
        if decision.reason is not None:
            logger.info(
                "program %s: %d join(s) unattributed (%s; counters moved %s)",
                program_id,
                len(newcomers),
                decision.reason,
                dict(decision.moved),
            )
        # The joins first, then the new baseline: a crash between the two leaves the old
        # baseline, against which the next settle finds too much movement and credits
        # nobody (and the joins' event keys make their replay change nothing).
        outcomes = await self._attribution.record_joins(events) if events else []
        await self._store(program_id, snapshot)
        return outcomes

    async def resync(
        self,
        program_id: int,
        snapshot: Snapshot,
        members: Mapping[int, Newcomer] | None = None,
    ) -> ResyncReport:
        """Take the counters as the new baseline (READY, a reconnect, setup). With the
        destination's whole member list, also catch up on what happened while the bot was
        away: members the engine does not know who joined since the program was set up
        are recorded as unattributed (``while_away``), members the engine counted in who
        are gone have left.

        "Since the program was set up", not "since the last sync": a join that came in
        while a settle was storing its counters is older than that sync, and would be
        lost if the process stopped before its own window settled. Joins recorded
        already are members the engine knows (and their event keys make a repeat change
        nothing)."""
        report = ResyncReport()
        now = self._engine.clock.now()
        async with self._engine.db.read() as conn:
            sync = await db_invites.sync_state(conn, program_id)
            believed = await db_invites.current_member_ids(conn, program_id)
        await self._store(program_id, snapshot)
        if members is None or sync is None:
            return report  # the first sync: everyone there was there before us
        since = (await self._programs.get_program(program_id)).created_at
        away = [
            JoinEvent(
                program_id,
                n.person,
                n.at,
                event_key=n.event_key,
                account_created_at=n.account_created_at,
                unattributed_reason=Reason.WHILE_AWAY,
            )
            for user_id, n in sorted(members.items())
            if user_id not in believed and n.at >= since
        ]
        if away:
            await self._attribution.record_joins(away)
        gone = sorted(believed - set(members))
        for user_id in gone:
            await self._attribution.record_leave(LeaveEvent(program_id, user_id, now))
        report.joined_while_away, report.left_while_away = len(away), len(gone)
        return report

    async def invite_created(self, program_id: int, invite: InviteCount) -> None:
        async with self._engine.db.write() as conn:
            await db_invites.upsert_invite_use(
                conn,
                program_id,
                {
                    "code": invite.code,
                    "uses": invite.uses,
                    "max_uses": invite.max_uses,
                    "inviter_id": invite.inviter_id,
                },
                self._engine.clock.now(),
            )

    async def invite_deleted(self, program_id: int, code: str, url: str) -> Link | None:
        """An invite was deleted on the platform. Its counter stays until the next settle
        (it may carry a join still on its way); a reader's invite deleted by someone else
        is revoked in the engine and its reader is told. Returns that link."""
        now = self._engine.clock.now()
        async with self._engine.db.write() as conn:
            await db_invites.mark_invite_deleted(conn, program_id, code, now)
            live = await db_invites.live_links_by_url(conn, program_id, [url])
            row = live.get(url)
            if row is None:
                return None
            await self._revoke(conn, row, now, "deleted")
        return _link(row)

    async def prune_idle(
        self, program: Program, *, idle: timedelta = PRUNE_IDLE_AFTER, limit: int = 25
    ) -> list[Link]:
        """Free room under the platform's invite cap: revoke up to ``limit`` invites of
        readers who brought nobody for ``idle`` (the oldest first), on the platform and in
        the engine, and tell each reader (a new /invite gives them one again)."""
        now = self._engine.clock.now()
        async with self._engine.db.write() as conn:
            rows = await db_invites.idle_links(conn, program.id, now - idle, limit)
            for row in rows:
                await self._revoke(conn, row, now, "pruned")
        port = self._engine.port(program.platform)
        for row in rows:
            outcome = await port.revoke_invite(program.destination, row["url"])
            logger.info("pruned idle invite %s: %s", row["code"], outcome)
        return [_link(row) for row in rows]

    async def _revoke(
        self, conn: AsyncConnection, row: Mapping[Any, Any], now: datetime, why: str
    ) -> None:
        """Revoke a reader's link in the engine and tell them (in ``conn``'s transaction)."""
        if not await db_links.revoke_link(conn, row["id"], now):
            return
        program_id, referrer_id = row["program_id"], row["referrer_id"]
        await db_events.insert_events(
            conn,
            [link_event(program_id, referrer_id, f"link.{why}", now, row["code"], row["label"])],
        )
        program_row = await db_programs.program_by_id(conn, program_id)
        if program_row is None:
            return
        program = program_from_row(program_row)
        await db_outbox.enqueue(
            conn,
            [
                message(
                    program.platform,
                    "user",
                    referrer_id,
                    "invite_revoked",
                    {"program_title": program.title, "why": why, "label": row["label"]},
                    priority=Priority.NOTIFY,
                    now=now,
                    program_id=program_id,
                    key=f"invite-revoked:{row['id']}",
                )
            ],
        )

    async def _store(self, program_id: int, snapshot: Snapshot) -> None:
        async with self._engine.db.write() as conn:
            await db_invites.replace_invite_uses(
                conn,
                program_id,
                [
                    {
                        "code": i.code,
                        "uses": i.uses,
                        "max_uses": i.max_uses,
                        "inviter_id": i.inviter_id,
                    }
                    for i in snapshot.invites
                ],
                snapshot.vanity_uses,
                self._engine.clock.now(),
            )


def _link(row: Mapping[Any, Any]) -> Link:
    return link_from_row(row)
