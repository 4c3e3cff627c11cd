"""The database schema as SQLAlchemy Core tables.

Migrations under ``storage/migrations`` create exactly this schema; a test compares the two.
All times are stored as UTC; :class:`UTCDateTime` hands back timezone-aware values on every
engine (SQLite would otherwise return naive ones).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every engine; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # On SQLite a datetime is stored as text ("2026-01-05 09:20:00.000000", the format of
    # SQLAlchemy's SQLite DATETIME). These processors write and read exactly that text in one
    # C call each, instead of the decorator plus DATETIME's own processors: a join writes a
    # dozen datetimes, so this is measurable on the ingest benchmark.
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value!r} cannot be stored")
            if value.utcoffset():
                value = value.astimezone(UTC)
            # "2026-01-05 09:20:00.000000+00:00" less its offset
            return value.isoformat(" ", "microseconds")[:26]

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            return datetime.fromisoformat(value).replace(tzinfo=UTC)

        return process


programs = Table(
    "programs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("platform", String(16), nullable=False),
    Column("destination_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("title", String(256), nullable=False),
    Column("username", String(64)),
    Column("locale", String(8), nullable=False, server_default="en"),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("hold_hours", Integer, nullable=False, server_default="48"),
    Column("join_mode", String(16), nullable=False, server_default="bot"),
    Column("min_account_age_days", Integer, nullable=False, server_default="0"),
    Column("leave_policy", String(16), nullable=False, server_default="keep"),
    Column("human_check", Boolean, nullable=False, server_default=text("false")),
    Column("referrer_cap", Integer),
    Column("burst_limit", Integer),
    Column("burst_window_minutes", Integer, nullable=False, server_default="60"),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("paused_reason", String(64)),
    # A join link of the chat itself, for friends in the through-the-bot mode of a
    # private chat (public chats are joined by username).
    Column("join_url", String(256)),
    # Rewards: at most ``reward_cap`` rewardable referrals per reader per ``reward_cap_period``
    # (week, month or year in the program's timezone); what a reward costs is in ``currency``.
    Column("reward_cap", Integer),
    Column("reward_cap_period", String(8), nullable=False, server_default="year"),
    Column("currency", String(8)),
    # Discord: rewards for joins stay off until a manager turns them on (the policy note),
    # the channel the bot makes readers' invites in, and whether readers may have labelled
    # invites besides their one (each invite counts against Discord's cap).
    Column("rewards_opt_in", Boolean, nullable=False, server_default=text("false")),
    Column("invite_channel_id", BigInteger),
    Column("labels_allowed", Boolean, nullable=False, server_default=text("false")),
    Column("created_by", BigInteger),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("uq_programs_platform_destination", "platform", "destination_id", unique=True),
)

members = Table(
    "members",
    metadata,
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("display_name", String(128), nullable=False, server_default=""),
    Column("username", String(64)),
    Column("language", String(8)),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("is_member", Boolean, nullable=False, server_default=text("false")),
    Column("first_joined_at", UTCDateTime),
    Column("last_joined_at", UTCDateTime),
    Column("last_left_at", UTCDateTime),
    Column("remembered_referrer_id", BigInteger),
    Column("remembered_link_id", Id),
    Column("remembered_at", UTCDateTime),
)

links = Table(
    "links",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), nullable=False),
    Column("referrer_id", BigInteger, nullable=False),
    Column("label", String(24), nullable=False, server_default=""),
    Column("code", String(64), nullable=False),
    Column("url", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Index("uq_links_code", "code", unique=True),
    Index("ix_links_url", "url"),
    Index(
        "uq_links_live",
        "program_id",
        "referrer_id",
        "label",
        unique=True,
        sqlite_where=text("revoked_at IS NULL"),
        postgresql_where=text("revoked_at IS NULL"),
    ),
)

join_attempts = Table(
    "join_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("referrer_id", BigInteger),
    Column("link_id", Id),
    Column("outcome", String(24), nullable=False),
    Column("reason", String(32)),
    Column("at", UTCDateTime, nullable=False),
    Column("event_key", String(128)),
    Index("uq_join_attempts_event", "program_id", "event_key", unique=True),
    Index("ix_join_attempts_referrer", "program_id", "referrer_id", "at"),
    Index("ix_join_attempts_user", "program_id", "user_id"),
)

REFERRAL_STATES = ("pending", "held", "confirmed", "rejected")

referrals = Table(
    "referrals",
    metadata,
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("referred_id", BigInteger, primary_key=True),
    Column("referrer_id", BigInteger),
    Column("link_id", Id),
    Column("state", String(16), nullable=False),
    Column("reason", String(32)),
    Column("joined_at", UTCDateTime, nullable=False),
    Column("hold_until", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("decided_at", UTCDateTime),
    Column("decided_by", BigInteger),
    Column("left_at", UTCDateTime),
    CheckConstraint(
        "state IN ('pending', 'held', 'confirmed', 'rejected')", name="referral_state"
    ),
    Index("ix_referrals_due", "state", "hold_until"),
    Index("ix_referrals_referrer", "program_id", "referrer_id", "joined_at"),
)

referrer_counts = Table(
    "referrer_counts",
    metadata,
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("referrer_id", BigInteger, primary_key=True),
    Column("pending", Integer, nullable=False, server_default="0"),
    Column("held", Integer, nullable=False, server_default="0"),
    Column("confirmed", Integer, nullable=False, server_default="0"),
    Column("rejected", Integer, nullable=False, server_default="0"),
    Column("left", Integer, nullable=False, server_default="0"),
    # What counts for rankings and milestones: confirmed, less those who left when the
    # program's leave policy subtracts them.
    Column("counted", Integer, nullable=False, server_default="0"),
    Column("window_started_at", UTCDateTime),
    Column("window_joins", Integer, nullable=False, server_default="0"),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_referrer_counts_rank", "program_id", "counted"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE")),
    Column("user_id", BigInteger),
    Column("actor_id", BigInteger),
    Column("kind", String(48), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("data", Text),
    Index("ix_events_program", "program_id", "at"),
    Index("ix_events_user", "user_id"),
)

# One row per reader whose counted total moved, written by the referral state machine
# (referrals/transitions.py) in the transaction of the change. Consumers (milestones,
# period boards) mark the rows they handled in the transaction that writes their output.
count_changes = Table(
    "count_changes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), nullable=False),
    Column("reader_id", BigInteger, nullable=False),
    Column("before", Integer, nullable=False),
    Column("after", Integer, nullable=False),
    Column("referred_id", BigInteger),  # None for a leave-policy recount
    Column("transition", String(24), nullable=False),
    Column("joined_at", UTCDateTime),
    Column("confirmed_at", UTCDateTime),
    Column("manual", Boolean, nullable=False, server_default=text("false")),
    Column("held", Boolean, nullable=False, server_default=text("false")),
    Column("at", UTCDateTime, nullable=False),
    Column("milestones_at", UTCDateTime),
    Column("boards_at", UTCDateTime),
    Index("ix_count_changes_reader", "program_id", "reader_id", "id"),
    Index(
        "ix_count_changes_milestones",
        "id",
        sqlite_where=text("milestones_at IS NULL"),
        postgresql_where=text("milestones_at IS NULL"),
    ),
    Index(
        "ix_count_changes_boards",
        "id",
        sqlite_where=text("boards_at IS NULL"),
        postgresql_where=text("boards_at IS NULL"),
    ),
)

job_claims = Table(
    "job_claims",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("slot", String(64), primary_key=True),
    Column("claimed_at", UTCDateTime, nullable=False),
)

people = Table(
    "people",
    metadata,
    Column("platform", String(16), primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("display_name", String(128), nullable=False, server_default=""),
    Column("username", String(64)),
    # The language the person chose (/lang); else the one their app reports.
    Column("language", String(8)),
    Column("platform_language", String(16)),
    Column("started_at", UTCDateTime),  # first private contact: the bot may DM them
    Column("blocked_at", UTCDateTime),  # they blocked the bot (or the account is gone)
    Column("updated_at", UTCDateTime, nullable=False),
)

OUTBOX_STATES = ("queued", "sent", "failed", "expired")

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("platform", String(16), nullable=False),
    Column("target_kind", String(8), nullable=False),  # "user" (a DM) or "chat"
    Column("target_id", BigInteger, nullable=False),
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE")),
    Column("priority", Integer, nullable=False),
    Column("action", String(16), nullable=False, server_default="send"),
    Column("template", String(64), nullable=False),
    Column("context", Text, nullable=False, server_default="{}"),
    # The action's typed payload as JSON (delivery.outbox), beside the template's context.
    Column("payload", Text),
    Column("locale", String(8)),
    Column("state", String(12), nullable=False, server_default="queued"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("lease_until", UTCDateTime),
    Column("idempotency_key", String(160)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("message_id", BigInteger),
    Column("last_error", String(256)),
    CheckConstraint("state IN ('queued', 'sent', 'failed', 'expired')", name="outbox_state"),
    Index("uq_outbox_idempotency", "idempotency_key", unique=True),
    Index("ix_outbox_due", "state", "priority", "next_attempt_at", "id"),
    Index("ix_outbox_target", "platform", "target_id", "state"),
)

inbox = Table(
    "inbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("platform", String(16), nullable=False),
    Column("update_id", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(12), nullable=False, server_default="queued"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", String(256)),
    Column("created_at", UTCDateTime, nullable=False),
    Index("uq_inbox_update", "platform", "update_id", unique=True),
    Index("ix_inbox_due", "state", "next_attempt_at"),
)

join_requests = Table(
    "join_requests",
    metadata,
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("referrer_id", BigInteger),
    Column("link_id", Id),
    # awaiting_check -> approved | declined; approved directly when no check is asked
    Column("state", String(16), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("check_until", UTCDateTime),
    Column("decided_at", UTCDateTime),
    Index("ix_join_requests_due", "state", "check_until"),
)

# --- rewards (rewards/) -------------------------------------------------------------------

REWARD_KINDS = ("message", "coupon", "chat", "manual", "role")

# A rule that earns a reward: a milestone ("3 friends"; ``step`` makes it recurring, one
# occurrence every ``step`` rewardable referrals) or the friend reward (``role`` "friend":
# the referred person's, when their referral is confirmed). Removing one keeps its row
# (``removed_at``): grants point at it.
milestones = Table(
    "milestones",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(12), nullable=False, server_default="milestone"),
    Column("count", Integer),
    Column("step", Integer),
    Column("title", String(128), nullable=False),
    Column("reward_kind", String(12), nullable=False),
    Column("message", Text),  # the manager's template (at most 4,096 characters)
    Column("pool_id", Id),
    Column("chat_id", BigInteger),  # one-time access: the private chat
    Column("chat_title", String(256)),
    Column("question", String(512)),  # manual fulfilment: what the reader is asked
    Column("role_id", BigInteger),  # a Discord role
    Column("approval", String(8), nullable=False, server_default="auto"),
    Column("cost_cents", Integer),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("removed_at", UTCDateTime),
    Column("created_by", BigInteger),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("role IN ('milestone', 'friend', 'prize')", name="milestone_role"),
    CheckConstraint(
        "reward_kind IN ('message', 'coupon', 'chat', 'manual', 'role')", name="reward_kind"
    ),
    CheckConstraint("approval IN ('auto', 'manual', 'semi')", name="milestone_approval"),
    Index("ix_milestones_program", "program_id", "role"),
)

reward_pools = Table(
    "reward_pools",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("low_alerted_at", UTCDateTime),
    Column("empty_alerted_at", UTCDateTime),
)

# A code belongs to at most one grant (``grant_id`` is unique) and an assigned code is never
# unassigned: it stays used even when its grant's reader is forgotten.
reward_codes = Table(
    "reward_codes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("pool_id", Id, ForeignKey("reward_pools.id", ondelete="CASCADE"), nullable=False),
    Column("code", String(128), nullable=False),
    Column("grant_id", Id),
    Column("added_at", UTCDateTime, nullable=False),
    Column("assigned_at", UTCDateTime),
    Index("uq_reward_codes_code", "pool_id", "code", unique=True),
    Index("uq_reward_codes_grant", "grant_id", unique=True),
    Index(
        "ix_reward_codes_free",
        "pool_id",
        "id",
        sqlite_where=text("grant_id IS NULL"),
        postgresql_where=text("grant_id IS NULL"),
    ),
)

GRANT_STATES = (
    "awaiting_approval",  # a manager approves it first
    "unlocked",  # due for delivery
    "delivering",  # its message is in the outbox
    "delivered",
    "waiting_stock",  # its pool is empty
    "undeliverable",  # the reader cannot be messaged now (blocked, never started)
    "unclaimed",  # a friend reward or a season prize waiting for its person to open the bot
    "below_rung",  # not delivered yet and the reader fell below its rung: a manager decides
    "awaiting_answer",  # manual fulfilment: the reader was asked
    "fulfilling",  # manual fulfilment: answered, a manager sends the prize
    "fulfilled",
    "rejected",  # a manager turned it down
    "unreachable",  # a prize unclaimed past its claim window
)

# A reward earned: unique per (program, reader, source, source id, occurrence), so a reader
# never gets one rung twice. ``source`` is "milestone", "friend" or "prize".
grants = Table(
    "grants",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), nullable=False),
    Column("reader_id", BigInteger),  # None once the reader was forgotten
    Column("source", String(12), nullable=False),
    Column("source_id", Id, nullable=False),
    Column("occurrence", Integer, nullable=False, server_default="1"),
    Column("milestone_id", Id),
    Column("rung", Integer),  # the rewardable total it was earned at
    Column("state", String(20), nullable=False),
    Column("reward_kind", String(12), nullable=False),
    Column("title", String(128), nullable=False),
    Column("cost_cents", Integer),
    Column("code_id", Id),
    Column("access_url", String(256)),  # one-time access: the join-request link minted
    Column("access_expires_at", UTCDateTime),
    Column("answer", Text),  # manual fulfilment: the reader's answer (personal data)
    Column("delivery_key", String(64)),  # the idempotency key of its latest outbox row
    Column("delivery_error", String(256)),
    Column("held", Boolean, nullable=False, server_default=text("false")),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime),
    Column("unlocked_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime),
    Column("decided_by", BigInteger),
    Column("delivered_at", UTCDateTime),
    Column("fulfilled_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    # A season prize: until when a winner the bot cannot message may claim it (then it
    # counts as unreachable).
    Column("claim_expires_at", UTCDateTime),
    Index(
        "uq_grants_source",
        "program_id",
        "reader_id",
        "source",
        "source_id",
        "occurrence",
        unique=True,
    ),
    Index("ix_grants_due", "state", "next_attempt_at"),
    Index("ix_grants_reader", "program_id", "reader_id"),
    Index("ix_grants_delivery", "delivery_key"),
    Index("ix_grants_access", "access_url"),
    Index(
        "ix_grants_claims",
        "state",
        "claim_expires_at",
        sqlite_where=text("claim_expires_at IS NOT NULL"),
        postgresql_where=text("claim_expires_at IS NOT NULL"),
    ),
)

# Per reader: the rewardable total (counted, less referrals confirmed beyond the reward
# cap) and its highest value, kept by the milestone job from the change records.
reward_progress = Table(
    "reward_progress",
    metadata,
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("reader_id", BigInteger, primary_key=True),
    Column("rewardable", Integer, nullable=False, server_default="0"),
    Column("highest", Integer, nullable=False, server_default="0"),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Whether a referral counts toward rewards (decided once, when it first counted, against the
# reward cap of its confirmation's period).
reward_referrals = Table(
    "reward_referrals",
    metadata,
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("referred_id", BigInteger, primary_key=True),
    Column("reader_id", BigInteger, nullable=False),
    Column("rewardable", Boolean, nullable=False),
    Column("held", Boolean, nullable=False, server_default=text("false")),  # held or manual
    Column("confirmed_at", UTCDateTime, nullable=False),
    Index("ix_reward_referrals_reader", "program_id", "reader_id", "confirmed_at"),
)

# A guided conversation in progress (a manager adding a milestone, a reader answering a
# question): kept in the database so a restart does not lose it; it expires.
flows = Table(
    "flows",
    metadata,
    Column("platform", String(16), primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("step", String(24), nullable=False),
    Column("data", Text, nullable=False, server_default="{}"),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# --- leaderboards (leaderboard/) ------------------------------------------------------------

# Per program: how its boards show and when they are posted (the program's timezone).
board_settings = Table(
    "board_settings",
    metadata,
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("public_names", Boolean, nullable=False, server_default=text("true")),
    Column("week_start", Integer, nullable=False, server_default="0"),  # 0 Monday … 6 Sunday
    Column("schedule", String(64)),  # five cron fields, in the program's timezone
    Column("schedule_period", String(8), nullable=False, server_default="week"),
    Column("post_chat_id", BigInteger),  # None: the program's own chat
    Column("set_by", BigInteger),  # the manager who saved the schedule (checked per post)
    Column("last_slot_at", UTCDateTime),  # the latest slot handled (posted or skipped)
    Column("updated_at", UTCDateTime, nullable=False),
)

# Readers the boards know: a pseudonymous number per program ("Reader #12", the numbers a
# draw publishes) and whether a manager excluded them from boards (their counts stay).
board_readers = Table(
    "board_readers",
    metadata,
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("reader_id", BigInteger, primary_key=True),
    Column("number", Integer, nullable=False),
    Column("excluded", Boolean, nullable=False, server_default=text("false")),
    Column("excluded_by", BigInteger),
    Column("excluded_at", UTCDateTime),
    Index("uq_board_readers_number", "program_id", "number", unique=True),
)

# A reader's count on one board: ``period`` is "all", "w2026-01-05" (the week starting
# that local day), "m2026-01" or "s<season id>". ``tiebreak`` is minus the id of the change
# record that brought the count to its value: among equal counts the larger (the earlier)
# ranks first, so one index serves ``ORDER BY count DESC, tiebreak DESC``.
board_counts = Table(
    "board_counts",
    metadata,
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("reader_id", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False, server_default="0"),
    Column("tiebreak", BigInteger, nullable=False, server_default="0"),
    Column("reached_at", UTCDateTime, nullable=False),
    Column("excluded", Boolean, nullable=False, server_default=text("false")),
    Index("ix_board_counts_rank", "program_id", "period", "count", "tiebreak"),
    Index("ix_board_counts_reader", "program_id", "reader_id"),
)

# How many (not excluded) readers of a board have each count above zero: a reader's rank is
# 1 + the readers above their count, a sum over the few distinct counts.
board_histogram = Table(
    "board_histogram",
    metadata,
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("count", Integer, primary_key=True),
    Column("readers", Integer, nullable=False),
)

SEASON_MODES = ("top", "draw")

# A named contest period. Its board is "s<id>"; its final standings are frozen into
# ``results`` (JSON) once the hold after its end has passed. A draw commits to
# ``seed_hash`` (SHA-256 of ``seed``) before the end and publishes ``seed`` with the draw.
seasons = Table(
    "seasons",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("mode", String(8), nullable=False, server_default="top"),
    Column("winners", Integer, nullable=False, server_default="3"),
    Column("min_referrals", Integer, nullable=False, server_default="1"),
    Column("prize_id", Id),  # a rewards rule of role "prize"
    Column("seed", String(64)),
    Column("seed_hash", String(64)),
    Column("results", Text),
    Column("final_at", UTCDateTime),
    Column("prizes_granted_at", UTCDateTime),
    Column("created_by", BigInteger),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("mode IN ('top', 'draw')", name="season_mode"),
    Index("ix_seasons_program", "program_id", "ends_at"),
)

__all__ = [
    "GRANT_STATES",
    "OUTBOX_STATES",
    "REFERRAL_STATES",
    "REWARD_KINDS",
    "SEASON_MODES",
    "UTCDateTime",
    "board_counts",
    "board_histogram",
    "board_readers",
    "board_settings",
    "count_changes",
    "events",
    "flows",
    "grants",
    "inbox",
    "job_claims",
    "join_attempts",
    "join_requests",
    "links",
    "members",
    "metadata",
    "milestones",
    "outbox",
    "people",
    "programs",
    "referrals",
    "referrer_counts",
    "reward_codes",
    "reward_pools",
    "reward_progress",
    "reward_referrals",
    "seasons",
]


# --- invite-use tracking (Discord says which invite's counter moved, never who used it) ---

invite_uses = Table(
    "invite_uses",
    metadata,
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("code", String(32), primary_key=True),
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("max_uses", Integer, nullable=False, server_default="0"),
    Column("inviter_id", BigInteger),
    # An invite deleted on the platform stays until the next settle has read it: one that
    # vanished at its max uses may carry the join whose event is still on its way.
    Column("deleted_at", UTCDateTime),
    Column("seen_at", UTCDateTime, nullable=False),
)

invite_sync = Table(
    "invite_sync",
    metadata,
    Column("program_id", Id, ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True),
    Column("vanity_uses", Integer),
    Column("synced_at", UTCDateTime, nullable=False),
)
