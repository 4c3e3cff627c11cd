"""Templates: every locale has every template and label, renders every branch the handlers
reach, sends Telegram only HTML it accepts, escapes what people control, and is translated.

The sample contexts below mirror what the code passes (``bots/telegram/handlers/*.py``,
``referrals/joins.py`` ``_join_notifications``, ``referrals/service.py``
``_confirm_notifications``): the same keys, realistic values, every branch.
"""

from __future__ import annotations

import ast
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from jinja2 import meta
from jinja2.runtime import Macro

from bots.render import MACRO_FILES, TEMPLATES, Renderer
from bots.telegram.app import READER_COMMANDS
from bots.views import ERROR_DEFAULTS
from referrals.locale import LOCALES

ROOT = Path(__file__).resolve().parents[2]
SOURCE_PACKAGES = ("bots", "referrals", "delivery", "rewards", "leaderboard")
TELEGRAM_TAGS = {"b", "i", "u", "s", "code", "pre", "a", "blockquote", "tg-spoiler"}
TELEGRAM_ENTITIES = {"lt", "gt", "amp", "quot"}
MESSAGE_LIMIT = 4096  # Telegram's limit, counted after parsing: the raw HTML is an upper bound

EVIL = '<b>Eve</b> & "x"'
EVIL_ESCAPED = "&lt;b&gt;Eve&lt;/b&gt; &amp;"
# Values people control: names, titles, labels, a typed setting name and its problem.
USER_KEYS = ("program_title", "referrer_name", "name", "chat_title", "label", "key", "message")
USER_LISTS = ("friends", "programs")

AT = "2026-11-20T09:30:00+00:00"
LATER = "2026-11-23T09:30:00+00:00"
LEFT = "2026-11-24T18:05:00+00:00"
TITLE = "Daily Brief"
ENTRY_MARKS = ("✅", "⏳", "🔎", "❌", "➖")  # the receipt's marks, one entry per mark

ERROR_CODES = (
    "bad_label",
    "too_many_links",
    "program_paused",
    "platform_unavailable",
    "not_allowed",
    "not_reviewable",
    "not_reversible",
    "undo_usage",
    "program_usage",
    "unknown_command",
    "private_only",
    "group_only",
    "board_period",
    "board_no_season",
    "program_not_found",  # engine codes without a text of their own: the generic one
    "program_exists",
    "error",
    "milestone_not_found",
    "grant_not_found",
    "grant_not_decidable",
    "milestone_usage",
    "codes_usage",
    "flow_file",
    "file_too_big",
    "board_usage",
    "season_usage",
    "season_not_found",
)


