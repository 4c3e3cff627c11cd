"""Reading the world: what bots sent, members, links, updates, the call log; faults; waits.

:class:`Observer` is the half of :class:`sandbox.world.World` that scripts use to assert on
what happened and to make the next API calls fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from sandbox.errors import ScriptError
from sandbox.model import (
    ApiCall,
    Fault,
    JoinRequest,
    PrivateDialog,
    SimInviteLink,
    SimMember,
    SimMessage,
)
from sandbox.objects import Json
from sandbox.state import BotRef, ChatRef, UserRef, WorldState

T = TypeVar("T")


class Observer(WorldState):
    """Read helpers, fault injection and waiting."""

    # --- reading what happened --------------------------------------------------------------

    def sent_messages(
        self,
        bot: BotRef | None = None,
        chat: ChatRef | UserRef | None = None,
        *,
        include_deleted: bool = False,
    ) -> list[SimMessage]:
        """Messages bots sent (optionally one bot's, to one chat or one user), oldest first."""
        account = self.bot(bot) if bot is not None else None
        chat_id = self.chat_or_user_id(chat) if chat is not None else None
        return [
            m
            for m in self.sent_log
            if (account is None or m.sender_id == account.id)
            and (chat_id is None or m.chat_id == chat_id)
            and (include_deleted or not m.deleted)
        ]

    def last_sent(
        self, bot: BotRef | None = None, chat: ChatRef | UserRef | None = None
    ) -> SimMessage:
        """The newest message a bot sent (to ``chat``); ScriptError if there is none."""
        found = self.sent_messages(bot, chat)
        if not found:
            raise ScriptError("no message was sent")
        return found[-1]

    def sent_files(
        self,
        bot: BotRef | None = None,
        chat: ChatRef | UserRef | None = None,
        *,
        kind: str | None = None,
    ) -> list[SimMessage]:
        """Documents and photos bots sent (``kind="document"`` or ``"photo"``), oldest first.

        Each message has ``.file`` (``.document`` or ``.photo``: ``file_name``, ``content``,
        ``mime_type``, ``size``, ``width``/``height``), ``.caption`` (entities parsed),
        ``.reply_markup`` and ``.chat_id``.
        """
        return [
            m
            for m in self.sent_messages(bot, chat)
            if m.file is not None and (kind is None or m.file.kind == kind)
        ]

    def last_file(
        self, bot: BotRef | None = None, chat: ChatRef | UserRef | None = None
    ) -> SimMessage:
        """The newest document or photo a bot sent (to ``chat``); ScriptError if none."""
        found = self.sent_files(bot, chat)
        if not found:
            raise ScriptError("no file was sent")
        return found[-1]

    def inbox(self, user: UserRef, bot: BotRef | None = None) -> list[SimMessage]:
        """Messages bots sent to a person in private chats."""
        person = self.user(user)
        account = self.bot(bot) if bot is not None else None
        return [
            m
            for m in self.sent_log
            if m.is_private
            and m.chat_id == person.id
            and (account is None or m.dialog_bot_id == account.id)
            and not m.deleted
        ]

    def messages(
        self,
        chat: ChatRef | None = None,
        *,
        bot: BotRef | None = None,
        user: UserRef | None = None,
    ) -> list[SimMessage]:
        """All messages of a chat, or of the private chat between ``bot`` and ``user``."""
        if chat is not None:
            return list(self.chat(chat).messages.values())
        if bot is None or user is None:
            raise ScriptError("give a chat, or a bot and a user")
        return list(self.dialog(self.bot(bot), self.user(user).id).messages.values())

    def private_dialog(self, bot: BotRef, user: UserRef) -> PrivateDialog:
        """The private chat state (started, blocked, messages, pins) of a bot and a person."""
        return self.dialog(self.bot(bot), self.user(user).id)

    def pinned_messages(
        self,
        chat: ChatRef | None = None,
        *,
        bot: BotRef | None = None,
        user: UserRef | None = None,
    ) -> list[SimMessage]:
        """Pinned messages (oldest pin first) of a chat or of a bot's private chat."""
        if chat is not None:
            target = self.chat(chat)
            return [target.messages[i] for i in target.pinned if i in target.messages]
        if bot is None or user is None:
            raise ScriptError("give a chat, or a bot and a user")
        dialog = self.private_dialog(bot, user)
        return [dialog.messages[i] for i in dialog.pinned if i in dialog.messages]

    def invite_links(
        self, chat: ChatRef, *, creator: UserRef | BotRef | None = None
    ) -> list[SimInviteLink]:
        """The chat's invite links (including revoked ones), oldest first."""
        target = self.chat(chat)
        links = list(target.invite_links.values())
        if creator is not None:
            creator_id = self.account(creator).id
            links = [link for link in links if link.creator_id == creator_id]
        return links

    def members(self, chat: ChatRef) -> list[SimMember]:
        """Current members of a chat."""
        target = self.chat(chat)
        return [m for m in target.members.values() if m.in_chat]

    def member(self, chat: ChatRef, user: UserRef | BotRef) -> SimMember:
        """Someone's membership record in a chat (``left`` if never there)."""
        return self.chat(chat).member(self.account(user).id)

    def join_requests(self, chat: ChatRef) -> list[JoinRequest]:
        """Pending join requests of a chat."""
        return list(self.chat(chat).join_requests.values())

    def pending_updates(self, bot: BotRef) -> list[Json]:
        """Updates queued for a bot and not yet confirmed."""
        return [u.to_json() for u in self.bot(bot).updates]

    def calls_of(self, method: str | None = None, bot: BotRef | None = None) -> list[ApiCall]:
        """Logged API calls, optionally of one method (case-insensitive) and one bot."""
        account = self.bot(bot) if bot is not None else None
        name = method.lower() if method else None
        return [
            c
            for c in self.calls
            if (name is None or c.method.lower() == name)
            and (account is None or c.bot_id == account.id)
        ]

    # --- faults -----------------------------------------------------------------------------

    def inject_fault(
        self,
        method: str,
        *,
        times: int = 1,
        chat: ChatRef | UserRef | None = None,
        error_code: int = 500,
        description: str | None = None,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        mode: str = "before",
        delay: float = 0.0,
    ) -> Fault:
        """Make the next ``times`` calls of ``method`` (for one chat, if given) fail.

        ``mode="before"`` answers the error without doing anything; ``"after"`` does the
        work and then answers the error (a lost response); ``"disconnect"`` drops the
        connection; ``"delay"`` answers normally after ``delay`` seconds. With
        ``retry_after`` the default is a 429 ``Too Many Requests: retry after N``.
        """
        if mode not in ("before", "after", "disconnect", "delay"):
            raise ScriptError(f"unknown fault mode {mode!r}")
        if retry_after is not None and description is None:
            error_code = 429
            description = f"Too Many Requests: retry after {retry_after}"
        fault = Fault(
            method=method.lower(),
            remaining=times,
            chat_id=self.chat_or_user_id(chat) if chat is not None else None,
            error_code=error_code,
            description=description or _default_description(error_code),
            retry_after=retry_after,
            migrate_to_chat_id=migrate_to_chat_id,
            mode=mode,
            delay=delay,
        )
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self.faults.clear()

    # --- waiting (for tests and the demo) ---------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[], T],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait
        what: str = "condition",
    ) -> T:
        """Wait until ``predicate()`` is truthy (re-checked after every change); return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            future: asyncio.Future[None] = loop.create_future()
            self._change_waiters.append(future)
            try:
                await asyncio.wait_for(future, remaining)
            except TimeoutError:
                continue

    async def wait_for_message(
        self,
        bot: BotRef | None = None,
        chat: ChatRef | UserRef | None = None,
        *,
        contains: str | None = None,
        since: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> SimMessage:
        """Wait for a bot to send a message (after ``since`` = len(sent_log) now).

        ``contains`` looks in the text, or in the caption of a document or photo.
        """
        start = len(self.sent_log) if since is None else since

        def find() -> SimMessage | None:
            recent = self.sent_log[start:]
            wanted = {id(m) for m in self.sent_messages(bot, chat, include_deleted=True)}
            for message in recent:
                if id(message) not in wanted:
                    continue
                shown = message.text if message.text is not None else message.caption
                if contains is not None and contains not in (shown or ""):
                    continue
                return message
            return None

        found = await self.wait_for(find, timeout=timeout, what="a message from the bot")
        assert found is not None
        return found

    async def wait_until_delivered(
        self,
        bot: BotRef,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> None:
        """Wait until the bot has fetched and confirmed every queued update."""
        account = self.bot(bot)
        await self.wait_for(
            lambda: not account.updates, timeout=timeout, what=f"@{account.username} to catch up"
        )


def _default_description(error_code: int) -> str:
    return {
        400: "Bad Request: injected fault",
        401: "Unauthorized",
        403: "Forbidden: injected fault",
        404: "Not Found",
        409: "Conflict: injected fault",
        429: "Too Many Requests: retry after 1",
        500: "Internal Server Error",
        502: "Bad Gateway",
    }.get(error_code, f"Error {error_code}")
