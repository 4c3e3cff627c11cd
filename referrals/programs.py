"""Program settings: defaults, validation and conversion from rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from referrals.models import JoinMode, LeavePolicy, Program, SettingsError
from referrals.text import clean_name

PLATFORMS = ("telegram", "discord")
KINDS = ("channel", "group", "supergroup", "bot", "guild")
LOCALES = ("en", "id")

# key -> (type, minimum, maximum) for the numeric settings; None bounds mean optional.
_NUMERIC: dict[str, tuple[int, int, bool]] = {
    "hold_hours": (0, 720, False),
    "min_account_age_days": (0, 3650, False),
    "referrer_cap": (1, 1_000_000, True),
    "burst_limit": (1, 100_000, True),
    "burst_window_minutes": (1, 10_080, False),
}
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
        elif key in ("human_check", "paused"):
            if not isinstance(value, bool):
                raise SettingsError(key, "must be true or false")
            clean[key] = value
        elif key == "paused_reason":
            clean[key] = None if value is None else clean_name(str(value), 64)
        elif key == "join_url":
            clean[key] = None if not value else str(value)[:256]
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