def _item(kind: str, state: str, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """One receipt line as ``send_stats`` builds it (times as ISO text, via the outbox)."""
    item = {
        "kind": kind,
        "name": "Bob",
        "state": state,
        "reason": reason,
        "at": AT,
        "hold_until": None,
        "left_at": None,
    }
    item.update(extra)
    return item


RECEIPT_PAGE_1 = [
    _item("referral", "pending", hold_until=LATER),
    _item("referral", "held", "burst", name="Cy"),
    _item("referral", "held", "over_cap", name=""),
    _item("referral", "held", None, name="Dee"),
    _item("referral", "confirmed", name="Eko"),
    _item("referral", "confirmed", left_at=LEFT, name="Fia"),
    _item("attempt", "not_counted", "counted_for_other", name="Gus"),
    _item("attempt", "not_counted", "rejoin", name="Hana"),
]
RECEIPT_PAGE_2 = [
    _item("referral", "rejected", "left_during_hold"),
    _item("referral", "rejected", "removed_during_hold"),
    _item("referral", "rejected", "self_referral"),
    _item("referral", "rejected", "account_too_new"),
    _item("referral", "rejected", "manual"),
    _item("referral", "rejected", "no_link"),  # a reason without a text of its own
]
LONG_NAME = "Ω" * 64 + " " + "名" * 64  # Telegram first and last names are up to 64 each
RECEIPT_LONG = [_item("referral", "pending", hold_until=LATER, name=LONG_NAME) for _ in range(8)]


NO_REWARDS: dict[str, Any] = {
    "rewards": [],
    "friend_reward": None,
    "reward_cap": None,
    "reward_cap_period": "year",
    "rewardable": 0,
    "next_title": None,
    "next_missing": None,
}
RULE = {
    "id": 1,
    "role": "milestone",
    "is_friend": False,
    "is_prize": False,
    "count": 3,
    "step": None,
    "title": EVIL,
    "kind": "message",
    "approval": "auto",
    "paused": False,
    "cost": None,
    "chat_title": None,
    "question": None,
    "pool_id": None,
}
LADDER: dict[str, Any] = {
    "rewards": [RULE, {**RULE, "id": 2, "count": None, "step": 5, "title": "Code"}],
    "friend_reward": "Welcome gift",
    "reward_cap": 12,
    "reward_cap_period": "year",
    "rewardable": 2,
    "next_title": "VIP chat",
    "next_missing": 1,
}
GRANT = {
    "id": 7,
    "title": EVIL,
    "state": "delivered",
    "below_rung": False,
    "kind": "coupon",
    "source": "milestone",
    "rung": 3,
    "code": "CODE-123",
    "answer": None,
    "reader_id": 1001,
    "unlocked_at": AT,
    "delivered_at": LATER,
}


def _stats(
    items: list[dict[str, Any]],
    page: int = 1,
    pages: int = 1,
    subtract: bool = False,
    rewards: dict[str, Any] = NO_REWARDS,
) -> dict[str, Any]:
    return {
        **rewards,
        "program_title": TITLE,
        "counted": 2,
        "pending": 1,
        "held": 3,
        "not_counted": 5,
        "subtract": subtract,
        "page": page,
        "pages": pages,
        "items": items,
    }


def _settings(**changes: Any) -> dict[str, Any]:
    context = {
        "program_title": TITLE,
        "hold_hours": 72,
        "join_mode": "bot",
        "leave_policy": "keep",
        "locale": "en",
        "timezone": "UTC",
        "human_check": False,
        "paused": False,
        "saved": False,
    }
    context.update(changes)
    return context


def _invite_card(**changes: Any) -> dict[str, Any]:
    context = {
        **NO_REWARDS,
        "program_title": TITLE,
        "url": "https://t.me/+AbCdEf123",
        "label": "",
        "hold_hours": 72,
        "counted": 3,
        "pending": 0,
        "held": 0,
        "created_new": False,
        "replaced": False,
    }
    context.update(changes)
    return context


def _notify_joined(friends: list[str], count: int, states: list[str], hold: int) -> dict[str, Any]:
    return {
        "program_title": TITLE,
        "friends": friends,
        "count": count,
        "states": states,
        "hold_until": LATER,
        "hold_hours": hold,
    }


def _error(code: str, **details: Any) -> dict[str, Any]:
    """What ``Reply.error`` and ``answer_error`` pass (``ERROR_DEFAULTS`` filled in)."""
    return {**ERROR_DEFAULTS, "code": code, **details}


def _request(referrer_name: str | None, friend_reward: bool = False) -> dict[str, Any]:
    """``join_requested``: the underscore keys are dropped before rendering (``_public``)."""
    return {"program_title": TITLE, "referrer_name": referrer_name, "friend_reward": friend_reward}


def _delivered(**changes: Any) -> dict[str, Any]:
    context = {
        "program": TITLE,
        "title": EVIL,
        "kind": "message",
        "source": "milestone",
        "code": None,
        "access_url": None,
        "access_expires_at": None,
        "question": None,
        "custom_html": "Thanks <b>Ana</b>!",
        "link": "https://t.me/+AbCdEf123",
        "count": 3,
        "next_title": "VIP chat",
        "next_missing": 7,
    }
    context.update(changes)
    return context


def _flow(step: str, **changes: Any) -> dict[str, Any]:
    context = {"step": step, "title": EVIL, "count": 3, "every": None, "role": "milestone"}
    context.update(changes)
    return context


def _board(period: str, **extra: Any) -> dict[str, Any]:
    entries = [
        {"rank": 1, "name": "Ana", "number": 3, "count": 9, "you": False},
        {"rank": 2, "name": "", "number": 7, "count": 4, "you": True},
        {"rank": 2, "name": "Bob", "number": 9, "count": 4, "you": False},
    ]
    season = _season("top") if period == "season" else None
    base = {
        "program_title": TITLE,
        "timezone": "Asia/Jakarta",
        "period": period,
        "key": "all",
        "starts_at": AT,
        "ends_at": LATER,
        "season": season,
        "entries": entries,
        "page": 1,
        "pages": 1,
        "total": 3,
        "you": {"count": 4, "rank": 2, "to_next": 5, "excluded": False},
        "frozen": False,
        "posted": False,
    }
    return {**base, **extra}


def _season(mode: str, **extra: Any) -> dict[str, Any]:
    return {
        "season_id": 1,
        "name": "Spring Cup",
        "starts_at": AT,
        "ends_at": LATER,
        "mode": mode,
        "winners": 2,
        "min_referrals": 3,
        "seed_hash": "ab" * 32 if mode == "draw" else None,
        "final": False,
        "timezone": "Asia/Jakarta",
        "prize": None,
        "claim_days": 7,
        **extra,
    }


BOARD_SAMPLES: dict[str, list[dict[str, Any]]] = {
    "board": [
        _board("all"),
        _board("week", pages=3, page=2, total=25),
        _board(
            "month", entries=[], you={"count": 0, "rank": None, "to_next": 1, "excluded": False}
        ),
        _board("season", frozen=True, you=None, posted=True),
        _board("all", you={"count": 9, "rank": 1, "to_next": None, "excluded": False}),
        _board("all", you={"count": 9, "rank": None, "to_next": None, "excluded": True}),
    ],
    "board_sent_privately": [{"name": "Ana"}],
    "seasons": [
        {"program_title": TITLE, "timezone": "UTC", "seasons": []},
        {
            "program_title": TITLE,
            "timezone": "Asia/Jakarta",
            "seasons": [
                _season("top", name=EVIL, prize=EVIL, final=True),
                _season("draw", season_id=2),
            ],
        },
    ],
    "season_prize_pick": [
        {
            "step": "ask",
            "name": EVIL,
            "prizes": [
                {"id": 4, "title": EVIL, "kind": "message"},
                {"id": 5, "title": "Codes", "kind": "coupon"},
            ],
        },
        {"step": "cancelled", "name": EVIL, "prizes": []},
        {"step": "cancelled", "name": "", "prizes": []},
        {"step": "expired", "name": "", "prizes": []},
    ],
    "prize_claim": [
        {"outcome": outcome, "title": EVIL, "place": 2, "claim_days": 7}
        for outcome in (
            "claimed",
            "already",
            "pending",
            "rejected",
            "expired",
            "not_winner",
            "no_prize",
        )
    ],
    "season_prizes_unclaimed": [
        {
            "program": TITLE,
            "season": EVIL,
            "season_id": 3,
            "winners": [
                {"place": 2, "name": EVIL, "number": 7, "title": "Mug"},
                {"place": 3, "name": "", "number": 9, "title": "Mug"},
            ],
        },
        {
            "program": TITLE,
            "season": "Spring Cup",
            "season_id": 3,
            "winners": [{"place": 1, "name": "Ana", "number": 3, "title": EVIL}],
        },
    ],
    "season_started": [_season("top"), _season("draw", prize=EVIL)],
    "season_prize": [
        _season("top", prize=EVIL),
        _season("draw", winners=1, prize="Mug"),
        _season("top"),
    ],
    "season_final": [
        _season(
            "top",
            results={
                "mode": "top",
                "winners": [
                    {"place": 1, "name": "Ana", "number": 3, "count": 9, "ticket": None},
                    {"place": 2, "name": "", "number": 7, "count": 4, "ticket": None},
                ],
                "seed": None,
                "seed_hash": None,
                "tickets": None,
                "ranges": None,
                "entrants": 2,
            },
        ),
        _season(
            "top",
            prize=EVIL,
            claim_until=LATER,
            results={
                "mode": "top",
                "winners": [
                    {
                        "place": 1,
                        "name": "Ana",
                        "number": 3,
                        "count": 9,
                        "ticket": None,
                        "claim": False,
                    },
                    {
                        "place": 2,
                        "name": "",
                        "number": 7,
                        "count": 4,
                        "ticket": None,
                        "claim": True,
                    },
                ],
                "seed": None,
                "seed_hash": None,
                "tickets": None,
                "ranges": None,
                "entrants": 2,
            },
        ),
        _season(
            "draw",
            results={
                "mode": "draw",
                "winners": [{"place": 1, "name": "Ana", "number": 3, "count": 9, "ticket": 4}],
                "seed": "cd" * 32,
                "seed_hash": "ab" * 32,
                "tickets": 13,
                "ranges": "#3:0-8,#7:9-12",
                "entrants": 2,
            },
        ),
        _season(
            "top",
            results={
                "mode": "top",
                "winners": [],
                "seed": None,
                "seed_hash": None,
                "tickets": None,
                "ranges": None,
                "entrants": 0,
            },
        ),
    ],
}
BOARD_LABELS: dict[str, list[dict[str, Any]]] = {
    name: [{}]
    for name in (
        *("period_week", "period_month", "period_all", "period_season"),
        *("board_prev", "board_next"),
    )
}


SAMPLES: dict[str, list[dict[str, Any]]] = {
    # Discord's own texts
    "discord_setup": [
        {
            "step": "done",
            "program_title": "<b>R</b>",
            "channel_name": "@everyone",
            "rewards_opt_in": False,
            "missing": [],
        },
        {
            "step": "done",
            "program_title": "R",
            "channel_name": "g",
            "rewards_opt_in": True,
            "missing": ["manage_roles"],
        },
        {"step": "not_manager"},
        {
            "step": "missing",
            "missing": [
                "manage_guild",
                "manage_channels",
                "create_instant_invite",
                "manage_roles",
                "members_intent",
                "other",
            ],
            "channel_name": "g",
        },
    ],
    "discord_help": [{"manager": True}, {"manager": False}],
    "discord_error": [
        {
            "code": c,
            "key": "k",
            "message": "m",
            "role_name": "<@&1>",
            "title": "<b>T</b>",
            "number": 7,
        }
        for c in (
            "not_set_up",
            "not_manager",
            "guild_only",
            "labels_off",
            "invite_cap",
            "role_above",
            "role_rights",
            "unknown_setting",
            "bad_value",
            "board_period",
            "pool_name",
            "pool_not_found",
            "one_reward",
            "answer_closed",
            "unexpected",
            "unknown_milestone",
            "platform",
            "x",
        )
    ],
    "discord_codes": [
        {
            "program_title": "P",
            "pools": [{"id": 1, "name": "<b>kopi</b>", "total": 3, "free": 1}],
            "imported": {
                "pool_id": 1,
                "added": 1,
                "blank": 1,
                "duplicate_in_file": 2,
                "already_in_pool": 0,
                "free": 1,
            },
            "pool_name": "<b>kopi</b>",
        },
        {"program_title": "P", "pools": [], "imported": None, "pool_name": ""},
    ],
    "discord_rewards_policy": [{"program_title": "P", "step": s} for s in ("note", "on", "off")],
    "discord_rewards": [
        {
            "program_title": "P",
            "enabled": True,
            "items": [
                {"title": "<b>T</b> @everyone", "count": 3, "state": st}
                for st in (
                    "delivered",
                    "undeliverable",
                    "unlocked",
                    "fulfilled",
                    "fulfilling",
                    "awaiting_answer",
                )
            ],
            "counted": 2,
            "next_title": "N",
            "next_count": 5,
            "unreachable": True,
        },
        {
            "program_title": "P",
            "enabled": False,
            "items": [],
            "counted": 0,
            "next_title": None,
            "next_count": None,
            "unreachable": False,
        },
    ],
    "discord_milestones": [
        {
            "program_title": "P",
            "items": [{"id": 1, "title": "<i>T</i>", "count": 2, "kind": "role", "paused": False}],
            "saved": True,
            "granted": 1,
        },
    ],
    "invite_revoked": [
        {"program_title": "P", "why": "pruned", "label": ""},
        {"program_title": "P", "why": "deleted", "label": "x"},
    ],
    **BOARD_SAMPLES,
    "choose_program": [{"purpose": "read"}, {"purpose": "manage"}],
    "error": [
        *(_error(code) for code in ERROR_CODES),
        _error("bad_setting", key="hold_hours", problem="number", low=0, high=720),
        _error("bad_setting", key="referrer_cap", problem="number", low=1, high=9, optional=True),
        _error("bad_setting", key="burst_limit", problem="number", low=1, high=9, optional=True),
        _error("bad_setting", key="min_account_age_days", problem="number", low=0, high=3650),
        _error("bad_setting", key="locale", problem="choice", options=["en", "id"]),
        _error("bad_setting", key="leave_policy", problem="choice", options=["keep", "subtract"]),
        _error("bad_setting", key="timezone", problem="timezone"),
        _error("bad_setting", key="join_mode", problem="direct_public"),
        _error("bad_setting", key="colour", problem="unknown"),  # what the manager typed
        _error("bad_setting", key="hold_hours", problem="usage"),
        _error("bad_setting", key="human_check", problem="invalid"),
        _error("bad_setting", key="reward_cap", problem="number", low=1, high=9, optional=True),
        _error("bad_setting", key="reward_cap_period", problem="choice", options=["week"]),
        _error("bad_setting", key="currency", problem="invalid"),
        *(
            _error("bad_milestone", problem=problem, message="x", high=64)
            for problem in (
                "template",
                "markup",
                "length",
                "chat",
                "count",
                "title",
                "cost",
                "approval",
                "answer",
                "pool",
            )
        ),
        *(
            _error("bad_coupon_file", problem=problem, message="x", high=3)
            for problem in ("too_long", "empty", "extension", "not_text")
        ),
        *(
            _error("board_setting", key=key, problem=problem)
            for key, problem in (
                ("schedule", "fields"),
                ("schedule", "minute"),
                ("schedule", "cron"),
                ("post_chat", "not_admin"),
                ("post_chat", "cannot_post"),
                ("member", None),
                ("week_start", None),
                ("season_name", None),
                ("season_dates", None),
                ("season_mode", None),
                ("season_winners", None),
                ("unknown", None),
            )
        ),
        *(
            _error("season_prize", problem=problem, message=EVIL)
            for problem in (
                "final",
                "other_program",
                "not_prize",
                "paused",
                "ambiguous",
                "unknown",
            )
        ),
    ],
    "forget": [
        {"step": "confirm", "by_command": False},
        {"step": "confirm", "by_command": True},
        {"step": "done", "by_command": False},
        {"step": "cancelled", "by_command": False},
    ],
    "friend_card": [
        {"program_title": TITLE, "referrer_name": "Ana", "join_url": "https://t.me/dailybrief"},
        {"program_title": TITLE, "referrer_name": "", "join_url": "https://t.me/+AbCdEf123"},
        {"program_title": TITLE, "referrer_name": None, "join_url": None},
    ],
    "friend_subscribed": [
        {"program_title": TITLE, "referrer_name": "Ana"},
        {"program_title": TITLE, "referrer_name": None},
    ],
    "help": [{"manager": False}, {"manager": True}],
    "human_check": [_request("Ana"), _request(None)],
    "human_check_passed": [{"program_title": TITLE}],
    "invite_card": [
        _invite_card(),
        _invite_card(label="whatsapp", hold_hours=0, created_new=True),
        _invite_card(hold_hours=1, created_new=True, replaced=True, pending=2, held=1),
        _invite_card(counted=0, pending=1),
        _invite_card(**LADDER),
    ],
    "invite_sent_privately": [{"name": "Ana"}],
    "join_welcome": [_request("Ana"), _request(None), _request("Ana", friend_reward=True)],
    "lang": [{"changed": False}, {"changed": True}],
    "link_problem": [
        {"problem": "unknown_link"},
        {"problem": "self_referral", "program_title": TITLE, "referrer_name": "Ana"},
        {"problem": "already_member", "program_title": TITLE, "referrer_name": None},
        {"problem": "already_remembered", "program_title": TITLE, "referrer_name": "Ana"},
        {"problem": "already_remembered", "program_title": TITLE, "referrer_name": None},
    ],
    "no_programs": [{"purpose": "read"}, {"purpose": "manage"}],
    "notify_confirmed": [
        {"program_title": TITLE, "friends": ["Bob"], "count": 1, "counted": 1},
        {"program_title": TITLE, "friends": [""], "count": 1, "counted": 4},
        {"program_title": TITLE, "friends": ["Bob", "", "Cy"], "count": 3, "counted": 12},
    ],
    "review": [
        {
            "program_title": TITLE,
            "timezone": "Asia/Jakarta",
            "total": 12,
            "page": 2,
            "pages": 2,
            "items": [
                {"name": "Bob", "referrer_name": "Ana", "reason": "burst", "joined_at": AT},
                {"name": "", "referrer_name": "", "reason": "over_cap", "joined_at": AT},
                {"name": "Cy", "referrer_name": "Ana", "reason": None, "joined_at": AT},
            ],
            "decided": ["confirmed", "rejected"],
            "undo": False,
        },
        {
            "program_title": TITLE,
            "timezone": "UTC",
            "total": 0,
            "page": 1,
            "pages": 1,
            "items": [],
            "decided": ["rejected"],
            "undo": True,
        },
        {
            "program_title": TITLE,
            "timezone": "UTC",
            "total": 1,
            "page": 1,
            "pages": 1,
            "items": [{"name": "Bob", "referrer_name": "Ana", "reason": "burst", "joined_at": AT}],
            "decided": ["confirmed"],
            "undo": True,
        },
        {
            "program_title": TITLE,
            "timezone": "UTC",
            "total": 1,
            "page": 1,
            "pages": 1,
            "items": [{"name": "Bob", "referrer_name": "Ana", "reason": "burst", "joined_at": AT}],
            "decided": [],
            "undo": False,
        },
    ],
    "undo": [
        {"program_title": TITLE, "name": "Bob", "referrer_name": "Ana", "state": "confirmed"},
        {"program_title": TITLE, "name": "", "referrer_name": "", "state": "rejected"},
    ],
    "program_deleted": [
        {"program_title": TITLE, "step": "confirm", "readers": 1, "confirmed": 5},
        {"program_title": TITLE, "step": "confirm", "readers": 40, "confirmed": 1},
        {"program_title": TITLE, "step": "done", "readers": 40, "confirmed": 1},
        {"program_title": TITLE, "step": "cancelled", "readers": 0, "confirmed": 0},
    ],
    "notify_reviewed": [
        {
            "program_title": TITLE,
            "approved": ["Bob", ""],
            "approved_count": 2,
            "rejected": [],
            "rejected_count": 0,
            "undo": False,
            "counted": 7,
        },
        {
            "program_title": TITLE,
            "approved": [],
            "approved_count": 0,
            "rejected": ["Cy"],
            "rejected_count": 12,
            "undo": True,
            "counted": 0,
        },
    ],
    "notify_joined": [
        _notify_joined(["Bob"], 1, ["pending"], 72),
        _notify_joined([""], 1, ["pending"], 1),
        _notify_joined(["Bob"], 1, ["confirmed"], 0),
        _notify_joined(["Bob"], 1, ["held"], 72),
        _notify_joined(["Bob"], 1, ["rejected"], 72),  # account too new
        _notify_joined(["Bob", "", "Cy"], 3, ["held", "pending"], 24),
        _notify_joined(["Bob", "Cy"], 2, ["confirmed"], 0),
        _notify_joined(["Bob", "Cy"], 2, ["held"], 0),
        _notify_joined([f"Friend {n}" for n in range(10)], 14, ["pending"], 48),
    ],
    "open_bot": [
        {"name": "Ana", "for_setup": False},
        {"name": "Ana", "for_setup": True},
        {"name": "Ana", "for_setup": False, "purpose": "settings"},
        {"name": "Ana", "for_setup": False, "purpose": "export"},
        {"name": "Ana", "for_setup": False, "purpose": "stats"},
    ],
    "post_invite": [
        {"program_title": TITLE, "by_command": False},
        {"program_title": TITLE, "by_command": True},
    ],
    "posted": [
        {"ok": True, "pinned": False, "program_title": TITLE},
        {"ok": True, "pinned": True, "program_title": TITLE},
        {"ok": False, "pinned": False, "program_title": TITLE},
    ],
    "program_notice": [
        {"program_title": TITLE, "paused": True, "reason": "lost_rights"},
        {"program_title": TITLE, "paused": True, "reason": None},
        {"program_title": TITLE, "paused": False, "reason": None},
    ],
    "program_state": [{"paused": True}, {"paused": False}],
    "program_totals": [
        {
            "program_title": TITLE,
            "paused": paused,
            "readers": 4,
            "confirmed": 10,
            "pending": 3,
            "held": 1,
            "rejected": 2,
            "unattributed": 25,
            "grants": grants,
            "codes_used": 3 if grants else 0,
            "codes_left": 7 if grants else 0,
            "cost": "7.50" if grants else None,
            "cost_per_referral": "0.75" if grants else None,
            "currency": "USD",
            "prizes_to_claim": 2 if grants else 0,
            "prizes_unclaimed": 1 if grants else 0,
        }
        for paused, grants in ((False, {}), (True, {"delivered": 3, "waiting_stock": 1}))
    ],
    "discord_settings": [
        _settings(
            min_account_age_days=0,
            referrer_cap=None,
            burst_limit=None,
            burst_window_minutes=60,
            labels_allowed=False,
            rewards_opt_in=False,
        ),
        _settings(
            hold_hours=1,
            leave_policy="subtract",
            locale="id",
            min_account_age_days=7,
            referrer_cap=50,
            burst_limit=5,
            burst_window_minutes=10,
            labels_allowed=True,
            rewards_opt_in=True,
            paused=True,
            saved=True,
        ),
    ],
    "settings": [
        _settings(),
        _settings(
            hold_hours=1,
            join_mode="direct",
            leave_policy="subtract",
            locale="id",
            timezone="Asia/Jakarta",
            human_check=True,
            paused=True,
            saved=True,
        ),
        _settings(hold_hours=0, saved=True),
    ],
    "setup": [
        {"step": "offer", "chat_title": TITLE, "missing": []},
        {"step": "missing", "chat_title": TITLE, "missing": ["can_invite_users"]},
        {
            "step": "missing",
            "chat_title": TITLE,
            "missing": ["can_invite_users", "can_post_messages"],
        },
        {"step": "missing", "chat_title": "-1001234567890", "missing": ["admin"]},
        {"step": "missing", "chat_title": TITLE, "missing": ["can_pin_messages"]},
        {"step": "not_admin", "chat_title": TITLE},
        {"step": "anonymous", "chat_title": TITLE},
        {"step": "done", "program_title": TITLE, "join_mode": "bot", "hold_hours": 72},
        {"step": "done", "program_title": TITLE, "join_mode": "direct", "hold_hours": 1},
        {"step": "done", "program_title": TITLE, "join_mode": "direct", "hold_hours": 0},
        {"step": "bot_mode"},
        {"step": "owner_only"},
    ],
    "share_text": [{"program_title": TITLE}],
    "stats": [
        _stats([]),
        _stats(RECEIPT_PAGE_1, 1, 2),
        _stats(RECEIPT_PAGE_2, 2, 2),
        _stats(RECEIPT_LONG, 3, 7),
        _stats(RECEIPT_PAGE_1, 1, 2, subtract=True),  # a confirmed friend who left
        _stats([], rewards=LADDER),
    ],
    "reward_delivered": [
        _delivered(),
        _delivered(kind="coupon", code="CODE-123", custom_html=None, link=None),
        _delivered(kind="chat", access_url="https://t.me/+RwD123", access_expires_at=LATER),
        _delivered(kind="manual", question="Your postal address?", next_title=None),
        _delivered(source="friend", custom_html=None),
        _delivered(source="prize", season=EVIL, place=1, next_title=None),
        _delivered(source="prize", season=None, place=2, kind="coupon", code="WIN-1"),
    ],
    "reward_waiting_stock": [{"program": TITLE, "title": EVIL}],
    "reward_fulfilled": [{"program": TITLE, "title": EVIL}],
    "pool_low": [{"program": TITLE, "pool": EVIL, "free": 25, "total": 300}],
    "pool_empty": [{"program": TITLE, "pool": EVIL, "free": 0, "total": 300}],
    "grants_waiting": [{"program": TITLE, "count": 1}, {"program": TITLE, "count": 4}],
    "fulfilment_waiting": [{"program": TITLE, "title": EVIL}],
    "rewards": [
        {**NO_REWARDS, "program_title": TITLE, "timezone": "UTC", "grants": []},
        {
            **LADDER,
            "program_title": TITLE,
            "timezone": "UTC",
            "grants": [GRANT, {**GRANT, "id": 8, "state": "waiting_stock", "code": None}],
        },
    ],
    "milestones": [
        {
            "program_title": TITLE,
            "currency": "",
            "milestones": [],
            "pools": [],
            "done": "",
        },
        {
            "program_title": TITLE,
            "currency": "USD",
            "milestones": [
                RULE,
                {**RULE, "id": 2, "count": None, "step": 5, "approval": "manual", "cost": "2.50"},
                {**RULE, "id": 3, "role": "friend", "is_friend": True, "approval": "semi"},
                {**RULE, "id": 4, "paused": True},
                {
                    **RULE,
                    "id": 5,
                    "role": "prize",
                    "is_prize": True,
                    "count": None,
                    "kind": "coupon",
                },
            ],
            "pools": [{"id": 1, "name": EVIL, "total": 100, "free": 40}],
            "done": "removed",
        },
    ],
    "milestone_flow": [
        _flow("kind"),
        _flow("kind", role="friend", count=None),
        _flow("kind", every=5, count=None),
        _flow("kind", role="prize", count=None),
        _flow("confirm", role="prize", count=None, readers=0, grants=0, codes_needed=0),
        _flow("saved", role="prize", count=None, granted=0),
        _flow("message"),
        _flow("coupon", pools=True),
        _flow("chat"),
        _flow("question"),
        _flow("confirm", readers=2, grants=3, codes_needed=3, codes_free=10),
        _flow("confirm", readers=0, grants=0, codes_needed=0, codes_free=None),
        _flow("saved", granted=2),
        _flow("cancelled"),
        _flow("expired"),
        _flow("codes"),
        _flow("policy", readers=2, grants=3, codes_needed=3, codes_free=1),
        _flow("policy", readers=1, grants=1, codes_needed=0, codes_free=None),
    ],
    "coupon_import": [
        {
            "pool_id": 1,
            "added": 10,
            "blank": 0,
            "duplicate_in_file": 0,
            "already_in_pool": 0,
            "free": 10,
        },
        {
            "pool_id": 1,
            "added": 1,
            "blank": 2,
            "duplicate_in_file": 3,
            "already_in_pool": 4,
            "free": 9,
        },
    ],
    "grant_queue": [
        {
            "program_title": TITLE,
            "timezone": "UTC",
            "which": "approval",
            "grants": [],
            "total": 0,
            "page": 1,
            "pages": 1,
            "done": "",
        },
        {
            "program_title": TITLE,
            "timezone": "UTC",
            "which": "approval",
            "grants": [GRANT, {**GRANT, "id": 9, "below_rung": True, "state": "below_rung"}],
            "total": 12,
            "page": 2,
            "pages": 3,
            "done": "approved",
        },
        {
            "program_title": TITLE,
            "timezone": "UTC",
            "which": "fulfilment",
            "grants": [{**GRANT, "answer": EVIL, "reader_id": None}],
            "total": 1,
            "page": 1,
            "pages": 1,
            "done": "fulfilled",
        },
    ],
    "answer_prompt": [
        {"title": EVIL, "question": "Your postal address?", "saved": False},
        {"title": EVIL, "question": "", "saved": True},
    ],
    "chat_id": [{"chat_id": -1001234567890}],
    "board_settings": [
        {
            "program_title": TITLE,
            "public_names": True,
            "week_start": 0,
            "schedule": None,
            "schedule_period": "week",
            "post_chat_id": None,
            "timezone": "UTC",
            "saved": False,
        },
        {
            "program_title": TITLE,
            "public_names": False,
            "week_start": 6,
            "schedule": "0 9 * * 1",
            "schedule_period": "month",
            "post_chat_id": -1001234567890,
            "timezone": "Asia/Jakarta",
            "saved": True,
        },
    ],
    "season_created": [
        {
            "program_title": TITLE,
            **_season(mode, name=EVIL, timezone="UTC", **extra),
        }
        for mode, extra in (
            ("top", {"prizes": True, "changed": False}),
            ("draw", {"prizes": False, "changed": False}),
            ("top", {"prizes": True, "changed": True, "prize": EVIL}),
            ("top", {"prizes": True, "changed": True}),
            ("draw", {"prizes": True, "changed": False, "prize": "Mug", "final": True}),
        )
    ],
    "welcome": [
        {"name": "Ana", "programs": []},
        {"name": "Ana", "programs": [TITLE]},
        {"name": "Ana", "programs": [TITLE, "Weekend Reads", "Kopi Pagi"]},
        {"name": "", "programs": [TITLE]},
    ],
    # the reports (bots/report_views.py)
    "export_file": [
        {
            "program_title": TITLE,
            "source": source,
            "form": form,
            "part": part,
            "parts": parts,
            "size": "12 KB",
            "original": "62.3 MB",
            "first": first,
            "count": count,
        }
        for source, form, part, parts, first, count in (
            ("readers", "csv", 1, 1, True, 3),
            ("referrals", "zip", 1, 1, False, 3),
            ("grants", "part", 2, 3, False, 5),
            ("referrals", "csv", 1, 1, True, 1),
        )
    ],
    "program_chart": [
        {
            "program_title": TITLE,
            "timezone": "Asia/Jakarta",
            "first_day": "2026-10-25",
            "last_day": "2026-11-23",
        }
    ],
    "program_stats": [
        {
            "program_title": TITLE,
            "timezone": "Asia/Jakarta",
            "first_day": "2026-10-25",
            "last_day": "2026-11-23",
            "last_days": total,
            "last_days_counted": counted,
            "best_day": {"day": "2026-11-20", "total": 4} if total else None,
            "referrals": total,
            "counted": counted,
            "waiting": 2 if total else 0,
            "rejected": 1 if total else 0,
            "left": 1 if total else 0,
            "rate": 83 if total else None,
            "labels": (
                [
                    {"label": "whatsapp", "referrals": 5, "counted": 4, "rate": 80},
                    {"label": "", "referrals": 3, "counted": 1, "rate": None},
                ]
                if total
                else []
            ),
            "grants": grants,
            "codes_used": 3 if grants else 0,
            "codes_left": 7 if grants else 0,
            "currency": "USD" if grants else "",
            "cost": "7.50" if grants else None,
            "cost_per_referral": "1.50" if grants else None,
        }
        for total, counted, grants in ((8, 5, {"delivered": 3}), (0, 0, {}))
    ],
    "report_privately": [{"name": "Ana", "what": "export"}, {"name": "Ana", "what": "stats"}],
}

# Arguments for label macros that take some (the code passes them as ``args``).
LABEL_ARGS: dict[str, list[dict[str, Any]]] = {
    "setup": [{"title": TITLE}, {"title": ""}],
    "program": [{"title": TITLE}],
    "chart_x": [{"timezone": "Asia/Jakarta"}],
    "hold": [{"hours": 0}, {"hours": 72}],
    "join_mode": [{"mode": "bot"}, {"mode": "direct"}],
    "leave_policy": [{"policy": "keep"}, {"policy": "subtract"}],
    "locale": [{"code": "en"}, {"code": "id"}],
    "timezone": [{"zone": "UTC"}, {"zone": "Asia/Jakarta"}],
    "human_check_toggle": [{"on": True}, {"on": False}],
    "undo_confirm": [{"state": "confirmed"}, {"state": "rejected"}],
    "approve_one": [{"name": "Bob"}, {"name": ""}],
    "reject_one": [{"name": "Bob"}, {"name": ""}],
    "approve_all": [{"name": "Ana", "count": 3}, {"name": "", "count": 2}],
    "reject_all": [{"name": "Ana", "count": 3}, {"name": "", "count": 2}],
    "use_pool": [{"name": "Spring codes", "free": 40}],
    "pause_milestone": [{"id": 3}],
    "resume_milestone": [{"id": 3}],
    "remove_milestone": [{"id": 3}],
    "resend": [{"title": "Sticker pack"}],
    "approve_grant": [{"id": 7}],
    "reject_grant": [{"id": 7}],
    "fulfilled_grant": [{"id": 7}],
    "answer_form": [{"title": "T-shirt"}],
    "pick_prize": [{"id": 4, "title": "Mug"}],
    **BOARD_LABELS,
}
# Labels that are the same in every language (brand names, a title).
# The one-friend review buttons are an emoji and a name in every language.
UNTRANSLATED_LABELS = {
    "share_whatsapp",
    "share_x",
    "program",
    "approve_one",
    "reject_one",
    "resend",
    "approve_grant",
    "reject_grant",
    "pick_prize",
}

CASES = [(name, i) for name, samples in SAMPLES.items() for i in range(len(samples))]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def _render(renderer: Renderer, locale: str, name: str, i: int) -> str:
    return renderer.text(locale, name, **SAMPLES[name][i])


def _source(locale: str, name: str) -> str:
    return (TEMPLATES / locale / f"{name}.html.j2").read_text(encoding="utf-8")


def _macros(renderer: Renderer, locale: str, file: str = "labels") -> dict[str, Macro]:
    module = renderer.env.get_template(f"{locale}/{file}.html.j2").module
    return {key: value for key, value in vars(module).items() if isinstance(value, Macro)}


class _TelegramHTML(HTMLParser):
    """Collects what Telegram's HTML parse mode would refuse."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"tag <{tag}>")
        if tag == "a" and not dict(attrs).get("href"):
            self.problems.append("<a> without href")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.problems.append(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()

    def handle_entityref(self, name: str) -> None:
        if name not in TELEGRAM_ENTITIES:
            self.problems.append(f"entity &{name};")

    def handle_data(self, data: str) -> None:
        for char in "<>&":
            if char in data:
                self.problems.append(f"bare {char!r} in {data!r}")

    def handle_comment(self, data: str) -> None:
        self.problems.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"declaration {decl!r}")


def _html_problems(text: str) -> list[str]:
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser.open:
        parser.problems.append(f"unclosed {parser.open}")
    return parser.problems


def _with_evil(context: dict[str, Any]) -> dict[str, Any]:
    """The context with every non-empty value a person controls replaced by ``EVIL``."""
    changed = dict(context)
    for key in USER_KEYS:
        if isinstance(changed.get(key), str) and changed[key]:
            changed[key] = EVIL
    for key in USER_LISTS:
        if key in changed:
            changed[key] = [EVIL if value else value for value in changed[key]]
    if "items" in changed:
        # a receipt's names; a reward's or milestone's title (the manager's words)
        changed["items"] = [
            {
                **item,
                **{key: EVIL if item[key] else "" for key in ("name", "title") if key in item},
            }
            for item in changed["items"]
        ]
    return changed


def _used_in_code() -> tuple[set[str], list[tuple[str, tuple[str, ...] | None, str]]]:
    """Template names and button labels the code names as literals.

    Templates: the argument of ``reply.here/to_user/send/edit``, ``renderer.text`` and the
    outbox's ``message(...)``; ``reply.error`` answers with ``error``. Labels: dict literals
    with a ``"label"`` key (argument names from a literal ``"args"``), and the settings
    screen's ``button(label, key, **args)`` helper.
    """
    position = {"here": 0, "to_user": 1, "send": 2, "edit": 2, "text": 1}
    templates: set[str] = set()
    labels: list[tuple[str, tuple[str, ...] | None, str]] = []
    for package in SOURCE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    func = node.func
                    index = None
                    if isinstance(func, ast.Attribute) and func.attr in position:
                        index = position[func.attr]
                    elif isinstance(func, ast.Name) and func.id == "message":
                        index = 3
                    if index is not None and len(node.args) > index:
                        arg = node.args[index]
                        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                            templates.add(arg.value)
                    if (
                        isinstance(func, ast.Attribute)
                        and func.attr == "error"
                        and isinstance(func.value, ast.Name)
                        and func.value.id == "reply"
                    ):
                        templates.add("error")
                    if isinstance(func, ast.Name) and func.id == "button" and node.args:
                        first = node.args[0]
                        if isinstance(first, ast.Constant) and isinstance(first.value, str):
                            names = tuple(sorted(k.arg for k in node.keywords if k.arg))
                            labels.append((first.value, names, where))
                elif isinstance(node, ast.Dict):
                    spec = {
                        key.value: value
                        for key, value in zip(node.keys, node.values, strict=True)
                        if isinstance(key, ast.Constant) and isinstance(key.value, str)
                    }
                    label = spec.get("label")
                    if not (isinstance(label, ast.Constant) and isinstance(label.value, str)):
                        continue
                    args = spec.get("args")
                    if args is None:
                        arg_names: tuple[str, ...] | None = ()
                    elif isinstance(args, ast.Dict) and all(
                        isinstance(k, ast.Constant) for k in args.keys
                    ):
                        arg_names = tuple(
                            sorted(k.value for k in args.keys if isinstance(k, ast.Constant))
                        )
                    else:
                        arg_names = None  # built at run time: not checked here
                    labels.append((label.value, arg_names, where))
    return templates, labels


# --- the same templates and labels everywhere ----------------------------------------------


def test_every_locale_has_the_same_templates(renderer: Renderer) -> None:
    names = renderer.names()
    assert set(names) == set(LOCALES)
    for locale in LOCALES:
        assert names[locale] == names["en"], locale


def test_samples_cover_every_template(renderer: Renderer) -> None:
    for locale, names in renderer.names().items():
        assert set(SAMPLES) == names - set(MACRO_FILES), locale


def test_labels_define_the_same_macros_everywhere(renderer: Renderer) -> None:
    english = {name: macro.arguments for name, macro in _macros(renderer, "en").items()}
    assert len(english) > 10
    for locale in LOCALES:
        found = {name: macro.arguments for name, macro in _macros(renderer, locale).items()}
        assert found == english, locale


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_locales_use_the_same_variables_and_logic(renderer: Renderer, name: str) -> None:
    def shape(locale: str) -> tuple[set[str], list[str]]:
        source = _source(locale, name)
        variables = meta.find_undeclared_variables(renderer.env.parse(source))
        statements = [
            # a locale imports its own macros: the same statement up to the locale's folder
            " ".join(tag.split()).replace(f'"{locale}/', '"LOCALE/')
            for tag in re.findall(r"{%-?\s*(.*?)\s*-?%}", source, re.S)
        ]
        return variables, statements

    english = shape("en")
    for locale in LOCALES:
        assert shape(locale) == english, locale


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_reach_every_compared_value(name: str) -> None:
    """Each ``x == "value"`` and ``"value" in x`` of a template has a sample that has it."""
    source = _source("en", name)
    wanted = re.findall(r"([a-z_]+(?:\.[a-z_]+)?) == \"([^\"]*)\"", source)
    wanted += [(var, value) for value, var in re.findall(r"\"([^\"]+)\" in ([a-z_]+)", source)]
    assert wanted or name not in ("error", "setup", "stats", "link_problem", "forget")

    def values(var: str, context: dict[str, Any]) -> list[Any]:
        if var.startswith("item."):
            return [item[var.removeprefix("item.")] for item in context.get("items", [])]
        if var in ("right", "item"):  # a loop over what is missing
            return list(context.get("missing", []))
        value = context.get(var)
        return list(value) if isinstance(value, list) else [value]

    for var, value in wanted:
        assert any(value in values(var, sample) for sample in SAMPLES[name]), (var, value)


def test_the_command_menu_is_described_in_every_language(renderer: Renderer) -> None:
    for locale in LOCALES:
        assert set(_macros(renderer, locale, "commands")) == set(READER_COMMANDS), locale
        for name in READER_COMMANDS:
            description = renderer.command(locale, name)
            assert 1 <= len(description) <= 256 and "\n" not in description, (locale, name)
            assert not re.search(r"[<>]|&\w+;", description), (locale, description)
            if locale != "en":
                assert description != renderer.command("en", name), (locale, name)


# --- every branch renders, as HTML Telegram accepts ----------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(("name", "i"), CASES)
def test_renders_telegram_html(renderer: Renderer, locale: str, name: str, i: int) -> None:
    text = _render(renderer, locale, name, i)
    assert text.strip(), "empty message"
    assert "None" not in text, text
    assert _html_problems(text) == [], text
    assert len(text) <= MESSAGE_LIMIT
    assert "\n\n\n" not in text, "more than one blank line"


@pytest.mark.parametrize("locale", LOCALES)
def test_a_full_stats_page_fits_one_message(renderer: Renderer, locale: str) -> None:
    text = renderer.text(locale, "stats", **_stats(RECEIPT_LONG, 3, 7))
    assert text.count(LONG_NAME) == len(RECEIPT_LONG)
    assert len(text) <= MESSAGE_LIMIT


@pytest.mark.parametrize("locale", LOCALES)
def test_stats_shows_every_line_in_order(renderer: Renderer, locale: str) -> None:
    text = renderer.text(locale, "stats", **_stats(RECEIPT_PAGE_1, 1, 2))
    lines = [line for line in text.splitlines() if "<b>" in line and " — " in line]
    assert len(lines) == len(RECEIPT_PAGE_1) + 1  # the heading, then one line per item
    assert "2026-11-20 09:30 UTC" in text and "2026-11-23 09:30 UTC" in text
    assert "2026-11-24 18:05 UTC" in text
    assert "1" in text.splitlines()[-1] and "2" in text.splitlines()[-1]  # page 1 of 2


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("i", range(len(SAMPLES["stats"])))
def test_every_stats_entry_has_two_lines_of_its_own(
    renderer: Renderer, locale: str, i: int
) -> None:
    """Who and when, then where it stands: an entry never runs into the next one."""
    sample = SAMPLES["stats"][i]
    lines = renderer.text(locale, "stats", **sample).splitlines()
    marks = [n for n, line in enumerate(lines) if line[:1] in ENTRY_MARKS]
    assert len(marks) == len(sample["items"]), lines
    for n in marks:
        assert lines[n + 1].startswith("   ") and lines[n + 1].strip(), lines[n : n + 2]
        assert not any(mark in lines[n + 1] for mark in ENTRY_MARKS), lines[n + 1]


@pytest.mark.parametrize(("name", "i"), CASES)
def test_list_items_start_their_own_lines(renderer: Renderer, name: str, i: int) -> None:
    for locale in LOCALES:
        for line in _render(renderer, locale, name, i).splitlines():
            assert "•" not in line[1:], (locale, line)
            assert not any(mark in line[1:] for mark in ENTRY_MARKS), (locale, line)


@pytest.mark.parametrize("locale", LOCALES)
def test_labels_render_as_plain_text(renderer: Renderer, locale: str) -> None:
    for name, macro in _macros(renderer, locale).items():
        assert set(macro.arguments) == set(LABEL_ARGS.get(name, [{}])[0]), name
        for args in LABEL_ARGS.get(name, [{}]):
            label = renderer.label(locale, name, **args)
            if args.get("title") == "":
                continue
            assert label and "\n" not in label, (name, label)
            assert not re.search(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", label, re.I), (name, label)
            assert len(label) <= 64, (name, label)


# --- what people control stays text --------------------------------------------------------


@pytest.mark.parametrize(("name", "i"), CASES)
def test_user_values_are_escaped(renderer: Renderer, name: str, i: int) -> None:
    context = _with_evil(SAMPLES[name][i])
    shown = {}
    for locale in LOCALES:
        text = renderer.text(locale, name, **context)
        assert "<b>Eve</b>" not in text and 'Eve</b> & "x"' not in text, locale
        assert _html_problems(text) == [], (locale, text)
        shown[locale] = EVIL_ESCAPED in text
    # A translation shows the same people's values as English does.
    assert len(set(shown.values())) == 1, shown


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_each_template_with_user_values_shows_them_escaped(renderer: Renderer, name: str) -> None:
    samples = [_with_evil(sample) for sample in SAMPLES[name]]
    if not any(EVIL in str(sample) for sample in samples):
        pytest.skip("no value a person controls")
    for locale in LOCALES:
        texts = [renderer.text(locale, name, **sample) for sample in samples]
        assert any(EVIL_ESCAPED in text for text in texts), locale


@pytest.mark.parametrize("locale", LOCALES)
def test_labels_keep_user_values_as_plain_text(renderer: Renderer, locale: str) -> None:
    assert renderer.label(locale, "program", title=EVIL) == EVIL
    label = renderer.label(locale, "setup", title=EVIL)
    assert EVIL in label and "&lt;" not in label and "&amp;" not in label


# --- translated, not copied ----------------------------------------------------------------


@pytest.mark.parametrize(("name", "i"), CASES)
def test_indonesian_differs_from_english(renderer: Renderer, name: str, i: int) -> None:
    english = _render(renderer, "en", name, i)
    for locale in LOCALES:
        if locale != "en":
            assert _render(renderer, locale, name, i) != english, (locale, english)


def test_indonesian_labels_differ_from_english(renderer: Renderer) -> None:
    for name in _macros(renderer, "en"):
        for args in LABEL_ARGS.get(name, [{}]):
            english = renderer.label("en", name, **args)
            for locale in LOCALES:
                if locale == "en" or name in UNTRANSLATED_LABELS:
                    continue
                assert renderer.label(locale, name, **args) != english, (locale, name, args)


def test_lang_names_its_own_language(renderer: Renderer) -> None:
    assert "English" in renderer.text("en", "lang", changed=True)
    assert "Bahasa Indonesia" in renderer.text("id", "lang", changed=True)


def test_friend_card_names_the_join_button(renderer: Renderer) -> None:
    for locale in LOCALES:
        text = renderer.text(locale, "friend_card", **SAMPLES["friend_card"][0])
        assert f"<b>{renderer.label(locale, 'join')}</b>" in text, locale


# --- what the code asks for exists ---------------------------------------------------------


def test_every_template_the_code_uses_exists(renderer: Renderer) -> None:
    used, _ = _used_in_code()
    assert {"invite_card", "notify_joined", "notify_confirmed", "error", "stats"} <= used
    for locale, names in renderer.names().items():
        assert used <= names, (locale, sorted(used - names))
    assert used <= set(SAMPLES), sorted(used - set(SAMPLES))


def test_every_button_label_the_code_uses_exists(renderer: Renderer) -> None:
    _, labels = _used_in_code()
    assert {"join", "open_bot", "share_telegram", "hold", "setup"} <= {x[0] for x in labels}
    for locale in LOCALES:
        macros = _macros(renderer, locale)
        for label, arg_names, where in labels:
            assert label in macros, (locale, label, where)
            if arg_names is not None:
                assert tuple(sorted(macros[label].arguments)) == arg_names, (label, where)
