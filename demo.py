"""``inviteloop demo``: the whole referral loop, offline, in under a minute.

It starts the sandbox (a local Telegram Bot API server with simulated people, see
``sandbox/``) on 127.0.0.1, runs the real bot against it (the same ``main.Application`` that
``inviteloop run`` serves) on a fresh SQLite database, and plays a scripted story, printing
what happens in plain words and quoting what the bot says. No token, no network, no
environment variables. Time is a fake clock shared by the bot and the sandbox, so the
48-hour hold period passes in an instant.

``inviteloop demo --discord`` plays the Discord side instead (``demo_discord.py``): the
Discord sandbox, the real discord.py bot, and a story of its own.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STORY_TIMEOUT = 45.0  # seconds for the whole story
STEP_TIMEOUT = 10.0  # seconds for one step to settle
QUOTE = "    │ "
WIDTH = 92


class DemoError(Exception):
    """Something the demo expected did not happen; the message says what."""


def run_demo(db_path: str | None, *, discord: bool = False) -> int:
    """Play the demo (the Discord one with ``discord``); keep the SQLite database at
    ``db_path`` (overwritten) if given.

    Returns 0 on success, 1 (with a message on stderr) on failure.
    """
    started = time.monotonic()
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    temp_dir: str | None = None
    try:
        if db_path:
            path = _fresh_database_path(Path(db_path))
        else:
            temp_dir = tempfile.mkdtemp(prefix="inviteloop-demo-")
            path = Path(temp_dir) / "demo.db"
        with _quiet_logging(verbose):
            if discord:
                from demo_discord import main as discord_main

                asyncio.run(discord_main(path))
            else:
                asyncio.run(_main(path))
    except DemoError as exc:
        print(f"inviteloop demo: {exc}", file=sys.stderr)
        return 1
    except TimeoutError as exc:
        detail = f" ({exc})" if str(exc) else ""
        print(f"inviteloop demo: a step took too long{detail}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"inviteloop demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("inviteloop demo: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line (the traceback with DEBUG logging)
        if verbose:
            logging.getLogger("inviteloop").exception("the demo failed")
        print(
            f"inviteloop demo failed unexpectedly: {type(exc).__name__}: {exc}\n"
            "Run it with INVITELOOP_LOG_LEVEL=DEBUG to see the details.",
            file=sys.stderr,
        )
        return 1
    finally:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
    print()
    print(f"Done in {time.monotonic() - started:.1f} s.")
    if db_path:
        quoted = shlex.quote(str(path))
        print(f"The demo's database is kept at {path}. Look at it with:")
        print(f"  INVITELOOP_DATABASE_URL=sqlite:///{quoted} inviteloop db status")
        print(
            f"  sqlite3 {quoted} "
            '"SELECT state, reason, COUNT(*) FROM referrals GROUP BY state, reason;"'
        )
    else:
        print("(Its database lived in a temporary directory, now removed; keep it with --db.)")
    return 0


def _fresh_database_path(path: Path) -> Path:
    path = path.expanduser().resolve()
    if path.is_dir():
        raise DemoError(f"--db {path} is a directory; give a file name, e.g. {path / 'demo.db'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        leftover.unlink(missing_ok=True)
    return path


@contextmanager
def _quiet_logging(verbose: bool) -> Iterator[None]:
    """Library chatter below WARNING would drown the story."""
    root = logging.getLogger()
    # discord.py warns that voice is not supported at every start: not news here
    chatty = logging.getLogger("discord")
    before, chatty_before = root.level, chatty.level
    if not verbose:
        root.setLevel(logging.WARNING)
        chatty.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(before)
        chatty.setLevel(chatty_before)


async def _main(path: Path) -> None:
    # Imported here: aiogram and friends take a few seconds to import.
    from referrals.clock import FakeClock
    from sandbox import DatetimeClock, RateLimits, SandboxServer, World

    clock = FakeClock()
    # The sandbox's flood limits would measure the fake clock (which only jumps), so they
    # are off here; the bot's own limiter still paces its messages in real time.
    world = World(clock=DatetimeClock(clock), seed=2026, rate_limits=RateLimits(enabled=False))
    server = SandboxServer(world)
    await play_on(server, "Telegram", lambda: Story(world, server.url, path, clock))


async def play_on(server: Any, platform: str, story_of: Callable[[], Any]) -> None:
    """Start the local ``platform``'s ``server``, play the story ``story_of()`` makes there
    within ``STORY_TIMEOUT``, and stop both whatever happens."""
    try:
        await server.start()
    except OSError as exc:
        raise DemoError(f"could not start the local {platform} on 127.0.0.1: {exc}") from exc
    try:
        story = story_of()
        try:
            async with asyncio.timeout(STORY_TIMEOUT):
                await story.start()
                await story.play()
        finally:
            await story.stop()
    finally:
        await server.stop()


class Narrator:
    """Numbered steps, plain words, and the standings read from the database: what both
    stories print the same way. ``app`` is the story's ``main.Application``."""

    app: Any
    step_no = 0

    def step(self, title: str) -> None:
        self.step_no += 1
        print()
        print(f"{self.step_no}. {title}")

    @staticmethod
    def say(text: str) -> None:
        print(f"  {text}")

    async def standings(self) -> None:
        from sqlalchemy import select

        from storage.schema import join_attempts, members, programs, referrals, referrer_counts

        async with self.app.db.read() as conn:
            titles = {
                row.id: row.title
                for row in await conn.execute(select(programs.c.id, programs.c.title))
            }
            names = {
                (row.program_id, row.user_id): row.display_name
                for row in await conn.execute(
                    select(members.c.program_id, members.c.user_id, members.c.display_name)
                )
            }
            counts = await _rows(
                conn,
                select(referrer_counts).order_by(
                    referrer_counts.c.program_id, referrer_counts.c.counted.desc()
                ),
            )
            refs = await _rows(
                conn, select(referrals).order_by(referrals.c.program_id, referrals.c.joined_at)
            )
            attempts = await _rows(
                conn,
                select(join_attempts)
                .where(join_attempts.c.outcome.in_(["not_counted", "unattributed"]))
                .order_by(join_attempts.c.id),
            )

        def name(program_id: int, user_id: int | None) -> str:
            if user_id is None:
                return "nobody"
            return names.get((program_id, user_id)) or str(user_id)

        self.step("Standings, read from the database")
        not_counted: dict[tuple[int, int], int] = {}
        for row in attempts:
            if row["referrer_id"] is not None:
                key = (row["program_id"], row["referrer_id"])
                not_counted[key] = not_counted.get(key, 0) + 1
        header = f"{'program':<14}{'reader':<8}{'counted':>8}{'waiting':>9}{'not counted':>13}"
        self.say(header)
        self.say("-" * len(header))
        for row in counts:
            key = (row["program_id"], row["referrer_id"])
            self.say(
                f"{titles[row['program_id']]:<14}{name(*key):<8}{row['counted']:>8}"
                f"{row['pending'] + row['held']:>9}{row['rejected'] + not_counted.get(key, 0):>13}"
            )
        by_state: dict[str, int] = {}
        for ref in refs:
            by_state[ref["state"]] = by_state.get(ref["state"], 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in sorted(by_state.items()))
        self.say(f"referrals in the database: {summary}")
        self.say("Not counted, and why:")
        for ref in refs:
            if ref["state"] in ("rejected", "held"):
                pid = ref["program_id"]
                self.say(
                    f"  {name(pid, ref['referred_id'])} via {name(pid, ref['referrer_id'])}'s "
                    f"link ({titles[pid]}): {ref['state']}, {_reason(ref['reason'])}"
                )
        for row in attempts:
            pid = row["program_id"]
            if row["outcome"] == "unattributed":
                self.say(
                    f"  {name(pid, row['user_id'])} ({titles[pid]}): credited to nobody, "
                    f"{_reason(row['reason'])}"
                )
                continue
            self.say(
                f"  {name(pid, row['user_id'])} via {name(pid, row['referrer_id'])}'s "
                f"link ({titles[pid]}): not counted, {_reason(row['reason'])}"
            )


