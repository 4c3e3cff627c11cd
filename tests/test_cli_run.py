"""``inviteloop run`` as a real process: what it says without a usable token, migrations
before the loop, and a clean stop on SIGTERM/SIGINT that finishes the batch in hand."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from sandbox import SandboxServer, SimBot, SimMessage, World
from storage.migrate import head_revision

INVITELOOP = str(Path(sys.executable).parent / "inviteloop")
WAIT = 20.0  # seconds: a bound on every wait for the process, never a pause


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any INVITELOOP_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVITELOOP_")}
    env.update(extra)
    return env


def run_cli(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [INVITELOOP, "run"],
        cwd=tmp_path,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def test_run_without_a_token_says_what_to_set_and_that_the_demo_works_offline(
    tmp_path: Path,
) -> None:
    result = run_cli(tmp_path)
    assert result.returncode != 0
    assert "INVITELOOP_TELEGRAM_TOKEN" in result.stderr
    assert "inviteloop demo" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "inviteloop.db").exists()  # nothing was set up


def test_an_empty_token_counts_as_no_token(tmp_path: Path) -> None:
    result = run_cli(tmp_path, INVITELOOP_TELEGRAM_TOKEN="  ")
    assert result.returncode != 0
    assert "INVITELOOP_TELEGRAM_TOKEN" in result.stderr and "inviteloop demo" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_malformed_token_is_named_without_being_echoed(tmp_path: Path) -> None:
    result = run_cli(tmp_path, INVITELOOP_TELEGRAM_TOKEN="not-a-token-secret")
    assert result.returncode != 0
    assert "INVITELOOP_TELEGRAM_TOKEN" in result.stderr and "not a bot token" in result.stderr
    assert "not-a-token-secret" not in result.stderr
    assert "Traceback" not in result.stderr


@dataclass
class Running:
    world: World
    server: SandboxServer
    bot: SimBot
    tmp_path: Path

    @property
    def db_path(self) -> Path:
        return self.tmp_path / "bot.db"

    def env(self, **extra: str) -> dict[str, str]:
        settings = {
            "INVITELOOP_TELEGRAM_TOKEN": self.bot.token,
            "INVITELOOP_TELEGRAM_API_URL": self.server.url,
            "INVITELOOP_DATABASE_URL": f"sqlite:///{self.db_path}",
        }
        return clean_env(**{**settings, **extra})

    async def spawn(self, **extra: str) -> asyncio.subprocess.Process:
        log = (self.tmp_path / "run.log").open("ab")
        try:
            return await asyncio.create_subprocess_exec(
                INVITELOOP,
                "run",
                cwd=self.tmp_path,
                env=self.env(**extra),
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()

    def log(self) -> str:
        path = self.tmp_path / "run.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest_asyncio.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    world = World(seed=3)
    bot = world.add_bot("loopbot", "Loop")
    async with SandboxServer(world) as server:
        yield Running(world, server, bot, tmp_path)


async def _stop(proc: asyncio.subprocess.Process, signum: int = signal.SIGTERM) -> int:
    if proc.returncode is None:
        proc.send_signal(signum)
    try:
        return await asyncio.wait_for(proc.wait(), WAIT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise


async def test_a_token_the_server_refuses_exits_with_a_clear_message(running: Running) -> None:
    proc = await running.spawn(INVITELOOP_TELEGRAM_TOKEN="123456:refused-by-the-server")
    code = await asyncio.wait_for(proc.wait(), WAIT)
    assert code == 1
    assert "refused the bot token" in running.log()
    assert "Traceback" not in running.log()


async def test_an_unreachable_api_exits_with_a_clear_message(running: Running) -> None:
    closed = running.server.url.rsplit(":", 1)[0] + ":9"  # the discard port: nobody there
    proc = await running.spawn(INVITELOOP_TELEGRAM_API_URL=closed)
    code = await asyncio.wait_for(proc.wait(), WAIT)
    assert code == 1
    assert "cannot reach the Telegram Bot API" in running.log()
    assert "Traceback" not in running.log()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_run_migrates_before_serving_and_stops_cleanly(
    running: Running, signum: int
) -> None:
    assert not running.db_path.exists()
    proc = await running.spawn()
    try:
        await running.world.wait_for(
            lambda: running.world.is_polling(running.bot), timeout=WAIT, what="polling"
        )
        with sqlite3.connect(running.db_path) as conn:
            [(revision,)] = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        assert revision == head_revision()
        assert [c.method for c in running.world.calls_of(bot=running.bot)][:1] == ["getMe"]
    finally:
        code = await _stop(proc, signum)
    assert code == 0, running.log()
    assert "stopped cleanly" in running.log()
    assert "Traceback" not in running.log()


async def test_sigterm_finishes_the_batch_in_hand_and_acknowledges_it(
    running: Running,
) -> None:
    world, bot = running.world, running.bot
    proc = await running.spawn()
    try:
        owner = world.add_user("Olga", username="olga")
        chat = world.add_chat("channel", "Daily Brief", owner=owner)
        world.send_text(owner, bot, "/start")
        world.add_bot_to_chat(chat, bot, by=owner)

        def offer() -> SimMessage | None:
            for message in world.sent_messages(bot, owner):
                if any(b.get("text") == "Set up Daily Brief" for b in message.inline_buttons):
                    return message
            return None

        world.press_button(
            owner, await world.wait_for(offer, timeout=WAIT), text="Set up Daily Brief"
        )
        await world.wait_for_message(bot, owner, contains="is ready", since=0, timeout=WAIT)
        # personal join-request links (through the bot, the default, makes no call)
        world.send_text(owner, bot, "/settings")
        shown = await world.wait_for_message(bot, owner, contains="Join mode", timeout=WAIT)
        world.press_button(owner, shown, text="Join: through the bot")
        await world.wait_for(
            lambda: "direct join-request links" in (shown.text or ""),
            timeout=WAIT,
            what="the settings to show direct links",
        )

        # Ana's /invite is in hand (Telegram is slow to make her link) when SIGTERM comes.
        slow = world.inject_fault("createChatInviteLink", mode="delay", delay=1.5)
        ana = world.add_user("Ana")
        world.send_text(ana, bot, "/invite")
        await world.wait_for(lambda: slow.remaining == 0, timeout=WAIT, what="the slow call")
        assert world.pending_updates(bot)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), WAIT)
    finally:
        await _stop(proc)
    assert code == 0, running.log()
    assert world.pending_updates(bot) == []  # handled, then acknowledged
    [link] = [link for link in world.invite_links(chat, creator=bot) if link.creates_join_request]
    with sqlite3.connect(running.db_path) as conn:
        rows = conn.execute("SELECT referrer_id, url FROM links").fetchall()
        cards = conn.execute(
            "SELECT target_id FROM outbox WHERE template = 'invite_card'"
        ).fetchall()
    assert rows == [(ana.id, link.url)]
    assert cards == [(ana.id,)]  # the answer is queued (or sent): not lost


async def test_every_job_is_registered_by_name_with_one_utc_scheduler(tmp_path: Path) -> None:
    from datetime import UTC

    from pydantic import SecretStr

    from main import Application, Settings

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'jobs.db'}",
        telegram_token=SecretStr("123456:ABCDEF"),
    )
    app = Application(settings)
    try:
        scheduler = app.scheduler()
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert list(jobs) == [
            "confirm_due",
            "rewards",
            "boards",
            "settle_join_requests",
            "telegram_inbox",
            "outbox_purge",
        ]
        assert all(job.coalesce and job.max_instances == 1 for job in jobs.values())
        assert scheduler.timezone == UTC
        assert [bot.platform for bot in app.bots] == ["telegram"]
    finally:
        await app.close()


async def test_without_a_token_there_is_no_bot_and_nothing_to_run(tmp_path: Path) -> None:
    from main import Application, NothingToRun, Settings

    app = Application(Settings(database_url=f"sqlite:///{tmp_path / 'none.db'}"))
    try:
        assert app.bots == [] and app.telegram is None
        assert [job.name for job in app.jobs] == [
            "confirm_due",
            "rewards",
            "boards",
            "settle_join_requests",
            "outbox_purge",
        ]
        with pytest.raises(NothingToRun):
            await app.run(asyncio.Event())
    finally:
        await app.close()
