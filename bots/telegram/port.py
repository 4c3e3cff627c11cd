"""The Telegram side of the platform port: invites, membership, admin checks, join
requests and sending outbox messages, each returning a typed outcome."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    CopyTextButton,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
)

from bots.render import Renderer
from delivery.outbox import OutboundMessage
from delivery.port import (
    AdminResult,
    Delivered,
    Destination,
    Failure,
    InviteCreated,
    Membership,
    MembershipResult,
    RetryAfter,
    SendResult,
    TransientFailure,
    Unreachable,
    UnreachableReason,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

JOIN_REQUEST_WINDOW = timedelta(minutes=5)
WELCOME_MARGIN = timedelta(seconds=10)  # a welcome retried later must still fit the window
MEMBER_STATUSES = {"creator", "administrator", "member"}
ADMIN_STATUSES = {"creator", "administrator"}


def classify(exc: Exception) -> Failure | TransientFailure:
    """Tell Telegram's errors apart (platform-facts.md: 429 and the 403 cases)."""
    if isinstance(exc, TelegramRetryAfter):
        return RetryAfter(float(exc.retry_after))
    text = str(getattr(exc, "message", "") or exc).lower()
    if isinstance(exc, TelegramForbiddenError):
        if "blocked" in text:
            return Unreachable(UnreachableReason.BLOCKED, text)
        if "initiate" in text or "can't send messages to the user" in text:
            return Unreachable(UnreachableReason.NOT_STARTED, text)
        if "deactivated" in text or ("deleted" in text and "chat" not in text):
            return Unreachable(UnreachableReason.ACCOUNT_GONE, text)
        if "chat was deleted" in text:  # "Forbidden: the group chat was deleted"
            return Unreachable(UnreachableReason.NOT_FOUND, text)
        if "kicked" in text or "not a member" in text or "removed" in text:
            return Unreachable(UnreachableReason.BOT_REMOVED, text)
        return Unreachable(UnreachableReason.NO_RIGHTS, text)
    if isinstance(exc, TelegramMigrateToChat):
        return Unreachable(UnreachableReason.NOT_FOUND, f"migrated to {exc.migrate_to_chat_id}")
    if isinstance(exc, TelegramNotFound):
        return Unreachable(UnreachableReason.NOT_FOUND, text)
    if isinstance(exc, TelegramBadRequest):
        if "not enough rights" in text or "administrator" in text or "rights" in text:
            return Unreachable(UnreachableReason.NO_RIGHTS, text)
        if "chat not found" in text or "user not found" in text or "participant_id" in text:
            return Unreachable(UnreachableReason.NOT_FOUND, text)
        if "deactivated" in text:
            return Unreachable(UnreachableReason.ACCOUNT_GONE, text)
        return Unreachable(UnreachableReason.REJECTED, text)
    if isinstance(exc, TelegramUnauthorizedError):
        return TransientFailure(f"unauthorized: {text}")
    if isinstance(exc, TelegramNetworkError | TelegramServerError | TimeoutError | OSError):
        return TransientFailure(text or type(exc).__name__)
    return TransientFailure(f"{type(exc).__name__}: {text}")


