"""Programs: settings (defaults, validation, conversion from rows) and the program service."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from delivery.outbox import Priority, message
from referrals import transitions
from referrals.context import Engine
from referrals.locale import LOCALES
from referrals.models import (
    DeletedProgram,
    JoinMode,
    LeavePolicy,
    Program,
    ProgramExists,
    ProgramNotFound,
    SettingsError,
)
from referrals.text import clean_name
from storage import events as db_events
from storage import outbox as db_outbox
from storage import programs as db_programs

logger = logging.getLogger(__name__)

PLATFORMS = ("telegram", "discord")
KINDS = ("channel", "group", "supergroup", "bot", "guild")

# key -> (type, minimum, maximum) for the numeric settings; None bounds mean optional.
_NUMERIC: dict[str, tuple[int, int, bool]] = {
    "hold_hours": (0, 720, False),
    "min_account_age_days": (0, 3650, False),
    "referrer_cap": (1, 1_000_000, True),
    "burst_limit": (1, 100_000, True),
    "burst_window_minutes": (1, 10_080, False),
    "reward_cap": (1, 100_000, True),
}
REWARD_CAP_PERIODS = ("week", "month", "year")
SETTING_KEYS = frozenset(
    {
        *_NUMERIC,
        "title",
        "locale",
        "timezone",
        "join_mode",
        "leave_policy",
        "human_check",
        "paused",
        "paused_reason",
        "username",
        "join_url",
        "reward_cap_period",
        "currency",
        "rewards_opt_in",
        "invite_channel_id",
        "labels_allowed",
    }
)


def program_from_row(row: Mapping[Any, Any]) -> Program:
    return Program(**{f.name: row[f.name] for f in fields(Program)})


def validate_settings(
    changes: Mapping[str, Any], *, kind: str, username: str | None
) -> dict[str, Any]:
    """Check and normalise setting changes; raises :class:`SettingsError` naming the key."""
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in SETTING_KEYS:
            raise SettingsError(key, "unknown setting", problem="unknown")
        if key in _NUMERIC:
            low, high, optional = _NUMERIC[key]
            if value is None and optional:
                clean[key] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise SettingsError(
                    key,
                    f"must be a whole number from {low} to {high}",
                    problem="number",
                    low=low,
                    high=high,
                    optional=optional,
                )
            clean[key] = value
        elif key == "title":
            title = clean_name(value, 256) if isinstance(value, str) else ""
            if not title:
                raise SettingsError(key, "must not be empty", problem="empty")
            clean[key] = title
        elif key == "locale":
            if value not in LOCALES:
                raise SettingsError(
                    key, f"must be one of {', '.join(LOCALES)}", problem="choice", options=LOCALES
                )
            clean[key] = value
        elif key == "timezone":
            clean[key] = validate_timezone(value)
        elif key == "join_mode":
            if value not in tuple(JoinMode):
                raise SettingsError(
                    key,
                    "must be 'bot' (through the bot) or 'direct'",
                    problem="choice",
                    options=tuple(JoinMode),
                )
            if value == JoinMode.DIRECT and (username is not None or kind in ("bot", "guild")):
                raise SettingsError(
                    key,
                    "direct join-request links work only for private channels and groups",
                    problem="direct_public",
                )
            clean[key] = str(value)
        elif key == "leave_policy":
            if value not in tuple(LeavePolicy):
                raise SettingsError(
                    key,
                    "must be 'keep' or 'subtract'",
                    problem="choice",
                    options=tuple(LeavePolicy),
                )
            clean[key] = str(value)
        elif key in ("human_check", "paused", "rewards_opt_in", "labels_allowed"):
            if not isinstance(value, bool):
                raise SettingsError(key, "must be true or false")
            clean[key] = value
        elif key == "paused_reason":
            clean[key] = None if value is None else clean_name(str(value), 64)
        elif key == "join_url":
            clean[key] = None if not value else str(value)[:256]
        elif key == "reward_cap_period":
            if value not in REWARD_CAP_PERIODS:
                raise SettingsError(
                    key,
                    "must be week, month or year",
                    problem="choice",
                    options=REWARD_CAP_PERIODS,
                )
            clean[key] = value
        elif key == "currency":
            code = str(value or "").strip().upper()
            if code and not (code.isascii() and code.isalpha() and len(code) == 3):
                raise SettingsError(key, "must be a currency code such as USD or IDR")
            clean[key] = code or None
        elif key == "invite_channel_id":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise SettingsError(key, "must be a channel")
            clean[key] = value
        elif key == "username":
            clean[key] = None if not value else clean_name(str(value), 64)
    return clean


def validate_timezone(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise SettingsError(
            "timezone", "must be an IANA name such as Asia/Jakarta", problem="timezone"
        )
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(
            "timezone",
            f"unknown timezone {value!r}; use an IANA name such as Asia/Jakarta",
            problem="timezone",
        ) from exc
    return value


# Through the bot is the default join mode everywhere (public and private chats): the friend
# opens the bot before joining, so the bot may write to them later — a welcome, a two-sided
# reward, a claim button — which a friend who joined by a direct link and never started the
# bot can never get. Direct join-request links stay a choice for private chats.
DEFAULT_JOIN_MODE = JoinMode.BOT
LOST_RIGHTS = "lost_rights"


class ProgramService:
    """Programs: create, find, settings, pause and resume (also when the bot loses or regains
    its rights), moving to a new chat id, deletion, totals."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def create_program(
        self,
        platform: str,
        destination_id: int,
        kind: str,
        title: str,
        *,
        created_by: int | None = None,
        **settings: Any,
    ) -> Program:
        """Create the program of a destination; raises :class:`ProgramExists` if it has one."""
        if platform not in PLATFORMS:
            raise SettingsError("platform", f"must be one of {', '.join(PLATFORMS)}")
        if kind not in KINDS:
            raise SettingsError("kind", f"must be one of {', '.join(KINDS)}")
        username = settings.get("username")
        values = validate_settings({"title": title, **settings}, kind=kind, username=username)
        values.setdefault("join_mode", str(DEFAULT_JOIN_MODE))
        self._check_join_mode(platform, values["join_mode"])
        now = self._engine.clock.now()
        async with self._engine.db.write() as conn:
            program_id = await db_programs.insert_program(
                conn,
                {
                    **values,
                    "platform": platform,
                    "destination_id": destination_id,
                    "kind": kind,
                    "created_by": created_by,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if program_id is None:
                raise ProgramExists(
                    f"{platform} destination {destination_id} already has a program"
                )
            await db_events.insert_events(
                conn,
                [
                    program_event(
                        program_id,
                        created_by,
                        "program.created",
                        now,
                        {"destination_id": destination_id, "kind": kind},
                    )
                ],
            )
            row = await db_programs.program_by_id(conn, program_id)
        return _present(row, program_id)

    def _check_join_mode(self, platform: str, join_mode: str) -> None:
        """A join mode is a capability of the platform's port (when its adapter runs)."""
        port = self._engine.ports.get(platform)
        supported = getattr(port, "supported_join_modes", None)
        if supported is not None and join_mode not in supported:
            options = tuple(sorted(supported))
            raise SettingsError(
                "join_mode",
                f"{platform} supports the join modes {', '.join(options)}",
                problem="choice",
                options=options,
            )

    async def get_program(self, program_id: int) -> Program:
        program = await self.find_program_by_id(program_id)
        if program is None:
            raise ProgramNotFound(f"no program {program_id}")
        return program

    async def find_program_by_id(self, program_id: int) -> Program | None:
        async with self._engine.db.read() as conn:
            row = await db_programs.program_by_id(conn, program_id)
        return program_from_row(row) if row else None

    async def find_program(self, platform: str, destination_id: int) -> Program | None:
        async with self._engine.db.read() as conn:
            row = await db_programs.program_by_destination(conn, platform, destination_id)
        return program_from_row(row) if row else None

    async def list_programs(self, platform: str | None = None) -> list[Program]:
        async with self._engine.db.read() as conn:
            rows = await db_programs.list_programs(conn, platform)
        return [program_from_row(row) for row in rows]

    async def managed_programs(self, platform: str, user_id: int) -> list[Program]:
        """The programs of ``platform`` that ``user_id`` manages (asked of the platform)."""
        return [
            program
            for program in await self.list_programs(platform)
            if await self._engine.is_manager(program, user_id)
        ]

    async def program_totals(self, program_id: int) -> dict[str, int]:
        """Readers with referrals, referrals by state, and joins nobody referred."""
        async with self._engine.db.read() as conn:
            return await db_programs.program_totals(conn, program_id)

    async def update_settings(
        self, program_id: int, actor_id: int | None, **changes: Any
    ) -> Program:
        """Change settings after checking that ``actor_id`` manages the program.

        ``actor_id=None`` is the operator (CLI, scheduler) and is not checked. A new leave
        policy recounts every reader (one change record per reader whose total moves).
        """
        program = await self.get_program(program_id)
        values = validate_settings(changes, kind=program.kind, username=program.username)
        if "join_mode" in changes and "username" in values:
            validate_settings(
                {"join_mode": changes["join_mode"]}, kind=program.kind, username=values["username"]
            )
        if "join_mode" in values:
            self._check_join_mode(program.platform, values["join_mode"])
        await self._engine.require_manager(program, actor_id)
        now = self._engine.clock.now()
        async with self._engine.db.write() as conn:
            # Held (PostgreSQL): joins, leaves and decisions that count by this program's
            # rules wait, so none of them applies the old policy after the recount.
            locked = await db_programs.program_by_id(conn, program_id, lock=True)
            if locked is None:
                raise ProgramNotFound(f"program {program_id} was deleted meanwhile")
            await db_programs.update_program(conn, program_id, {**values, "updated_at": now})
            if "leave_policy" in values and values["leave_policy"] != locked["leave_policy"]:
                await transitions.recount(
                    conn, program_id, values["leave_policy"] == LeavePolicy.SUBTRACT, now
                )
            await db_events.insert_events(
                conn, [program_event(program_id, actor_id, "program.settings", now, values)]
            )
            row = await db_programs.program_by_id(conn, program_id)
        return _present(row, program_id)

    async def set_paused(
        self, program_id: int, paused: bool, reason: str | None = None, actor_id: int | None = None
    ) -> Program:
        """Pause (nothing confirms) or resume a program."""
        return await self.update_settings(
            program_id, actor_id, paused=paused, paused_reason=reason if paused else None
        )

    async def rights_changed(
        self, platform: str, destination_id: int, *, can_run: bool, actor_id: int | None
    ) -> Program | None:
        """The bot's rights in a destination changed. Without the rights it needs to run the
        program (invite links, join events) the program pauses; when they are back, a program
        paused for that reason resumes. Whoever set the program up, and ``actor_id`` (the
        admin who changed the rights), are told. Returns the program, None if there is none."""
        program = await self.find_program(platform, destination_id)
        if program is None:
            return None
        if can_run and program.paused and program.paused_reason == LOST_RIGHTS:
            paused = False
        elif not can_run and not program.paused:
            paused = True
        else:
            return program
        now = self._engine.clock.now()
        values = {"paused": paused, "paused_reason": LOST_RIGHTS if paused else None}
        async with self._engine.db.write() as conn:
            await db_programs.update_program(conn, program.id, {**values, "updated_at": now})
            await db_events.insert_events(
                conn, [program_event(program.id, None, "program.rights", now, values)]
            )
            tell = {program.created_by, actor_id} - {None}
            await db_outbox.enqueue(
                conn,
                [
                    message(
                        platform,
                        "user",
                        user_id,
                        "program_notice",
                        {
                            "program_title": program.title,
                            "paused": paused,
                            "reason": LOST_RIGHTS if paused else None,
                        },
                        priority=Priority.NOTIFY,
                        now=now,
                        program_id=program.id,
                        key=f"rights:{program.id}:{user_id}:{int(now.timestamp())}:{paused}",
                    )
                    for user_id in sorted(u for u in tell if u is not None)
                ],
            )
            row = await db_programs.program_by_id(conn, program.id)
        return _present(row, program.id)

    async def setup_program(
        self,
        platform: str,
        destination_id: int,
        kind: str,
        title: str,
        *,
        created_by: int | None,
        **settings: Any,
    ) -> tuple[Program, bool]:
        """Create the destination's program, or refresh its title and resume it if it
        exists (setting up twice is harmless). Returns (program, created)."""
        existing = await self.find_program(platform, destination_id)
        if existing is None:
            try:
                program = await self.create_program(
                    platform, destination_id, kind, title, created_by=created_by, **settings
                )
                return program, True
            except ProgramExists:
                existing = await self.find_program(platform, destination_id)
                if existing is None:
                    raise ProgramNotFound(
                        f"the program of {platform} {destination_id} was deleted meanwhile"
                    ) from None
        changes: dict[str, Any] = {"title": title, "paused": False, "paused_reason": None}
        for key in ("username", "join_url"):
            if key in settings:
                changes[key] = settings[key]
        program = await self.update_settings(existing.id, None, **changes)
        return program, False

    async def migrate_destination(self, platform: str, old_id: int, new_id: int) -> Program | None:
        """Keep a program when its chat gets a new id (a group upgraded to a supergroup)."""
        now = self._engine.clock.now()
        async with self._engine.db.write() as conn:
            program_id = await db_programs.move_destination(conn, platform, old_id, new_id, now)
            if program_id is None:
                return None
            await db_events.insert_events(
                conn,
                [
                    program_event(
                        program_id, None, "program.migrated", now, {"from": old_id, "to": new_id}
                    )
                ],
            )
        return await self.get_program(program_id)

    async def delete_program(self, program_id: int, actor_id: int | None) -> DeletedProgram:
        """Delete a program and everything it holds (links, referrals, counts, receipts,
        events, queued messages) after checking that ``actor_id`` manages it (``None``: the
        operator). People's contact records stay: they are not the program's."""
        program = await self.get_program(program_id)
        await self._engine.require_manager(program, actor_id)
        async with self._engine.db.read() as conn:
            totals = await db_programs.program_totals(conn, program_id)
        async with self._engine.db.write() as conn:
            now = self._engine.clock.now()
            if not await db_programs.delete_program(conn, program_id, now, actor_id):
                raise ProgramNotFound(f"no program {program_id}")
        logger.info(
            "program %s (%s %s) deleted by %s",
            program_id,
            program.platform,
            program.destination_id,
            actor_id if actor_id is not None else "the operator",
        )
        return DeletedProgram(program, totals)


def program_event(
    program_id: int, actor_id: int | None, kind: str, at: datetime, data: Mapping[str, Any]
) -> dict[str, Any]:
    """An audit event about a program (not about one person)."""
    return {
        "program_id": program_id,
        "user_id": None,
        "actor_id": actor_id,
        "kind": kind,
        "at": at,
        "data": dict(data),
    }


def _present(row: Mapping[Any, Any] | None, program_id: int) -> Program:
    if row is None:
        raise ProgramNotFound(f"program {program_id} was deleted meanwhile")
    return program_from_row(row)
