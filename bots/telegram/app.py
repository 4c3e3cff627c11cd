"""The Telegram bot: dispatcher wiring and our own update loop.

aiogram's polling acknowledges a batch before (or regardless of) its handlers finishing and
swallows handler errors. Here a batch of updates is acknowledged (the next ``getUpdates``
offset) only after every update in it was handled; the updates of one person run in order
while different people's run concurrently (their joins share one transaction); a failing
update is retried while the batch is held, and one that still fails is kept in the inbox
table and retried by the scheduler, with that chat and person's later updates kept behind
it so their order holds.

The bot reaches the database only through services (the engine, people, the outbox and the
:class:`~delivery.inbox.Inbox`); ``main.py`` connects the port it hands back from
:meth:`TelegramBot.start` to the engine and the outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramConflictError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import GetUpdates, Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import BotCommand, Update

from bots.render import Renderer
from bots.telegram.context import ContextMiddleware, ProgramCache
from bots.telegram.handlers import get_routers
from bots.telegram.port import TelegramPort
from delivery.adapter import Job, JobReport
from delivery.inbox import Inbox, KeptUpdate
from delivery.outbox import Outbox
from referrals.clock import Clock
from referrals.locale import DEFAULT_LOCALE, LOCALES
from referrals.people import People
from referrals.service import ReferralService
from rewards.service import RewardService

logger = logging.getLogger(__name__)

ALLOWED_UPDATES = [
    "message",
    "callback_query",
    "chat_member",
    "my_chat_member",
    "chat_join_request",
]
# The reader's command menu, in this order; each description is a macro of the locale's
# ``commands.html.j2``.
READER_COMMANDS = ("invite", "stats", "rewards", "leaderboard", "lang", "forget", "help")


def update_key(update: Update) -> tuple[int, int]:
    """(chat, user) of an update: its handlers must run in order."""
    event = update.event
    chat = getattr(event, "chat", None)
    if chat is None and update.callback_query is not None and update.callback_query.message:
        chat = update.callback_query.message.chat
    user = getattr(event, "from_user", None)
    if update.chat_member is not None:
        user = update.chat_member.new_chat_member.user
    return (chat.id if chat else 0, user.id if user else 0)


def lane_key(update: Update) -> tuple[int, int]:
    """The lane an update waits in: one per person (their /start in private before their
    join of a chat), else one per chat. Lanes and the inbox's parking use the same key."""
    chat_id, user_id = update_key(update)
    return (0, user_id) if user_id else (chat_id, 0)


