"""Leaderboards: per-period board counts kept from the state machine's change records,
rankings in SQL, scheduled posts, seasons and their winners.

The board job consumes ``count_changes`` (consumer ``"boards"``) in the transaction that
writes its output, so joins never wait for it. Each change record moves the reader's row on
the all-time board (to the record's ``after``) and on the boards of the periods its
referral's join belongs to (by the record's step): the week and the month of ``joined_at``
in the program's timezone and every season that holds it and is not final yet. Beside each
row the job keeps the board's histogram (readers per count), so a rank is a few index reads:
the reader's row, then the readers above their count.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from delivery.actions import Button, Post, buttons_of
from delivery.outbox import Priority, message
from delivery.port import AdminResult, Destination, PostRights
from leaderboard import draw as draws
from leaderboard import periods
from leaderboard.models import (
    MAX_PUBLIC_NAME,
    BadBoardSetting,
    BadSeasonPrize,
    Board,
    BoardEntry,
    BoardSettings,
    ConsumeReport,
    NoSeason,
    PostReport,
    Season,
    SeasonNotFound,
    Standing,
    UnknownPeriod,
)
from leaderboard.periods import Period
from referrals.context import Engine
from referrals.models import Program, ProgramNotFound
from referrals.programs import program_from_row
from referrals.text import clean_name
from storage import boards as db
from storage import counts as db_counts
from storage import jobs as db_jobs
from storage import outbox as db_outbox
from storage import people as db_people
from storage import programs as db_programs
from storage import rewards as db_rewards

logger = logging.getLogger(__name__)

PER_PAGE = 10
# A slot missed while the bot was down is still posted this long after it was due.
RECENT = timedelta(hours=2)
MAX_SEASON_NAME = 48
MAX_WINNERS = 100
# How long a winner the bot cannot message may claim their prize after the results are
# posted; unclaimed after it, the prize counts as unreachable.
PRIZE_CLAIM_WINDOW = timedelta(days=7)


def claim_payload(season_id: int) -> str:
    """The deep-link payload of a season's claim button (``/start claim_<season>``)."""
    return f"claim_{season_id}"


@runtime_checkable
class DeepLinks(Protocol):
    """A platform whose bot has deep links (Telegram's ``t.me/<bot>?start=…``): a claim
    button opens the bot, which lets the bot message the person who pressed it."""

    def deep_link(self, payload: str) -> str: ...


def settings_from_row(program_id: int, row: Mapping[Any, Any] | None) -> BoardSettings:
    if row is None:
        return BoardSettings(program_id)
    return BoardSettings(
        program_id=program_id,
        public_names=bool(row["public_names"]),
        week_start=int(row["week_start"]),
        schedule=row["schedule"],
        schedule_period=row["schedule_period"],
        post_chat_id=row["post_chat_id"],
        set_by=row["set_by"],
        last_slot_at=row["last_slot_at"],
    )


def season_from_row(row: Mapping[Any, Any], prize_title: str | None = None) -> Season:
    return Season(
        id=row["id"],
        program_id=row["program_id"],
        name=row["name"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        mode=row["mode"],
        winners=row["winners"],
        min_referrals=row["min_referrals"],
        prize_id=row["prize_id"],
        seed_hash=row["seed_hash"],
        seed=row["seed"] if row["final_at"] is not None else None,
        final_at=row["final_at"],
        prize_title=prize_title if row["prize_id"] is not None else None,
    )


async def _prize_titles(conn: Any, rows: Sequence[Mapping[Any, Any]]) -> dict[int, str]:
    """The titles of the prize rules these seasons give."""
    ids = {row["prize_id"] for row in rows if row["prize_id"] is not None}
    found = await db_rewards.milestones_by_ids(conn, ids)
    return {rule_id: str(rule["title"]) for rule_id, rule in found.items()}


async def _seasons_with_titles(conn: Any, rows: Sequence[Mapping[Any, Any]]) -> list[Season]:
    titles = await _prize_titles(conn, rows)
    return [season_from_row(row, titles.get(row["prize_id"])) for row in rows]


def standing_of(me: Mapping[str, Any]) -> Standing:
    """A reader's standing from :func:`storage.boards.board_page`'s figures."""
    count = me["count"]
    if me["excluded"]:
        return Standing(count, None, None, excluded=True)
    rank = 1 + me["above"] if count > 0 else None
    to_next = me["next"] - count if me["next"] is not None else None
    return Standing(count, rank, to_next)


def public_name(display_name: str | None, public: bool) -> str:
    """What a board shows of a reader: their cleaned, shortened name when the program shows
    names, else "" (templates then say "Reader #number")."""
    return clean_name(display_name, MAX_PUBLIC_NAME) if public else ""


def period_bounds(period: str, key: str, timezone: str) -> tuple[datetime | None, datetime | None]:
    """The UTC [start, end) of a week or month board key."""
    zone = ZoneInfo(timezone)
    if key.startswith("w"):
        day = datetime.fromisoformat(key[1:]).replace(tzinfo=zone)
        return day.astimezone(ZoneInfo("UTC")), (day + timedelta(days=7)).astimezone(
            ZoneInfo("UTC")
        )
    if key.startswith("m"):
        start = datetime.fromisoformat(key[1:] + "-01").replace(tzinfo=zone)
        end = (start + timedelta(days=32)).replace(day=1)
        return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))
    return None, None


