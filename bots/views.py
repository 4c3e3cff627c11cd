"""What each template receives, built once for every adapter.

A Telegram handler and a Discord cog answer the same command with the same view: they
call the engine, pass its results here, and render the template of the same name with the
dict they get back. Values are plain JSON (they travel through the outbox as JSON), times
are ISO text, and every view of a program's times carries the program's ``timezone`` so
the ``when`` filter shows them in it. What only one platform has (deep links, share
buttons, the Telegram join URL) stays in its adapter and comes in as an argument.

Nothing here imports a platform library: only the engine's models and the standard
library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from leaderboard.models import Board
from referrals.models import (
    Counts,
    EngineError,
    Link,
    Program,
    Receipt,
    ReferralInfo,
    ReviewOutcome,
    ReviewPage,
    SettingsError,
)

View = dict[str, Any]

# What the ``error`` template reads besides ``code`` (a bad setting fills them in).
ERROR_DEFAULTS: Mapping[str, Any] = {
    "key": "",
    "message": "",
    "problem": "",
    "low": None,
    "high": None,
    "optional": False,
    "options": [],
}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# --- readers --------------------------------------------------------------------------------


def welcome(name: str, programs: Iterable[Program]) -> View:
    """``/start`` without a link: greet the person and name the programs."""
    return {"name": name, "programs": [program.title for program in programs]}


def invite_card(
    program: Program, link: Link, counts: Counts, *, created: bool, replaced: bool
) -> View:
    """The reader's personal link, the rules and their counts so far."""
    return {
        "program_title": program.title,
        "url": link.url,
        "label": link.label,
        "hold_hours": program.hold_hours,
        "counted": counts.counted,
        "pending": counts.pending,
        "held": counts.held,
        "created_new": created,
        "replaced": replaced,
    }


def share_text(program: Program) -> View:
    """The text a reader's share button pre-fills."""
    return {"program_title": program.title}


def receipt(program: Program, receipt: Receipt) -> View:
    """``/stats``: every referral and join attempt of one page, and where each stands."""
    return {
        "program_title": program.title,
        "timezone": program.timezone,
        "counted": receipt.counts.counted,
        "pending": receipt.counts.pending,
        "held": receipt.counts.held,
        "not_counted": receipt.not_counted,
        "subtract": program.leave_policy == "subtract",
        "page": receipt.page,
        "pages": receipt.pages,
        "items": [
            {
                "kind": item.kind,
                "name": item.display_name,
                "state": item.state,
                "reason": item.reason,
                "at": item.at.isoformat(),
                "hold_until": _iso(item.hold_until),
                "left_at": _iso(item.left_at),
            }
            for item in receipt.items
        ],
    }


def friend_card(program: Program, referrer_name: str | None, join_url: str | None) -> View:
    """A friend opened a reader's link: who invited them, and how to join."""
    return {
        "program_title": program.title,
        "referrer_name": referrer_name,
        "join_url": join_url,
    }


def friend_subscribed(program: Program, referrer_name: str | None) -> View:
    """A friend started a newsletter bot through a reader's link."""
    return {"program_title": program.title, "referrer_name": referrer_name}


def link_problem(
    problem: str, program: Program | None = None, referrer_name: str | None = None
) -> View:
    """Why a link did not make an invitation (``unknown_link``, ``self_referral``…)."""
    view: View = {"problem": problem}
    if program is not None:
        view.update(program_title=program.title, referrer_name=referrer_name)
    return view


def invite_sent_privately(name: str) -> View:
    return {"name": name}


def open_bot(name: str, *, for_setup: bool = False, purpose: str = "invite") -> View:
    """The answer needs a private chat the person has not opened yet."""
    return {"name": name, "for_setup": for_setup, "purpose": purpose}


def join_welcome(program: Program, referrer_name: str | None) -> View:
    """Welcome (and the human check) for a join request."""
    return {"program_title": program.title, "referrer_name": referrer_name}


def human_check_passed(program: Program) -> View:
    return {"program_title": program.title}


def lang(changed: bool) -> View:
    return {"changed": changed}


def forget(step: str) -> View:
    """``confirm``, ``done`` or ``cancelled``."""
    return {"step": step}


