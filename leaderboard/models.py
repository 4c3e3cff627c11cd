"""Plain values the board service hands out (every adapter renders them the same way)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from referrals.models import EngineError

MAX_PUBLIC_NAME = 32


class BoardError(EngineError):
    """A board request or setting that cannot be used; ``code`` names it for the template."""

    code = "board"


class UnknownPeriod(BoardError):
    code = "board_period"


class NoSeason(BoardError):
    code = "board_no_season"


class BadBoardSetting(BoardError):
    code = "board_setting"


class SeasonNotFound(BoardError):
    code = "season_not_found"


class BadSeasonPrize(BoardError):
    """A season's prize cannot be chosen; ``problem`` says why in a word templates
    translate: ``unknown`` (no such prize), ``other_program`` (a prize of another
    program), ``not_prize`` (a milestone, not a prize), ``paused``, ``ambiguous`` (two
    prizes of that title: use the id), ``final`` (the season's results are final)."""

    code = "season_prize"

    def __init__(self, problem: str, message: str, **details: object) -> None:
        super().__init__(message, problem=problem, **details)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class BoardSettings:
    program_id: int
    public_names: bool = True
    week_start: int = 0
    schedule: str | None = None
    schedule_period: str = "week"
    post_chat_id: int | None = None
    set_by: int | None = None
    last_slot_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BoardEntry:
    rank: int  # shared by tied readers: 1 + the readers with more
    reader_id: int
    name: str  # the public name: cleaned display name, or "" (then "Reader #number")
    number: int  # the reader's pseudonymous number in the program
    count: int


@dataclass(frozen=True, slots=True)
class Standing:
    """Where one reader stands on a board."""

    count: int
    rank: int | None  # None: not on the board (no referrals in the period, or excluded)
    to_next: int | None  # referrals to reach the next place up; None at the top
    excluded: bool = False


@dataclass(frozen=True, slots=True)
class Season:
    id: int
    program_id: int
    name: str
    starts_at: datetime
    ends_at: datetime
    mode: str
    winners: int
    min_referrals: int
    prize_id: int | None
    seed_hash: str | None
    seed: str | None  # published with the draw only
    final_at: datetime | None
    prize_title: str | None = None  # the prize rule's title, when the season has one


@dataclass(frozen=True, slots=True)
class Board:
    program_id: int
    program_title: str
    timezone: str
    period: str  # all | week | month | season
    key: str  # the board's key: all, w2026-01-05, m2026-01, s3
    starts_at: datetime | None
    ends_at: datetime | None
    season: Season | None
    entries: list[BoardEntry]
    page: int
    pages: int
    total: int  # readers on the board
    you: Standing | None = None
    you_id: int | None = None
    frozen: bool = False


@dataclass(slots=True)
class ConsumeReport:
    changes: int = 0
    rows: int = 0


@dataclass(slots=True)
class PostReport:
    posted: int = 0
    skipped: int = 0
    seasons_closed: int = 0
    prizes: int = 0
    prizes_expired: int = 0  # prizes not claimed within the claim window
    details: list[str] = field(default_factory=list)
