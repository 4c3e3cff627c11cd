"""What every handler gets besides its event: a per-update ``Reply`` that queues answers in
the outbox (idempotent per update, so a re-delivered update never answers twice), and
helpers shared by the routers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User

from bots import views
from delivery.actions import Action, Edit, Payload, Post, buttons_of
from delivery.outbox import Outbox, Priority, message
from referrals.clock import Clock
from referrals.models import Person, Program
from referrals.people import People
from referrals.service import ReferralService
from referrals.text import clean_name

PLATFORM = "telegram"
Buttons = list[list[dict[str, Any]]]  # plain specs, see delivery.actions.Button


def first_name(user: User) -> str:
    """The name to greet someone by: printable, one line, at most 64 characters."""
    return clean_name(user.first_name)


def person_of(user: User) -> Person:
    return Person(
        user_id=user.id,
        display_name=user.full_name,
        username=user.username,
        language_code=user.language_code,
    )


class Reply:
    """Answers to one update, queued as outbox rows with keys ``tg:<update>:<n>``."""

    def __init__(
        self,
        outbox: Outbox,
        clock: Clock,
        update_id: int,
        locale: str | None,
        chat_id: int | None,
        user_id: int | None,
    ) -> None:
        self.outbox = outbox
        self.clock = clock
        self.update_id = update_id
        self.locale = locale
        self.chat_id = chat_id
        self.user_id = user_id
        self._count = 0

    def _key(self) -> str:
        self._count += 1
        return f"tg:{self.update_id}:{self._count}"

    async def send(
        self,
        target_kind: str,
        target_id: int,
        template: str,
        context: dict[str, Any] | None = None,
        *,
        buttons: Buttons | None = None,
        priority: Priority = Priority.ANSWER,
        program_id: int | None = None,
        action: Action | str = Action.SEND,
        payload: Payload | None = None,
        locale: str | None = None,
        expires_in: timedelta | None = None,
        key: str | None = None,
    ) -> None:
        """Queue one message: ``context`` is the template's, ``payload`` the action's typed
        payload (:mod:`delivery.actions`); a plain send or pin may give just ``buttons``."""
        now = self.clock.now()
        kind = Action(action)
        body = dict(context or {})
        if payload is None:
            if kind not in (Action.SEND, Action.SEND_PIN):
                raise ValueError(f"{kind} needs its payload")
            payload = Post(buttons_of(buttons))
        await self.outbox.add(
            [
                message(
                    PLATFORM,
                    target_kind,
                    target_id,
                    template,
                    body,
                    priority=priority,
                    now=now,
                    program_id=program_id,
                    locale=locale or self.locale,
                    action=kind,
                    payload=payload,
                    expires_at=now + expires_in if expires_in else None,
                    key=key or self._key(),
                )
            ]
        )

    async def here(self, template: str, context: dict[str, Any] | None = None, **kw: Any) -> None:
        """Answer in the chat the update came from."""
        if self.chat_id is None:
            raise RuntimeError(f"update {self.update_id} has no chat to answer in")
        kind = "user" if self.chat_id == self.user_id else "chat"
        await self.send(kind, self.chat_id, template, context, **kw)

    async def to_user(
        self, user_id: int, template: str, context: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        await self.send("user", user_id, template, context, **kw)

    async def edit(
        self,
        chat_id: int,
        message_id: int,
        template: str,
        context: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        kind = "user" if chat_id == self.user_id else "chat"
        payload = Edit(message_id, buttons_of(kw.pop("buttons", None)))
        await self.send(
            kind, chat_id, template, context, action=Action.EDIT, payload=payload, **kw
        )

    async def error(self, code: str, **details: Any) -> None:
        await self.here("error", views.error(code, **details))


class ContextMiddleware(BaseMiddleware):
    """Records who wrote (a private message means the bot may DM them later) and hands
    the handler a :class:`Reply` in the person's language."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        update: Update = data["event_update"]
        user: User | None = data.get("event_from_user")
        chat = data.get("event_chat")
        people: People = data["people"]
        locale: str | None = None
        if user is not None and not user.is_bot:
            seen = await people.seen(
                PLATFORM,
                user.id,
                display_name=user.full_name,
                username=user.username,
                platform_language=user.language_code,
                started=chat is not None and chat.type == "private",
            )
            locale = seen.locale
        data["reply"] = Reply(
            data["outbox"],
            data["clock"],
            update.update_id,
            locale,
            chat.id if chat is not None else None,
            user.id if user is not None else None,
        )
        return await handler(event, data)


class ProgramCache:
    """Programs by chat id, kept for a few seconds: every membership update needs one. The
    updates of one batch ask at once; when the entry has expired, one of them reads the
    database and the others wait for that read instead of each making their own."""

    def __init__(self, referrals: ReferralService, ttl: float = 5.0) -> None:
        self._referrals = referrals
        self._ttl = ttl
        self._entries: dict[int, tuple[float, Program | None]] = {}
        self._loading: dict[int, asyncio.Future[Program | None]] = {}
        self._generation = 0  # bumped by forget(): a read begun before it is not kept

    async def for_chat(self, chat_id: int) -> Program | None:
        hit = self._entries.get(chat_id)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        loading = self._loading.get(chat_id)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[Program | None] = asyncio.get_running_loop().create_future()
        self._loading[chat_id] = future
        generation = self._generation
        try:
            program = await self._referrals.find_program(PLATFORM, chat_id)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # the waiters get it; nobody else has to retrieve it
            raise
        finally:
            if self._loading.get(chat_id) is future:
                del self._loading[chat_id]
        if generation == self._generation:
            self._entries[chat_id] = (now, program)
        future.set_result(program)
        return program

    def forget(self, chat_id: int | None = None) -> None:
        self._generation += 1
        if chat_id is None:
            self._entries.clear()
            self._loading.clear()
        else:
            self._entries.pop(chat_id, None)
            self._loading.pop(chat_id, None)