def help_text(manager: bool) -> View:
    return {"manager": manager}


def choose_program(purpose: str) -> View:
    """``read`` or ``manage``."""
    return {"purpose": purpose}


def no_programs(purpose: str) -> View:
    return {"purpose": purpose}


# --- managers -------------------------------------------------------------------------------


def settings(program: Program, saved: bool = False) -> View:
    """The settings screen (``saved`` after a change)."""
    return {
        "program_title": program.title,
        "hold_hours": program.hold_hours,
        "join_mode": program.join_mode,
        "leave_policy": program.leave_policy,
        "locale": program.locale,
        "timezone": program.timezone,
        "human_check": program.human_check,
        "paused": program.paused,
        "saved": saved,
    }


def program_totals(program: Program, totals: Mapping[str, int]) -> View:
    """``/program``: readers, referrals by state, joins nobody referred."""
    return {"program_title": program.title, "paused": program.paused, **totals}


def review_queue(
    program: Program,
    page: ReviewPage,
    *,
    decided: Sequence[ReviewOutcome] = (),
    undo: bool = False,
) -> View:
    """``/review``: the held referrals of one page, oldest first, and what was just decided
    (``decided``; ``undo`` when it was a reversal)."""
    return {
        "program_title": program.title,
        "timezone": program.timezone,
        "total": page.total,
        "page": page.page,
        "pages": page.pages,
        "items": [
            {
                "name": item.referred_name,
                "referrer_name": item.referrer_name,
                "reason": item.reason,
                "joined_at": _iso(item.joined_at),
            }
            for item in page.items
        ],
        "decided": [outcome.state for outcome in decided],
        "undo": undo,
    }


def undo_prompt(program: Program, referral: ReferralInfo) -> View:
    """``/undo``: the friend's referral and what reversing it would do."""
    return {
        "program_title": program.title,
        "name": referral.referred_name,
        "referrer_name": referral.referrer_name,
        "state": referral.state,
    }


def program_deleted(program: Program, totals: Mapping[str, int], *, step: str) -> View:
    """``/program delete``: ``confirm`` (what would go), ``done`` or ``cancelled``."""
    return {"program_title": program.title, "step": step, **totals}


def program_state(program: Program) -> View:
    return {"paused": program.paused}


def program_notice(program: Program, *, paused: bool, reason: str | None = None) -> View:
    """To the managers: the program paused (and why) or runs again."""
    return {"program_title": program.title, "paused": paused, "reason": reason}


def post_invite(program: Program) -> View:
    return {"program_title": program.title}


def posted(program: Program, *, ok: bool, pinned: bool) -> View:
    return {"ok": ok, "pinned": ok and pinned, "program_title": program.title}


def setup(step: str, **details: Any) -> View:
    """A step of setting a program up (``offer``, ``missing``, ``done``…) and its details
    (``chat_title``, ``missing``)."""
    return {"step": step, **details}


def setup_done(program: Program) -> View:
    return setup(
        "done",
        program_title=program.title,
        join_mode=program.join_mode,
        hold_hours=program.hold_hours,
    )


# --- errors ---------------------------------------------------------------------------------


def error(code: str, **details: Any) -> View:
    """The ``error`` template for ``code`` (``details`` fill in a bad setting)."""
    return {**ERROR_DEFAULTS, "code": code, **details}


def engine_error(exc: EngineError) -> View:
    """The engine's refusal in words the template translates (a setting's problem as
    ``key``/``problem``/``low``/``high``…, never the engine's English message alone)."""
    if isinstance(exc, SettingsError):
        return error(
            exc.code,
            key=exc.key,
            message=str(exc).split(": ", 1)[-1],
            problem=exc.problem,
            low=exc.low,
            high=exc.high,
            optional=exc.optional,
            options=list(exc.options),
        )
    return error(exc.code)


# --- leaderboards -----------------------------------------------------------------------------


def board(value: Board, *, posted: bool = False) -> View:
    """``/leaderboard`` and the scheduled post: a page of a board and the reader's place."""
    from leaderboard.service import board_context

    return {**board_context(value), "posted": posted}


def board_sent_privately(name: str) -> View:
    return {"name": name}