class Story(Narrator):
    """The cast, the bot, and the steps of the story."""

    def __init__(self, world: Any, api_url: str, path: Path, clock: Any) -> None:
        from main import Application, Settings

        self.world = world
        self.clock = clock
        self.path = path
        self.bot = world.add_bot("loopbot", "Loop")
        settings = Settings(
            database_url=f"sqlite:///{path}",
            telegram_token=self.bot.token,
            telegram_api_url=api_url,
        )
        self.app = Application(settings, clock=clock, poll_timeout=2, retry_delays=(0.1, 0.5))
        self.api_url = api_url
        self.stop_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.cursor = 0  # messages of sent_log already shown
        self.step_no = 0

    # --- plumbing ------------------------------------------------------------------------

    async def start(self) -> None:
        from storage.migrate import upgrade

        await upgrade(self.app.db)
        self.task = asyncio.create_task(self.app.run(self.stop_event), name="demo-bot")
        telegram = self.app.telegram
        if telegram is None:
            raise DemoError("the demo application has no Telegram bot")
        task = self.task
        await self.world.wait_for(
            lambda: task.done() or telegram.port is not None,
            timeout=STEP_TIMEOUT,
            what="the bot to start",
        )
        if task.done():
            task.result()  # raises what stopped the bot
            raise DemoError("the bot stopped right after starting")

    async def stop(self) -> None:
        self.stop_event.set()
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, 15)
            except (TimeoutError, asyncio.CancelledError):
                self.task.cancel()
            except Exception as exc:
                print(f"(the bot stopped with an error: {exc})", file=sys.stderr)
        await self.app.close()

    async def settle(self) -> None:
        """Wait until the bot handled every update and sent all it may send now; a sent
        approval makes a new update, so go round until both are quiet."""
        if self.task is not None and self.task.done():
            self.task.result()
            raise DemoError("the bot stopped unexpectedly")
        for _ in range(6):
            await self.world.wait_until_delivered(self.bot, timeout=STEP_TIMEOUT)
            self.app.outbox.wake()
            await self.app.outbox.wait_idle(STEP_TIMEOUT)
            if not self.bot.updates:
                return

    def new_to(self, person: Any) -> list[Any]:
        """Messages the bot sent to ``person`` that were not shown yet."""
        return [
            m
            for m in self.world.sent_log[self.cursor :]
            if m.sender_id == self.bot.id and m.chat_id == person.id
        ]

    def last_to(self, person: Any, contains: str = "") -> Any:
        found = [m for m in self.new_to(person) if contains in (m.text or "")]
        if not found:
            said = [m.text for m in self.new_to(person)]
            raise DemoError(
                f"expected @loopbot to tell {person.first_name} {contains!r}; it said {said!r}"
            )
        return found[-1]

    def seen(self) -> None:
        self.cursor = len(self.world.sent_log)

    def quote(self, person: Any, message: Any, *, lines: int = 8, buttons: bool = False) -> None:
        text = [line for line in (message.text or "").splitlines() if line.strip()]
        shown = [*text[:lines], "…"] if len(text) > lines else text
        if buttons and message.inline_buttons:
            shown.append(" ".join(f"[{b['text']}]" for b in message.inline_buttons))
        if len(shown) == 1:
            print(f"  @{self.bot.username} → {person.first_name} │ {_clip(shown[0])}")
            return
        print(f"  @{self.bot.username} → {person.first_name}")
        for line in shown:
            print(QUOTE + _clip(line))

    def member_of(self, chat: Any, person: Any) -> bool:
        return bool(self.world.member(chat, person).in_chat)

    def link_in(self, message: Any) -> str:
        for line in (message.text or "").splitlines():
            if line.startswith("https://t.me/"):
                return line.strip()
        raise DemoError(f"no link in the bot's message {message.text!r}")

    # --- the story -----------------------------------------------------------------------

    async def play(self) -> None:
        w, bot = self.world, self.bot
        print("inviteloop demo: a local Telegram, the real bot, simulated people (no network)")
        print(f"  sandbox Telegram at {self.api_url}, bot @{bot.username}, database {self.path}")

        olga = w.add_user("Olga", username="olga")
        ana, budi, chen = w.add_user("Ana"), w.add_user("Budi"), w.add_user("Chen")
        daily = w.add_chat("channel", "Daily Brief", owner=olga)
        for reader in (ana, budi):
            w.add_member(daily, reader)

        # 1. setup
        self.step('Olga, a manager, makes @loopbot an admin of her private channel "Daily Brief"')
        w.send_text(olga, bot, "/start")
        await self.settle()
        self.seen()
        w.add_bot_to_chat(daily, bot, by=olga)
        await self.settle()
        offer = self.last_to(olga, "Daily Brief")
        self.quote(olga, offer, buttons=True)
        self.seen()
        self.say("Olga taps “Set up Daily Brief”:")
        w.press_button(olga, offer, text="Set up Daily Brief")
        await self.settle()
        self.quote(olga, self.last_to(olga, "is ready"), lines=3)
        self.seen()
        self.say(
            "Friends coming through the bot is the default (the bot can write to them later);"
        )
        self.say("for her private channel Olga picks personal join-request links in /settings:")
        w.send_text(olga, bot, "/settings")
        await self.settle()
        shown = self.last_to(olga, "Settings")
        w.press_button(olga, shown, text="Join: through the bot")
        await self.settle()
        if "direct join-request links" not in (shown.text or ""):
            raise DemoError("the join mode did not change to direct links")
        self.say("  “Join mode: direct join-request links”")
        self.seen()

        # a reward for sharing
        self.step("Olga adds a milestone: 1 friend → a coffee coupon, from a file of codes")
        w.send_text(olga, bot, "/milestone add 1 Coffee coupon")
        await self.settle()
        w.press_button(olga, self.last_to(olga, "What is the reward?"), text="🎟 A coupon code")
        await self.settle()
        w.send_document(olga, bot, "coupons.txt", b"KOPI-0001\nKOPI-0002\n\nKOPI-0003\n")
        await self.settle()
        self.quote(olga, self.last_to(olga, "Imported"), lines=2)
        w.press_button(olga, self.last_to(olga, "Save"), text="✅ Save")
        await self.settle()
        self.quote(olga, self.last_to(olga, "Saved"), lines=1)
        self.seen()

        # 2. readers get their links
        self.step("Readers Ana, Budi and Chen type /invite and get personal links")
        for reader in (ana, budi, chen):
            w.send_text(reader, bot, "/invite")
        await self.settle()
        card = self.last_to(ana, "invite link")
        self.quote(ana, card, lines=5)
        links = {ana.id: self.link_in(card)}
        for reader in (budi, chen):
            links[reader.id] = self.link_in(self.last_to(reader, "invite link"))
            self.say(f"{reader.first_name} got {links[reader.id]}")
        self.seen()

        # 3. direct mode: join-request links
        self.step("Friends open the readers' join-request links (direct mode)")
        dewi = w.add_user("Dewi")
        w.open_link(dewi, links[ana.id])
        self.say("Dewi opens Ana's link and asks to join; the bot welcomes her and approves:")
        await self.settle()
        self.quote(dewi, self.last_to(dewi, "Welcome"), lines=1)
        if not self.member_of(daily, dewi):
            raise DemoError("Dewi was not let into Daily Brief")
        self.quote(ana, self.last_to(ana, "Dewi joined"), lines=2)
        self.seen()
        eko, fajar = w.add_user("Eko"), w.add_user("Fajar")
        for friend, reader in ((eko, ana), (fajar, budi)):
            self.clock.advance(minutes=10)
            w.open_link(friend, links[reader.id])
            await self.settle()
            self.last_to(friend, "Welcome")
            self.last_to(reader, f"{friend.first_name} joined")
            if not self.member_of(daily, friend):
                raise DemoError(f"{friend.first_name} was not let into Daily Brief")
            self.say(
                f"{friend.first_name} opens {reader.first_name}'s link: welcomed, approved, "
                f"and {reader.first_name} is told."
            )
            self.seen()
        self.clock.advance(minutes=10)
        w.open_link(chen, links[chen.id])
        await self.settle()
        if not self.member_of(daily, chen):
            raise DemoError("Chen was not let into Daily Brief")
        self.say("Chen subscribes through his own link: let in, but that will not count for him.")
        self.seen()

        # 4. through-the-bot mode in a public group
        self.step('Through the bot: Olga\'s public group "Readers Club" (@readersclub)')
        club = w.add_chat("supergroup", "Readers Club", username="readersclub", owner=olga)
        for reader in (ana, budi):
            w.add_member(club, reader)
        w.add_bot_to_chat(club, bot, by=olga)
        await self.settle()
        w.press_button(olga, self.last_to(olga, "Readers Club"), text="Set up Readers Club")
        await self.settle()
        ready = self.last_to(olga, "is ready")
        mode = next((ln for ln in (ready.text or "").splitlines() if "Join mode" in ln), "")
        self.say(f"Olga sets it up the same way: “{mode.strip(' •')}”")
        self.seen()
        club_links: dict[int, str] = {}
        for reader in (ana, budi):
            w.send_text(reader, bot, "/invite")
            await self.settle()
            picker = self.last_to(reader, "Which program")
            w.press_button(reader, picker, text="Readers Club")
            await self.settle()
            club_links[reader.id] = self.link_in(self.last_to(reader, "Readers Club"))
            self.seen()
        self.say("Ana and Budi type /invite again, pick Readers Club, and get links to the bot:")
        self.say(f"Ana's is {club_links[ana.id]}")
        hana = w.add_user("Hana")
        w.open_link(hana, club_links[ana.id])
        await self.settle()
        self.say("Hana opens Ana's link; the bot shows her the card:")
        card = self.last_to(hana, "invited you")
        self.quote(hana, card, buttons=True)
        self.seen()
        w.press_button(hana, card, text="Join")
        await self.settle()
        if not self.member_of(club, hana):
            raise DemoError("Hana did not get into Readers Club")
        self.last_to(ana, "Hana joined")
        self.say("Hana taps Join and is in Readers Club; her join is matched to Ana by user id.")
        self.seen()
        ivan = w.add_user("Ivan")
        w.open_link(ivan, club_links[ana.id])
        await self.settle()
        ivan_card = self.last_to(ivan, "invited you")
        self.seen()
        w.open_link(ivan, club_links[budi.id])
        await self.settle()
        self.say("Ivan opens Ana's link, then Budi's too; the first reader wins:")
        self.quote(ivan, self.last_to(ivan, "already"), lines=2)
        self.seen()
        w.press_button(ivan, ivan_card, text="Join")
        await self.settle()
        self.last_to(ana, "Ivan joined")
        self.say("Ivan taps Join: he counts for Ana.")
        self.seen()

        # 5. the hold period
        self.step("A few hours later, still in the 48-hour hold period")
        self.clock.advance(hours=3)
        w.leave(eko, daily)
        w.leave(ivan, club)
        await self.settle()
        self.say("Eko leaves Daily Brief and Ivan leaves Readers Club: those referrals are off.")
        self.clock.advance(minutes=20)
        w.open_link(eko, links[budi.id])
        await self.settle()
        if not self.member_of(daily, eko):
            raise DemoError("Eko was not let back into Daily Brief")
        self.say(
            "Eko comes back through Budi's link: let in, but not counted again "
            "(a person counts once per program, ever)."
        )
        self.seen()

        # 6. two days later
        self.step("Two days later: the fake clock jumps 48 hours; the scheduler's tick runs")
        self.clock.advance(days=2)
        report = await self.app.tick()
        await self.settle()
        self.say(
            f"tick: {report['confirmed']} referrals confirmed (the friends are still members), "
            f"{report['rejected']} rejected"
        )
        rewarded = 0
        for reader in (ana, budi):
            for note in self.new_to(reader):
                if "now count" in (note.text or ""):
                    self.quote(reader, note, lines=1)
                if "You earned" in (note.text or ""):
                    rewarded += 1
                    self.say(f"{reader.first_name} reached the milestone; the rewards job sends:")
                    self.quote(reader, note, lines=4)
        if not rewarded:
            raise DemoError("nobody got the coupon for reaching the milestone")
        self.seen()
        juna = w.add_user("Juna")
        w.open_link(juna, links[chen.id])
        await self.settle()
        self.last_to(chen, "Juna joined")
        self.say("Now Juna joins Daily Brief through Chen's link: she waits out her own 48 hours.")
        self.seen()

        # 7. standings and outcomes, from the database
        await self.standings()
        self.step("Budi types /stats")
        w.send_text(budi, bot, "/stats")
        await self.settle()
        w.press_button(budi, self.last_to(budi, "Which program"), text="Daily Brief")
        await self.settle()
        self.quote(budi, self.last_to(budi, "Your referrals"), lines=8)
        self.seen()

        self.step(
            "Ana types /leaderboard: the board of Daily Brief, and her place (ties share a rank)"
        )
        w.send_text(ana, bot, "/leaderboard")
        await self.settle()
        w.press_button(ana, self.last_to(ana, "Which program"), text="Daily Brief")
        await self.settle()
        self.quote(ana, self.new_to(ana)[-1], lines=8)
        self.seen()


REASONS = {
    "left_during_hold": "left during the hold period",
    "removed_during_hold": "removed during the hold period",
    "self_referral": "their own link (self-referral)",
    "counted_for_other": "already referred once in this program",
    "rejoin": "joined before",
    "account_too_new": "account too new",
    "manual": "a manager decided",
    "burst": "too many joins at once (a manager reviews)",
    "over_cap": "over the program's cap (a manager reviews)",
    # Discord: joins the invite counters cannot pin on one reader's invite
    "ambiguous": "two invites' counters moved at once (never guessed)",
    "vanity": "came through the server's vanity URL",
    "no_invite": "came without an invite (Discovery, an app)",
    "foreign_invite": "an invite made outside the bot",
    "invite_vanished": "the invite was gone at its max uses",
}


async def _rows(conn: Any, statement: Any) -> list[Any]:
    return list((await conn.execute(statement)).mappings().all())


def _reason(reason: str | None) -> str:
    return REASONS.get(reason or "", reason or "no reason given")


def _clip(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"
