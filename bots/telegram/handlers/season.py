"""Managers' seasons: /season lists the program's contests, starts one (asking which prize
its winners get when the program has prizes, with a button per prize) and changes a
season's prize until its results are final; and the button of a season's results with which
a winner the bot could not message claims their prize (through /start, in start.py).

The settings of a season waiting for its prize are a guided flow stored by the rewards
service (a restart does not lose them); the board service checks the manager's rights on
every change, whatever button was pressed.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bots import views
from bots.telegram.callbacks import PickProgram, SeasonPrize
from bots.telegram.context import PLATFORM, ProgramCache, Reply
from bots.telegram.handlers.common import managed_program
from leaderboard.models import Season
from leaderboard.service import BoardService
from referrals.models import NotAllowed, Program
from referrals.service import ReferralService
from rewards.models import Milestone
from rewards.service import RewardService

router = Router(name=__name__)

PRIZE_BUTTONS = 10
NO_PRIZE = ("none", "off", "no", "-")


@router.message(Command("season"))
async def season_command(
    message: Message,
    command: CommandObject,
    referrals: ReferralService,
    boards: BoardService,
    rewards: RewardService,
    reply: Reply,
    programs: ProgramCache,
) -> None:
    """``/season`` lists the seasons; ``/season 2026-03-01 2026-03-31 top 3 Spring contest``
    or ``… draw 2 min 3 Name`` starts a contest from the first day to the end of the last
    (in the program's timezone) and asks which prize its winners get; ``/season ID prize``
    shows a season's prize buttons, ``/season ID prize 4|Mug|none`` changes its prize."""
    if message.from_user is None:
        return
    user_id = message.from_user.id
    words = (command.args or "").split()
    if words and words[0].removeprefix("#").isdigit():
        await _season_by_id(referrals, boards, rewards, reply, user_id, words)
        return
    data = _parse_season(words) if words else None
    if words and data is None:
        await reply.error("season_usage")
        return
    program = await managed_program(message, referrals, reply, programs, "season")
    if program is None:
        # several programs: the pick continues from the stored flow
        if data is not None and message.chat.type == "private":
            await rewards.set_flow(PLATFORM, user_id, "season", "program", data)
        return
    if data is None:
        await reply.here("seasons", views.season_list(program, await boards.seasons(program.id)))
        return
    await _begin(boards, rewards, reply, user_id, program, data)


@router.callback_query(PickProgram.filter(F.action == "season"))
async def picked_program(
    query: CallbackQuery,
    callback_data: PickProgram,
    referrals: ReferralService,
    boards: BoardService,
    rewards: RewardService,
    reply: Reply,
) -> None:
    """The program picked for /season: the season typed before, or the program's seasons."""
    await query.answer()
    program = await referrals.get_program(callback_data.program_id)
    user_id = query.from_user.id
    if not await referrals.is_manager(program, user_id):
        raise NotAllowed("not an admin")
    flow = await rewards.flow(PLATFORM, user_id)
    if flow is not None and flow["kind"] == "season" and flow["step"] == "program":
        await _begin(boards, rewards, reply, user_id, program, dict(flow["data"]))
        return
    await reply.to_user(
        user_id, "seasons", views.season_list(program, await boards.seasons(program.id))
    )


@router.callback_query(SeasonPrize.filter())
async def prize_button(
    query: CallbackQuery,
    callback_data: SeasonPrize,
    referrals: ReferralService,
    boards: BoardService,
    rewards: RewardService,
    reply: Reply,
) -> None:
    """A prize picked (or none, or cancel) for the season being set up or for a saved one."""
    await query.answer()
    user_id = query.from_user.id
    season_id, action = callback_data.season_id, callback_data.action
    prize = callback_data.prize_id or None
    if action not in ("p", "x"):
        return
    if season_id:
        if action == "x":
            await reply.here("season_prize_pick", views.season_prize_pick("cancelled"))
            return
        season = await boards.set_season_prize(season_id, user_id, prize)
        program = await referrals.get_program(season.program_id)
        await reply.here("season_created", views.season_created(program, season, changed=True))
        return
    flow = await rewards.flow(PLATFORM, user_id)
    if flow is None or flow["kind"] != "season" or flow["step"] != "prize":
        await reply.here("season_prize_pick", views.season_prize_pick("expired"))
        return
    # The flow ends first: a press handled twice (a retried update) starts no second season.
    await rewards.end_flow(PLATFORM, user_id)
    data = dict(flow["data"])
    if action == "x":
        await reply.here("season_prize_pick", views.season_prize_pick("cancelled", data["name"]))
        return
    program = await referrals.get_program(int(data["program_id"]))
    season = await _create(boards, program, user_id, data, prize)
    await reply.here("season_created", views.season_created(program, season))


async def _begin(
    boards: BoardService,
    rewards: RewardService,
    reply: Reply,
    user_id: int,
    program: Program,
    data: dict[str, Any],
) -> None:
    """Save the season at once when the program has no prize to give; else check it and
    ask which prize its winners get."""
    prizes = await rewards.prizes(program.id)
    if not prizes:
        season = await _create(boards, program, user_id, data, None)
        await reply.here("season_created", views.season_created(program, season, prizes=False))
        return
    starts_at, ends_at = _bounds(program, data)
    await boards.check_season(
        program.id,
        user_id,
        data["name"],
        starts_at,
        ends_at,
        mode=data["mode"],
        winners=data["winners"],
        min_referrals=data["least"],
    )
    await rewards.set_flow(
        PLATFORM, user_id, "season", "prize", {**data, "program_id": program.id}
    )
    await reply.here(
        "season_prize_pick",
        views.season_prize_pick("ask", data["name"], prizes),
        buttons=_prize_buttons(0, prizes),
        program_id=program.id,
    )


async def _create(
    boards: BoardService,
    program: Program,
    user_id: int,
    data: dict[str, Any],
    prize_id: int | None,
) -> Season:
    starts_at, ends_at = _bounds(program, data)
    return await boards.create_season(
        program.id,
        user_id,
        data["name"],
        starts_at,
        ends_at,
        mode=data["mode"],
        winners=data["winners"],
        min_referrals=data["least"],
        prize_id=prize_id,
    )


async def _season_by_id(
    referrals: ReferralService,
    boards: BoardService,
    rewards: RewardService,
    reply: Reply,
    user_id: int,
    words: list[str],
) -> None:
    """``/season ID`` or ``/season ID prize``: the season and its prize buttons;
    ``/season ID prize 4|Mug|none``: its prize changed."""
    if len(words) > 1 and words[1].lower() != "prize":
        await reply.error("season_usage")
        return
    season = await boards.season(int(words[0].removeprefix("#")))
    program = await rewards.managed(season.program_id, user_id)
    ref = " ".join(words[2:])
    if ref:
        chosen = None if ref.lower() in NO_PRIZE else ref
        season = await boards.set_season_prize(season.id, user_id, chosen)
        await reply.here("season_created", views.season_created(program, season, changed=True))
        return
    prizes = await rewards.prizes(program.id)
    await reply.here(
        "season_created",
        views.season_created(program, season, prizes=bool(prizes)),
        buttons=_prize_buttons(season.id, prizes) if prizes and season.final_at is None else None,
        program_id=program.id,
    )


def _prize_buttons(season_id: int, prizes: list[Milestone]) -> list[list[dict[str, Any]]]:
    """A button per prize of the program, then "no prize" and cancel."""
    buttons: list[list[dict[str, Any]]] = [
        [
            {
                "label": "pick_prize",
                "args": {"id": prize.id, "title": prize.title},
                "data": SeasonPrize(season_id=season_id, action="p", prize_id=prize.id).pack(),
            }
        ]
        for prize in prizes[:PRIZE_BUTTONS]
    ]
    buttons.append(
        [
            {"label": "no_prize", "data": SeasonPrize(season_id=season_id, action="p").pack()},
            {"label": "cancel", "data": SeasonPrize(season_id=season_id, action="x").pack()},
        ]
    )
    return buttons


def _bounds(program: Program, data: dict[str, Any]) -> tuple[datetime, datetime]:
    """From the first day's start to the end of the last day, in the program's timezone."""
    zone = ZoneInfo(program.timezone)
    start, end = date.fromisoformat(data["start"]), date.fromisoformat(data["end"])
    return (
        datetime.combine(start, time(), zone),
        datetime.combine(end + timedelta(days=1), time(), zone),  # the last day counts
    )


def _parse_season(words: list[str]) -> dict[str, Any] | None:
    """``START END top N name`` / ``START END draw N [min M] name`` as the flow's data."""
    if len(words) < 5:
        return None
    try:
        start, end = date.fromisoformat(words[0]), date.fromisoformat(words[1])
    except ValueError:
        return None
    mode = words[2].lower()
    if mode not in ("top", "draw") or not words[3].isdigit():
        return None
    winners, least, rest = int(words[3]), 1, words[4:]
    if mode == "draw" and len(rest) >= 2 and rest[0].lower() == "min" and rest[1].isdigit():
        least, rest = int(rest[1]), rest[2:]
    if not rest:
        return None
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "mode": mode,
        "winners": winners,
        "least": least,
        "name": " ".join(rest),
    }
