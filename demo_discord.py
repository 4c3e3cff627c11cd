"""``inviteloop demo --discord``: the referral loop on Discord, offline, in seconds.

It starts the Discord sandbox (a local Discord REST API and gateway with simulated people,
see ``sandbox/discord/``) on 127.0.0.1 and runs the real bot against it — the same
``main.Application`` and the unmodified discord.py client that ``inviteloop run`` uses with
``INVITELOOP_DISCORD_TOKEN`` — on a fresh SQLite database, then plays a story: a manager
sets up, readers get invites, friends join through them (and a few joins that the bot
will not pin on anyone), the hold passes on the injected clock, milestones are reached and
delivered by DM (a coupon code, and a reward sent by hand after the reader answers a form),
and the board shows. What the bot says is quoted as Discord would show it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demo import QUOTE, STEP_TIMEOUT, DemoError, Narrator, _clip, play_on

SETTLE = 0.2  # seconds the bot gathers joins before it reads the invite counters
_ESCAPED = re.compile(r"\\([\\*_~`|\[\]<>#+\-.)])")


def shown(text: str) -> str:
    """Discord markdown as a reader sees it: no escapes, no bold marks, no zero-width
    spaces (which keep ``@everyone`` from pinging)."""
    return _ESCAPED.sub(r"\1", text).replace("**", "").replace("\u200b", "")


async def main(path: Path) -> None:
    # Imported here: discord.py and friends take a while to import.
    import discord

    from referrals.clock import FakeClock
    from sandbox.discord import DatetimeClock, DiscordSandboxServer, DiscordWorld

    clock = FakeClock()
    # Members arrive at once here (on Discord a second or two after the counter moves:
    # the tests cover that); the bot's settle window still gathers them.
    world = DiscordWorld(clock=DatetimeClock(clock), seed=2026, member_add_delay=0)
    server = DiscordSandboxServer(world)
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    try:
        await play_on(server, "Discord", lambda: DiscordStory(world, server.url, path, clock))
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


class DiscordStory(Narrator):
    """The server, its people, the bot, and the steps of the story."""

    def __init__(self, world: Any, api_url: str, path: Path, clock: Any) -> None:
        from main import Application, Settings
        from sandbox.discord import permissions

        self.world = world
        self.clock = clock
        self.path = path
        self.api_url = api_url
        self.olga = world.add_user("olga", "Olga")
        self.sandbox_app = world.add_application("Loop", owner=self.olga)
        self.guild = world.add_guild("Readers Club", self.olga, vanity_code="readersclub")
        self.channel = next(iter(self.guild.channels.values()))
        world.add_bot_to_guild(
            self.sandbox_app,
            self.guild,
            permissions=permissions.VIEW_CHANNEL
            | permissions.SEND_MESSAGES
            | permissions.CREATE_INSTANT_INVITE
            | permissions.MANAGE_CHANNELS
            | permissions.MANAGE_GUILD
            | permissions.MANAGE_ROLES,
        )
        settings = Settings(
            database_url=f"sqlite:///{path}",
            discord_token=self.sandbox_app.token,
            discord_api_url=api_url,
        )
        self.app = Application(
            settings,
            clock=clock,
            # Members arrive with their counter here, so no wait for a member still on the
            # way (on Discord the bot waits ``member_add_lag`` for one).
            discord_options={
                "settle_seconds": SETTLE,
                "guild_ready_timeout": 0.1,
                "member_add_lag": 0.0,
            },
        )
        self.stop_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def bot(self) -> Any:
        if self.app.discord is None:
            raise DemoError("the demo application has no Discord bot")
        return self.app.discord.bot

    # --- plumbing ------------------------------------------------------------------------

    async def start(self) -> None:
        from storage.migrate import upgrade

        await upgrade(self.app.db)
        self.task = asyncio.create_task(self.app.run(self.stop_event), name="demo-discord")
        await self.until(
            lambda: self.bot.is_ready() and self.bot.tracker.synced, "the bot to connect"
        )

    async def stop(self) -> None:
        self.stop_event.set()
        if self.task is not None:
            try:
                await asyncio.wait_for(self.task, 15)
            except (TimeoutError, asyncio.CancelledError):
                self.task.cancel()
            except Exception as exc:
                print(f"(the bot stopped with an error: {exc})")
        await self.app.close()

    async def until(self, done: Callable[[], Any], what: str) -> Any:
        """Wait (real time) until ``done()`` holds; the bot stopping is an error."""
        async with asyncio.timeout(STEP_TIMEOUT):
            while True:
                if self.task is not None and self.task.done():
                    self.task.result()
                    raise DemoError("the bot stopped unexpectedly")
                if self.app.discord is not None and self.app.discord.failure is not None:
                    raise DemoError(f"the Discord bot failed: {self.app.discord.failure}")
                value = done()
                if value:
                    return value
                await asyncio.sleep(0.01)

    async def until_referral(self, friend: Any, state: str) -> None:
        """Wait until the referral of ``friend`` is in ``state`` in the database."""
        from sqlalchemy import select

        from storage.schema import referrals

        query = select(referrals.c.state).where(referrals.c.referred_id == friend.id)
        async with asyncio.timeout(STEP_TIMEOUT):
            while True:
                async with self.app.db.read() as conn:
                    if (await conn.execute(query)).scalar() == state:
                        return
                await asyncio.sleep(0.02)

    async def slash(self, user: Any, name: str, options: dict[str, Any] | None = None) -> Any:
        """``/name`` by ``user``: the message the bot answers with, once it has its text."""
        record = self.world.invoke_slash(user, self.channel, name, options)
        return await self.answer_to(record)

    async def answer_to(self, record: Any) -> Any:
        def answered() -> Any:
            found = self.world.interaction_responses(record)
            return found[-1] if found and found[-1].content else None

        return await self.until(answered, f"the bot to answer {record.name}")

    async def press(self, user: Any, message: Any, custom_id: str) -> Any:
        record = self.world.press_button(user, message, custom_id)
        await self.until(lambda: record.responses, f"the bot to answer a press of {custom_id}")
        return record

    async def dm(self, user: Any, contains: str) -> Any:
        def found() -> Any:
            return next(
                (m for m in reversed(self.world.dms(user)) if contains in shown(m.content)), None
            )

        return await self.until(found, f"a DM to {user.username} saying {contains!r}")

    async def join(self, friend: Any, code: str | None) -> None:
        """``friend`` joins through invite ``code`` (the vanity URL when None); the bot's
        settle window closes on it before the next join."""
        settled = self.bot.tracker.settled_joins
        if code is None:
            self.world.join_via_vanity(friend, self.guild)
        else:
            self.world.join_via_invite(friend, code)
        await self.until(lambda: self.bot.tracker.settled_joins > settled, "the join to settle")

    async def outbox_idle(self) -> None:
        self.app.outbox.wake()
        await self.app.outbox.wait_idle(STEP_TIMEOUT)

    def quote(self, person: Any, message: Any, *, lines: int = 8, buttons: bool = False) -> None:
        where = " (only they see it)" if message.ephemeral else ""
        if message.guild_id is None:
            where = " (DM)"
        text = [shown(line) for line in message.content.splitlines() if line.strip()]
        quoted = [*text[:lines], "…"] if len(text) > lines else text
        if buttons:
            labels = [
                f"[{c.get('label', '')}]"
                for row in message.components
                for c in row.get("components", [])
            ]
            if labels:
                quoted.append(" ".join(labels))
        print(f"  Loop → {person.global_name or person.username}{where}")
        for line in quoted:
            print(QUOTE + _clip(line))

    @staticmethod
    def code_in(message: Any) -> str:
        found = re.search(r"https?://\S+/([A-Za-z0-9]+)", message.content)
        if not found:
            raise DemoError(f"no invite in the bot's answer {message.content!r}")
        return found.group(1)

    # --- the story -----------------------------------------------------------------------

    async def play(self) -> None:
        from sandbox.discord import Attachment

        w, olga = self.world, self.olga
        print("inviteloop demo --discord: a local Discord, the real bot, simulated people")
        print(f"  sandbox Discord at {self.api_url}, bot Loop, database {self.path}")

        self.step('Olga adds the bot "Loop" to her server "Readers Club" and sets it up')
        synced = await self.bot.tree.sync()
        self.say(
            f"`inviteloop discord sync` registered {len(synced)} slash commands "
            "(never on start: Discord allows 200 command creates a day)."
        )
        self.quote(olga, await self.slash(olga, "setup"), lines=4)

        self.step("Rewards for joins stay off on Discord until a manager has read the policy")
        note = await self.slash(olga, "settings", {"key": "rewards", "value": "on"})
        self.quote(olga, note, lines=2)
        agreed = await self.slash(
            olga, "settings", {"key": "rewards", "value": "on", "acknowledge": True}
        )
        self.quote(olga, agreed, lines=1)

        self.step("Olga attaches a coupon file and adds two milestones")
        coupons = Attachment("coffee.txt", content=b"KOPI-0001\nKOPI-0002\n\nKOPI-0003\n")
        self.say("/codes add file:coffee.txt")
        self.quote(olga, await self.slash(olga, "codes add", {"file": coupons}), lines=5)
        self.say("/milestone add count:1 title:Coffee coupon pool:coffee")
        await self.slash(
            olga, "milestone add", {"count": 1, "title": "Coffee coupon", "pool": "coffee"}
        )
        self.say("/milestone add count:2 title:T-shirt question:Your size and postal address?")
        ladder = await self.slash(
            olga,
            "milestone add",
            {"count": 2, "title": "T-shirt", "question": "Your size and postal address?"},
        )
        self.quote(olga, ladder, lines=4)

        self.step("Readers Ana and Budi type /invite and get their personal invites")
        ana, budi = w.add_user("ana", "Ana"), w.add_user("budi", "Budi")
        for reader in (ana, budi):
            w.add_member(self.guild, reader)
        card = await self.slash(ana, "invite")
        self.quote(ana, card, lines=3)
        codes = {ana.id: self.code_in(card)}
        codes[budi.id] = self.code_in(await self.slash(budi, "invite"))
        self.say(f"Budi got discord.gg/{codes[budi.id]}")

        self.step("Friends join through the invites, one at a time")
        dewi, eko, fajar, juna = (
            w.add_user(n.lower(), n) for n in ("Dewi", "Eko", "Fajar", "Juna")
        )
        for friend, reader in ((dewi, ana), (eko, ana), (fajar, budi), (juna, ana)):
            self.clock.advance(minutes=10)
            await self.join(friend, codes[reader.id])
            self.say(f"{friend.global_name} joins through {reader.global_name}'s invite.")
        await self.outbox_idle()
        self.quote(ana, await self.dm(ana, "Juna"), lines=2)
        self.say(
            "Discord never says which invite a member used: the bot reads the invite counters"
        )
        self.say("after a short settle window and credits a join only when one invite moved.")

        self.step("Joins the bot will not pin on anyone")
        gita, hana, ivan = (
            w.add_user("gita", "Gita"),
            w.add_user("hana", "Hana"),
            w.add_user("ivan", "Ivan"),
        )
        await self.join(gita, None)
        self.say("Gita comes through the server's vanity URL discord.gg/readersclub.")
        settled = self.bot.tracker.settled_joins
        w.join_via_invite(hana, codes[ana.id])
        w.join_via_invite(ivan, codes[budi.id])
        await self.until(lambda: self.bot.tracker.settled_joins >= settled + 2, "two joins")
        self.say("Hana and Ivan join at the same moment through Ana's and Budi's invites:")
        self.say("two counters moved at once, so neither is credited (never guessed).")

        self.step("A few hours later, still in the 48-hour hold period")
        self.clock.advance(hours=3)
        w.leave(eko, self.guild)
        await self.until_referral(eko, "rejected")
        self.say("Eko leaves Readers Club: his referral is off.")

        self.step("Two days later: the fake clock jumps 48 hours; the scheduler's tick runs")
        self.clock.advance(days=2)
        report = await self.app.tick()
        await self.outbox_idle()
        self.say(
            f"tick: {report['confirmed']} referrals confirmed, {report['rejected']} rejected; "
            "the rewards job sends by DM:"
        )
        self.quote(ana, await self.dm(ana, "You earned Coffee coupon"), lines=3)
        self.quote(budi, await self.dm(budi, "You earned Coffee coupon"), lines=2)
        shirt = await self.dm(ana, "You earned T-shirt")
        self.quote(ana, shirt, lines=3, buttons=True)

        self.step("Ana presses “Answer”: a form opens; she sends her answer")
        [custom_id] = [
            c["custom_id"] for row in shirt.components for c in row.get("components", [])
        ]
        shown_form = await self.press(ana, shirt, custom_id)
        if shown_form.modal is None:
            raise DemoError("the Answer button did not open a form")
        self.say(f"the form “{shown_form.modal['title']}” asks: Your size and postal address?")
        submitted = w.submit_modal(ana, shown_form, {"answer": "M, Jalan Merdeka 1, Jakarta"})
        self.quote(ana, await self.answer_to(submitted), lines=1)
        await self.outbox_idle()
        self.quote(olga, await self.dm(olga, "answered"), lines=1)
        queue = await self.slash(olga, "fulfil")
        self.quote(olga, queue, lines=4, buttons=True)
        [sent_button] = [
            c["custom_id"] for row in queue.components for c in row.get("components", [])
        ]
        await self.press(olga, queue, sent_button)
        self.say("Olga posts the T-shirt and presses “Sent”; Ana is told:")
        await self.outbox_idle()
        self.quote(ana, await self.dm(ana, "on its way"), lines=1)

        await self.standings()

        self.step("Budi types /leaderboard: the board, shown to him alone, with its buttons")
        self.quote(budi, await self.slash(budi, "leaderboard"), lines=8, buttons=True)
