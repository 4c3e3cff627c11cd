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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
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
from delivery.outbox import Outbox
from delivery.ratelimit import Limits, RateLimiter
from referrals.people import People
from referrals.service import ReferralService
from storage.clock import Clock, SystemClock
from storage.database import Database, DatabaseURLError, normalise_url
from storage.migrate import current_revision, head_revision, upgrade

if TYPE_CHECKING:
    # aiogram takes seconds to import: only a process that runs the bot pays for it.
    from bots.telegram.app import TelegramBot

logger = logging.getLogger("inviteloop")

ENV_PREFIX = "INVITELOOP_"
STOP_GRACE_S = 10.0  # how long a stop waits for a running tick or outbox drain
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

    @field_validator("telegram_api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else None

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


class Application:
    """Storage, services, the outbox, the scheduler and the bots, wired once."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        limits: Limits | None = None,
        poll_timeout: int = 25,
        retry_delays: Sequence[float] = (0.2, 1.0, 3.0),
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.db = Database.from_url(settings.database_url)
        self.referrals = ReferralService(self.db, self.clock)
        self.people = People(self.db, self.clock)
        limiter = RateLimiter(limits, monotonic) if monotonic else RateLimiter(limits)
        self.outbox = Outbox(self.db, self.clock, limiter=limiter)
        self.renderer = Renderer()
        self.telegram: TelegramBot | None = None
        token = settings.telegram_token.get_secret_value() if settings.telegram_token else None
        if token:
            from bots.telegram.app import TelegramBot

            self.telegram = TelegramBot(
                token,
                db=self.db,
                clock=self.clock,
                referrals=self.referrals,
                people=self.people,
                outbox=self.outbox,
                renderer=self.renderer,
                api_url=settings.telegram_api_url,
                owners=frozenset(settings.telegram_owners),
                poll_timeout=poll_timeout,
                retry_delays=retry_delays,
            )
        self._tick_lock = asyncio.Lock()

    async def tick(self) -> dict[str, Any]:
        """One run of the scheduled work (DESIGN.md, Scheduled work): confirm referrals past
        their hold, settle join requests whose human check is due, retry kept updates.
        It asks the database what is due at ``clock.now()``, so missed runs catch up."""
        async with self._tick_lock:
            report: dict[str, Any] = {}
            confirmed = await self.referrals.confirm_due()
            report["confirmed"] = confirmed.confirmed
            report["rejected"] = confirmed.rejected
            report["approved"], report["declined"] = await self.referrals.settle_join_requests()
            if self.telegram is not None:
                report["inbox"] = await self.telegram.retry_inbox()
            self.outbox.wake()
            return report

    async def _scheduled_tick(self) -> None:
        try:
            await self.tick()
        except Exception:
            logger.exception("scheduled tick failed; the next one catches up")

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set: poll Telegram, drain the outbox, tick each minute."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        assert self.telegram is not None
        await self.telegram.start()
        await self.telegram.set_commands()
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self._scheduled_tick,
            "interval",
            minutes=1,
            id="tick",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            next_run_time=datetime.now(UTC),
        )
        scheduler.start()
        drainer = asyncio.create_task(self.outbox.run(stop), name="outbox")
        try:
            await self.telegram.poll(stop)
        finally:
            stop.set()
            # No new ticks; a tick that is running finishes its work (each of its steps is
            # its own transaction, so even a cut one leaves nothing half done).
            scheduler.pause()
            try:
                await asyncio.wait_for(self._tick_lock.acquire(), timeout=STOP_GRACE_S)
                self._tick_lock.release()
            except TimeoutError:
                logger.warning("a scheduled tick is still running; stopping it")
            scheduler.shutdown(wait=False)
            try:
                await asyncio.wait_for(drainer, timeout=STOP_GRACE_S)
            except TimeoutError:
                drainer.cancel()

    async def close(self) -> None:
        if self.telegram is not None:
            await self.telegram.close()
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
    if settings.telegram_token is None:
        print(
            "inviteloop: nothing to run: set INVITELOOP_TELEGRAM_TOKEN to your bot's token "
            "(from @BotFather; see README.md).\n"
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

        return run_demo(args.db)
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
