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

from leaderboard.models import BadBoardSetting, BadSeasonPrize, Board, BoardSettings, Season
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
from rewards.models import (
    BadCouponFile,
    BadMilestone,
    Grant,
    ImportReport,
    Milestone,
    PoolStock,
    Preview,
    PrizeClaim,
    Progress,
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
    program: Program,
    link: Link,
    counts: Counts,
    *,
    created: bool,
    replaced: bool,
    rewards: View | None = None,
) -> View:
    """The reader's personal link, the rules (the rewards and caps up front, with
    ``rewards`` from :func:`reward_rules`) and their counts so far."""
    return {
        **(rewards or reward_rules(program, [], None)),
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


def receipt(program: Program, receipt: Receipt, rewards: View | None = None) -> View:
    """``/stats``: every referral and join attempt of one page, and where each stands (and
    the way to the next reward, with ``rewards`` from :func:`reward_rules`)."""
    return {
        **(rewards or reward_rules(program, [], None)),
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


def join_welcome(
    program: Program, referrer_name: str | None, *, friend_reward: bool = False
) -> View:
    """Welcome (and the human check) for a join request; ``friend_reward``: a gift waits
    for the friend once they count (the welcome carries a button that opens the bot)."""
    return {
        "program_title": program.title,
        "referrer_name": referrer_name,
        "friend_reward": friend_reward,
    }


def human_check_passed(program: Program) -> View:
    return {"program_title": program.title}


def lang(changed: bool) -> View:
    return {"changed": changed}


def forget(step: str, *, by_command: bool = False) -> View:
    """``confirm``, ``done`` or ``cancelled``; ``by_command`` where the confirmation is a
    command option, not a button (Discord)."""
    return {"step": step, "by_command": by_command}


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


def discord_settings(program: Program, saved: bool = False) -> View:
    """``/settings`` on Discord: each setting with the key that changes it (no buttons
    there), the labels switch and the rewards opt-in."""
    return {
        **settings(program, saved),
        "min_account_age_days": program.min_account_age_days,
        "referrer_cap": program.referrer_cap,
        "burst_limit": program.burst_limit,
        "burst_window_minutes": program.burst_window_minutes,
        "labels_allowed": program.labels_allowed,
        "rewards_opt_in": program.rewards_opt_in,
    }


def program_totals(
    program: Program, totals: Mapping[str, int], report: Mapping[str, Any] | None = None
) -> View:
    """``/program``: readers, referrals by state, joins nobody referred; with the rewards'
    ``report`` (grants by state, codes used and left, cost per confirmed referral)."""
    report = report or {}
    return {
        "program_title": program.title,
        "paused": program.paused,
        **totals,
        "grants": dict(report.get("grants") or {}),
        "codes_used": report.get("codes_used", 0),
        "codes_left": report.get("codes_left", 0),
        "cost": _money(report.get("cost_cents") or None),
        "cost_per_referral": _money(report.get("cost_per_referral_cents")),
        "prizes_to_claim": report.get("prizes_to_claim", 0),
        "prizes_unclaimed": report.get("prizes_unclaimed", 0),
        "currency": program.currency or "",
    }


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


def post_invite(program: Program, *, by_command: bool = False) -> View:
    """The invitation posted in a chat; ``by_command`` where readers type /invite (Discord:
    the post has no button)."""
    return {"program_title": program.title, "by_command": by_command}


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


# --- rewards --------------------------------------------------------------------------------


def _money(cents: int | None) -> str | None:
    if cents is None:
        return None
    return f"{cents // 100}.{cents % 100:02d}"


def _rule(milestone: Milestone) -> View:
    return {
        "id": milestone.id,
        "role": milestone.role,
        "is_friend": milestone.role == "friend",
        "is_prize": milestone.role == "prize",
        "count": milestone.count,
        "step": milestone.step,
        "title": milestone.title,
        "kind": milestone.reward_kind,
        "approval": milestone.approval,
        "paused": milestone.paused,
        "cost": _money(milestone.cost_cents),
        "chat_title": milestone.chat_title,
        "question": milestone.question,
        "pool_id": milestone.pool_id,
    }


def reward_rules(
    program: Program, milestones: Sequence[Milestone], progress: Progress | None
) -> View:
    """The rewards a reader can earn (named up front, with the cap) and how far the next
    one is: part of the invite card and the receipt."""
    live = [m for m in milestones if not m.paused and m.role in ("milestone", "friend")]
    return {
        "rewards": [_rule(m) for m in live if m.role == "milestone"],
        "friend_reward": next((m.title for m in live if m.role == "friend"), None),
        "reward_cap": program.reward_cap,
        "reward_cap_period": program.reward_cap_period,
        "rewardable": progress.rewardable if progress else 0,
        "next_title": progress.next_title if progress else None,
        "next_missing": progress.missing if progress else None,
    }


def milestones_list(
    program: Program,
    milestones: Sequence[Milestone],
    pools: Sequence[PoolStock],
    *,
    done: str = "",
) -> View:
    """``/milestones``: every rule of the program, the coupon pools and their stock."""
    return {
        "program_title": program.title,
        "currency": program.currency or "",
        "milestones": [_rule(m) for m in milestones],
        "pools": [{"id": p.id, "name": p.name, "total": p.total, "free": p.free} for p in pools],
        "done": done,
    }


def milestone_flow(step: str, **details: Any) -> View:
    """One step of the guided milestone setup (``step``: kind, message, coupon, chat,
    question, confirm, saved, cancelled, expired)."""
    return {
        "step": step,
        "title": "",
        "count": None,
        "every": None,
        "role": "milestone",
        **details,
    }


def milestone_preview(
    title: str, count: int | None, step: int | None, role: str, preview: Preview
) -> View:
    return milestone_flow(
        "confirm",
        title=title,
        count=count,
        every=step,
        role=role,
        readers=preview.readers,
        grants=preview.grants,
        codes_needed=preview.codes_needed,
        codes_free=preview.codes_free,
    )


def policy_preview(preview: Preview) -> View:
    """Counting leavers again grants rewards at once: how many, before it is applied."""
    return milestone_flow(
        "policy",
        readers=preview.readers,
        grants=preview.grants,
        codes_needed=preview.codes_needed,
        codes_free=preview.codes_free,
    )


def coupon_import(report: ImportReport) -> View:
    """What a coupon file held and what went into the pool."""
    return {
        "pool_id": report.pool_id,
        "added": report.added,
        "blank": report.blank,
        "duplicate_in_file": report.duplicate_in_file,
        "already_in_pool": report.already_in_pool,
        "free": report.free,
    }


def _grant(grant: Grant) -> View:
    return {
        "id": grant.id,
        "title": grant.title,
        "state": grant.state,
        "below_rung": grant.state == "below_rung",
        "kind": grant.reward_kind,
        "source": grant.source,
        "rung": grant.rung,
        "code": grant.code,
        "answer": grant.answer,
        "reader_id": grant.reader_id,
        "unlocked_at": _iso(grant.unlocked_at),
        "delivered_at": _iso(grant.delivered_at),
    }


def rewards_list(program: Program, grants: Sequence[Grant], rules: View) -> View:
    """``/rewards``: what the reader earned (codes are theirs alone) and what is next."""
    return {
        **rules,
        "program_title": program.title,
        "timezone": program.timezone,
        "grants": [_grant(g) for g in grants],
    }


def grant_queue(
    program: Program, grants: Sequence[Grant], total: int, which: str, page: int, *, done: str = ""
) -> View:
    """A manager's queue: ``approval`` (approve or reject) or ``fulfilment`` (send by hand)."""
    return {
        "program_title": program.title,
        "timezone": program.timezone,
        "which": which,
        "grants": [_grant(g) for g in grants],
        "total": total,
        "page": page,
        "pages": max(1, -(-total // 5)),
        "done": done,
    }


def answer_prompt(grant: Grant, question: str | None, *, saved: bool = False) -> View:
    return {"title": grant.title, "question": question or "", "saved": saved}


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
    if isinstance(exc, BadBoardSetting):
        return error(exc.code, key=exc.details.get("key"), problem=exc.details.get("problem"))
    if isinstance(exc, BadSeasonPrize):
        return error(exc.code, problem=exc.problem, message=str(exc.details.get("ref") or ""))
    if isinstance(exc, BadMilestone | BadCouponFile):
        detail = exc.details
        return error(
            exc.code,
            problem=exc.problem,
            message=str(detail.get("detail") or exc),
            low=detail.get("line"),
            high=detail.get("limit") or detail.get("high") or detail.get("count"),
        )
    return error(exc.code)


# --- rewards on every platform (added for the Discord adapter) ------------------------------


def reader_rewards(
    program: Program,
    grants: Sequence[Any],
    *,
    enabled: bool,
    counted: int,
    next_title: str | None,
    next_count: int | None,
    unreachable: bool = False,
) -> View:
    """``/rewards``: what a reader earned and where each stands, and the next milestone."""
    return {
        "program_title": program.title,
        "enabled": enabled,
        "items": [
            {"title": grant.title, "count": grant.rung or 0, "state": grant.state}
            for grant in grants
        ],
        "counted": counted,
        "next_title": next_title,
        "next_count": next_count,
        "unreachable": unreachable,
    }


def milestone_list(
    program: Program, milestones: Sequence[Any], *, saved: bool = False, granted: int = 0
) -> View:
    """A program's milestones for managers (and what saving one granted at once)."""
    return {
        "program_title": program.title,
        "items": [
            {
                "id": m.id,
                "title": m.title,
                "count": m.count or 0,
                "kind": m.reward_kind,
                "paused": m.paused,
            }
            for m in milestones
        ],
        "saved": saved,
        "granted": granted,
    }


def coupon_pools(
    program: Program, pools: Sequence[PoolStock], *, report: ImportReport | None = None
) -> View:
    """The coupon pools and their stock (Discord's /codes), after an import with what the
    file held."""
    return {
        "program_title": program.title,
        "pools": [{"id": p.id, "name": p.name, "total": p.total, "free": p.free} for p in pools],
        "imported": coupon_import(report) if report is not None else None,
        "pool_name": next((p.name for p in pools if report and p.id == report.pool_id), ""),
    }


def rewards_policy(program: Program, step: str) -> View:
    """Discord's policy note before rewards are turned on (``note``), or ``on``/``off``."""
    return {"program_title": program.title, "step": step}


# --- leaderboards -----------------------------------------------------------------------------


def board(value: Board, *, posted: bool = False) -> View:
    """``/leaderboard`` and the scheduled post: a page of a board and the reader's place."""
    from leaderboard.service import board_context

    return {**board_context(value), "posted": posted}


def board_settings(program: Program, settings: BoardSettings, *, saved: bool = False) -> View:
    """``/board``: how the program's boards work."""
    return {
        "program_title": program.title,
        "public_names": settings.public_names,
        "week_start": settings.week_start,
        "schedule": settings.schedule,
        "schedule_period": settings.schedule_period,
        "post_chat_id": settings.post_chat_id,
        "timezone": program.timezone,
        "saved": saved,
    }


def _season(season: Season) -> View:
    return {
        "season_id": season.id,
        "name": season.name,
        "starts_at": _iso(season.starts_at),
        "ends_at": _iso(season.ends_at),
        "mode": season.mode,
        "winners": season.winners,
        "min_referrals": season.min_referrals,
        "seed_hash": season.seed_hash,
        "prize": season.prize_title,
        "final": season.final_at is not None,
    }


def season_created(
    program: Program, season: Season, *, prizes: bool = True, changed: bool = False
) -> View:
    """``/season``: the contest as saved (a draw's commitment is posted to the chat), with
    its prize; ``prizes`` False: the program has no prize to choose yet; ``changed``: its
    prize was just changed."""
    return {
        "program_title": program.title,
        "timezone": program.timezone,
        **_season(season),
        "prizes": prizes,
        "changed": changed,
    }


def season_list(program: Program, seasons: Sequence[Season]) -> View:
    """``/season`` alone: the program's seasons, newest first, with their prizes."""
    return {
        "program_title": program.title,
        "timezone": program.timezone,
        "seasons": [_season(s) for s in sorted(seasons, key=lambda s: s.starts_at, reverse=True)],
    }


def season_prize_pick(step: str, name: str = "", prizes: Sequence[Milestone] = ()) -> View:
    """The question which prize a season's winners get (``step`` ask), or what became of
    it (``cancelled``, ``expired``)."""
    return {
        "step": step,
        "name": name,
        "prizes": [{"id": p.id, "title": p.title, "kind": p.reward_kind} for p in prizes],
    }


def prize_claim(claim: PrizeClaim, claim_days: int) -> View:
    """What pressing a season's claim button did, for the person who pressed it."""
    return {
        "outcome": str(claim.outcome),
        "title": claim.title,
        "place": claim.place,
        "claim_days": claim_days,
    }


def board_sent_privately(name: str) -> View:
    return {"name": name}
