"""The Telegram side of the platform port: invites, membership, admin checks, join
requests and sending outbox messages, each returning a typed outcome; Telegram's sending
limits and its policy for refusals; and what Telegram can do (its join modes and the
join-request DM window), as capabilities the engine reads."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    ChatMemberUnion,
    CopyTextButton,
    FSInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
)

from bots.render import Renderer
from delivery.actions import Action, Attachment, Button, Buttons, Edit, WelcomeApprove
from delivery.outbox import OutboundMessage, Refusal
from delivery.port import (
    AccessChat,
    AdminResult,
    Delivered,
    Destination,
    Failure,
    InviteCreated,
    Membership,
    MembershipResult,
    PostRights,
    RetryAfter,
    SendResult,
    TransientFailure,
    Unreachable,
    UnreachableReason,
)
from delivery.ratelimit import Limits
from referrals.locale import pick_locale

logger = logging.getLogger(__name__)
T = TypeVar("T")

# The one home of Telegram's join-request DM window: a bot may message a person who asked
# to join for 5 minutes, and only until the request is approved or declined.
JOIN_REQUEST_WINDOW = timedelta(minutes=5)
# About 30 messages a second overall, 1 a second per chat (short bursts), 20 a minute per
# group or channel (platform-facts.md); reads such as getChatMember are not limited.
TELEGRAM_LIMITS = Limits(
    global_per_second=30.0,
    global_burst=30.0,
    user_per_second=1.0,
    user_burst=3.0,
    chat_per_minute=20.0,
    chat_burst=3.0,
    chat_per_second=1.0,
)
TRANSIENT_RETRY = RetryAfter(5)  # a network or server error on a call the engine awaits
DECISION_RETRY = RetryAfter(2)  # the same for approving or declining a join request
WELCOME_MARGIN = timedelta(seconds=10)  # a welcome retried later must still fit the window
# What a bot may upload (Bot API, "Sending files"): documents up to 50 MB, photos up to
# 10 MB; a margin stays free for the rest of the multipart request.
DOCUMENT_LIMIT = 50 * 1024 * 1024 - 64 * 1024
PHOTO_LIMIT = 10 * 1024 * 1024 - 64 * 1024
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
    if isinstance(exc, TelegramEntityTooLarge):  # 413: a file over the upload limit
        return Unreachable(UnreachableReason.REJECTED, f"too large: {text}")
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
    supported_join_modes = frozenset({"bot", "direct"})
    join_request_window: timedelta | None = JOIN_REQUEST_WINDOW

    def __init__(
        self,
        bot: Bot,
        bot_username: str,
        renderer: Renderer,
        *,
        owners: frozenset[int] = frozenset(),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        limits: Limits = TELEGRAM_LIMITS,
    ) -> None:
        self.bot = bot
        self.limits = limits
        self.document_limit = DOCUMENT_LIMIT  # bytes one file may have (a test may lower it)
        self.photo_limit = PHOTO_LIMIT
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

    async def _ask(
        self, call: Callable[[], Awaitable[T]], retry: RetryAfter = TRANSIENT_RETRY
    ) -> T | Failure:
        """A call the engine awaits. Its outcomes are only ``RetryAfter`` and
        ``Unreachable``, so a transient failure (network trouble, a server error) becomes a
        short ``RetryAfter`` here, the one place that decides so: the caller tries again."""
        result = await self._call(call)
        return retry if isinstance(result, TransientFailure) else result

    # --- PlatformPort ---------------------------------------------------------------

    async def create_invite(
        self, destination: Destination, *, code: str, name: str
    ) -> InviteCreated | Failure:
        if destination.join_mode != "direct" or destination.kind == "bot":
            return InviteCreated(self.deep_link(code))
        result = await self._ask(
            lambda: self.bot.create_chat_invite_link(
                destination.destination_id, name=name[:32], creates_join_request=True
            )
        )
        if isinstance(result, RetryAfter | Unreachable):
            return result
        return InviteCreated(result.invite_link)

    async def create_chat_link(self, chat_id: int) -> str | Failure:
        """A plain join link of the chat (friends in the through-the-bot mode)."""
        result = await self._ask(
            lambda: self.bot.create_chat_invite_link(chat_id, name="inviteloop friends")
        )
        if isinstance(result, RetryAfter | Unreachable):
            return result
        return result.invite_link

    async def revoke_invite(self, destination: Destination, url: str) -> Delivered | Failure:
        if destination.join_mode != "direct" or "?start=" in url:
            return Delivered()
        result = await self._ask(
            lambda: self.bot.revoke_chat_invite_link(destination.destination_id, url)
        )
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
        result = await self._ask(
            lambda: self.bot.get_chat_member(destination.destination_id, user_id)
        )
        if isinstance(result, RetryAfter | Unreachable):
            return result
        inside = result.status in MEMBER_STATUSES or (
            result.status == "restricted" and bool(getattr(result, "is_member", False))
        )
        return MembershipResult(Membership.MEMBER if inside else Membership.NOT_MEMBER)

    async def is_admin(self, destination: Destination, user_id: int) -> AdminResult | Failure:
        if destination.kind == "bot":
            return AdminResult(user_id in self.owners)
        result = await self._ask(
            lambda: self.bot.get_chat_member(destination.destination_id, user_id)
        )
        if isinstance(result, RetryAfter | Unreachable):
            return result
        return AdminResult(result.status in ADMIN_STATUSES)

    async def post_rights(self, destination: Destination) -> PostRights | Failure:
        """What the bot's own membership lets it do in the chat (a channel needs the post
        right, and editing to pin; in groups an admin posts, and pins with the pin right)."""
        if destination.kind == "bot":
            return PostRights(False, False)
        me = await self._ask(
            lambda: self.bot.get_chat_member(destination.destination_id, self.bot.id)
        )
        if isinstance(me, RetryAfter | Unreachable):
            return me
        return post_rights(me, destination.kind)

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
        result = await self._ask(
            lambda: method(destination.destination_id, user_id), DECISION_RETRY
        )
        if isinstance(result, Unreachable) and result.reason is UnreachableReason.REJECTED:
            # "HIDE_REQUESTER_MISSING": the request was already handled (or withdrawn).
            return Delivered()
        if isinstance(result, RetryAfter | Unreachable):
            return result
        return Delivered()

    # --- reward chats -----------------------------------------------------------

    async def access_chat(self, chat_id: int) -> AccessChat | Failure:
        """The reward chat's title and whether the bot is an admin with the invite right."""
        chat = await self._ask(lambda: self.bot.get_chat(chat_id))
        if isinstance(chat, RetryAfter | Unreachable):
            return chat
        me = await self._ask(lambda: self.bot.get_chat_member(chat_id, self.bot.id))
        if isinstance(me, RetryAfter | Unreachable):
            return me
        can_invite = me.status == "creator" or (
            me.status == "administrator" and bool(getattr(me, "can_invite_users", False))
        )
        return AccessChat(chat_id, chat.title or str(chat_id), can_invite)

    async def create_access_link(
        self, chat_id: int, *, name: str, expires_at: datetime
    ) -> InviteCreated | Failure:
        """A join-request link (not ``member_limit=1``, which a leave frees and a forwarded
        link defeats): the bot approves only the grant's owner."""
        result = await self._ask(
            lambda: self.bot.create_chat_invite_link(
                chat_id, name=name[:32], expire_date=expires_at, creates_join_request=True
            )
        )
        if isinstance(result, RetryAfter | Unreachable):
            return result
        return InviteCreated(result.invite_link)

    async def revoke_access_link(self, chat_id: int, url: str) -> Delivered | Failure:
        result = await self._ask(lambda: self.bot.revoke_chat_invite_link(chat_id, url))
        if isinstance(result, Unreachable) and result.reason is UnreachableReason.REJECTED:
            return Delivered()  # already revoked or expired
        if isinstance(result, RetryAfter | Unreachable):
            return result
        return Delivered()

    async def answer_access_request(
        self, chat_id: int, user_id: int, approve: bool
    ) -> Delivered | Failure:
        destination = Destination(self.platform, chat_id, "supergroup", "direct")
        return await self._decide(destination, user_id, approve=approve)

    # --- Sender -------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        locale = pick_locale(*message.locales)
        payload = message.payload
        text = self.renderer.text(locale, message.template, **message.context)
        markup = self.keyboard(locale, payload.buttons)
        chat_id = message.target_id
        if isinstance(payload, Edit):
            edited = await self._call(
                lambda: self.bot.edit_message_text(
                    text=text,
                    chat_id=chat_id,
                    message_id=payload.message_id,
                    parse_mode="HTML",
                    reply_markup=markup,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            )
            if isinstance(edited, Unreachable) and "not modified" in edited.detail:
                return Delivered(payload.message_id)
            if isinstance(edited, RetryAfter | Unreachable | TransientFailure):
                return edited
            return Delivered(payload.message_id)
        if isinstance(payload, WelcomeApprove):
            return await self._welcome_then_approve(message, payload, text, markup)
        if isinstance(payload, Attachment):
            return await self._send_file(message, payload, text, markup)
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
        if message.action is Action.SEND_PIN:
            pinned = await self._call(lambda: self.bot.pin_chat_message(chat_id, sent.message_id))
            if not isinstance(pinned, bool):
                logger.info("could not pin in %s: %s", chat_id, pinned)
        return Delivered(sent.message_id)

    async def _send_file(
        self,
        message: OutboundMessage,
        payload: Attachment,
        caption: str,
        markup: InlineKeyboardMarkup | None,
    ) -> SendResult:
        """A document or a photo from the spool, uploaded as multipart (the same file again
        when a 429 brought the row back), with the text as its caption."""
        if message.file is None:
            return Unreachable(UnreachableReason.REJECTED, "no file to send")
        upload = FSInputFile(message.file, filename=payload.filename)
        chat_id = message.target_id
        if message.action is Action.SEND_PHOTO:
            sent = await self._call(
                lambda: self.bot.send_photo(
                    chat_id, upload, caption=caption, parse_mode="HTML", reply_markup=markup
                )
            )
        else:
            sent = await self._call(
                lambda: self.bot.send_document(
                    chat_id, upload, caption=caption, parse_mode="HTML", reply_markup=markup
                )
            )
        if isinstance(sent, RetryAfter | Unreachable | TransientFailure):
            return sent
        return Delivered(sent.message_id)

    def pause_for(self, refusals: Sequence[Refusal]) -> float | None:
        """Telegram's policy: several private chats refused in one drain mean the bot as a
        whole is over its limit, so every send pauses for the shortest wait instead of
        earning more 429s. Groups refuse on their own too (slow mode): that pauses only
        them."""
        private = [refusal.seconds for refusal in refusals if refusal.target_kind == "user"]
        return min(private) if len(private) > 1 else None

    async def _welcome_then_approve(
        self,
        message: OutboundMessage,
        request: WelcomeApprove,
        text: str,
        markup: InlineKeyboardMarkup | None,
    ) -> SendResult:
        """A join request: the welcome DM is possible only before the request is processed
        (the 5-minute window), so send it first, then approve. A ``retry_after`` on the
        welcome is waited out (the row comes back) while the window still allows it;
        otherwise the approval happens without the welcome, never held back by it. A
        welcome already delivered is not sent again when only the approval is retried."""
        window_ends = request.window_ends
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
            Destination("telegram", request.chat_id, "channel", "direct"), request.user_id
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

    def keyboard(self, locale: str | None, rows: Buttons) -> InlineKeyboardMarkup | None:
        """Telegram's inline keyboard for rows of plain button specs."""
        if not rows:
            return None
        return InlineKeyboardMarkup(
            inline_keyboard=[[self._button(locale, spec) for spec in row] for row in rows]
        )

    def _button(self, locale: str | None, spec: Button) -> InlineKeyboardButton:
        label = self.renderer.label(locale, spec.label, **spec.args)
        if spec.url is not None:
            return InlineKeyboardButton(text=label, url=spec.url)
        if spec.copy is not None:
            return InlineKeyboardButton(text=label, copy_text=CopyTextButton(text=spec.copy[:256]))
        return InlineKeyboardButton(text=label, callback_data=spec.data)


def post_rights(member: ChatMemberUnion, chat_type: str) -> PostRights:
    """(may post, may pin) for the bot as ``member`` of a chat of ``chat_type``."""
    status = member.status
    if chat_type == "channel":
        if status != "administrator":
            return PostRights(False, False)
        return PostRights(
            bool(getattr(member, "can_post_messages", False)),
            bool(getattr(member, "can_edit_messages", False)),
        )
    if status == "administrator":
        return PostRights(True, bool(getattr(member, "can_pin_messages", False)))
    if status == "member":
        return PostRights(True, False)
    if status == "restricted":
        return PostRights(bool(getattr(member, "can_send_messages", False)), False)
    return PostRights(False, False)


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