class TelegramBot:
    """Everything the Telegram side needs, built by ``main.py`` (a
    :class:`delivery.adapter.BotAdapter`)."""

    platform = "telegram"

    def __init__(
        self,
        token: str,
        *,
        inbox: Inbox,
        clock: Clock,
        referrals: ReferralService,
        rewards: RewardService,
        people: People,
        outbox: Outbox,
        renderer: Renderer,
        api_url: str | None = None,
        owners: frozenset[int] = frozenset(),
        poll_timeout: int = 25,
        retry_delays: Sequence[float] = (0.2, 1.0, 3.0),
    ) -> None:
        session = AiohttpSession(
            api=TelegramAPIServer.from_base(api_url) if api_url else AiohttpSession().api
        )
        session.middleware(_HoldResponseTypes())
        self.bot = Bot(token, session=session, default=DefaultBotProperties(parse_mode=None))
        self.inbox = inbox
        self.clock = clock
        self.renderer = renderer
        self.owners = owners
        self.poll_timeout = poll_timeout
        self.retry_delays = tuple(retry_delays)
        self.programs = ProgramCache(referrals)
        self.port: TelegramPort | None = None
        self.dispatcher = Dispatcher(
            referrals=referrals,
            rewards=rewards,
            people=people,
            outbox=outbox,
            renderer=renderer,
            clock=clock,
            programs=self.programs,
        )
        # Not on chat_member: joins and leaves answer nobody, so a burst of them skips the
        # per-update bookkeeping (a people write and a Reply) by having no middleware.
        middleware = ContextMiddleware()
        self.dispatcher.message.outer_middleware(middleware)
        self.dispatcher.callback_query.outer_middleware(middleware)
        self.dispatcher.chat_join_request.outer_middleware(middleware)
        self.dispatcher.my_chat_member.outer_middleware(middleware)
        for router in get_routers():
            self.dispatcher.include_router(router)
        self.offset: int | None = None
        # (chat, user) lanes with kept updates in the inbox, and how many
        self._parked: dict[tuple[int, int], int] = {}

    async def start(self) -> TelegramPort:
        """Learn who the bot is and which lanes wait behind kept updates; returns the port
        (``main.py`` connects it to the engine and the outbox)."""
        me = await self.bot.me()
        if me.username is None:
            raise RuntimeError(f"getMe answered a bot without a username: {me.id}")
        await self.load_inbox()
        port = TelegramPort(
            self.bot, me.username, self.renderer, owners=self.owners, now=self.clock.now
        )
        self.dispatcher["port"] = port
        self.port = port
        logger.info("telegram bot @%s (%s) ready", me.username, me.id)
        return port

    async def serve(self, stop: asyncio.Event) -> None:
        """Set the command menu, then poll until ``stop``."""
        await self.set_commands()
        await self.poll(stop)

    def jobs(self) -> list[Job]:
        """Retry kept updates every minute."""
        return [Job("telegram_inbox", self._inbox_job, every=timedelta(minutes=1))]

    async def _inbox_job(self) -> JobReport:
        return {"inbox": await self.retry_inbox()}

    async def set_commands(self) -> None:
        """The command menu: English by default, and each other language for the people
        whose Telegram is set to it."""
        from aiogram.types import BotCommandScopeDefault

        for locale in LOCALES:
            commands = [
                BotCommand(command=name, description=self.renderer.command(locale, name))
                for name in READER_COMMANDS
            ]
            language = None if locale == DEFAULT_LOCALE else locale
            try:
                await self.bot.set_my_commands(
                    commands, scope=BotCommandScopeDefault(), language_code=language
                )
            except Exception as exc:  # not essential: the bot works without the menu
                logger.warning("could not set the %s command menu: %s", locale, exc)

    async def poll(self, stop: asyncio.Event) -> None:
        """Fetch, handle, acknowledge — until ``stop``; the batch in hand is finished."""
        backoff = 1.0
        while not stop.is_set():
            try:
                updates = await self._fetch(stop)
                if updates is None:
                    break  # stopping: nothing was in hand
                backoff = 1.0
            except TelegramRetryAfter as exc:
                await _sleep_or_stop(stop, exc.retry_after)
                continue
            except TelegramConflictError as exc:
                # Another process polls with this token (an overlapping deploy) or a webhook
                # is set: Telegram serves one of them at a time. Keep trying, gently.
                logger.warning(
                    "getUpdates conflict (%s): is another instance running? retrying in %.0fs",
                    exc,
                    backoff,
                )
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except (TelegramNetworkError, TelegramServerError, OSError) as exc:
                logger.warning("getUpdates failed (%s); retrying in %.0fs", exc, backoff)
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if not updates:
                continue
            try:
                await self.handle_batch(updates)
            except Exception:
                # Not even the inbox could keep a failing update (the database is down):
                # leave the batch unacknowledged; Telegram hands it over again.
                logger.exception("batch not handled; fetching it again shortly")
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            self.offset = updates[-1].update_id + 1
        await self.acknowledge()

    async def _fetch(self, stop: asyncio.Event) -> list[Update] | None:
        """One long poll, abandoned (None) if ``stop`` comes first: updates that were not
        received are not acknowledged, so Telegram hands them over next time."""
        request = asyncio.ensure_future(
            self.bot(
                GetUpdates(
                    offset=self.offset, timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES
                ),
                request_timeout=self.poll_timeout + 10,
            )
        )
        halt = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({request, halt}, return_when="FIRST_COMPLETED")
        finally:
            halt.cancel()
        if not request.done():
            request.cancel()
            return None
        return request.result()

    async def acknowledge(self) -> None:
        """Confirm the handled batches to Telegram (the next offset) before stopping."""
        if self.offset is None:
            return
        try:
            await self.bot(
                GetUpdates(offset=self.offset, timeout=0, limit=1, allowed_updates=ALLOWED_UPDATES)
            )
        except Exception as exc:
            logger.info("final acknowledgement failed (%s): the batch will be re-handled", exc)

    async def handle_batch(self, updates: Sequence[Update]) -> None:
        """Handle a batch: one lane per person, their updates in order (a friend's /start
        before their join, even when both come in one batch), lanes side by side. Returns
        only when every lane is done; raises if an update could neither be handled nor
        kept (then the batch must not be acknowledged)."""
        lanes: dict[tuple[int, int], list[Update]] = defaultdict(list)
        for update in updates:
            lanes[lane_key(update)].append(update)
        results = await asyncio.gather(
            *(self._lane(lane) for lane in lanes.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                raise result

    async def _lane(self, updates: list[Update]) -> None:
        for update in updates:
            key = lane_key(update)
            if self._parked.get(key):
                # An earlier update of this person (or chat) waits in the inbox: this one
                # waits behind it, so their order holds.
                await self._keep(update, None, key)
            else:
                error = await self.handle(update)
                if error is not None:
                    await self._keep(update, error, key)

    async def handle(self, update: Update) -> Exception | None:
        """Handle one update, retrying a failure while the batch is held (a transient
        failure such as the database restarting). Returns the error if it still fails."""
        error: Exception | None = None
        for attempt, delay in enumerate((0.0, *self.retry_delays)):
            if delay:
                await asyncio.sleep(delay)
            try:
                await self.dispatcher.feed_update(self.bot, update)
                return None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = exc
                logger.warning(
                    "update %s failed (attempt %d): %s", update.update_id, attempt + 1, exc
                )
        return error

    async def _keep(self, update: Update, error: Exception | None, key: tuple[int, int]) -> None:
        """Keep ``update`` raw in the inbox for the scheduler (``retry_inbox``)."""
        payload = update.model_dump(mode="json", exclude_none=True)
        reason = None if error is None else f"{type(error).__name__}: {error}"
        self._parked[key] = self._parked.get(key, 0) + 1
        try:
            kept = await self.inbox.keep("telegram", update.update_id, payload, reason)
        except Exception:
            self._unpark(key)
            # Not even the inbox is writable: do not acknowledge this batch at all.
            logger.exception(
                "could not keep update %s; the batch stays unacknowledged", update.update_id
            )
            raise
        if not kept:  # kept before (the batch was re-delivered): counted already
            self._unpark(key)
            return
        logger.warning(
            "update %s kept in the inbox: %s", update.update_id, reason or "waiting behind"
        )

    def _unpark(self, key: tuple[int, int]) -> None:
        self._parked[key] = self._parked.get(key, 1) - 1
        if self._parked[key] <= 0:
            del self._parked[key]

    async def load_inbox(self) -> None:
        """Learn which lanes wait behind kept updates (on start)."""
        self._parked = {}
        for kept in await self.inbox.waiting("telegram"):
            key = lane_key(Update.model_validate(kept.payload))
            self._parked[key] = self._parked.get(key, 0) + 1

    async def retry_inbox(self) -> tuple[int, int]:
        """Feed kept updates again (a scheduler job), each person's (or chat's) lane in update
        order, stopping a lane at its first update that still fails. Returns (handled,
        still failing)."""
        now = self.clock.now()
        lanes: dict[tuple[int, int], list[tuple[KeptUpdate, Update]]] = defaultdict(list)
        for kept in await self.inbox.waiting("telegram"):
            update = Update.model_validate(kept.payload, context={"bot": self.bot})
            lanes[lane_key(update)].append((kept, update))
        handled = failing = 0
        for key, lane in lanes.items():
            if not lane[0][0].due(now):
                continue  # the lane's first update is not due yet
            for kept, update in lane:
                try:
                    await self.dispatcher.feed_update(self.bot, update)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"
                else:
                    await self.inbox.handled(kept)
                    self._unpark(key)
                    handled += 1
                    continue
                failing += 1
                if await self.inbox.failed(kept, error):
                    self._unpark(key)
                    logger.error("update %s given up: %s", kept.update_id, error)
                    continue
                logger.warning("kept update %s failed again: %s", kept.update_id, error)
                break  # the rest of this lane waits behind it
        return handled, failing

    async def close(self) -> None:
        await self.bot.session.close()


class _HoldResponseTypes(BaseRequestMiddleware):
    """aiogram parses every answer with ``Response[<the method's result type>]``; pydantic
    keeps such parametrised classes only weakly, so each was rebuilt (a few ms of schema
    building) whenever the garbage collector had dropped it — a tenth of the bot's time in
    the end-to-end benchmark. Holding one per method we call keeps them built."""

    def __init__(self) -> None:
        self._held: dict[type[Any], Any] = {}

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        kind = type(method)
        if kind not in self._held:
            self._held[kind] = Response[method.__returning__]  # type: ignore[name-defined]
        return await make_request(bot, method)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
