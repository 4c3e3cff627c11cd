"""The ``inviteloop`` command line and the composition root.

Settings come from ``INVITELOOP_*`` environment variables and an optional TOML file
(``inviteloop.toml`` in the working directory, or the file ``INVITELOOP_CONFIG`` names);
the environment wins. Nothing else in the project reads configuration or wires services.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url

from bots.render import Renderer
from delivery.adapter import BotAdapter, ChatPort, Job, JobReport
from delivery.inbox import Inbox
from delivery.outbox import Outbox
from delivery.ratelimit import Limits, RateLimiter
from delivery.spool import Spool
from leaderboard.reports import Reports
from leaderboard.service import BoardService
from referrals.clock import Clock, SystemClock
from referrals.people import People
from referrals.service import ReferralService
from rewards.service import RewardService
from storage.database import Database, DatabaseURLError, normalise_url
from storage.migrate import current_revision, head_revision, upgrade

if TYPE_CHECKING:
    # aiogram takes seconds to import: only a process that runs the bot pays for it.
    from bots.discord.app import DiscordBot
    from bots.telegram.app import TelegramBot

logger = logging.getLogger("inviteloop")

ENV_PREFIX = "INVITELOOP_"
STOP_GRACE_S = 10.0  # how long a stop waits for a running job or outbox drain
DEFAULT_CONFIG = "inviteloop.toml"
GC_YOUNG_THRESHOLD = 20_000  # CPython's default is 700; see tune_garbage_collector


def config_path() -> Path:
    return Path(os.environ.get(f"{ENV_PREFIX}CONFIG", DEFAULT_CONFIG)).expanduser()


class Settings(BaseSettings):
    """Every setting, with its environment variable ``INVITELOOP_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    database_url: str = ""
    telegram_token: SecretStr | None = None
    telegram_api_url: str | None = None
    # NoDecode: the variable is our comma-separated list, not JSON (see _owners).
    telegram_owners: Annotated[list[int], NoDecode] = []
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    discord_token: SecretStr | None = None
    discord_api_url: str | None = None
    # Where files wait to be sent (exports, charts): next to the SQLite database, else
    # next to the config file. Instances sharing one database must share it too.
    data_dir: str = ""

    @field_validator("telegram_owners", mode="before")
    @classmethod
    def _owners(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [part.strip() for part in value.replace(";", ",").split(",")]
            try:
                return [int(part) for part in parts if part]
            except ValueError as exc:
                raise ValueError("a comma-separated list of Telegram user ids") from exc
        return value

    @field_validator("telegram_token", mode="before")
    @classmethod
    def _token(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None  # an empty variable is no token at all
            left, sep, right = value.partition(":")
            if not (sep and left.isdigit() and right) or any(c.isspace() for c in value):
                raise ValueError("not a bot token: @BotFather gives one like 123456789:AAE...xyz")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value:
            return f"sqlite:///{(config_path().parent / 'inviteloop.db').resolve()}"
        try:
            return normalise_url(value)
        except DatabaseURLError as exc:
            raise ValueError(str(exc)) from exc
        except Exception as exc:  # sqlalchemy.exc.ArgumentError and friends
            raise ValueError(f"not a database URL: {exc}") from exc

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("discord_token", mode="before")
    @classmethod
    def _discord_token(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
            if any(c.isspace() for c in value) or value.count(".") != 2:
                raise ValueError("not a bot token: the Developer Portal's Bot page gives one")
        return value

    @field_validator("telegram_api_url", "discord_api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else None

    def data_path(self) -> Path:
        """The data directory (``data_dir``, or its default)."""
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        url = make_url(self.database_url)
        database = url.database or ""
        if (
            url.get_backend_name() == "sqlite"
            and database
            and not database.startswith(("file:", ":memory:"))
        ):
            return Path(database).expanduser().resolve().parent
        return config_path().resolve().parent

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_path()
        if path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


class ConfigError(Exception):
    """Settings that cannot be used; the message names the bad key."""


def load_settings() -> Settings:
    path = config_path()
    if f"{ENV_PREFIX}CONFIG" in os.environ and not path.is_file():
        raise ConfigError(f"{ENV_PREFIX}CONFIG: no such file {path}")
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "settings"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown setting"
            problems.append(f"{ENV_PREFIX}{key.upper()} ({key} in {path.name}): {message}")
        raise ConfigError("bad configuration:\n  " + "\n  ".join(problems)) from exc
    except Exception as exc:  # a TOML file that does not parse
        raise ConfigError(f"{path}: {exc}") from exc


def describe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# --- composition root -------------------------------------------------------------------


class NothingToRun(Exception):
    """No bot has a token: ``inviteloop run`` has nothing to serve."""


def configured_platforms(settings: Settings) -> list[str]:
    """The platforms whose bot has a token."""
    found = ["telegram"] if settings.telegram_token is not None else []
    if settings.discord_token is not None:
        found.append("discord")
    return found


class Application:
    """Storage, services, the outbox, the bots and the scheduled jobs, wired once.

    ``bots`` are the adapters that have a token; ``jobs`` are the scheduled service calls
    (the engine's, the outbox's and each bot's own). :meth:`run` registers every job with
    one ``AsyncIOScheduler(timezone=UTC)`` and serves every bot; :meth:`tick` runs every
    job once (tests and the demo move the clock and call it)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        limits: Limits | None = None,
        poll_timeout: int = 25,
        retry_delays: Sequence[float] = (0.2, 1.0, 3.0),
        monotonic: Callable[[], float] | None = None,
        discord_options: dict[str, Any] | None = None,
    ) -> None:
        """``limits`` replaces Telegram's sending limits (tests open them wide);
        ``discord_options`` go to the Discord bot (its settle window, discord.py's)."""
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.db = Database.from_url(settings.database_url)
        self.people = People(self.db, self.clock)
        self.referrals = ReferralService(self.db, self.clock, people=self.people)
        monotonic = monotonic or time.monotonic
        limiters = {"telegram": RateLimiter(limits, monotonic)} if limits else {}
        self.spool = Spool(settings.data_path() / "spool")
        self.outbox = Outbox(
            self.db, self.clock, limiters=limiters, monotonic=monotonic, spool=self.spool
        )
        self.rewards = RewardService(self.referrals.engine)
        # A reward's grant records its message's outcome in the outbox's own transaction.
        self.outbox.on_settled(self.rewards.settled)
        self.boards = BoardService(self.referrals.engine, self.rewards)
        self.reports = Reports(self.referrals.engine, self.rewards, self.spool)
        self.inbox = Inbox(self.db, self.clock)
        self.renderer = Renderer()
        self.bots: list[BotAdapter] = []
        self.telegram: TelegramBot | None = None
        token = settings.telegram_token.get_secret_value() if settings.telegram_token else None
        if token:
            from bots.telegram.app import TelegramBot

            self.telegram = TelegramBot(
                token,
                inbox=self.inbox,
                clock=self.clock,
                referrals=self.referrals,
                rewards=self.rewards,
                people=self.people,
                outbox=self.outbox,
                renderer=self.renderer,
                api_url=settings.telegram_api_url,
                owners=frozenset(settings.telegram_owners),
                poll_timeout=poll_timeout,
                retry_delays=retry_delays,
            )
            self.telegram.dispatcher["boards"] = self.boards
            self.telegram.dispatcher["reports"] = self.reports
            self.bots.append(self.telegram)
        self.discord: DiscordBot | None = None
        if settings.discord_token is not None:
            self.discord = self._discord_bot(
                settings.discord_token.get_secret_value(), **(discord_options or {})
            )
            self.discord.bot.reports = self.reports
            self.bots.append(self.discord)
        self.jobs: list[Job] = [
            Job("confirm_due", self._confirm_due, every=timedelta(minutes=1)),
            # after the confirmations: the milestones their change records reached
            Job("rewards", self._rewards, every=timedelta(minutes=1)),
            # the boards follow the same change records; then due posts and season ends
            Job("boards", self._boards, every=timedelta(minutes=1)),
            Job("settle_join_requests", self._settle_join_requests, every=timedelta(minutes=1)),
            *(job for bot in self.bots for job in bot.jobs()),
            # hourly, so a day missed while the process was down is caught up soon; the
            # job claims each UTC day once, across every instance on the database
            Job("outbox_purge", self._purge_outbox, every=timedelta(hours=1)),
        ]
        self._running: dict[str, asyncio.Lock] = {job.name: asyncio.Lock() for job in self.jobs}

    def _discord_bot(self, token: str, **options: Any) -> DiscordBot:
        from bots.discord.app import DiscordBot

        return DiscordBot(
            token,
            referrals=self.referrals,
            rewards=self.rewards,
            people=self.people,
            outbox=self.outbox,
            renderer=self.renderer,
            clock=self.clock,
            boards=self.boards,
            api_url=self.settings.discord_api_url,
            **options,
        )

    # --- jobs ---------------------------------------------------------------------

    async def _confirm_due(self) -> JobReport:
        confirmed = await self.referrals.confirm_due()
        return {"confirmed": confirmed.confirmed, "rejected": confirmed.rejected}

    async def _rewards(self) -> JobReport:
        evaluated = await self.rewards.evaluate()
        delivered = await self.rewards.deliver()
        return {
            "grants": evaluated.grants,
            "rewards_queued": delivered.queued,
            "rewards_waiting_stock": delivered.waiting_stock,
        }

    async def _boards(self) -> JobReport:
        consumed = await self.boards.consume()
        posted = await self.boards.post_due()
        return {
            "board_changes": consumed.changes,
            "boards_posted": posted.posted,
            "board_slots_skipped": posted.skipped,
            "seasons_closed": posted.seasons_closed,
            "prizes_granted": posted.prizes,
            "prizes_expired": posted.prizes_expired,
        }

    async def _settle_join_requests(self) -> JobReport:
        approved, declined = await self.referrals.settle_join_requests()
        return {"approved": approved, "declined": declined}

    async def _purge_outbox(self) -> JobReport:
        return {"purged": await self.outbox.purge() or 0}

    async def run_job(self, job: Job) -> JobReport:
        """Run one job, never two runs of it at once in this process."""
        async with self._running[job.name]:
            report = await job.run()
        self.outbox.wake()  # a job may have queued messages
        return report

    async def tick(self) -> dict[str, Any]:
        """Every job once, in order (DESIGN.md, Scheduled work): confirm referrals past
        their hold, settle join requests whose human check is due, each bot's own work
        (retry kept updates), purge the outbox. Each asks the database what is due at
        ``clock.now()``, so missed runs catch up. Returns the jobs' figures."""
        report: dict[str, Any] = {}
        for job in self.jobs:
            report.update(await self.run_job(job))
        return report

    async def _scheduled(self, job: Job) -> None:
        try:
            await self.run_job(job)
        except Exception:
            logger.exception("scheduled job %s failed; its next run catches up", job.name)

    def scheduler(self) -> Any:
        """One AsyncIOScheduler(timezone=UTC) with every job registered by name."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        scheduler = AsyncIOScheduler(timezone=UTC)
        for job in self.jobs:
            if job.every is not None:
                trigger: Any = IntervalTrigger(seconds=job.every.total_seconds(), timezone=UTC)
                first = datetime.now(UTC)  # once at start, then every interval
            else:
                if job.cron is None:
                    raise ValueError(f"job {job.name} has neither an interval nor a cron")
                trigger, first = CronTrigger.from_crontab(job.cron, timezone=UTC), None
            scheduler.add_job(
                self._scheduled,
                trigger,
                args=(job,),
                id=job.name,
                name=job.name,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                **({"next_run_time": first} if first else {}),
            )
        return scheduler

    # --- bots ---------------------------------------------------------------------

    async def start(self) -> list[ChatPort]:
        """Start every bot and connect its port to the engine and the outbox (the only
        place ports are wired)."""
        ports = []
        for bot in list(self.bots):
            try:
                port = await bot.start()
            except Exception:
                if len(self.bots) == 1:
                    raise
                # One bot's refused token or outage never stops the other.
                logger.exception("the %s bot could not start; the others run", bot.platform)
                self.bots.remove(bot)
                continue
            self.referrals.add_port(port)
            self.outbox.add_sender(port)
            ports.append(port)
        return ports

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set: every bot, the outbox's drainer and the jobs."""
        if not self.bots:
            raise NothingToRun("no bot has a token")
        await self.start()
        scheduler = self.scheduler()
        scheduler.start()
        drainer = asyncio.create_task(self.outbox.run(stop), name="outbox")
        # The bots stop after the drainer: the batch in hand goes out while their HTTP
        # sessions are open (discord.py's close() ends its session at once).
        bots_stop = asyncio.Event()
        serving = [
            asyncio.create_task(bot.serve(bots_stop), name=f"{bot.platform}-bot")
            for bot in self.bots
        ]
        try:
            await _until_stopped(stop, serving)
        finally:
            stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(drainer), timeout=STOP_GRACE_S)
            except TimeoutError:
                drainer.cancel()
            except Exception:
                logger.exception("the outbox's drainer failed")
            bots_stop.set()
            # Every bot finishes the batch in hand; a bot that failed raises below.
            results = await asyncio.gather(*serving, return_exceptions=True)
            # No new job runs; a running one finishes its work (each of its steps is its
            # own transaction, so even a cut one leaves nothing half done).
            scheduler.pause()
            try:
                await asyncio.wait_for(self._jobs_done(), timeout=STOP_GRACE_S)
            except TimeoutError:
                logger.warning("a scheduled job is still running; stopping it")
            scheduler.shutdown(wait=False)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _jobs_done(self) -> None:
        for lock in self._running.values():
            async with lock:
                pass

    async def close(self) -> None:
        for bot in self.bots:
            await bot.close()
        await self.db.dispose()


# --- commands -------------------------------------------------------------------------


async def _db_upgrade(settings: Settings, quiet: bool = False) -> int:
    db = Database.from_url(settings.database_url)
    try:
        before = await current_revision(db)
        await upgrade(db)
        after = await current_revision(db)
    finally:
        await db.dispose()
    if quiet:
        logger.info("database at %s", after)
    elif before == after:
        print(f"{describe_url(settings.database_url)}: already at {after}; nothing to do")
    else:
        print(f"{describe_url(settings.database_url)}: upgraded {before or 'empty'} -> {after}")
    return 0


async def _db_status(settings: Settings) -> int:
    db = Database.from_url(settings.database_url)
    try:
        current = await current_revision(db)
    finally:
        await db.dispose()
    head = head_revision()
    state = "up to date" if current == head else "needs `inviteloop db upgrade`"
    print(f"database: {describe_url(settings.database_url)} ({db.dialect})")
    print(f"revision: {current or 'none (empty database)'}; latest: {head}; {state}")
    return 0 if current == head else 1


async def _program_list(settings: Settings) -> int:
    db = Database.from_url(settings.database_url)
    try:
        service = ReferralService(db, SystemClock())
        found = await service.list_programs()
        if not found:
            print("no programs yet: add the bot to a chat and type /setup there")
        for program in found:
            totals = await service.program_totals(program.id)
            state = " (paused)" if program.paused else ""
            print(
                f"{program.id:>6}  {program.platform} {program.kind} {program.destination_id}  "
                f"{program.title!r}{state}  readers {totals['readers']}, "
                f"counted {totals['confirmed']}, waiting {totals['pending']}"
            )
    finally:
        await db.dispose()
    return 0


async def _program_delete(settings: Settings, program_id: int, yes: bool) -> int:
    db = Database.from_url(settings.database_url)
    try:
        service = ReferralService(db, SystemClock())
        program = await service.find_program_by_id(program_id)
        if program is None:
            print(f"inviteloop: no program {program_id} (see `inviteloop program list`)")
            return 1
        if not yes:
            print(
                f"would delete program {program.id} {program.title!r} "
                f"({program.platform} {program.destination_id}) and all its referrals, "
                "links and receipts; run again with --yes to delete it"
            )
            return 1
        deleted = await service.delete_program(program_id, None)
    finally:
        await db.dispose()
    print(
        f"deleted program {program_id} {deleted.program.title!r}: "
        f"{deleted.totals['readers']} readers, {deleted.totals['confirmed']} counted referrals"
    )
    return 0


async def _discord_sync(settings: Settings, guild_id: int | None) -> int:
    if settings.discord_token is None:
        print("inviteloop: set INVITELOOP_DISCORD_TOKEN first", file=sys.stderr)
        return 2
    app = Application(settings)
    assert app.discord is not None
    try:
        count = await app.discord.sync_commands(guild_id)
    finally:
        await app.close()
    where = f"server {guild_id}" if guild_id else "every server (global commands)"
    print(f"synced {count} slash commands for {where}")
    return 0


async def _export(settings: Settings, program_id: int, out: str) -> int:
    from leaderboard.export import write_export

    db = Database.from_url(settings.database_url)
    try:
        if await ReferralService(db, SystemClock()).find_program_by_id(program_id) is None:
            print(f"inviteloop: no program {program_id} (see `inviteloop program list`)")
            return 1
        for path in await write_export(db, program_id, Path(out)):
            print(path)
    finally:
        await db.dispose()
    return 0


async def _until_stopped(stop: asyncio.Event, serving: list[asyncio.Task[None]]) -> None:
    """Until ``stop`` is set, a bot fails, or every bot has ended on its own (a refused
    token ends only its own bot: the others go on)."""
    waiting = asyncio.create_task(stop.wait())
    try:
        pending: set[asyncio.Task[Any]] = {*serving, waiting}
        while not waiting.done():
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(t is not waiting and not t.cancelled() and t.exception() for t in done):
                return
            if all(t.done() for t in serving):
                return
    finally:
        waiting.cancel()


def tune_garbage_collector() -> None:
    """Settings for a long-running bot process, applied once start-up is done.

    Every update and every API answer becomes a tree of pydantic models that lives for
    milliseconds; CPython's default collects the youngest generation every 700 allocations
    and keeps re-scanning everything start-up loaded. Freezing what start-up built and
    collecting the young generation less often raised the end-to-end benchmark
    (benchmarks/telegram_e2e.py) by about a fifth; garbage in reference cycles lives a
    little longer, which costs a few MB."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


async def _serve(settings: Settings) -> int:
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    app = Application(settings)
    tune_garbage_collector()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Our own handlers (aiogram's polling, which installs its own, is not used): a
        # signal stops fetching, the batch in hand is finished and acknowledged.
        loop.add_signal_handler(signum, stop.set)
    api = settings.telegram_api_url or "https://api.telegram.org"
    try:
        await app.run(stop)
    except TelegramUnauthorizedError:
        print(
            f"inviteloop: {api} refused the bot token (401 Unauthorized): check "
            f"{ENV_PREFIX}TELEGRAM_TOKEN (from @BotFather)",
            file=sys.stderr,
        )
        return 1
    except (TelegramNetworkError, OSError) as exc:
        print(
            f"inviteloop: cannot reach the Telegram Bot API at {api} ({exc}); check the "
            f"network or {ENV_PREFIX}TELEGRAM_API_URL",
            file=sys.stderr,
        )
        return 1
    finally:
        await app.close()
    logger.info("stopped cleanly")
    return 0


def _run(settings: Settings) -> int:
    if not configured_platforms(settings):
        print(
            "inviteloop: nothing to run: set INVITELOOP_TELEGRAM_TOKEN to your bot's token "
            "(from @BotFather) or INVITELOOP_DISCORD_TOKEN (see README.md).\n"
            "To see inviteloop work without a token or network, run: inviteloop demo",
            file=sys.stderr,
        )
        return 2
    # Migrations run before the event loop that serves the bot starts.
    asyncio.run(_db_upgrade(settings, quiet=True))
    return asyncio.run(_serve(settings))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inviteloop",
        description="Self-hosted referral engine for Telegram and Discord communities.",
        epilog=f"Settings: {ENV_PREFIX}* environment variables or {DEFAULT_CONFIG} "
        "(see README.md, Configuration).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    db = commands.add_parser("db", help="database schema: upgrade, status")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply migrations (safe to run again)")
    db_commands.add_parser("status", help="show the schema revision; exit 1 if behind")
    commands.add_parser("run", help="run the bot (needs INVITELOOP_TELEGRAM_TOKEN)")
    demo = commands.add_parser(
        "demo", help="watch the whole loop offline: a local Telegram, simulated people"
    )
    demo.add_argument("--db", metavar="PATH", help="keep the demo's data in this SQLite file")
    demo.add_argument(
        "--discord", action="store_true", help="the Discord story instead: a local Discord"
    )
    discord_cli = commands.add_parser("discord", help="the Discord bot: sync its slash commands")
    discord_commands = discord_cli.add_subparsers(dest="discord_command", metavar="ACTION")
    sync = discord_commands.add_parser(
        "sync", help="register the slash commands with Discord (not done on every start)"
    )
    sync.add_argument("--guild", type=int, metavar="ID", help="only in this server (at once)")
    program = commands.add_parser("program", help="referral programs: list, delete")
    program_commands = program.add_subparsers(dest="program_command", metavar="ACTION")
    program_commands.add_parser("list", help="every program with its totals")
    delete = program_commands.add_parser(
        "delete", help="delete a program and all its data (the twin of /program delete)"
    )
    delete.add_argument("program_id", type=int, metavar="ID", help="from `program list`")
    delete.add_argument("--yes", action="store_true", help="delete without asking again")
    export = commands.add_parser(
        "export", help="write a program's CSV files (readers, referrals, grants)"
    )
    export.add_argument("--program", type=int, required=True, metavar="ID")
    export.add_argument("--out", required=True, metavar="DIR")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"inviteloop: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "run":
        return _run(settings)
    if args.command == "demo":
        from demo import run_demo

        return run_demo(args.db, discord=args.discord)
    if args.command == "discord":
        if args.discord_command == "sync":
            return asyncio.run(_discord_sync(settings, args.guild))
        parser.parse_args(["discord", "--help"])
    if args.command == "program":
        if args.program_command in ("list", "delete"):
            asyncio.run(_db_upgrade(settings, quiet=True))
        if args.program_command == "list":
            return asyncio.run(_program_list(settings))
        if args.program_command == "delete":
            return asyncio.run(_program_delete(settings, args.program_id, args.yes))
        parser.parse_args(["program", "--help"])
    if args.command == "export":
        asyncio.run(_db_upgrade(settings, quiet=True))
        return asyncio.run(_export(settings, args.program, args.out))
    if args.command == "db":
        if args.db_command == "upgrade":
            return asyncio.run(_db_upgrade(settings))
        if args.db_command == "status":
            return asyncio.run(_db_status(settings))
        parser.parse_args(["db", "--help"])
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
