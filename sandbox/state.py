"""The world's state and the machinery every change goes through.

:class:`WorldState` owns the registries (accounts, chats, links, callback queries), the
clocks, the update queues and the API call log, and knows how a membership change or a new
message turns into updates for each bot. :class:`sandbox.world.World` adds the scripting
API on top.
"""

from __future__ import annotations

import asyncio
import logging
import random
import string
from collections.abc import Callable
from typing import Any

from sandbox.clock import Clock, SystemClock
from sandbox.errors import ScriptError
from sandbox.files import FileLimits, extension_of
from sandbox.model import (
    GROUP_ANONYMOUS_BOT_ID,
    SERVICE_NOTIFICATIONS_ID,
    ApiCall,
    CallbackQueryRecord,
    Fault,
    PendingUpdate,
    PrivateDialog,
    SimBot,
    SimChat,
    SimFile,
    SimInviteLink,
    SimMember,
    SimMessage,
    SimUser,
)
from sandbox.objects import (
    Json,
    chat_json,
    link_json,
    member_json,
    message_json,
    user_json,
)
from sandbox.ratelimit import RateLimiter, RateLimits

logger = logging.getLogger(__name__)

UserRef = SimUser | int
BotRef = SimBot | str | int
ChatRef = SimChat | int | str

UPDATE_RETENTION_SECONDS = 24 * 3600
JOIN_REQUEST_WINDOW_SECONDS = 5 * 60
FILE_PATH_SECONDS = 3600  # getFile: "the link will be valid for at least 1 hour"
_FILE_ID_PREFIX = {"document": "BQACAgIAAxkBAAI", "photo": "AgACAgIAAxkBAAI"}
_HASH_ALPHABET = string.ascii_letters + string.digits + "_-"