class TelegramPort:
    """Implements :class:`delivery.port.PlatformPort` and :class:`delivery.outbox.Sender`."""

    platform = "telegram"

    def __init__(
        self,
        bot: Bot,
        bot_username: str,
        renderer: Renderer,
        *,
        owners: frozenset[int] = frozenset(),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.bot = bot
        self.bot_username = bot_username
        self.renderer = renderer
        self.owners = owners
        self._now = now
        # Outbox rows whose welcome went out while their approval still has to (a retry
        # in this process must not welcome twice; after a restart it may, at least once).
        self._welcomed: dict[int, datetime] = {}

    def deep_link(self, payload: str) -> str:
        return f"https://t.me/{self.bot_username}?start={payload}"

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T | Failure | TransientFailure:
        try:
            return await call()
        except (TelegramAPIError, TelegramNetworkError, TimeoutError, OSError) as exc:
            return classify(exc)

    # --- PlatformPort ---------------------------------------------------------------

    async def create_invite(
        self, destination: Destination, *, code: str, name: str
    ) -> InviteCreated | Failure:
        if destination.join_mode != "direct" or destination.kind == "bot":
            return InviteCreated(self.deep_link(code))
        result = await self._call(
            lambda: self.bot.create_chat_invite_link(
                destination.destination_id, name=name[:32], creates_join_request=True
            )
        )
        if isinstance(result, TransientFailure):
            return RetryAfter(5)
        if isinstance(result, RetryAfter | Unreachable):
            return result
        return InviteCreated(result.invite_link)

    async def create_chat_link(self, chat_id: int) -> str | Failure:
        """A plain join link of the chat (friends in the through-the-bot mode)."""
        result = await self._call(
            lambda: self.bot.create_chat_invite_link(chat_id, name="inviteloop friends")
        )
        if isinstance(result, TransientFailure):
            return RetryAfter(5)
        if isinstance(result, RetryAfter | Unreachable):
            return result
        return result.invite_link

    async def revoke_invite(self, destination: Destination, url: str) -> Delivered | Failure:
        if destination.join_mode != "direct" or "?start=" in url:
            return Delivered()
        result = await self._call(
            lambda: self.bot.revoke_chat_invite_link(destination.destination_id, url)
        )
        if isinstance(result, TransientFailure):
            return RetryAfter(5)
        if isinstance(result, RetryAfter | Unreachable):
            return result
        return Delivered()

    async def get_membership(
        self, destination: Destination, user_id: int
    ) -> MembershipResult | Failure:
        if destination.kind == "bot":
            # A bot subscription ends with a block, which Telegram always reports
            # (my_chat_member); there is nothing else to ask.
            return MembershipResult(Membership.MEMBER)
        result = await self._call(
            lambda: self.bot.get_chat_member(destination.destination_id, user_id)
        )
        if isinstance(result, TransientFailure):
            return RetryAfter(5)
        if isinstance(result, RetryAfter | Unreachable):
            return result
        inside = result.status in MEMBER_STATUSES or (
            result.status == "restricted" and bool(getattr(result, "is_member", False))
        )
        return MembershipResult(Membership.MEMBER if inside else Membership.NOT_MEMBER)

    async def is_admin(self, destination: Destination, user_id: int) -> AdminResult | Failure:
        if destination.kind == "bot":
            return AdminResult(user_id in self.owners)
        result = await self._call(
            lambda: self.bot.get_chat_member(destination.destination_id, user_id)
        )
        if isinstance(result, TransientFailure):
            return RetryAfter(5)
        if isinstance(result, RetryAfter | Unreachable):
            return result
        return AdminResult(result.status in ADMIN_STATUSES)

    async def approve_join_request(
        self, destination: Destination, user_id: int
    ) -> Delivered | Failure:
        return await self._decide(destination, user_id, approve=True)

    async def decline_join_request(
        self, destination: Destination, user_id: int
    ) -> Delivered | Failure:
        return await self._decide(destination, user_id, approve=False)

    async def _decide(
        self, destination: Destination, user_id: int, *, approve: bool
    ) -> Delivered | Failure:
        method = (
            self.bot.approve_chat_join_request if approve else self.bot.decline_chat_join_request
        )
        result = await self._call(lambda: method(destination.destination_id, user_id))
        if isinstance(result, TransientFailure):
            return RetryAfter(2)
        if isinstance(result, Unreachable) and result.reason is UnreachableReason.REJECTED:
            # "HIDE_REQUESTER_MISSING": the request was already handled (or withdrawn).
            return Delivered()
        if isinstance(result, RetryAfter | Unreachable):
            return result
        return Delivered()

    # --- Sender -------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        context = message.context
        locale = message.locale
        text = self.renderer.text(locale, message.template, **_public(context))
        markup = self.keyboard(locale, context.get("_buttons"))
        chat_id = message.target_id
        if message.action == "edit":
            edited = await self._call(
                lambda: self.bot.edit_message_text(
                    text=text,
                    chat_id=chat_id,
                    message_id=int(context["_message_id"]),
                    parse_mode="HTML",
                    reply_markup=markup,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            )
            if isinstance(edited, Unreachable) and "not modified" in edited.detail:
                return Delivered(int(context["_message_id"]))
            if isinstance(edited, RetryAfter | Unreachable | TransientFailure):
                return edited
            return Delivered(int(context["_message_id"]))
        if message.action == "welcome_approve":
            return await self._welcome_then_approve(message, text, markup)
        sent = await self._call(
            lambda: self.bot.send_message(
                chat_id,
                text,
                parse_mode="HTML",
                reply_markup=markup,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        if isinstance(sent, RetryAfter | Unreachable | TransientFailure):
            return sent
        if message.action == "send_pin":
            pinned = await self._call(lambda: self.bot.pin_chat_message(chat_id, sent.message_id))
            if not isinstance(pinned, bool):
                logger.info("could not pin in %s: %s", chat_id, pinned)
        return Delivered(sent.message_id)

    async def _welcome_then_approve(
        self, message: OutboundMessage, text: str, markup: InlineKeyboardMarkup | None
    ) -> SendResult:
        """A join request: the welcome DM is possible only before the request is processed
        (the 5-minute window), so send it first, then approve. A ``retry_after`` on the
        welcome is waited out (the row comes back) while the window still allows it;
        otherwise the approval happens without the welcome, never held back by it. A
        welcome already delivered is not sent again when only the approval is retried."""
        context = message.context
        window_ends = datetime.fromisoformat(context["_window_ends"])
        now = self._now()
        if message.id not in self._welcomed and now < window_ends:
            sent = await self._call(
                lambda: self.bot.send_message(
                    message.target_id,
                    text,
                    parse_mode="HTML",
                    reply_markup=markup,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            )
            if isinstance(sent, RetryAfter) and now + timedelta(seconds=sent.seconds) < (
                window_ends - WELCOME_MARGIN
            ):
                return sent
            if isinstance(sent, Unreachable | RetryAfter | TransientFailure):
                logger.info("welcome to %s not sent (%s); approving", message.target_id, sent)
            else:
                self._remember_welcome(message.id, now)
        approved = await self.approve_join_request(
            Destination("telegram", int(context["_chat_id"]), "channel", "direct"),
            int(context["_user_id"]),
        )
        if isinstance(approved, RetryAfter | Unreachable):
            return approved  # a lost right or a gone chat is recorded on the row
        self._welcomed.pop(message.id, None)
        return Delivered()

    def _remember_welcome(self, row_id: int, now: datetime) -> None:
        self._welcomed[row_id] = now
        if len(self._welcomed) > 10_000:
            cutoff = now - 2 * JOIN_REQUEST_WINDOW
            for key, when in list(self._welcomed.items()):
                if when < cutoff:
                    del self._welcomed[key]

    def keyboard(
        self, locale: str | None, rows: list[list[dict[str, Any]]] | None
    ) -> InlineKeyboardMarkup | None:
        """Buttons from plain specs: ``{"label": macro, "args": {...}, "url"|"data"|"copy"}``."""
        if not rows:
            return None
        built: list[list[InlineKeyboardButton]] = []
        for row in rows:
            buttons = []
            for spec in row:
                label = self.renderer.label(locale, spec["label"], **spec.get("args", {}))
                if "url" in spec:
                    buttons.append(InlineKeyboardButton(text=label, url=spec["url"]))
                elif "copy" in spec:
                    buttons.append(
                        InlineKeyboardButton(
                            text=label, copy_text=CopyTextButton(text=spec["copy"][:256])
                        )
                    )
                else:
                    buttons.append(InlineKeyboardButton(text=label, callback_data=spec["data"]))
            built.append(buttons)
        return InlineKeyboardMarkup(inline_keyboard=built)


def share_buttons(url: str, text: str) -> list[list[dict[str, Any]]]:
    """Telegram share, WhatsApp, X and copy-link buttons for a personal link."""
    return [
        [
            {
                "label": "share_telegram",
                "url": f"https://t.me/share/url?url={quote(url, safe='')}&text={quote(text)}",
            }
        ],
        [
            {"label": "share_whatsapp", "url": f"https://wa.me/?text={quote(text + ' ' + url)}"},
            {
                "label": "share_x",
                "url": f"https://x.com/intent/post?text={quote(text)}&url={quote(url, safe='')}",
            },
        ],
        [{"label": "copy_link", "copy": url}],
    ]


def _public(context: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in context.items() if not key.startswith("_")}
