"""Typed, prefixed button payloads (each packs to ≤ 64 bytes)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class PickProgram(CallbackData, prefix="pk"):
    action: str
    program_id: int
    label: str = ""
    reset: bool = False


class StatsPage(CallbackData, prefix="sp"):
    program_id: int
    page: int


class Forget(CallbackData, prefix="fg"):
    confirm: bool


class Setup(CallbackData, prefix="su"):
    chat_id: int


class HumanCheck(CallbackData, prefix="hc"):
    program_id: int


class Setting(CallbackData, prefix="st"):
    program_id: int
    key: str


class Review(CallbackData, prefix="rv"):
    """A decision in the review queue: ``a``/``r`` approve or reject one referral (``target``
    is the friend), ``A``/``R`` every held referral of one reader (``target`` is the reader),
    ``u`` undo the decision on ``target`` (``expect`` is the state the manager saw: ``c``
    confirmed, ``r`` rejected), ``p`` just show ``page``."""

    program_id: int
    action: str
    target: int = 0
    page: int = 1
    expect: str = ""


class DeleteProgram(CallbackData, prefix="dp"):
    program_id: int
    confirm: bool


class MilestoneAct(CallbackData, prefix="ms"):
    """A button of /milestones: ``p`` pause, ``r`` resume, ``x`` remove one milestone."""

    program_id: int
    milestone_id: int
    action: str


class FlowPick(CallbackData, prefix="fw"):
    """A choice in a guided setup: the reward kind, an existing pool, save or cancel."""

    choice: str
    pool_id: int = 0


class GrantAct(CallbackData, prefix="ga"):
    """A manager's queue: ``a``/``r`` approve or reject, ``f`` mark sent, ``p`` a page;
    ``which`` is the queue (``approval`` or ``fulfilment``)."""

    program_id: int
    grant_id: int
    action: str
    which: str
    page: int = 1


class RewardAct(CallbackData, prefix="rw"):
    """A reader's reward: ``s`` send it again."""

    grant_id: int
    action: str


class BoardPage(CallbackData, prefix="lb"):
    """A leaderboard page: ``period`` is all, week, month or season."""

    program_id: int
    period: str
    page: int = 1


class SeasonPrize(CallbackData, prefix="sz"):
    """A season's prize: ``p`` pick ``prize_id`` (0: no prize), ``x`` cancel. ``season_id``
    0 is the season being set up (its settings wait in the manager's guided flow)."""

    season_id: int
    action: str
    prize_id: int = 0