class BoardService:
    """Boards for every adapter: plain values in and out."""

    def __init__(self, engine: Engine, rewards: Any = None) -> None:
        """``rewards`` is the :class:`rewards.service.RewardService` that grants prizes."""
        self._engine = engine
        self._rewards = rewards

    @property
    def _db(self) -> Any:
        return self._engine.db

    def _now(self) -> datetime:
        return self._engine.clock.now()

    async def _program(self, program_id: int) -> Program:
        async with self._db.reads() as conn:
            row = await db_programs.program_by_id(conn, program_id)
        if row is None:
            raise ProgramNotFound(f"program {program_id} does not exist")
        return program_from_row(row)

    # --- the board job --------------------------------------------------------------------

    async def consume(self, *, limit: int = 2000, rounds: int = 50) -> ConsumeReport:
        """Apply change records to the boards until none are left (at most ``rounds``
        batches of ``limit``)."""
        report = ConsumeReport()
        for _ in range(rounds):
            changes, rows = await self._consume_batch(limit)
            report.changes += changes
            report.rows += rows
            if changes < limit:
                break
        return report

    async def _consume_batch(self, limit: int) -> tuple[int, int]:
        now = self._now()
        async with self._db.write() as conn:
            changes = await db_counts.claim_count_changes(conn, "boards", now, limit)
            if not changes:
                return 0, 0
            program_ids = sorted({c["program_id"] for c in changes})
            programs = {
                pid: program_from_row(row)
                for pid, row in (await db_programs.programs_by_ids(conn, program_ids)).items()
            }
            settings = await db.settings_of(conn, program_ids)
            open_seasons: dict[int, list[Mapping[Any, Any]]] = defaultdict(list)
            for row in await db.seasons_of(conn, program_ids):
                if row["final_at"] is None:
                    open_seasons[row["program_id"]].append(row)
            # Every reader gets a board number the first time the boards see them.
            excluded: dict[int, set[int]] = {}
            for pid in program_ids:
                readers = sorted({c["reader_id"] for c in changes if c["program_id"] == pid})
                known = await db.readers_by_ids(conn, pid, readers)
                await db.add_readers(conn, pid, [r for r in readers if r not in known])
                excluded[pid] = {r for r, row in known.items() if row["excluded"]}

            # (program, board key, reader) -> [set-to or None, step, last change id, at]
            moves: dict[tuple[int, str, int], list[Any]] = {}
            recounted: set[tuple[int, int]] = set()
            for change in changes:
                pid, reader = change["program_id"], change["reader_id"]
                program = programs.get(pid)
                if program is None:
                    continue
                step = change["after"] - change["before"]
                keys: list[tuple[str, bool]] = [("all", True)]
                joined = change["joined_at"]
                if change["referred_id"] is None or joined is None:
                    recounted.add((pid, reader))
                else:
                    week_start = settings_from_row(pid, settings.get(pid)).week_start
                    keys.append((periods.week_key(joined, program.timezone, week_start), False))
                    keys.append((periods.month_key(joined, program.timezone), False))
                    for season in open_seasons.get(pid, ()):
                        if season["starts_at"] <= joined < season["ends_at"]:
                            keys.append((periods.season_key(season["id"]), False))
                for key, absolute in keys:
                    entry = moves.setdefault((pid, key, reader), [None, 0, 0, now])
                    if absolute:
                        entry[0] = change["after"]
                    else:
                        entry[1] += step
                    entry[2] = change["id"]
                    entry[3] = change["at"]

            written = await self._apply(conn, moves, excluded)
            for pid, reader in sorted(recounted):
                written += await self._recount_periods(
                    conn,
                    programs[pid],
                    reader,
                    settings_from_row(pid, settings.get(pid)),
                    open_seasons.get(pid, []),
                    reader in excluded.get(pid, set()),
                    now,
                )
        return len(changes), written

    async def _apply(
        self,
        conn: Any,
        moves: Mapping[tuple[int, str, int], Sequence[Any]],
        excluded: Mapping[int, set[int]],
    ) -> int:
        by_board: dict[tuple[int, str], list[int]] = defaultdict(list)
        for pid, key, reader in moves:
            by_board[(pid, key)].append(reader)
        rows: list[dict[str, Any]] = []
        histogram: dict[tuple[int, str, int], int] = defaultdict(int)
        for (pid, key), readers in sorted(by_board.items()):
            stored = await db.counts_on(conn, pid, key, readers)
            for reader in readers:
                set_to, step, change_id, at = moves[(pid, key, reader)]
                old = stored[reader]["count"] if reader in stored else 0
                new = set_to if set_to is not None else old + step
                new = max(0, new)
                if reader in stored and new == old:
                    continue
                is_excluded = reader in excluded.get(pid, set())
                rows.append(
                    {
                        "program_id": pid,
                        "period": key,
                        "reader_id": reader,
                        "count": new,
                        "tiebreak": -change_id,
                        "reached_at": at,
                        "excluded": is_excluded,
                    }
                )
                if not is_excluded:
                    histogram[(pid, key, old)] -= 1
                    histogram[(pid, key, new)] += 1
        await db.write_counts(conn, rows)
        await db.add_histogram(conn, histogram)
        return len(rows)

    async def _recount_periods(
        self,
        conn: Any,
        program: Program,
        reader: int,
        settings: BoardSettings,
        open_seasons: Sequence[Mapping[Any, Any]],
        excluded: bool,
        now: datetime,
    ) -> int:
        """The leave policy changed (a record without a referral): the reader's period
        boards are recounted from their own referrals (one reader's rows, never everyone)."""
        subtract = program.leave_policy != "keep"
        joined = await db.counted_joins(conn, program.id, reader, subtract)
        wanted: dict[str, int] = defaultdict(int)
        for at in joined:
            wanted[periods.week_key(at, program.timezone, settings.week_start)] += 1
            wanted[periods.month_key(at, program.timezone)] += 1
            for season in open_seasons:
                if season["starts_at"] <= at < season["ends_at"]:
                    wanted[periods.season_key(season["id"])] += 1
        frozen_ok = {periods.season_key(s["id"]) for s in open_seasons}
        stored = await db.counts_of_reader(conn, program.id, reader)
        moves: dict[tuple[int, str, int], list[Any]] = {}
        for key in set(wanted) | set(stored):
            if key == "all" or (key.startswith("s") and key not in frozen_ok):
                continue
            old = stored[key]["count"] if key in stored else 0
            if wanted.get(key, 0) != old:
                moves[(program.id, key, reader)] = [wanted.get(key, 0), 0, 0, now]
        return await self._apply(conn, moves, {program.id: {reader} if excluded else set()})

    # --- reading boards ---------------------------------------------------------------------

    async def settings(self, program_id: int) -> BoardSettings:
        async with self._db.reads() as conn:
            rows = await db.settings_of(conn, [program_id])
        return settings_from_row(program_id, rows.get(program_id))

    async def seasons(self, program_id: int) -> list[Season]:
        """The program's seasons, first starting first (with their prizes' titles)."""
        async with self._db.read() as conn:
            return await _seasons_with_titles(conn, await db.seasons_of(conn, [program_id]))

    async def current_season(self, program_id: int) -> Season | None:
        """The running season, else the one that ended last, else the next one."""
        now = self._now()
        found = await self.seasons(program_id)
        running = [s for s in found if s.starts_at <= now < s.ends_at]
        if running:
            return running[-1]
        ended = [s for s in found if s.ends_at <= now]
        if ended:
            return max(ended, key=lambda s: s.ends_at)
        return found[0] if found else None

    async def board_key(
        self, program: Program, period: str, season_id: int | None = None
    ) -> tuple[str, Season | None]:
        """The key of the board of ``period`` at ``clock.now()``."""
        now = self._now()
        if period == Period.ALL:
            return "all", None
        if period == Period.WEEK:
            week_start = (await self.settings(program.id)).week_start
            return periods.week_key(now, program.timezone, week_start), None
        if period == Period.MONTH:
            return periods.month_key(now, program.timezone), None
        if period == Period.SEASON:
            if season_id is not None:
                season = next(
                    (s for s in await self.seasons(program.id) if s.id == season_id), None
                )
            else:
                season = await self.current_season(program.id)
            if season is None:
                raise NoSeason("the program has no season")
            return periods.season_key(season.id), season
        raise UnknownPeriod(f"unknown period {period!r}")

    async def board(
        self,
        program_id: int,
        period: str = Period.ALL,
        *,
        reader_id: int | None = None,
        page: int = 1,
        per_page: int = PER_PAGE,
        season_id: int | None = None,
    ) -> Board:
        """One page of a board and, with ``reader_id``, where that reader stands."""
        program = await self._program(program_id)
        key, season = await self.board_key(program, period, season_id)
        public = (await self.settings(program_id)).public_names
        # Each statement stands alone (the page with its ranks is one statement; the names
        # on it may be a moment newer): no transaction's round trips on the hottest read.
        async with self._db.reads() as conn:
            page = max(1, page)
            offset = (page - 1) * per_page
            rows, me = await db.board_page(conn, program_id, key, reader_id, per_page, offset)
            total = me["total"]
            pages = max(1, -(-total // per_page))
            if page > pages:  # an old button after the board shrank: the last page
                page, offset = pages, (pages - 1) * per_page
                rows, me = await db.board_page(conn, program_id, key, reader_id, per_page, offset)
            names = await db.names_of(conn, program_id, [r["reader_id"] for r in rows])
            entries: list[BoardEntry] = []
            rank = 0
            previous: int | None = None
            for i, row in enumerate(rows):
                count = row["entry_count"]
                if count != previous:
                    if i == 0 and offset:
                        rank = 1 + (await db.above(conn, program_id, key, count))[0]
                    else:
                        rank = offset + i + 1
                    previous = count
                name, number = names.get(row["reader_id"], ("", 0))
                entries.append(
                    BoardEntry(
                        rank=rank,
                        reader_id=row["reader_id"],
                        name=public_name(name, public),
                        number=number,
                        count=count,
                    )
                )
        you = None
        if reader_id is not None:
            you = standing_of(me)
        starts_at, ends_at = period_bounds(period, key, program.timezone)
        if season is not None:
            starts_at, ends_at = season.starts_at, season.ends_at
        return Board(
            program_id=program_id,
            program_title=program.title,
            timezone=program.timezone,
            period=str(period),
            key=key,
            starts_at=starts_at,
            ends_at=ends_at,
            season=season,
            entries=entries,
            page=page,
            pages=pages,
            total=total,
            you=you,
            you_id=reader_id,
            frozen=season is not None and season.final_at is not None,
        )

    async def standing(self, program_id: int, period: str, reader_id: int) -> Standing:
        program = await self._program(program_id)
        key, _ = await self.board_key(program, period)
        async with self._db.reads() as conn:
            return await self._standing(conn, program_id, key, reader_id)

    @staticmethod
    async def _standing(conn: Any, program_id: int, key: str, reader_id: int) -> Standing:
        _, me = await db.board_page(conn, program_id, key, reader_id, 0)
        return standing_of(me)

    # --- settings and exclusions --------------------------------------------------------------

    async def _managed(self, program_id: int, actor_id: int | None) -> Program:
        program = await self._program(program_id)
        await self._engine.require_manager(program, actor_id)
        return program

    async def update_settings(
        self, program_id: int, actor_id: int | None, **values: Any
    ) -> BoardSettings:
        """Change ``public_names`` (bool) or ``week_start`` (0 Monday … 6 Sunday)."""
        await self._managed(program_id, actor_id)
        clean: dict[str, Any] = {}
        for key, value in values.items():
            if key == "public_names":
                clean[key] = bool(value)
            elif key == "week_start":
                if not isinstance(value, int) or not 0 <= value <= 6:
                    raise BadBoardSetting(
                        "week_start is a weekday from 0 (Monday) to 6", key="week_start"
                    )
                clean[key] = value
            else:
                raise BadBoardSetting(f"unknown board setting {key!r}", key="unknown")
        async with self._db.write() as conn:
            await db.save_settings(conn, program_id, clean, self._now())
        return await self.settings(program_id)

    async def set_schedule(
        self,
        program_id: int,
        actor_id: int | None,
        cron: str | None,
        *,
        period: str = Period.WEEK,
        chat_id: int | None = None,
    ) -> BoardSettings:
        """Post the board of ``period`` on a cron schedule in the program's timezone, to
        ``chat_id`` (None: the program's chat). The manager must be an admin there and the
        bot able to post; checked now and before every post. ``cron`` None stops posts."""
        program = await self._managed(program_id, actor_id)
        values: dict[str, Any]
        if cron is None:
            values = {"schedule": None}
        else:
            try:
                normal = periods.check_cron(cron)
            except periods.BadSchedule as exc:
                raise BadBoardSetting(str(exc), key="schedule", problem=exc.problem) from exc
            if period not in (Period.WEEK, Period.MONTH, Period.ALL, Period.SEASON):
                raise UnknownPeriod(f"unknown period {period!r}")
            problem = await self._post_problem(program, chat_id, actor_id)
            if problem:
                raise BadBoardSetting(
                    f"cannot post there: {problem}", key="post_chat", problem=problem
                )
            # Slots before now are not owed: the first post is the next slot.
            values = {
                "schedule": normal,
                "schedule_period": str(period),
                "post_chat_id": chat_id,
                "set_by": actor_id,
                "last_slot_at": self._now(),
            }
        async with self._db.write() as conn:
            await db.save_settings(conn, program_id, values, self._now())
        return await self.settings(program_id)

    async def _post_problem(
        self, program: Program, chat_id: int | None, manager_id: int | None
    ) -> str | None:
        """Why a board cannot be posted to ``chat_id`` now, in a word templates translate
        (``cannot_post``: the bot may not post there; ``not_admin``: the manager is no
        admin there); None: it can."""
        if chat_id is None or chat_id == program.destination_id:
            where = program.destination
        else:
            where = Destination(program.platform, chat_id, "supergroup", "bot")
        port = self._engine.port(program.platform)
        rights = await port.post_rights(where)
        if not isinstance(rights, PostRights) or not rights.may_post:
            return "cannot_post"
        if manager_id is not None and where is not program.destination:
            admin = await port.is_admin(where, manager_id)
            if not isinstance(admin, AdminResult) or not admin.is_admin:
                return "not_admin"
        return None

    async def exclude(
        self, program_id: int, actor_id: int | None, reader_id: int, excluded: bool = True
    ) -> None:
        """Take a reader off (or back onto) every board of the program; counts stay."""
        await self._managed(program_id, actor_id)
        now = self._now()
        async with self._db.write() as conn:
            known = await db.readers_by_ids(conn, program_id, [reader_id])
            if reader_id not in known:
                await db.add_readers(conn, program_id, [reader_id])
            elif bool(known[reader_id]["excluded"]) == excluded:
                return
            rows = await db.counts_of_reader(conn, program_id, reader_id)
            histogram: dict[tuple[int, str, int], int] = defaultdict(int)
            for key, row in rows.items():
                histogram[(program_id, key, row["count"])] += -1 if excluded else 1
            await db.set_excluded(conn, program_id, reader_id, excluded, actor_id, now)
            await db.add_histogram(conn, histogram)

    # --- scheduled posts ------------------------------------------------------------------------

    async def post_due(self) -> PostReport:
        """Post every program's latest due board slot once (claimed in ``job_claims`` in the
        transaction that queues the post); a slot missed for longer than :data:`RECENT` is
        skipped with a log line. Then close the seasons that are due."""
        report = PostReport()
        now = self._now()
        async with self._db.read() as conn:
            scheduled = await db.scheduled_programs(conn)
        for row in scheduled:
            try:
                await self._post_slot(row, now, report)
            except ProgramNotFound:
                continue
        await self.close_seasons(report)
        return report

    async def _post_slot(self, row: Mapping[Any, Any], now: datetime, report: PostReport) -> None:
        program = await self._program(row["program_id"])
        settings = settings_from_row(program.id, row)
        assert settings.schedule is not None
        slot = periods.latest_slot(settings.schedule, program.timezone, now, settings.last_slot_at)
        if slot is None:
            return
        wall, at = slot
        name = wall.isoformat(timespec="minutes")
        job = f"board_post:{program.id}"
        if now - at > RECENT:
            async with self._db.write() as conn:
                if await db_jobs.claim_slot(conn, job, name, now):
                    await db.advance_slot(conn, program.id, at, settings.last_slot_at)
                    logger.info(
                        "program %s: board slot %s (%s) is stale at %s; skipped",
                        program.id,
                        name,
                        program.timezone,
                        now.isoformat(),
                    )
                    report.skipped += 1
            return
        problem = await self._post_problem(program, settings.post_chat_id, settings.set_by)
        if problem:
            async with self._db.write() as conn:
                if await db_jobs.claim_slot(conn, job, name, now):
                    await db.advance_slot(conn, program.id, at, settings.last_slot_at)
                    logger.warning(
                        "program %s: board slot %s not posted: %s", program.id, name, problem
                    )
                    report.skipped += 1
            return
        try:
            board = await self.board(program.id, settings.schedule_period)
        except NoSeason:
            return
        target = settings.post_chat_id or program.destination_id
        async with self._db.write() as conn:
            if not await db_jobs.claim_slot(conn, job, name, now):
                return  # another instance posted it
            await db.advance_slot(conn, program.id, at, settings.last_slot_at)
            await _post(
                conn,
                program,
                "board",
                {**board_context(board), "posted": True},
                now,
                key=f"board:{program.id}:{name}",
                chat_id=target,
            )
        report.posted += 1

    # --- seasons ---------------------------------------------------------------------------------

    async def create_season(
        self,
        program_id: int,
        actor_id: int | None,
        name: str,
        starts_at: datetime,
        ends_at: datetime,
        *,
        mode: str = "top",
        winners: int = 3,
        min_referrals: int = 1,
        prize_id: int | None = None,
    ) -> Season:
        """A named contest period [starts_at, ends_at). ``mode`` "top": the top ``winners``
        win; "draw": a draw of ``winners`` among readers with at least ``min_referrals``,
        one ticket per confirmed referral, committed now by posting the seed's SHA-256.
        ``prize_id``: the program's prize rule its winners get (:class:`BadSeasonPrize`
        if it is not one)."""
        program = await self._managed(program_id, actor_id)
        title = checked_season(name, starts_at, ends_at, mode, winners, min_referrals)
        now = self._now()
        seed = draws.new_seed() if mode == "draw" else None
        async with self._db.write() as conn:
            prize = await _prize_rule(conn, program, prize_id) if prize_id is not None else None
            season_id = await db.insert_season(
                conn,
                {
                    "program_id": program_id,
                    "name": title,
                    "starts_at": starts_at,
                    "ends_at": ends_at,
                    "mode": mode,
                    "winners": winners,
                    "min_referrals": min_referrals,
                    "prize_id": prize_id,
                    "seed": seed,
                    "seed_hash": draws.commitment(seed) if seed else None,
                    "created_by": actor_id,
                    "created_at": now,
                },
            )
            row = await db.season_by_id(conn, season_id)
            assert row is not None
            season = season_from_row(row, prize["title"] if prize else None)
            # Referrals that joined inside the season before it was created count too.
            await self._backfill_season(conn, program, season)
            await _post(
                conn,
                program,
                "season_started",
                season_context(season, program.timezone),
                now,
                key=f"season:{season_id}:start",
            )
        return season

    async def check_season(
        self,
        program_id: int,
        actor_id: int | None,
        name: str,
        starts_at: datetime,
        ends_at: datetime,
        *,
        mode: str = "top",
        winners: int = 3,
        min_referrals: int = 1,
    ) -> None:
        """Refuse what :meth:`create_season` would refuse, saving nothing (a guided setup
        checks the season before asking for its prize)."""
        await self._managed(program_id, actor_id)
        checked_season(name, starts_at, ends_at, mode, winners, min_referrals)

    async def season(self, season_id: int) -> Season:
        """One season (:class:`SeasonNotFound` if there is none)."""
        async with self._db.read() as conn:
            row = await db.season_by_id(conn, season_id)
            if row is None:
                raise SeasonNotFound(f"season {season_id} does not exist")
            return (await _seasons_with_titles(conn, [row]))[0]

    async def set_season_prize(
        self, season_id: int, actor_id: int | None, prize: int | str | None
    ) -> Season:
        """Choose what the season's winners get: a prize rule of the program by its id or
        title (None: no prize), until the season's results are final. The program's chat is
        told the new prize."""
        current = await self.season(season_id)
        program = await self._managed(current.program_id, actor_id)
        now = self._now()
        async with self._db.write() as conn:
            rule = await _prize_rule(conn, program, prize) if prize is not None else None
            rule_id = int(rule["id"]) if rule is not None else None
            if not await db.set_season_prize(conn, season_id, rule_id):
                raise BadSeasonPrize("final", "the season's results are final")
            row = await db.season_by_id(conn, season_id)
            assert row is not None
            season = season_from_row(row, rule["title"] if rule is not None else None)
            if rule_id != current.prize_id:
                await _post(
                    conn,
                    program,
                    "season_prize",
                    season_context(season, program.timezone),
                    now,
                    key=f"season:{season_id}:prize:{rule_id or 0}:{now.isoformat()}",
                )
        return season

    async def _backfill_season(self, conn: Any, program: Program, season: Season) -> None:
        subtract = program.leave_policy != "keep"
        found = await db.counted_joins_between(
            conn, program.id, season.starts_at, season.ends_at, subtract
        )
        if not found:
            return
        excluded = {row["reader_id"] for row in await db.excluded_readers(conn, program.id)}
        known = await db.readers_by_ids(conn, program.id, sorted(found))
        await db.add_readers(conn, program.id, [r for r in found if r not in known])
        key = periods.season_key(season.id)
        moves = {
            (program.id, key, reader): [count, 0, 0, last]
            for reader, (count, last) in found.items()
        }
        await self._apply(conn, moves, {program.id: excluded})

    async def close_seasons(self, report: PostReport | None = None) -> PostReport:
        """Freeze and announce every season whose last referrals are past their hold (the
        program's hold hours after the end), once; then grant its prizes, once."""
        report = report or PostReport()
        now = self._now()
        async with self._db.read() as conn:
            due = await db.seasons_to_close(conn, now)
        for row in due:
            try:
                program = await self._program(row["program_id"])
            except ProgramNotFound:
                continue
            if row["final_at"] is None:
                if now < row["ends_at"] + timedelta(hours=program.hold_hours):
                    continue
                if await self._finalise(program, row["id"], now):
                    report.seasons_closed += 1
            report.prizes += await self._grant_prizes(row["id"])
        if self._rewards is not None:
            # winners who did not claim their prize within the window: unreachable
            report.prizes_expired += await self._rewards.expire_prize_claims()
        return report

    async def _finalise(self, program: Program, season_id: int, now: datetime) -> bool:
        # The boards must have every change record of the season first.
        await self.consume()
        async with self._db.write() as conn:
            if not await db_jobs.claim_slot(conn, "season_final", str(season_id), now):
                return False
            row = await db.season_by_id(conn, season_id)
            assert row is not None
            standings = await db.standings(conn, program.id, periods.season_key(season_id))
            results = season_results(row, standings)
            names = await db.names_of(
                conn, program.id, [w["reader_id"] for w in results["winners"]]
            )
            public = settings_from_row(
                program.id, (await db.settings_of(conn, [program.id])).get(program.id)
            ).public_names
            for winner in results["winners"]:
                winner["name"] = public_name(names.get(winner["reader_id"], ("", 0))[0], public)
            await db.update_season(
                conn, season_id, {"final_at": now, "results": json.dumps(results)}
            )
            titles = await _prize_titles(conn, [row])
            season = season_from_row({**row, "final_at": now}, titles.get(row["prize_id"]))
            context = season_context(season, program.timezone)
            context["results"] = public_results(results)
            buttons: list[list[Button]] = []
            if season.prize_id is not None and results["winners"]:
                await self._mark_claims(conn, program, context["results"]["winners"], results)
                context["claim_until"] = _iso(now + PRIZE_CLAIM_WINDOW)
                # no adapter running here (yet): the results go out without the button
                port = self._engine.ports.get(program.platform)
                if isinstance(port, DeepLinks):
                    url = port.deep_link(claim_payload(season_id))
                    buttons.append([Button("claim_prize", url=url)])
            await _post(
                conn,
                program,
                "season_final",
                context,
                now,
                key=f"season:{season_id}:final",
                payload=Post(buttons_of(buttons)) if buttons else None,
            )
        return True

    @staticmethod
    async def _mark_claims(
        conn: Any,
        program: Program,
        shown: Sequence[dict[str, Any]],
        results: Mapping[str, Any],
    ) -> None:
        """Flag the announced winners the bot cannot message (they never opened it, or
        blocked it): they claim their prize with the announcement's button."""
        readers = [w["reader_id"] for w in results["winners"]]
        found = await db_people.people_by_keys(conn, [(program.platform, r) for r in readers])
        for winner, reader in zip(shown, readers, strict=True):
            person = found.get((program.platform, reader))
            winner["claim"] = (
                person is None or person["started_at"] is None or person["blocked_at"] is not None
            )

    async def _grant_prizes(self, season_id: int) -> int:
        async with self._db.read() as conn:
            row = await db.season_by_id(conn, season_id)
        if row is None or row["final_at"] is None or row["prize_id"] is None:
            return 0
        if row["prizes_granted_at"] is not None or self._rewards is None:
            return 0
        results = json.loads(row["results"] or "{}")
        winners = [(w["reader_id"], w["place"]) for w in results.get("winners", [])]
        granted = await self._rewards.grant_prizes(
            row["program_id"],
            row["prize_id"],
            season_id,
            winners,
            claim_until=row["final_at"] + PRIZE_CLAIM_WINDOW,
        )
        async with self._db.write() as conn:
            await db.update_season(conn, season_id, {"prizes_granted_at": self._now()})
        return len(granted)

    async def season_results(self, season_id: int) -> dict[str, Any] | None:
        """A final season's frozen results (standings, winners, and a draw's seed and
        ticket ranges); None before it is final."""
        async with self._db.read() as conn:
            row = await db.season_by_id(conn, season_id)
        if row is None or row["results"] is None:
            return None
        return dict(json.loads(row["results"]))


def checked_season(
    name: str, starts_at: datetime, ends_at: datetime, mode: str, winners: int, least: int
) -> str:
    """The season's cleaned name, or :class:`BadBoardSetting` saying what cannot be used."""
    title = clean_name(name, MAX_SEASON_NAME)
    if not title:
        raise BadBoardSetting("a season needs a name", key="season_name")
    if ends_at <= starts_at:
        raise BadBoardSetting("a season ends after it starts", key="season_dates")
    if mode not in ("top", "draw"):
        raise BadBoardSetting("mode is top or draw", key="season_mode")
    if not 1 <= winners <= MAX_WINNERS or least < 1:
        raise BadBoardSetting("1-100 winners, at least 1 referral", key="season_winners")
    return title


async def _prize_rule(conn: Any, program: Program, ref: int | str) -> Mapping[Any, Any]:
    """The program's live prize rule ``ref``: its id (``5``, ``#5``) or its title."""
    text = str(ref).strip()
    number = text.removeprefix("#")
    if isinstance(ref, int) or number.isdigit():
        rule_id = int(number)
        row = await db_rewards.milestone_by_id(conn, rule_id)
        if row is None or row["removed_at"] is not None:
            raise BadSeasonPrize("unknown", f"there is no prize {rule_id}", ref=text)
        if row["program_id"] != program.id:
            raise BadSeasonPrize("other_program", "that prize is another program's", ref=text)
        if row["role"] != "prize":
            raise BadSeasonPrize("not_prize", "that rule is a milestone, not a prize", ref=text)
    else:
        wanted = clean_name(text, 128).casefold()
        rows = [
            r
            for r in await db_rewards.milestones_of(conn, [program.id])
            if r["role"] == "prize" and str(r["title"]).casefold() == wanted
        ]
        if not rows:
            raise BadSeasonPrize("unknown", "there is no prize of that title", ref=text)
        if len(rows) > 1:
            raise BadSeasonPrize("ambiguous", "several prizes have that title", ref=text)
        row = rows[0]
    if row["paused"]:
        raise BadSeasonPrize("paused", "that prize is paused", ref=text)
    return row


async def _post(
    conn: Any,
    program: Program,
    template: str,
    context: dict[str, Any],
    now: datetime,
    *,
    key: str,
    chat_id: int | None = None,
    payload: Any = None,
) -> None:
    """Queue a post in the program's chat (or ``chat_id``) in the program's language, at
    bulk priority, once per ``key``, in the caller's transaction."""
    await db_outbox.enqueue(
        conn,
        [
            message(
                program.platform,
                "chat",
                chat_id if chat_id is not None else program.destination_id,
                template,
                context,
                priority=Priority.BULK,
                now=now,
                program_id=program.id,
                locale=program.locale,
                payload=payload,
                key=key,
            )
        ],
    )


def season_results(
    season: Mapping[Any, Any], standings: Sequence[Mapping[Any, Any]]
) -> dict[str, Any]:
    """The frozen outcome of a season from its final board (in board order)."""
    table = [
        {"reader_id": r["reader_id"], "number": r["number"], "count": r["count"]}
        for r in standings
    ]
    winners: list[dict[str, Any]] = []
    out: dict[str, Any] = {"mode": season["mode"], "standings": table}
    if season["mode"] == "top":
        for place, entry in enumerate(table[: season["winners"]], start=1):
            winners.append({**entry, "place": place})
    else:
        eligible = [e for e in table if e["count"] >= season["min_referrals"]]
        by_number = {e["number"]: e for e in eligible}
        entries = draws.ranges([(e["number"], e["count"]) for e in eligible])
        drawn = draws.draw(season["seed"], entries, season["winners"])
        for place, (k, ticket, number) in enumerate(drawn, start=1):
            winners.append({**by_number[number], "place": place, "k": k, "ticket": ticket})
        out["seed"] = season["seed"]
        out["seed_hash"] = season["seed_hash"]
        out["tickets"] = entries[-1].last + 1 if entries else 0
        out["ranges"] = draws.format_ranges(entries)
    out["winners"] = winners
    return out


def public_results(results: Mapping[Any, Any]) -> dict[str, Any]:
    """What an announcement shows: winners by public name or number, a draw's proof."""
    return {
        "mode": results["mode"],
        "winners": [
            {
                "place": w["place"],
                "name": w.get("name", ""),
                "number": w["number"],
                "count": w["count"],
                "ticket": w.get("ticket"),
                "claim": False,  # a winner the bot cannot message (when there is a prize)
            }
            for w in results["winners"]
        ],
        "seed": results.get("seed"),
        "seed_hash": results.get("seed_hash"),
        "tickets": results.get("tickets"),
        "ranges": results.get("ranges"),
        "entrants": len(results["standings"]),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def season_context(season: Season, timezone: str) -> dict[str, Any]:
    return {
        "season_id": season.id,
        "name": season.name,
        "starts_at": _iso(season.starts_at),
        "ends_at": _iso(season.ends_at),
        "mode": season.mode,
        "winners": season.winners,
        "min_referrals": season.min_referrals,
        "seed_hash": season.seed_hash,
        "final": season.final_at is not None,
        "timezone": timezone,
        "prize": season.prize_title,
        "claim_days": PRIZE_CLAIM_WINDOW.days,
    }


def board_context(board: Board) -> dict[str, Any]:
    """A board as the plain JSON the ``board`` templates read (also stored in the outbox)."""
    you = board.you
    return {
        "program_title": board.program_title,
        "timezone": board.timezone,
        "period": board.period,
        "key": board.key,
        "starts_at": _iso(board.starts_at),
        "ends_at": _iso(board.ends_at),
        "season": season_context(board.season, board.timezone) if board.season else None,
        "entries": [
            {
                "rank": e.rank,
                "name": e.name,
                "number": e.number,
                "count": e.count,
                "you": you is not None and e.reader_id == board.you_id,
            }
            for e in board.entries
        ],
        "page": board.page,
        "pages": board.pages,
        "total": board.total,
        "you": None
        if you is None
        else {
            "count": you.count,
            "rank": you.rank,
            "to_next": you.to_next,
            "excluded": you.excluded,
        },
        "frozen": board.frozen,
    }
