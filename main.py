"""The ``inviteloop`` command line and the composition root.

Settings come from ``INVITELOOP_*`` environment variables and an optional TOML file
(``inviteloop.toml`` in the working directory, or the file ``INVITELOOP_CONFIG`` names);
the environment wins. Nothing else in the project reads configuration or wires services.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url

from storage.database import Database, DatabaseURLError, normalise_url
from storage.migrate import current_revision, head_revision, upgrade

logger = logging.getLogger("inviteloop")

ENV_PREFIX = "INVITELOOP_"
DEFAULT_CONFIG = "inviteloop.toml"


def config_path() -> Path:
    return Path(os.environ.get(f"{ENV_PREFIX}CONFIG", DEFAULT_CONFIG)).expanduser()


class Settings(BaseSettings):
    """Every setting, with its environment variable ``INVITELOOP_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    database_url: str = ""
    telegram_token: SecretStr | None = None
    telegram_api_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

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


# --- commands -------------------------------------------------------------------------


async def _db_upgrade(settings: Settings) -> int:
    db = Database.from_url(settings.database_url)
    try:
        before = await current_revision(db)
        await upgrade(db)
        after = await current_revision(db)
    finally:
        await db.dispose()
    if before == after:
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