class WorldState:
    """Registries, clocks, update queues and the rules that produce updates."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        seed: int | None = None,
        rate_limits: RateLimits | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.monotonic: Callable[[], float] = monotonic or self.clock.monotonic
        self.rng = random.Random(seed)
        self.users: dict[int, SimUser] = {}
        self.bots_by_token: dict[str, SimBot] = {}
        self.chats: dict[int, SimChat] = {}
        self.callback_queries: dict[str, CallbackQueryRecord] = {}
        self.calls: list[ApiCall] = []
        self.faults: list[Fault] = []
        self.limiter = RateLimiter(rate_limits or RateLimits(), self.monotonic)
        self.allow_http_webhooks_on_loopback = True
        self.sent_log: list[SimMessage] = []
        self.file_limits = FileLimits()
        self.files: dict[str, SimFile] = {}
        self._file_ids: dict[str, tuple[int, str]] = {}
        self._bot_file_ids: dict[tuple[int, str], str] = {}
        self._file_paths: dict[tuple[int, str], str] = {}
        self._path_files: dict[tuple[int, str], tuple[str, float]] = {}
        self._next_user_id = 5_000_000_001
        self._next_bot_id = 7_000_000_001
        self._next_group_id = 4_000_000_001
        self._next_channel_id = 2_000_000_001
        self.poll_generation: dict[int, int] = {}
        self.polls_closed = False
        self._poll_waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._change_waiters: list[asyncio.Future[None]] = []
        self._add_system_accounts()

    # --- time -------------------------------------------------------------------------------

    def now(self) -> int:
        """Wall-clock time as whole Unix seconds (what dates in updates carry)."""
        return int(self.clock.time())

    @property
    def rate_limits(self) -> RateLimits:
        """The active flood limits (replace with :meth:`set_rate_limits`)."""
        return self.limiter.limits

    def set_rate_limits(self, limits: RateLimits | None = None, **changes: Any) -> RateLimits:
        """Replace the limits, or change some fields (``enabled=False`` turns them off)."""
        base = limits or self.limiter.limits
        new = RateLimits(**{**base.__dict__, **changes})
        self.limiter.limits = new
        return new

    # --- registries -------------------------------------------------------------------------

    def _add_system_accounts(self) -> None:
        self.users[GROUP_ANONYMOUS_BOT_ID] = SimUser(
            id=GROUP_ANONYMOUS_BOT_ID,
            first_name="Group",
            username="GroupAnonymousBot",
            is_bot=True,
            language_code=None,
        )
        self.users[SERVICE_NOTIFICATIONS_ID] = SimUser(
            id=SERVICE_NOTIFICATIONS_ID, first_name="Telegram", language_code=None
        )

    def _allocate_user_id(self, is_bot: bool) -> int:
        if is_bot:
            value, self._next_bot_id = self._next_bot_id, self._next_bot_id + 1
        else:
            value, self._next_user_id = self._next_user_id, self._next_user_id + 1
        return value

    def _allocate_chat_id(self, chat_type: str) -> int:
        if chat_type == "group":
            value, self._next_group_id = self._next_group_id, self._next_group_id + 1
            return -value
        value, self._next_channel_id = self._next_channel_id, self._next_channel_id + 1
        return -(1_000_000_000_000 + value)

    def random_hash(self, length: int = 16) -> str:
        """Random url-safe characters from the world's seeded generator."""
        return "".join(self.rng.choice(_HASH_ALPHABET) for _ in range(length))

    def new_invite_url(self) -> str:
        """A fresh, unused ``https://t.me/+<hash>`` link."""
        while True:
            url = "https://t.me/+" + self.random_hash(16)
            if self.find_link(url) is None:
                return url

    def user(self, ref: UserRef) -> SimUser:
        """Resolve a user (or bot) record or id."""
        if isinstance(ref, SimUser):
            return ref
        try:
            return self.users[int(ref)]
        except (KeyError, ValueError):
            raise ScriptError(f"unknown user {ref!r}") from None

    def bot(self, ref: BotRef) -> SimBot:
        """Resolve a bot record, token, id or ``@username``."""
        if isinstance(ref, SimBot):
            return ref
        if isinstance(ref, str):
            if ref in self.bots_by_token:
                return self.bots_by_token[ref]
            name = ref.lstrip("@").lower()
            for account in self.users.values():
                if isinstance(account, SimBot) and (account.username or "").lower() == name:
                    return account
            raise ScriptError(f"unknown bot {ref!r}")
        found = self.users.get(ref)
        if not isinstance(found, SimBot):
            raise ScriptError(f"unknown bot {ref!r}")
        return found

    def chat(self, ref: ChatRef) -> SimChat:
        """Resolve a chat record, id or ``@username``."""
        if isinstance(ref, SimChat):
            return ref
        if isinstance(ref, str) and ref.startswith("@"):
            found = self.chat_by_username(ref[1:])
            if found is None:
                raise ScriptError(f"unknown chat {ref!r}")
            return found
        try:
            return self.chats[int(ref)]
        except (KeyError, ValueError):
            raise ScriptError(f"unknown chat {ref!r}") from None

    def account(self, ref: UserRef | BotRef) -> SimUser:
        """Resolve a person or a bot (a ``str`` is a bot token or ``@username``)."""
        if isinstance(ref, str):
            return self.bot(ref)
        return self.user(ref)

    def chat_or_user_id(self, ref: ChatRef | UserRef) -> int:
        """The chat id of a chat, or of the private chat with a user."""
        if isinstance(ref, SimChat | SimUser):
            return ref.id
        if isinstance(ref, str):
            return self.chat(ref).id
        return int(ref)

    def chat_by_username(self, username: str) -> SimChat | None:
        """The chat with this public username (case-insensitive), if any."""
        name = username.lower()
        for chat in self.chats.values():
            if chat.username and chat.username.lower() == name and chat.migrated_to is None:
                return chat
        return None

    def account_by_username(self, username: str) -> SimUser | None:
        """The user or bot with this username (case-insensitive), if any."""
        name = username.lower()
        for account in self.users.values():
            if account.username and account.username.lower() == name:
                return account
        return None

    def all_bots(self) -> list[SimBot]:
        """Every bot account."""
        return [u for u in self.users.values() if isinstance(u, SimBot)]

    def bots_in(self, chat: SimChat) -> list[SimBot]:
        """Bots that are currently members of ``chat``."""
        return [
            account
            for uid in chat.member_ids()
            if isinstance(account := self.users.get(uid), SimBot)
        ]

    def dialog(self, bot: SimBot, user_id: int) -> PrivateDialog:
        """The private chat between ``bot`` and a user (created on first use)."""
        found = bot.dialogs.get(user_id)
        if found is None:
            found = PrivateDialog(user_id=user_id, bot_id=bot.id)
            bot.dialogs[user_id] = found
        return found

    # --- messages and links -----------------------------------------------------------------

    def message_store(self, message: SimMessage) -> dict[int, SimMessage]:
        """The message dict that holds ``message`` (a chat's or a dialog's)."""
        if message.dialog_bot_id is not None:
            bot = self.bot(message.dialog_bot_id)
            return self.dialog(bot, message.chat_id).messages
        return self.chats[message.chat_id].messages

    def message_by_id(self, context: SimMessage, message_id: int) -> SimMessage | None:
        """Another message of the same chat or dialog."""
        return self.message_store(context).get(message_id)

    def find_message(self, message: SimMessage) -> SimMessage | None:
        """The message ``message`` replies to."""
        if message.reply_to_message_id is None:
            return None
        return self.message_by_id(message, message.reply_to_message_id)

    def find_link(self, url: str) -> SimInviteLink | None:
        """An invite link by URL or hash (``t.me/+h``, ``t.me/joinchat/h``, ``tg://join``)."""
        key = link_hash(url)
        if not key:
            return None
        for chat in self.chats.values():
            for link in chat.invite_links.values():
                if link.hash == key:
                    return link
        return None

    def primary_link(self, chat: SimChat, creator_id: int) -> SimInviteLink | None:
        """The creator's current primary link of ``chat``."""
        for link in chat.invite_links.values():
            if link.is_primary and not link.is_revoked and link.creator_id == creator_id:
                return link
        return None

    def link_is_full(self, chat: SimChat, link: SimInviteLink) -> bool:
        """Whether the link's member_limit is reached (counting current members only)."""
        if not link.member_limit:
            return False
        current = sum(1 for uid in link.joined if chat.member(uid).in_chat)
        return current >= link.member_limit

    def new_message(self, chat: SimChat, **fields: Any) -> SimMessage:
        """Store a new message in a group, supergroup or channel."""
        message = SimMessage(
            message_id=chat.next_message_id, chat_id=chat.id, date=self.now(), **fields
        )
        chat.next_message_id += 1
        chat.messages[message.message_id] = message
        return message

    def new_dialog_message(self, bot: SimBot, user_id: int, **fields: Any) -> SimMessage:
        """Store a new message in the private chat between ``bot`` and a user."""
        dialog = self.dialog(bot, user_id)
        message = SimMessage(
            message_id=dialog.next_message_id,
            chat_id=user_id,
            date=self.now(),
            dialog_bot_id=bot.id,
            **fields,
        )
        dialog.next_message_id += 1
        dialog.messages[message.message_id] = message
        return message

    # --- files ------------------------------------------------------------------------------

    def store_file(
        self,
        kind: str,
        content: bytes,
        *,
        uploaded_by: int,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int = 0,
        height: int = 0,
    ) -> SimFile:
        """Keep a new document or photo; it gets a ``file_unique_id`` shared by all bots."""
        while True:
            unique_id = "AgAD" + self.random_hash(12)
            if unique_id not in self.files:
                break
        file = SimFile(
            unique_id=unique_id,
            kind=kind,
            content=bytes(content),
            created=self.now(),
            uploaded_by=uploaded_by,
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
        )
        self.files[unique_id] = file
        return file

    def file_id_for(self, bot_id: int, file: SimFile) -> str:
        """The ``file_id`` of ``file`` for one bot: file ids are per bot, as on Telegram."""
        key = (bot_id, file.unique_id)
        found = self._bot_file_ids.get(key)
        if found is None:
            found = _FILE_ID_PREFIX.get(file.kind, "BQACAgIAAxkBAAI") + self.random_hash(56)
            self._bot_file_ids[key] = found
            self._file_ids[found] = key
        return found

    def file_of(self, bot_id: int, file_id: str) -> SimFile | None:
        """The file a bot's ``file_id`` names (None for another bot's id or junk)."""
        key = self._file_ids.get(file_id.strip())
        if key is None or key[0] != bot_id:
            return None
        return self.files.get(key[1])

    def knows_file_id(self, file_id: str) -> bool:
        """Whether any bot was given this ``file_id``."""
        return file_id.strip() in self._file_ids

    def file_by_id(self, file_id: str) -> SimFile:
        """The file any bot's ``file_id`` names (for scripts); ScriptError if unknown."""
        key = self._file_ids.get(file_id)
        if key is None:
            raise ScriptError(f"unknown file_id {file_id!r}")
        return self.files[key[1]]

    def file_path_for(self, bot_id: int, file: SimFile) -> str:
        """getFile: a download path for one bot, valid for an hour from now."""
        key = (bot_id, file.unique_id)
        path = self._file_paths.get(key)
        if path is None:
            folder = "photos" if file.kind == "photo" else "documents"
            default = "jpg" if file.kind == "photo" else "bin"
            number = len(self._file_paths) + 1
            path = f"{folder}/file_{number}.{extension_of(file.file_name, default)}"
            self._file_paths[key] = path
        self._path_files[(bot_id, path)] = (file.unique_id, self.clock.time())
        return path

    def file_at_path(self, bot_id: int, path: str) -> SimFile | None:
        """The file a download URL names, while its path is valid for that bot."""
        found = self._path_files.get((bot_id, path))
        if found is None:
            return None
        unique_id, issued = found
        if self.clock.time() >= issued + FILE_PATH_SECONDS:
            return None
        return self.files.get(unique_id)

    # --- updates ----------------------------------------------------------------------------

    def emit(self, bot: SimBot, kind: str, payload: Json) -> PendingUpdate | None:
        """Queue an update for ``bot`` unless its allowed_updates exclude the kind."""
        if not bot.wants(kind):
            logger.debug("bot %s does not receive %s updates; dropped", bot.username, kind)
            return None
        update = PendingUpdate(bot.next_update_id, kind, payload, self.clock.time())
        bot.next_update_id += 1
        bot.updates.append(update)
        logger.debug("update %s for @%s: %s", update.update_id, bot.username, kind)
        self.wake_pollers(bot.id)
        self.notify_change()
        return update

    def drop_expired_updates(self, bot: SimBot) -> None:
        """Forget updates older than 24 hours, as Telegram does."""
        limit = self.clock.time() - UPDATE_RETENTION_SECONDS
        bot.updates = [u for u in bot.updates if u.created >= limit]

    def wake_pollers(self, bot_id: int) -> None:
        """Wake long-polling getUpdates calls of a bot."""
        for future in self._poll_waiters.pop(bot_id, []):
            if not future.done():
                future.set_result(None)

    def close_polls(self) -> None:
        """Make every long poll return at once (the server is stopping)."""
        self.polls_closed = True
        for bot_id in list(self._poll_waiters):
            self.wake_pollers(bot_id)

    def is_polling(self, bot: BotRef) -> bool:
        """Whether a long-polling getUpdates of the bot is waiting right now."""
        waiters = self._poll_waiters.get(self.bot(bot).id, [])
        return any(not future.done() for future in waiters)

    def add_poll_waiter(self, bot_id: int, future: asyncio.Future[None]) -> None:
        """Register a long poll to wake when an update arrives."""
        self._poll_waiters.setdefault(bot_id, []).append(future)
        self.notify_change()  # scripts may wait for the bot to be polling (is_polling)

    def notify_change(self) -> None:
        """Wake :meth:`sandbox.world.World.wait_for` waiters."""
        waiters, self._change_waiters = self._change_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    # --- membership -------------------------------------------------------------------------

    def actor_json(self, chat: SimChat, actor: SimUser) -> Json:
        """``from`` of an action: GroupAnonymousBot for anonymous admins of groups."""
        member = chat.members.get(actor.id)
        if (
            member is not None
            and member.is_anonymous
            and member.is_admin
            and chat.type in ("group", "supergroup")
        ):
            return user_json(self.users[GROUP_ANONYMOUS_BOT_ID])
        return user_json(actor)

    def set_member(
        self,
        chat: SimChat,
        new: SimMember,
        *,
        actor: SimUser,
        invite_link: SimInviteLink | None = None,
        via_join_request: bool = False,
        service_from: SimUser | None = None,
    ) -> SimMember:
        """Replace an account's membership and emit what Telegram would.

        Emits ``my_chat_member`` to the account if it is a bot, ``chat_member`` to the
        administrator bots of the chat, and (in groups) a ``new_chat_members`` or
        ``left_chat_member`` service message from ``service_from`` (default ``actor``).
        """
        old = chat.member(new.user_id)
        if not new.joined_date:
            new.joined_date = old.joined_date if old.in_chat else self.now()
        chat.members[new.user_id] = new
        if old.in_chat and not new.in_chat:
            for link in chat.invite_links.values():
                link.joined.discard(new.user_id)
        if new.in_chat and not old.in_chat and invite_link is not None:
            invite_link.joined.add(new.user_id)
            new.joined_via_link = invite_link.url
        if new.in_chat or new.status == "kicked":
            request = chat.join_requests.pop(new.user_id, None)
            if request is not None and request.invite_link:
                requested = chat.invite_links.get(request.invite_link)
                if requested is not None:
                    requested.pending.discard(new.user_id)
        self._emit_member_change(chat, old, new, actor, invite_link, via_join_request)
        if chat.type in ("group", "supergroup"):
            sender = service_from or actor
            if new.in_chat and not old.in_chat:
                self.post_service(chat, sender, new_chat_members=[new.user_id])
            elif old.in_chat and not new.in_chat:
                self.post_service(chat, sender, left_chat_member=new.user_id)
        self.notify_change()
        return new

    def _emit_member_change(
        self,
        chat: SimChat,
        old: SimMember,
        new: SimMember,
        actor: SimUser,
        invite_link: SimInviteLink | None,
        via_join_request: bool,
    ) -> None:
        subject = self.users[new.user_id]
        receivers: list[SimBot] = []
        for uid, member in chat.members.items():
            account = self.users.get(uid)
            if not isinstance(account, SimBot):
                continue
            if account.id == subject.id or member.status == "administrator":
                receivers.append(account)
        for bot in receivers:
            payload: Json = {
                "chat": chat_json(chat),
                "from": self.actor_json(chat, actor),
                "date": self.now(),
                "old_chat_member": member_json(self, chat.type, old, bot.id),
                "new_chat_member": member_json(self, chat.type, new, bot.id),
            }
            if invite_link is not None and not chat.is_public:
                payload["invite_link"] = link_json(self, invite_link, bot.id)
            if via_join_request:
                payload["via_join_request"] = True
            kind = "my_chat_member" if bot.id == subject.id else "chat_member"
            self.emit(bot, kind, payload)

    def post_service(self, chat: SimChat, sender: SimUser, **service: Any) -> SimMessage:
        """Post a service message (join, leave, pin, migration) and deliver it to bots."""
        message = self.new_message(chat, sender_id=sender.id, service=service)
        if chat.type != "channel":
            self.deliver_chat_message(chat, message)
        return message

    def deliver_chat_message(self, chat: SimChat, message: SimMessage) -> None:
        """Send a new group message or channel post to the bots that see it."""
        sender = self.users.get(message.sender_id) if message.sender_id is not None else None
        kind = "channel_post" if chat.type == "channel" else "message"
        for bot in self.bots_in(chat):
            if sender is not None and sender.id == bot.id:
                continue
            if (
                sender is not None
                and sender.is_bot
                and sender.id != GROUP_ANONYMOUS_BOT_ID
                and not message.service
            ):
                continue  # bots never see messages of other bots
            if kind == "message" and not self.bot_sees(bot, chat, message):
                continue
            self.emit(bot, kind, message_json(self, message, viewer_id=bot.id))

    def bot_sees(self, bot: SimBot, chat: SimChat, message: SimMessage) -> bool:
        """Privacy mode: what a bot in a group receives."""
        if bot.can_read_all_group_messages or chat.member(bot.id).is_admin:
            return True
        if message.service:
            return True
        if message.reply_to_message_id is not None:
            replied = chat.messages.get(message.reply_to_message_id)
            if replied is not None and replied.sender_id == bot.id:
                return True
        text = message.text if message.text is not None else message.caption or ""
        me = (bot.username or "").lower()
        for entity in message.entities or message.caption_entities:
            if entity["type"] != "bot_command":
                continue
            command = text_of(text, entity)
            _, _, target = command.partition("@")
            if not target or target.lower() == me:
                return True
        return False

    # --- private-chat reachability ----------------------------------------------------------

    def knows_user(self, bot: SimBot, user_id: int) -> bool:
        """Whether the bot has seen this user (a dialog, a shared chat, a join request)."""
        dialog = bot.dialogs.get(user_id)
        if dialog is not None and (dialog.started or dialog.blocked or dialog.messages):
            return True
        for chat in self.chats.values():
            if bot.id in chat.members and (
                user_id in chat.members or user_id in chat.join_requests
            ):
                return True
        return False

    def contact_window_open(self, bot: SimBot, user_id: int) -> bool:
        """Whether a pending join request lets ``bot`` message a user who never started it."""
        now = self.clock.time()
        for chat in self.chats.values():
            request = chat.join_requests.get(user_id)
            if request is None or bot.id not in request.notified_bots:
                continue
            if now < request.date + JOIN_REQUEST_WINDOW_SECONDS:
                return True
        return False

    def log_call(self, call: ApiCall) -> None:
        """Append to the API call log."""
        self.calls.append(call)
        self.notify_change()


def text_of(text: str, entity: dict[str, Any]) -> str:
    """The text an entity covers (UTF-16 offsets)."""
    encoded = text.encode("utf-16-le")
    start = entity["offset"] * 2
    return encoded[start : start + entity["length"] * 2].decode("utf-16-le", errors="replace")


def link_hash(url: str) -> str:
    """The hash of an invite link in any of its forms, or ``""``."""
    value = url.strip()
    for prefix in ("https://", "http://"):
        if value.lower().startswith(prefix):
            value = value[len(prefix) :]
    lowered = value.lower()
    for host in ("t.me/", "telegram.me/", "telegram.dog/"):
        if lowered.startswith(host):
            rest = value[len(host) :]
            if rest.startswith("+"):
                return rest[1:].split("?")[0].strip("/")
            if rest.lower().startswith("joinchat/"):
                return rest[len("joinchat/") :].split("?")[0].strip("/")
            return ""
    if lowered.startswith("tg://join?invite="):
        return value[len("tg://join?invite=") :]
    return ""
