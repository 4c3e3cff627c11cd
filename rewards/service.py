"""Milestone rewards: the rules managers set, the grants readers earn, and their delivery.

The milestone job consumes the state machine's change records (``count_changes``, consumer
``"milestones"``): each record moves the reader's *rewardable* total (counted, less
referrals confirmed beyond the program's reward cap), and every rung a reader's highest
rewardable total reached becomes a grant, unique per (program, reader, source, source id,
occurrence). Marking the records, the progress and the grants are one transaction, so a
restart resumes where it stopped and a second instance on the same PostgreSQL skips the
records the first one holds.

Delivery takes due grants (leased, so two workers never take one), and in one transaction
assigns a coupon code (a code belongs to one grant by a unique index), marks the grant
delivering and queues its outbox row. When the outbox settles the row, the outcome is
written onto the grant in the outbox's own transaction (:meth:`RewardService.settled`).
A one-time chat link is minted on the platform first and stored on the grant before its
message is queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from delivery.actions import Button, Post, buttons_of
from delivery.outbox import Priority, Settled, message
from delivery.port import (
    AccessChat,
    Delivered,
    InviteCreated,
    RetryAfter,
    RolePort,
    Unreachable,
    UnreachableReason,
)
from referrals.context import Engine
from referrals.models import NotAllowed, PlatformUnavailable, Program, ProgramNotFound
from referrals.programs import program_from_row
from referrals.text import clean_name
from rewards import coupons
from rewards.models import (
    DECIDABLE,
    RECEIVED,
    Approval,
    BadMilestone,
    CapPeriod,
    ClaimDecision,
    ClaimOutcome,
    DeliverReport,
    EvaluateReport,
    Grant,
    GrantNotFound,
    GrantState,
    ImportReport,
    Milestone,
    MilestoneNotFound,
    NotDecidable,
    PoolStock,
    Preview,
    PrizeClaim,
    Progress,
    RewardKind,
)
from rewards.templates import check_template, render_template
from storage import boards as db_boards
from storage import counts as db_counts
from storage import events as db_events
from storage import outbox as db_outbox
from storage import programs as db_programs
from storage import rewards as db
from storage.database import Database

logger = logging.getLogger(__name__)

MAX_TITLE = 64
MAX_COUNT = 100_000
MAX_QUESTION = 300
MAX_ANSWER = 1000
ACCESS_LINK_LIFE = timedelta(days=7)
LEASE = timedelta(minutes=2)
RETRY = timedelta(minutes=5)
FLOW_LIFE = timedelta(hours=24)
LOW_STOCK_CODES = 25
LOW_STOCK_SHARE = 0.10
KEY_PREFIX = "grant:"
# Why a season prize counts as unreachable (on the grant, for managers and exports).
CLAIM_EXPIRED = "claim_expired: not claimed within the claim window"
# A prize claim that is no longer open (a second press, a prize on its way or sent).
ALREADY_STATES = frozenset({GrantState.UNLOCKED, GrantState.DELIVERING, *RECEIVED})
PENDING_STATES = frozenset(
    {GrantState.AWAITING_APPROVAL, GrantState.WAITING_STOCK, GrantState.BELOW_RUNG}
)
WAITING = (GrantState.UNDELIVERABLE, GrantState.UNCLAIMED)


def milestone_from_row(row: Mapping[Any, Any]) -> Milestone:
    return Milestone(**{f.name: row[f.name] for f in fields(Milestone)})


def grant_from_row(row: Mapping[Any, Any], code: str | None = None) -> Grant:
    values: dict[str, Any] = {f.name: row.get(f.name) for f in fields(Grant) if f.name != "code"}
    return Grant(code=code, **values)


def period_start(at: datetime, timezone: str, period: str) -> datetime:
    """The start of the reward-cap period holding ``at``, in the program's timezone."""
    local = at.astimezone(ZoneInfo(timezone))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == CapPeriod.WEEK:
        day -= timedelta(days=day.weekday())
    elif period == CapPeriod.MONTH:
        day = day.replace(day=1)
    else:
        day = day.replace(month=1, day=1)
    # Re-attach the zone at that wall time (midnight exists on every DST change we know).
    return day.replace(tzinfo=ZoneInfo(timezone)).astimezone(at.tzinfo)


class RewardService:
    """Milestones, coupon pools, grants and their delivery, the reader's rewards and the
    managers' queues. Plain values in and out; platform calls through the engine's ports."""

    def __init__(self, engine: Engine, *, cache_seconds: float = 5.0) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._friend_rewards: dict[int, tuple[float, bool]] = {}

    @property
    def _db(self) -> Database:
        return self._engine.db

    def _now(self) -> datetime:
        return self._engine.clock.now()

    # --- programs and managers ------------------------------------------------------------

    async def _program(self, program_id: int) -> Program:
        async with self._db.read() as conn:
            row = await db_programs.program_by_id(conn, program_id)
        if row is None:
            raise ProgramNotFound(f"program {program_id} does not exist")
        return program_from_row(row)

    async def _managed(self, program_id: int, actor_id: int | None) -> Program:
        program = await self._program(program_id)
        await self._engine.require_manager(program, actor_id)
        return program

    async def program(self, program_id: int) -> Program:
        """A program (``ProgramNotFound`` if it is gone)."""
        return await self._program(program_id)

    async def managed(self, program_id: int, actor_id: int | None) -> Program:
        """The program, if ``actor_id`` manages it (``NotAllowed`` otherwise)."""
        return await self._managed(program_id, actor_id)

    # --- milestones -------------------------------------------------------------------------

    async def milestones(self, program_id: int) -> list[Milestone]:
        """The program's live rules (paused ones too), friend reward first, then by count."""
        async with self._db.read() as conn:
            rows = await db.milestones_of(conn, [program_id])
        found = [milestone_from_row(row) for row in rows]
        return sorted(found, key=lambda m: (m.role != "friend", m.first_rung(), m.id))

    async def has_friend_reward(self, program_id: int) -> bool:
        """Whether the program gives the referred friend a reward (kept for a few seconds:
        every join request asks)."""
        now = time.monotonic()
        hit = self._friend_rewards.get(program_id)
        if hit is not None and now - hit[0] < self._cache_seconds:
            return hit[1]
        rules = await self.milestones(program_id)
        found = any(rule.role == "friend" and not rule.paused for rule in rules)
        self._friend_rewards[program_id] = (now, found)
        return found

    async def milestone(self, milestone_id: int) -> Milestone:
        async with self._db.read() as conn:
            row = await db.milestone_by_id(conn, milestone_id)
        if row is None or row["removed_at"] is not None:
            raise MilestoneNotFound(f"milestone {milestone_id} does not exist")
        return milestone_from_row(row)

    async def _check_rule(
        self, program: Program, values: dict[str, Any], *, existing: Milestone | None = None
    ) -> dict[str, Any]:
        """Validate and normalise a rule's settings (merged over ``existing``)."""
        merged: dict[str, Any] = {}
        if existing is not None:
            merged = {f.name: getattr(existing, f.name) for f in fields(Milestone)}
        merged.update(values)
        role = merged.get("role") or "milestone"
        if role not in ("milestone", "friend", "prize"):
            raise BadMilestone("role", f"unknown rule role {role!r}")
        clean: dict[str, Any] = {"role": role}
        title = clean_name(merged.get("title") or "", MAX_TITLE)
        if not title:
            raise BadMilestone("title", "a milestone needs a title", limit=MAX_TITLE)
        clean["title"] = title
        count, step = merged.get("count"), merged.get("step")
        if role == "milestone":
            if step is not None:
                if (
                    isinstance(step, bool)
                    or not isinstance(step, int)
                    or not 1 <= step <= MAX_COUNT
                ):
                    raise BadMilestone("step", "the step must be 1 or more", high=MAX_COUNT)
                count = None
            elif isinstance(count, bool) or not isinstance(count, int):
                raise BadMilestone("count", "the count must be a whole number", high=MAX_COUNT)
            elif not 1 <= count <= MAX_COUNT:
                raise BadMilestone("count", "the count must be 1 or more", high=MAX_COUNT)
        else:
            count = step = None
        clean["count"], clean["step"] = count, step
        kind = merged.get("reward_kind")
        if kind not in tuple(RewardKind):
            raise BadMilestone("kind", f"unknown reward kind {kind!r}")
        clean["reward_kind"] = str(kind)
        text = merged.get("message")
        if kind == RewardKind.MESSAGE and not text:
            raise BadMilestone("template", "a message reward needs its text")
        clean["message"] = check_template(text) if text else None
        clean["pool_id"] = None
        if kind == RewardKind.COUPON:
            pool_id = merged.get("pool_id")
            if pool_id is None:
                raise BadMilestone("pool", "a coupon reward needs a pool of codes")
            async with self._db.read() as conn:
                pool = await db.pool_by_id(conn, int(pool_id))
            if pool is None or pool["program_id"] != program.id:
                raise BadMilestone("pool", "no such pool in this program")
            clean["pool_id"] = int(pool_id)
        clean["chat_id"] = clean["chat_title"] = None
        if kind == RewardKind.CHAT:
            chat_id = merged.get("chat_id")
            if not isinstance(chat_id, int) or isinstance(chat_id, bool):
                raise BadMilestone("chat", "a chat reward needs the chat's id")
            access = await self.check_reward_chat(program, chat_id)
            clean["chat_id"], clean["chat_title"] = chat_id, access.title
        question = merged.get("question")
        clean["question"] = None
        if kind == RewardKind.MANUAL:
            question = clean_name(question or "", MAX_QUESTION)
            if not question:
                raise BadMilestone("question", "ask the reader something (an address, a size)")
            clean["question"] = question
        clean["role_id"] = None
        if kind == RewardKind.ROLE:
            if program.platform != "discord":
                raise BadMilestone("platform", "roles are rewards on Discord only")
            role_id = merged.get("role_id")
            if not isinstance(role_id, int) or isinstance(role_id, bool):
                raise BadMilestone("role", "a role reward needs the role")
            clean["role_id"] = role_id
        approval = merged.get("approval") or Approval.AUTO
        if approval not in tuple(Approval):
            raise BadMilestone("approval", "approval is auto, manual or semi")
        clean["approval"] = str(approval)
        cost = merged.get("cost_cents")
        if cost is not None and (
            isinstance(cost, bool) or not isinstance(cost, int) or not 0 <= cost <= 10**9
        ):
            raise BadMilestone("cost", "the cost is an amount such as 2.50")
        clean["cost_cents"] = cost
        return clean

    async def check_reward_chat(self, program: Program, chat_id: int) -> AccessChat:
        """The private chat a reward gives access to, if the bot is an admin there with the
        right to invite; :class:`BadMilestone` (``chat``) otherwise."""
        if chat_id == program.destination_id:
            raise BadMilestone("chat", "the reward chat must be another chat than the program's")
        result = await self._engine.port(program.platform).access_chat(chat_id)
        if isinstance(result, AccessChat):
            if not result.can_invite:
                raise BadMilestone(
                    "chat", "make me an admin of that chat with the right to invite users"
                )
            return result
        if isinstance(result, RetryAfter):
            raise PlatformUnavailable("the platform asked to wait", outcome=result)
        raise BadMilestone("chat", "I am not in that chat: add me as an admin first")

    async def preview(
        self,
        program_id: int,
        actor_id: int | None,
        *,
        count: int | None = None,
        step: int | None = None,
        pool_id: int | None = None,
        milestone_id: int | None = None,
    ) -> Preview:
        """How many readers, grants and codes saving a milestone with this count (or step)
        would grant at once (an edit: beyond the grants it has)."""
        await self._managed(program_id, actor_id)
        lowest = step if step is not None else count
        if lowest is None:
            return Preview(0, 0, 0, None)
        probe = Milestone(
            id=milestone_id or 0,
            program_id=program_id,
            role="milestone",
            count=count,
            step=step,
            title="",
            reward_kind="message",
            message=None,
            pool_id=pool_id,
            chat_id=None,
            chat_title=None,
            question=None,
            role_id=None,
            approval="auto",
            cost_cents=None,
            paused=False,
            created_at=self._now(),
        )
        async with self._db.read() as conn:
            readers = await db.progress_of_program(conn, program_id, at_least=lowest)
            existing = (
                await db.existing_grant_keys(conn, program_id, "milestone", milestone_id)
                if milestone_id
                else set()
            )
            free = None
            if pool_id is not None:
                free = (await db.pool_stock(conn, [pool_id])).get(pool_id, (0, 0))[1]
        grants = 0
        touched = 0
        for row in readers:
            owed = [k for k in probe.owed(row["highest"]) if (row["reader_id"], k) not in existing]
            if owed:
                touched += 1
                grants += len(owed)
        return Preview(touched, grants, grants if pool_id is not None else 0, free)

    async def preview_leave_policy(
        self, program_id: int, actor_id: int | None, policy: str
    ) -> Preview:
        """What changing the program's leave policy to ``policy`` grants at once: counting
        leavers again (``keep``) raises the totals of readers whose friends left (a change
        to ``subtract`` lowers them, which never grants)."""
        program = await self._managed(program_id, actor_id)
        if policy != "keep" or program.leave_policy == "keep":
            return Preview(0, 0, 0, None)
        async with self._db.read() as conn:
            readers = await db.readers_with_leavers(conn, program_id)
            rules = [
                milestone_from_row(r)
                for r in await db.milestones_of(conn, [program_id], live_only=True)
                if r["role"] == "milestone"
            ]
            existing = {
                rule.id: await db.existing_grant_keys(conn, program_id, "milestone", rule.id)
                for rule in rules
            }
            pools = sorted({rule.pool_id for rule in rules if rule.pool_id is not None})
            stock = await db.pool_stock(conn, pools)
        touched = grants = codes = 0
        for row in readers:
            after = int(row["confirmed"])
            delta = after - int(row["counted"])
            # as the milestone job moves a recount: clamped to the new counted total
            rewardable = max(0, min(after, int(row["rewardable"]) + delta))
            highest = max(int(row["highest"]), rewardable)
            owed = 0
            for rule in rules:
                new = [
                    k for k in rule.owed(highest) if (row["reader_id"], k) not in existing[rule.id]
                ]
                owed += len(new)
                if rule.reward_kind == RewardKind.COUPON:
                    codes += len(new)
            if owed:
                touched += 1
                grants += owed
        free = sum(f for _, f in stock.values()) if pools else None
        return Preview(touched, grants, codes, free)

    async def add_milestone(
        self, program_id: int, actor_id: int | None, **values: Any
    ) -> tuple[Milestone, int]:
        """Save a milestone (or the friend reward: ``role="friend"``) and grant it at once to
        every reader who already reached it; returns it and how many grants that made."""
        program = await self._managed(program_id, actor_id)
        if not program.rewards_allowed:
            # Discord's developer policy: rewards for joins only after the manager's opt-in.
            raise BadMilestone("policy", "turn rewards on for this Discord program first")
        clean = await self._check_rule(program, dict(values))
        now = self._now()
        async with self._db.write() as conn:
            if clean["role"] == "friend":
                for row in await db.milestones_of(conn, [program_id]):
                    if row["role"] == "friend":
                        await db.update_milestone(conn, row["id"], {"removed_at": now})
            milestone_id = await db.insert_milestone(
                conn,
                {
                    **clean,
                    "program_id": program_id,
                    "created_by": actor_id,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            saved = await db.milestone_by_id(conn, milestone_id)
            assert saved is not None
            milestone = milestone_from_row(saved)
            granted = await self._grant_everyone(conn, program, milestone, now)
            await _event(
                conn,
                program_id=program_id,
                user_id=None,
                actor_id=actor_id,
                kind="milestone_added",
                at=now,
                data={"milestone_id": milestone_id, "title": milestone.title, "grants": granted},
            )
        return milestone, granted

    async def edit_milestone(
        self, milestone_id: int, actor_id: int | None, **changes: Any
    ) -> tuple[Milestone, int]:
        """Change a milestone. Grants made stay; a lower count grants at once to readers who
        now reach it, and an occurrence a reader had is never granted again."""
        existing = await self.milestone(milestone_id)
        program = await self._managed(existing.program_id, actor_id)
        clean = await self._check_rule(program, dict(changes), existing=existing)
        now = self._now()
        async with self._db.write() as conn:
            await db.update_milestone(conn, milestone_id, {**clean, "updated_at": now})
            row = await db.milestone_by_id(conn, milestone_id)
            assert row is not None
            milestone = milestone_from_row(row)
            granted = (
                0
                if milestone.paused
                else await self._grant_everyone(conn, program, milestone, now)
            )
            await _event(
                conn,
                program_id=program.id,
                user_id=None,
                actor_id=actor_id,
                kind="milestone_edited",
                at=now,
                data={"milestone_id": milestone_id, "changes": sorted(changes), "grants": granted},
            )
        return milestone, granted

    async def set_milestone_paused(
        self, milestone_id: int, actor_id: int | None, paused: bool
    ) -> Milestone:
        """A paused milestone grants nothing new; grants made are delivered as before.
        Resuming grants to readers who reached it meanwhile."""
        existing = await self.milestone(milestone_id)
        program = await self._managed(existing.program_id, actor_id)
        now = self._now()
        async with self._db.write() as conn:
            await db.update_milestone(conn, milestone_id, {"paused": paused, "updated_at": now})
            row = await db.milestone_by_id(conn, milestone_id)
            assert row is not None
            milestone = milestone_from_row(row)
            if not paused:
                await self._grant_everyone(conn, program, milestone, now)
            await _event(
                conn,
                program_id=program.id,
                user_id=None,
                actor_id=actor_id,
                kind="milestone_paused" if paused else "milestone_resumed",
                at=now,
                data={"milestone_id": milestone_id},
            )
        return milestone

    async def remove_milestone(self, milestone_id: int, actor_id: int | None) -> Milestone:
        """Remove a milestone: nothing new is granted; what was granted stays."""
        existing = await self.milestone(milestone_id)
        await self._managed(existing.program_id, actor_id)
        now = self._now()
        async with self._db.write() as conn:
            await db.update_milestone(conn, milestone_id, {"removed_at": now, "updated_at": now})
            await _event(
                conn,
                program_id=existing.program_id,
                user_id=None,
                actor_id=actor_id,
                kind="milestone_removed",
                at=now,
                data={"milestone_id": milestone_id, "title": existing.title},
            )
        return existing

    async def _grant_everyone(
        self, conn: Any, program: Program, milestone: Milestone, now: datetime
    ) -> int:
        """Grant a (new or lowered) milestone to every reader who already reached it."""
        if milestone.role != "milestone" or milestone.paused:
            return 0
        readers = await db.progress_of_program(conn, program.id, at_least=milestone.first_rung())
        if not readers:
            return 0
        held = (
            await db.readers_with_held(conn, program.id, [r["reader_id"] for r in readers])
            if milestone.approval == Approval.SEMI
            else set()
        )
        rows = []
        for reader in readers:
            for occurrence in milestone.owed(reader["highest"]):
                rows.append(
                    self._grant_row(program, milestone, reader["reader_id"], occurrence, held, now)
                )
        return len(await db.insert_grants(conn, rows))

    @staticmethod
    def _grant_row(
        program: Program,
        milestone: Milestone,
        reader_id: int,
        occurrence: int,
        held: set[int],
        now: datetime,
    ) -> dict[str, Any]:
        needs_approval = milestone.approval == Approval.MANUAL or (
            milestone.approval == Approval.SEMI and reader_id in held
        )
        return {
            "program_id": program.id,
            "reader_id": reader_id,
            "source": milestone.role,
            "source_id": milestone.id,
            "occurrence": occurrence,
            "milestone_id": milestone.id,
            "rung": milestone.rung(occurrence) if milestone.role == "milestone" else None,
            "state": GrantState.AWAITING_APPROVAL if needs_approval else GrantState.UNLOCKED,
            "reward_kind": milestone.reward_kind,
            "title": milestone.title,
            "cost_cents": milestone.cost_cents,
            "held": reader_id in held,
            "unlocked_at": now,
            "updated_at": now,
        }

    async def grant_prizes(
        self,
        program_id: int,
        rule_id: int,
        season_id: int,
        winners: Sequence[tuple[int, int]],
        *,
        claim_until: datetime | None = None,
    ) -> list[int]:
        """Grant a season's prize (the rule ``rule_id``, role ``prize``) to its winners:
        (reader, place) pairs. Unique per (program, reader, "prize", season, place), so
        closing a season twice grants nothing twice. Returns the new grants' ids; they
        are delivered like any other. A winner the bot cannot message gets theirs when they
        open the bot (the announcement's claim button) before ``claim_until``; after it,
        :meth:`expire_prize_claims` marks it unreachable."""
        now = self._now()
        program = await self._program(program_id)
        if not program.rewards_allowed:
            # Discord's developer policy: season prizes only while the manager's opt-in
            # stands (a prize made while it did is not paid after it was withdrawn).
            logger.info(
                "program %s: season %s closed with rewards off; no prizes", program_id, season_id
            )
            return []
        async with self._db.write() as conn:
            row = await db.milestone_by_id(conn, rule_id)
            if row is None or row["program_id"] != program_id or row["role"] != "prize":
                raise MilestoneNotFound(f"prize rule {rule_id} does not exist")
            rule = milestone_from_row(row)
            rows = []
            for reader, place in winners:
                grant = self._grant_row(program, rule, reader, place, set(), now)
                grant["source_id"] = season_id
                grant["claim_expires_at"] = claim_until
                rows.append(grant)
            return await db.insert_grants(conn, rows)

    async def prizes(self, program_id: int) -> list[Milestone]:
        """The program's live prize rules (what a season's winners may get), oldest first."""
        return sorted(
            (m for m in await self.milestones(program_id) if m.role == "prize" and not m.paused),
            key=lambda m: m.id,
        )

    async def claim_prize(self, platform: str, user_id: int, season_id: int) -> PrizeClaim:
        """The person pressed a season's claim button (which opened the bot): their prize
        that waited for them is sent now, once. Anyone else, a second press, or a claim after
        the window changes nothing and gets an answer that says why."""
        now = self._now()
        async with self._db.write() as conn:
            row = await db.prize_grant(conn, platform, season_id, user_id)
            if row is None:
                found = await db.has_prize_grants(conn, platform, season_id)
                return PrizeClaim(ClaimOutcome.NOT_WINNER if found else ClaimOutcome.NO_PRIZE)
            title, place = row["title"], row["occurrence"]
            state = row["state"]
            expires = row["claim_expires_at"]
            open_ = expires is None or expires > now
            if state == GrantState.UNREACHABLE or (state in WAITING and not open_):
                return PrizeClaim(ClaimOutcome.EXPIRED, title, place)
            if state in WAITING:
                changed = await db.set_grants(
                    conn,
                    [row["id"]],
                    {"state": GrantState.UNLOCKED, "next_attempt_at": None, "updated_at": now},
                    expect=list(WAITING),
                )
                if changed:
                    await _event(
                        conn,
                        program_id=row["program_id"],
                        user_id=user_id,
                        actor_id=user_id,
                        kind="prize_claimed",
                        at=now,
                        data={"grant_id": row["id"], "season_id": season_id},
                    )
                    return PrizeClaim(ClaimOutcome.CLAIMED, title, place)
                return PrizeClaim(ClaimOutcome.ALREADY, title, place)
            if state in PENDING_STATES:
                return PrizeClaim(ClaimOutcome.PENDING, title, place)
            if state == GrantState.REJECTED:
                return PrizeClaim(ClaimOutcome.REJECTED, title, place)
            return PrizeClaim(ClaimOutcome.ALREADY, title, place)

    async def expire_prize_claims(self, *, limit: int = 500) -> int:
        """Season prizes still waiting for their winner past the claim window count as
        unreachable; each program's managers are told which, in the same transaction.
        Safe to run on several instances at once: each grant changes once. Returns how
        many expired."""
        now = self._now()
        async with self._db.write() as conn:
            rows = await db.expire_prize_claims(conn, now, CLAIM_EXPIRED, limit)
            if not rows:
                return 0
            await db_events.insert_events(
                conn,
                [
                    {
                        "program_id": row["program_id"],
                        "user_id": row["reader_id"],
                        "actor_id": None,
                        "kind": "prize_unclaimed",
                        "at": now,
                        "data": {"grant_id": row["id"], "season_id": row["source_id"]},
                    }
                    for row in rows
                ],
            )
            await db_outbox.enqueue(conn, await self._unclaimed_notices(conn, rows, now))
        return len(rows)

    async def _unclaimed_notices(
        self, conn: Any, rows: Sequence[Mapping[Any, Any]], now: datetime
    ) -> list[dict[str, Any]]:
        """One message per program and season to its managers: which prizes expired."""
        by_season: dict[tuple[int, int], list[Mapping[Any, Any]]] = defaultdict(list)
        for row in rows:
            by_season[(row["program_id"], row["source_id"])].append(row)
        program_rows = await db_programs.programs_by_ids(conn, sorted({p for p, _ in by_season}))
        seasons = await db_boards.season_names(conn, sorted({s for _, s in by_season}))
        notices = []
        for (program_id, season_id), expired in sorted(by_season.items()):
            if program_id not in program_rows:
                continue
            program = program_from_row(program_rows[program_id])
            names = await db_boards.names_of(
                conn, program_id, [r["reader_id"] for r in expired if r["reader_id"]]
            )
            winners = [
                {
                    "place": r["occurrence"],
                    "name": names.get(r["reader_id"], ("", 0))[0] if r["reader_id"] else "",
                    "number": names.get(r["reader_id"], ("", 0))[1] if r["reader_id"] else 0,
                    "title": r["title"],
                }
                for r in sorted(expired, key=lambda r: r["occurrence"])
            ]
            for manager in _managers(program, None):
                notices.append(
                    message(
                        program.platform,
                        "user",
                        manager,
                        "season_prizes_unclaimed",
                        {
                            "program": program.title,
                            "season": seasons.get(season_id, ""),
                            "season_id": season_id,
                            "winners": winners,
                        },
                        priority=Priority.NOTIFY,
                        now=now,
                        program_id=program.id,
                        locale=program.locale,
                        key=f"prizes_unclaimed:{season_id}:{manager}:{expired[0]['id']}",
                    )
                )
        return notices

    # --- coupon pools -----------------------------------------------------------------------

    async def pools(self, program_id: int) -> list[PoolStock]:
        async with self._db.read() as conn:
            rows = await db.pools_of(conn, program_id)
            stock = await db.pool_stock(conn, [row["id"] for row in rows])
        return [PoolStock(row["id"], row["name"], *stock.get(row["id"], (0, 0))) for row in rows]

    async def create_pool(self, program_id: int, actor_id: int | None, name: str) -> PoolStock:
        await self._managed(program_id, actor_id)
        clean = clean_name(name or "", 64) or "codes"
        async with self._db.write() as conn:
            pool_id = await db.insert_pool(conn, program_id, clean, self._now())
        return PoolStock(pool_id, clean, 0, 0)

    async def import_codes(
        self,
        program_id: int,
        actor_id: int | None,
        filename: str,
        content: bytes,
        *,
        pool_id: int | None = None,
        pool_name: str | None = None,
    ) -> ImportReport:
        """Import a coupon file into a pool (a new one when ``pool_id`` is None). The file is
        parsed whole first; the codes go in in one transaction, or none do. Grants that
        waited for codes are queued again."""
        await self._managed(program_id, actor_id)
        # off the event loop: a file of 200,000 codes takes a while to check
        parsed = await asyncio.to_thread(coupons.parse_coupon_file, filename, content)
        now = self._now()
        async with self._db.write() as conn:
            if pool_id is None:
                pool_id = await db.insert_pool(
                    conn, program_id, clean_name(pool_name or filename, 64) or "codes", now
                )
            else:
                pool = await db.pool_by_id(conn, pool_id)
                if pool is None or pool["program_id"] != program_id:
                    raise BadMilestone("pool", "no such pool in this program")
            present = await db.existing_codes(conn, pool_id, parsed.codes)
            fresh = [code for code in parsed.codes if code not in present]
            added = await db.add_codes(conn, pool_id, fresh, now)
            total, free = (await db.pool_stock(conn, [pool_id]))[pool_id]
            if free > _low_threshold(total):
                await db.set_pool_alerts(conn, pool_id, low_alerted_at=None)
            if free > 0:
                await db.set_pool_alerts(conn, pool_id, empty_alerted_at=None)
                waiting = await db.grants_waiting_for_pool(conn, pool_id)
                await db.set_grants(
                    conn,
                    waiting,
                    {"state": GrantState.UNLOCKED, "next_attempt_at": None, "updated_at": now},
                    expect=[GrantState.WAITING_STOCK],
                )
            await _event(
                conn,
                program_id=program_id,
                user_id=None,
                actor_id=actor_id,
                kind="codes_imported",
                at=now,
                data={"pool_id": pool_id, "added": added},
            )
        return ImportReport(
            pool_id=pool_id,
            added=added,
            blank=parsed.blank,
            duplicate_in_file=parsed.duplicate_in_file,
            already_in_pool=len(parsed.codes) - len(fresh) + (len(fresh) - added),
            too_long=parsed.too_long,
            free=free,
        )

    # --- the milestone job ----------------------------------------------------------------

    async def evaluate(self, *, limit: int = 2000, rounds: int = 50) -> EvaluateReport:
        """Consume change records until none are left (at most ``rounds`` batches of
        ``limit``): move each reader's rewardable total and grant every rung reached."""
        report = EvaluateReport()
        for _ in range(rounds):
            batch = await self._evaluate_batch(limit)
            report.changes += batch.changes
            report.readers += batch.readers
            report.grants += batch.grants
            if batch.changes < limit:
                break
        return report

    async def _evaluate_batch(self, limit: int) -> EvaluateReport:
        now = self._now()
        report = EvaluateReport()
        async with self._db.write() as conn:
            changes = await db_counts.claim_count_changes(conn, "milestones", now, limit)
            if not changes:
                return report
            report.changes = len(changes)
            program_ids = sorted({c["program_id"] for c in changes})
            program_rows = await db_programs.programs_by_ids(conn, program_ids)
            programs = {pid: program_from_row(row) for pid, row in program_rows.items()}
            rules: dict[int, list[Milestone]] = defaultdict(list)
            for row in await db.milestones_of(conn, program_ids, live_only=True):
                rules[row["program_id"]].append(milestone_from_row(row))
            keys = sorted({(c["program_id"], c["reader_id"]) for c in changes})
            stored = await db.progress_by_keys(conn, keys, lock=True, now=now)
            progress = {
                key: [stored[key]["rewardable"], stored[key]["highest"]]
                if key in stored
                else [0, 0]
                for key in keys
            }
            referral_keys = sorted(
                {(c["program_id"], c["referred_id"]) for c in changes if c["referred_id"]}
            )
            marks: dict[tuple[int, int], dict[str, Any]] = {
                key: dict(row)
                for key, row in (await db.referral_marks(conn, referral_keys)).items()
            }
            new_marks: list[dict[str, Any]] = []
            # Rewardable confirmations per (program, reader, period start) counted so far.
            in_period: dict[tuple[int, int, datetime], int] = {}
            friend_rows: list[dict[str, Any]] = []
            for change in changes:
                pid, reader = change["program_id"], change["reader_id"]
                program = programs.get(pid)
                if program is None:
                    continue
                state = progress[(pid, reader)]
                delta = change["after"] - change["before"]
                referred = change["referred_id"]
                if referred is None:  # a leave-policy recount: no single referral to follow
                    state[0] = max(0, min(change["after"], state[0] + delta))
                elif delta > 0:
                    mark = marks.get((pid, referred))
                    if mark is None:
                        confirmed_at = change["confirmed_at"] or change["at"]
                        rewardable = await self._within_cap(
                            conn, program, reader, confirmed_at, in_period
                        )
                        mark = {
                            "program_id": pid,
                            "referred_id": referred,
                            "reader_id": reader,
                            "rewardable": rewardable,
                            "held": bool(change["held"] or change["manual"]),
                            "confirmed_at": confirmed_at,
                        }
                        marks[(pid, referred)] = mark
                        new_marks.append(mark)
                        friend = next((r for r in rules[pid] if r.role == "friend"), None)
                        if friend is not None and program.rewards_allowed:
                            friend_rows.append(
                                self._grant_row(program, friend, referred, 1, set(), now)
                            )
                    if mark["rewardable"]:
                        state[0] += delta
                else:
                    mark = marks.get((pid, referred))
                    if mark is None or mark["rewardable"]:
                        state[0] = max(0, state[0] + delta)
                state[1] = max(state[1], state[0])
            await db.insert_referral_marks(conn, new_marks)
            await db.upsert_progress(
                conn,
                [
                    {
                        "program_id": pid,
                        "reader_id": reader,
                        "rewardable": value[0],
                        "highest": value[1],
                        "updated_at": now,
                    }
                    for (pid, reader), value in progress.items()
                ],
            )
            report.readers = len(progress)
            grant_rows: list[dict[str, Any]] = list(friend_rows)
            by_program: dict[int, list[int]] = defaultdict(list)
            for pid, reader in progress:
                by_program[pid].append(reader)
            for pid, readers in by_program.items():
                milestones = [r for r in rules[pid] if r.role == "milestone"]
                if not milestones or pid not in programs:
                    continue
                if not programs[pid].rewards_allowed:
                    continue  # a Discord program whose manager turned rewards off again
                semi = any(m.approval == Approval.SEMI for m in milestones)
                held = await db.readers_with_held(conn, pid, readers) if semi else set()
                for reader in readers:
                    highest = progress[(pid, reader)][1]
                    for milestone in milestones:
                        for occurrence in milestone.owed(highest):
                            grant_rows.append(
                                self._grant_row(
                                    programs[pid], milestone, reader, occurrence, held, now
                                )
                            )
            new = await db.insert_grants(conn, grant_rows)
            report.grants = len(new)
            if new:
                await self._notify_approvals(conn, programs, new, now)
        return report

    async def _within_cap(
        self,
        conn: Any,
        program: Program,
        reader: int,
        confirmed_at: datetime,
        in_period: dict[tuple[int, int, datetime], int],
    ) -> bool:
        if program.reward_cap is None:
            return True
        start = period_start(confirmed_at, program.timezone, program.reward_cap_period)
        key = (program.id, reader, start)
        if key not in in_period:
            found = await db.rewardable_since(conn, program.id, [reader], start)
            in_period[key] = found.get(reader, 0)
        if in_period[key] >= program.reward_cap:
            return False
        in_period[key] += 1
        return True

    async def _notify_approvals(
        self, conn: Any, programs: Mapping[int, Program], new_ids: Sequence[int], now: datetime
    ) -> None:
        """Tell each program's owner how many new grants wait for a manager's approval."""
        rows = await db.grants_with_people(conn, new_ids)
        waiting: dict[int, int] = defaultdict(int)
        for row in rows:
            if row["state"] == GrantState.AWAITING_APPROVAL:
                waiting[row["program_id"]] += 1
        notices = []
        for pid, count in waiting.items():
            program = programs[pid]
            if program.created_by is None:
                continue
            notices.append(
                message(
                    program.platform,
                    "user",
                    program.created_by,
                    "grants_waiting",
                    {"program": program.title, "count": count},
                    priority=Priority.NOTIFY,
                    now=now,
                    program_id=pid,
                    key=f"grants_waiting:{pid}:{min(new_ids)}",
                )
            )
        if notices:
            await db_outbox.enqueue(conn, notices)

    # --- delivery -------------------------------------------------------------------------

    async def deliver(self, *, limit: int = 200, rounds: int = 50) -> DeliverReport:
        """Queue the messages of due grants (rounds of ``limit``), after putting back grants
        whose reader returned and revoking expired one-time links."""
        report = DeliverReport()
        now = self._now()
        async with self._db.write() as conn:
            report.returned = await db.return_reachable(conn, now)
        await self._revoke_expired(report)
        for _ in range(rounds):
            taken = await self._deliver_batch(limit, report)
            if taken < limit:
                break
        return report

    async def _deliver_batch(self, limit: int, report: DeliverReport) -> int:
        """One transaction for up to ``limit`` due grants, in a fixed number of statements
        per batch (and two per pool that hands out codes): decide each grant, assign the
        codes of each pool at once, queue every message, mark the grants delivering."""
        now = self._now()
        mint: list[dict[str, Any]] = []
        roles: list[tuple[Any, int | None]] = []
        async with self._db.write() as conn:
            rows = await db.claim_due_grants(conn, now, now + LEASE, limit)
            if not rows:
                return 0
            context = await self._delivery_context(conn, rows)
            outbox_rows: list[dict[str, Any]] = []
            moved: dict[str, list[int]] = defaultdict(list)  # state -> grants
            ready: list[tuple[dict[str, Any], str | None]] = []
            wants_code: dict[int, list[dict[str, Any]]] = defaultdict(list)  # pool -> grants
            for row in rows:
                milestone = context["milestones"].get(row["milestone_id"])
                if row["reader_id"] is None or milestone is None:
                    # a forgotten reader, or a rule gone from the database
                    moved[GrantState.UNREACHABLE].append(row["id"])
                    continue
                if row["person_started_at"] is None or row["person_blocked_at"] is not None:
                    # a friend's reward and a season's prize wait to be claimed in the bot
                    claim = row["source"] in ("friend", "prize")
                    moved[GrantState.UNCLAIMED if claim else GrantState.UNDELIVERABLE].append(
                        row["id"]
                    )
                    report.undeliverable += 1
                    continue
                rewardable = context["progress"].get((row["program_id"], row["reader_id"]), 0)
                if (
                    row["source"] == "milestone"
                    and row["rung"] is not None
                    and row["decided_by"] is None
                    and rewardable < row["rung"]
                ):
                    moved[GrantState.BELOW_RUNG].append(row["id"])
                    report.below_rung += 1
                    continue
                if row["reward_kind"] == RewardKind.COUPON and row["code_id"] is None:
                    wants_code[milestone.pool_id or 0].append(row)
                elif row["reward_kind"] == RewardKind.CHAT and row["access_url"] is None:
                    mint.append(row)  # minted on the platform first, outside this transaction
                elif row["reward_kind"] == RewardKind.ROLE:
                    # Given on the platform first, outside this transaction (the grant stays
                    # leased meanwhile); its message follows once the role is on.
                    roles.append((row, milestone.role_id))
                else:
                    ready.append((row, None))
            known = [row["code_id"] for row, _ in ready if row["code_id"] is not None]
            codes = await db.codes_by_ids(conn, known)
            ready = [(row, codes.get(row["code_id"])) for row, _ in ready]
            assigned: dict[int, int] = {}
            for pool_id, waiting in wants_code.items():
                given = await db.assign_codes(conn, pool_id, [r["id"] for r in waiting], now)
                for row in waiting:
                    if row["id"] in given:
                        code_id, given_code = given[row["id"]]
                        assigned[row["id"]] = code_id
                        ready.append((row, given_code))
                    else:
                        await self._out_of_stock(conn, row, now, outbox_rows, context)
                        moved[GrantState.WAITING_STOCK].append(row["id"])
                        report.waiting_stock += 1
                first = context["milestones"][waiting[0]["milestone_id"]]
                await self._check_stock(
                    conn, context["programs"][first.program_id], first, now, outbox_rows
                )
            for state, ids in moved.items():
                await db.set_grants(
                    conn,
                    ids,
                    {"state": state, "next_attempt_at": None, "updated_at": now},
                    expect=[GrantState.UNLOCKED],
                )
            delivering: list[tuple[int, str, int | None]] = []
            for row, code in sorted(ready, key=lambda pair: pair[0]["id"]):
                program = context["programs"][row["program_id"]]
                milestone = context["milestones"][row["milestone_id"]]
                outbox_rows.append(
                    self._reward_message(program, milestone, row, code, context, now)
                )
                key = outbox_rows[-1]["idempotency_key"]
                delivering.append((row["id"], key, assigned.get(row["id"])))
                report.queued += 1
            await db.mark_delivering(conn, delivering, now)
            await db_outbox.enqueue(conn, outbox_rows)
        for row in mint:
            await self._mint_access(row, report)
        for row, role_id in roles:
            await self._give_role(row, role_id, report)
        return len(rows)

    async def _give_role(
        self, row: Mapping[str, Any], role_id: int | None, report: DeliverReport
    ) -> None:
        """Give a role reward on the platform (its port's ``grant_role``), then queue its
        message. A role the bot cannot give (its own role is not above it, or it lacks
        Manage Roles) waits, with the platform's words on the grant for the managers."""
        now = self._now()
        program = await self._program(row["program_id"])
        port = self._engine.port(program.platform)
        if role_id is None or not isinstance(port, RolePort):
            result: Any = Unreachable(UnreachableReason.REJECTED, "roles are not given here")
        else:
            result = await port.grant_role(program.destination, row["reader_id"], role_id)
        if not isinstance(result, Delivered):
            await self._retry_later(row["id"], result, now)
            report.failures.append(f"grant {row['id']}: role not given")
            return
        await self._deliver_batch_ids([row["id"]], report, need_link=False)

    async def _retry_later(self, grant_id: int, result: Any, now: datetime) -> None:
        """A platform call a grant needs failed: try again after what the platform asked
        (a ``RetryAfter``), else a few minutes, with its words on the grant for managers."""
        wait = result.seconds if isinstance(result, RetryAfter) else RETRY.total_seconds()
        async with self._db.write() as conn:
            await db.set_grants(
                conn,
                [grant_id],
                {
                    "next_attempt_at": now + timedelta(seconds=wait),
                    "delivery_error": str(getattr(result, "detail", "retry"))[:256],
                    "updated_at": now,
                },
            )

    async def _delivery_context(
        self, conn: Any, rows: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        program_ids = sorted({row["program_id"] for row in rows})
        program_rows = await db_programs.programs_by_ids(conn, program_ids)
        programs = {pid: program_from_row(r) for pid, r in program_rows.items()}
        ids = {row["milestone_id"] for row in rows if row["milestone_id"] is not None}
        milestones = {
            mid: milestone_from_row(found)
            for mid, found in (await db.milestones_by_ids(conn, ids)).items()
        }
        keys = sorted({(row["program_id"], row["reader_id"]) for row in rows if row["reader_id"]})
        stored = await db.progress_by_keys(conn, keys)
        live_rules = await db.milestones_of(conn, program_ids, live_only=True)
        seasons = {row["source_id"] for row in rows if row["source"] == "prize"}
        return {
            "seasons": await db_boards.season_names(conn, sorted(seasons)),
            "programs": programs,
            "milestones": milestones,
            "progress": {key: row["rewardable"] for key, row in stored.items()},
            "highest": {key: row["highest"] for key, row in stored.items()},
            "links": await db.reader_links(conn, keys),  # offered again with the reward
            "rules": {
                pid: [milestone_from_row(r) for r in live_rules if r["program_id"] == pid]
                for pid in program_ids
            },
        }

    def _reward_message(
        self,
        program: Program,
        milestone: Milestone,
        row: Mapping[str, Any],
        code: str | None,
        context: Mapping[str, Any],
        now: datetime,
        *,
        priority: Priority = Priority.NOTIFY,
        key: str | None = None,
    ) -> dict[str, Any]:
        reader = row["reader_id"]
        link = context["links"].get((program.id, reader))
        rewardable = context["progress"].get((program.id, reader), 0)
        custom = None
        if milestone.message:
            try:
                custom = render_template(
                    milestone.message,
                    {
                        "name": row.get("reader_name") or "",
                        "count": rewardable,
                        "link": link or "",
                        "program": program.title,
                        "reward": row["title"],
                        "code": code or "",
                    },
                )
            except Exception:  # checked when saved; never show a template error to a reader
                logger.exception("reward template of milestone %s failed", milestone.id)
        nxt = next_milestone(
            context["rules"].get(program.id, []),
            context["highest"].get((program.id, reader), rewardable),
        )
        buttons: list[list[dict[str, Any]]] = []
        if row["reward_kind"] == RewardKind.CHAT and row.get("access_url"):
            buttons.append([Button("join_reward_chat", url=row["access_url"]).spec()])
        if row["reward_kind"] == RewardKind.MANUAL:
            buttons.append([Button("answer_question", data=f"ans:{row['id']}").spec()])
        if code:
            buttons.append([Button("copy_code", copy=code).spec()])
        if link:
            buttons.append([Button("share_link", copy=link).spec()])
        attempt = int(row.get("attempts") or 0)
        return message(
            program.platform,
            "user",
            reader,
            "reward_delivered",
            {
                "program": program.title,
                "title": row["title"],
                "kind": row["reward_kind"],
                "source": row["source"],
                # a season's prize: which season, and the place won
                "season": context["seasons"].get(row["source_id"])
                if row["source"] == "prize"
                else None,
                "place": row["occurrence"] if row["source"] == "prize" else None,
                "code": code,
                "access_url": row.get("access_url"),
                "access_expires_at": (
                    row["access_expires_at"].isoformat() if row.get("access_expires_at") else None
                ),
                "question": milestone.question,
                "custom_html": custom,
                "link": link,
                "count": rewardable,
                "next_title": nxt[0] if nxt else None,
                "next_missing": (nxt[1] - rewardable) if nxt else None,
            },
            priority=priority,
            now=now,
            program_id=program.id,
            payload=Post(buttons=buttons_of(buttons)) if buttons else None,
            key=key or f"{KEY_PREFIX}{row['id']}:{attempt}",
        )

    async def _out_of_stock(
        self,
        conn: Any,
        row: Mapping[str, Any],
        now: datetime,
        outbox_rows: list[dict[str, Any]],
        context: Mapping[str, Any],
    ) -> None:
        """The reader is told once that their code comes when new codes arrive."""
        program = context["programs"][row["program_id"]]
        outbox_rows.append(
            message(
                program.platform,
                "user",
                row["reader_id"],
                "reward_waiting_stock",
                {"program": program.title, "title": row["title"]},
                priority=Priority.NOTIFY,
                now=now,
                program_id=program.id,
                key=f"{KEY_PREFIX}{row['id']}:stock",
            )
        )

    async def _check_stock(
        self,
        conn: Any,
        program: Program,
        milestone: Milestone,
        now: datetime,
        outbox_rows: list[dict[str, Any]],
    ) -> None:
        """Alert the program's managers once when a pool runs low, and once when empty."""
        pool_id = milestone.pool_id
        if pool_id is None:
            return
        pool = await db.pool_by_id(conn, pool_id)
        if pool is None:
            return
        total, free = (await db.pool_stock(conn, [pool_id]))[pool_id]
        alert: str | None = None
        if free == 0 and pool["empty_alerted_at"] is None:
            alert = "pool_empty"
            await db.set_pool_alerts(conn, pool_id, empty_alerted_at=now, low_alerted_at=now)
        elif 0 < free <= _low_threshold(total) and pool["low_alerted_at"] is None:
            alert = "pool_low"
            await db.set_pool_alerts(conn, pool_id, low_alerted_at=now)
        if alert is None:
            return
        for manager in _managers(program, milestone):
            outbox_rows.append(
                message(
                    program.platform,
                    "user",
                    manager,
                    alert,
                    {"program": program.title, "pool": pool["name"], "free": free, "total": total},
                    priority=Priority.NOTIFY,
                    now=now,
                    program_id=program.id,
                    key=f"{alert}:{pool_id}:{manager}:{now.isoformat()}",
                )
            )

    async def _mint_access(self, row: Mapping[str, Any], report: DeliverReport) -> None:
        """Mint the grant's one-time join-request link, store it on the grant, then queue
        its message (the grant stays leased meanwhile)."""
        now = self._now()
        async with self._db.read() as conn:
            milestone_row = await db.milestone_by_id(conn, row["milestone_id"])
        if milestone_row is None or milestone_row["chat_id"] is None:
            return
        program = await self._program(row["program_id"])
        port = self._engine.port(program.platform)
        expires = now + ACCESS_LINK_LIFE
        result = await port.create_access_link(
            milestone_row["chat_id"], name=f"reward {row['id']}", expires_at=expires
        )
        if not isinstance(result, InviteCreated):
            await self._retry_later(row["id"], result, now)
            report.failures.append(f"grant {row['id']}: could not mint a link")
            return
        async with self._db.write() as conn:
            stored = await db.set_grants(
                conn,
                [row["id"]],
                {"access_url": result.url, "access_expires_at": expires, "updated_at": now},
                expect=[GrantState.UNLOCKED],
            )
            if stored:
                # due again at once: the next batch sends it with the link stored
                await db.set_grants(conn, [row["id"]], {"next_attempt_at": None})
        if not stored:
            await port.revoke_access_link(milestone_row["chat_id"], result.url)
        report.links_minted += 1
        await self._deliver_batch_ids([row["id"]], report)

    async def _deliver_batch_ids(
        self, ids: Sequence[int], report: DeliverReport, *, need_link: bool = True
    ) -> None:
        """Queue grants whose link was just stored, or whose role was just given (as a
        delivery batch would)."""
        now = self._now()
        async with self._db.write() as conn:
            rows = await db.grants_with_people(conn, ids)
            rows = [
                r
                for r in rows
                if r["state"] == GrantState.UNLOCKED and (r["access_url"] or not need_link)
            ]
            if not rows:
                return
            context = await self._delivery_context(conn, rows)
            outbox_rows = []
            for row in rows:
                program = context["programs"][row["program_id"]]
                milestone = context["milestones"][row["milestone_id"]]
                outbox_rows.append(
                    self._reward_message(program, milestone, row, None, context, now)
                )
                await db.set_grants(
                    conn,
                    [row["id"]],
                    {
                        "state": GrantState.DELIVERING,
                        "delivery_key": outbox_rows[-1]["idempotency_key"],
                        "next_attempt_at": None,
                        "updated_at": now,
                    },
                    expect=[GrantState.UNLOCKED],
                )
                report.queued += 1
            await db_outbox.enqueue(conn, outbox_rows)

    async def _revoke_expired(self, report: DeliverReport) -> None:
        now = self._now()
        async with self._db.read() as conn:
            expired = await db.expired_access(conn, now, 100)
        for row in expired:
            async with self._db.read() as conn:
                milestone = await db.milestone_by_id(conn, row["milestone_id"])
            program = await self._program(row["program_id"])
            if milestone is not None and milestone["chat_id"] is not None:
                result = await self._engine.port(program.platform).revoke_access_link(
                    milestone["chat_id"], row["access_url"]
                )
                if isinstance(result, RetryAfter):
                    continue
            async with self._db.write() as conn:
                # The link is gone; /rewards mints a new one for its owner.
                await db.set_grants(
                    conn, [row["id"]], {"access_url": None, "access_expires_at": None}
                )
            report.links_revoked += 1

    async def settled(self, conn: Any, outcomes: Sequence[Settled]) -> None:
        """The outbox settled rows (in its transaction): write the outcome onto grants."""
        delivered = [o.key for o in outcomes if o.sent and o.key.startswith(KEY_PREFIX)]
        failed = [
            (o.key, o.error) for o in outcomes if not o.sent and o.key.startswith(KEY_PREFIX)
        ]
        if delivered or failed:
            await db.settle_deliveries(conn, delivered, failed, self._now())

    # --- reward chats ---------------------------------------------------------------------

    async def claim_access(
        self, platform: str, chat_id: int, user_id: int, invite_url: str | None
    ) -> ClaimDecision | None:
        """A join request to a chat that is a reward: approve only the owner of the grant
        whose link was used, decline anyone else, revoke the link once used. None when the
        link is not a reward's (the chat is not ours to decide)."""
        if not invite_url:
            return None
        async with self._db.read() as conn:
            grant = await db.grant_by_access_url(conn, invite_url)
        if grant is None:
            return None
        program = await self._program(grant["program_id"])
        if program.platform != platform:
            return None
        port = self._engine.port(platform)
        now = self._now()
        owner = grant["reader_id"] == user_id
        live = grant["access_expires_at"] is None or grant["access_expires_at"] > now
        approve = owner and live and grant["fulfilled_at"] is None
        result = await port.answer_access_request(chat_id, user_id, approve)
        if isinstance(result, RetryAfter):
            raise PlatformUnavailable("the platform asked to wait", outcome=result)
        async with self._db.write() as conn:
            await _event(
                conn,
                program_id=program.id,
                user_id=user_id,
                actor_id=None,
                kind="reward_chat_approved" if approve else "reward_chat_declined",
                at=now,
                data={"grant_id": grant["id"]},
            )
            if approve:
                await db.set_grants(conn, [grant["id"]], {"fulfilled_at": now, "updated_at": now})
        if approve:
            await port.revoke_access_link(chat_id, invite_url)
        reason = "owner" if approve else ("expired" if owner else "not_owner")
        return ClaimDecision(approve, grant["id"], reason)

    # --- readers --------------------------------------------------------------------------

    async def progress(self, program_id: int, reader_id: int) -> Progress:
        async with self._db.read() as conn:
            row = await db.progress_of(conn, program_id, reader_id)
            rules = [
                milestone_from_row(r)
                for r in await db.milestones_of(conn, [program_id], live_only=True)
            ]
        rewardable = row["rewardable"] if row else 0
        highest = row["highest"] if row else 0
        nxt = next_milestone(rules, highest)
        if nxt is None:
            return Progress(rewardable)
        return Progress(rewardable, nxt[0], nxt[1])

    async def rewards_of(self, program_id: int, reader_id: int) -> list[Grant]:
        """A reader's grants in a program, oldest first (codes included: only for them)."""
        async with self._db.read() as conn:
            rows = await db.grants_of_reader(conn, program_id, reader_id)
            codes = await db.codes_by_ids(conn, [r["code_id"] for r in rows if r["code_id"]])
        return [grant_from_row(r, codes.get(r["code_id"])) for r in rows]

    async def reader_grant(self, grant_id: int, reader_id: int) -> tuple[Grant, str | None]:
        """One of a reader's grants and its question (manual rewards); others' are refused."""
        async with self._db.read() as conn:
            row = await db.grant_by_id(conn, grant_id)
            rule = await db.milestone_by_id(conn, row["milestone_id"]) if row else None
        if row is None or row["reader_id"] != reader_id:
            raise GrantNotFound("no such reward of yours")
        return grant_from_row(row), (rule["question"] if rule else None)

    async def resend(self, grant_id: int, reader_id: int) -> Grant:
        """Send a reader's received reward again (to them only); a one-time link that was
        revoked or expired unused is minted anew; a grant that could not be delivered is
        queued again."""
        now = self._now()
        async with self._db.write() as conn:
            row = await db.grant_by_id(conn, grant_id)
            if row is None or row["reader_id"] != reader_id:
                raise GrantNotFound("no such reward of yours")
            if row["state"] in WAITING and not _claimable(row, now):
                pass  # a season prize past its claim window: it stays where it is
            elif row["state"] in (GrantState.UNDELIVERABLE, GrantState.UNCLAIMED):
                await db.set_grants(
                    conn,
                    [grant_id],
                    {"state": GrantState.UNLOCKED, "next_attempt_at": None, "updated_at": now},
                )
            elif row["state"] in RECEIVED:
                if row["reward_kind"] == RewardKind.CHAT and row["access_url"] is None:
                    if row["fulfilled_at"] is None:
                        await db.set_grants(
                            conn,
                            [grant_id],
                            {
                                "state": GrantState.UNLOCKED,
                                "next_attempt_at": None,
                                "updated_at": now,
                            },
                        )
                else:
                    context = await self._delivery_context(conn, [row])
                    program = context["programs"][row["program_id"]]
                    milestone = context["milestones"].get(row["milestone_id"])
                    if milestone is not None:
                        code = await db.code_of(conn, row["code_id"]) if row["code_id"] else None
                        await db_outbox.enqueue(
                            conn,
                            [
                                self._reward_message(
                                    program,
                                    milestone,
                                    row,
                                    code,
                                    context,
                                    now,
                                    priority=Priority.ANSWER,
                                    key=f"resend:{grant_id}:{now.isoformat()}",
                                )
                            ],
                        )
            found = await db.grant_by_id(conn, grant_id)
        assert found is not None
        return grant_from_row(found)

    async def reader_returned(self, platform: str, user_id: int) -> int:
        """The person opened the bot: what waited for them (undeliverable rewards, friend
        rewards to claim) is queued again now. Returns how many."""
        now = self._now()
        async with self._db.write() as conn:
            rows = await db.grants_of_person(
                conn, platform, user_id, [GrantState.UNDELIVERABLE, GrantState.UNCLAIMED]
            )
            return len(
                await db.set_grants(
                    conn,
                    [r["id"] for r in rows if _claimable(r, now)],
                    {"state": GrantState.UNLOCKED, "next_attempt_at": None, "updated_at": now},
                    expect=[GrantState.UNDELIVERABLE, GrantState.UNCLAIMED],
                )
            )

    async def answer(self, platform: str, user_id: int, grant_id: int, text: str) -> Grant:
        """The reader's answer to a manual reward's question (an address, a size)."""
        answer = (text or "").strip()[:MAX_ANSWER]
        if not answer:
            raise BadMilestone("answer", "the answer is empty")
        now = self._now()
        async with self._db.write() as conn:
            row = await db.grant_by_id(conn, grant_id)
            if row is None or row["reader_id"] != user_id or row["platform"] != platform:
                raise GrantNotFound("no such reward of yours")
            changed = await db.set_grants(
                conn,
                [grant_id],
                {"answer": answer, "state": GrantState.FULFILLING, "updated_at": now},
                expect=[GrantState.AWAITING_ANSWER, GrantState.FULFILLING],
            )
            if not changed:
                raise NotDecidable("this reward does not wait for an answer")
            program = program_from_row(
                (await db_programs.program_by_id(conn, row["program_id"])) or {}
            )
            milestone_row = await db.milestone_by_id(conn, row["milestone_id"])
            managers = _managers(
                program, milestone_from_row(milestone_row) if milestone_row else None
            )
            await db_outbox.enqueue(
                conn,
                [
                    message(
                        program.platform,
                        "user",
                        manager,
                        "fulfilment_waiting",
                        {"program": program.title, "title": row["title"]},
                        priority=Priority.NOTIFY,
                        now=now,
                        program_id=program.id,
                        key=f"fulfil:{grant_id}:{manager}",
                    )
                    for manager in managers
                ],
            )
            found = await db.grant_by_id(conn, grant_id)
        assert found is not None
        return grant_from_row(found)

    # --- managers: queues and decisions -------------------------------------------------

    async def queue(
        self, program_id: int, actor_id: int | None, which: str, page: int = 1, size: int = 5
    ) -> tuple[list[Grant], int]:
        """A page of grants waiting for a manager: ``approval`` (to approve or reject, also
        those below their rung) or ``fulfilment`` (answered, to send by hand)."""
        await self._managed(program_id, actor_id)
        states = (
            [GrantState.AWAITING_APPROVAL, GrantState.BELOW_RUNG]
            if which == "approval"
            else [GrantState.FULFILLING]
        )
        async with self._db.read() as conn:
            rows, total = await db.grants_in_state(
                conn, program_id, states, (max(page, 1) - 1) * size, size
            )
        return [grant_from_row(r) for r in rows], total

    async def decide(self, grant_id: int, actor_id: int | None, approve: bool) -> Grant:
        """A manager approves a grant (it is delivered) or rejects it (it never is)."""
        async with self._db.read() as conn:
            row = await db.grant_by_id(conn, grant_id)
        if row is None:
            raise GrantNotFound(f"grant {grant_id} does not exist")
        await self._managed(row["program_id"], actor_id)
        now = self._now()
        values = {
            "state": GrantState.UNLOCKED if approve else GrantState.REJECTED,
            "decided_at": now,
            "decided_by": actor_id if actor_id is not None else 0,
            "next_attempt_at": None,
            "updated_at": now,
        }
        async with self._db.write() as conn:
            changed = await db.set_grants(conn, [grant_id], values, expect=list(DECIDABLE))
            if not changed:
                raise NotDecidable("this reward is not waiting for a decision")
            await _event(
                conn,
                program_id=row["program_id"],
                user_id=row["reader_id"],
                actor_id=actor_id,
                kind="grant_approved" if approve else "grant_rejected",
                at=now,
                data={"grant_id": grant_id},
            )
            found = await db.grant_by_id(conn, grant_id)
        assert found is not None
        return grant_from_row(found)

    async def fulfilled(self, grant_id: int, actor_id: int | None) -> Grant:
        """A manager sent a manual reward: the reader is told."""
        async with self._db.read() as conn:
            row = await db.grant_by_id(conn, grant_id)
        if row is None:
            raise GrantNotFound(f"grant {grant_id} does not exist")
        program = await self._managed(row["program_id"], actor_id)
        now = self._now()
        async with self._db.write() as conn:
            changed = await db.set_grants(
                conn,
                [grant_id],
                {
                    "state": GrantState.FULFILLED,
                    "fulfilled_at": now,
                    "decided_by": actor_id,
                    "updated_at": now,
                },
                expect=[GrantState.FULFILLING],
            )
            if not changed:
                raise NotDecidable("this reward is not waiting to be sent")
            await _event(
                conn,
                program_id=program.id,
                user_id=row["reader_id"],
                actor_id=actor_id,
                kind="grant_fulfilled",
                at=now,
                data={"grant_id": grant_id},
            )
            if row["reader_id"] is not None:
                await db_outbox.enqueue(
                    conn,
                    [
                        message(
                            program.platform,
                            "user",
                            row["reader_id"],
                            "reward_fulfilled",
                            {"program": program.title, "title": row["title"]},
                            priority=Priority.NOTIFY,
                            now=now,
                            program_id=program.id,
                            key=f"fulfilled:{grant_id}",
                        )
                    ],
                )
            found = await db.grant_by_id(conn, grant_id)
        assert found is not None
        return grant_from_row(found)

    async def report(self, program_id: int) -> dict[str, Any]:
        """Grants by state, codes used and left, and the cost per confirmed referral."""
        async with self._db.read() as conn:
            grants = await db.grant_report(conn, program_id)
            pools = await db.pools_of(conn, program_id)
            stock = await db.pool_stock(conn, [p["id"] for p in pools])
            totals = await db_programs.program_totals(conn, program_id)
            prizes = await db.prize_report(conn, program_id)
        used = sum(total - free for total, free in stock.values())
        left = sum(free for _, free in stock.values())
        confirmed = int(totals.get("confirmed", 0))
        cost = grants["cost_cents"]
        return {
            "grants": grants["by_state"],
            "codes_used": used,
            "codes_left": left,
            "cost_cents": cost,
            "cost_per_referral_cents": (cost // confirmed) if confirmed and cost else None,
            # season prizes: waiting for their winner to claim them, and unclaimed in time
            "prizes_to_claim": sum(prizes.get(str(state), 0) for state in WAITING),
            "prizes_unclaimed": prizes.get(GrantState.UNREACHABLE, 0),
        }

    # --- flows (guided conversations) -----------------------------------------------------

    async def flow(self, platform: str, user_id: int) -> dict[str, Any] | None:
        async with self._db.read() as conn:
            return await db.get_flow(conn, platform, user_id, self._now())

    async def set_flow(
        self, platform: str, user_id: int, kind: str, step: str, data: Mapping[str, Any]
    ) -> None:
        now = self._now()
        async with self._db.write() as conn:
            await db.put_flow(conn, platform, user_id, kind, step, data, now + FLOW_LIFE, now)

    async def end_flow(self, platform: str, user_id: int) -> None:
        async with self._db.write() as conn:
            await db.delete_flow(conn, platform, user_id)


def next_milestone(rules: Sequence[Milestone], highest: int) -> tuple[str, int] | None:
    """The title and rewardable total of the next rung above ``highest``."""
    best: tuple[str, int] | None = None
    for rule in rules:
        if rule.role != "milestone" or rule.paused:
            continue
        if rule.step:
            at = (highest // rule.step + 1) * rule.step
        elif rule.count is not None and rule.count > highest:
            at = rule.count
        else:
            continue
        if best is None or at < best[1]:
            best = (rule.title, at)
    return best


async def _event(conn: Any, **row: Any) -> None:
    """One audit event (program_id, user_id, actor_id, kind, at, data)."""
    await db_events.insert_events(conn, [row])


def _claimable(row: Mapping[Any, Any], now: datetime) -> bool:
    """A grant without a claim window, or a season prize whose window is still open."""
    expires = row.get("claim_expires_at")
    return expires is None or expires > now


def _low_threshold(total: int) -> int:
    return max(LOW_STOCK_CODES, int(total * LOW_STOCK_SHARE))


def _managers(program: Program, milestone: Milestone | None) -> list[int]:
    found = [program.created_by] if program.created_by is not None else []
    return [m for m in found if m is not None]


__all__ = [
    "Delivered",
    "NotAllowed",
    "RewardService",
    "Unreachable",
    "next_milestone",
    "period_start",
]
