"""The records the simulated world is made of.

These are plain mutable dataclasses owned by :class:`sandbox.world.World`; scripts read them
(``message.text``, ``member.status``, ``link.url``) and pass them back to world methods.
Prefer the world's methods for changes: they emit the updates Telegram would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.html import Entity

GROUP_ANONYMOUS_BOT_ID = 1087968824
SERVICE_NOTIFICATIONS_ID = 777000

CHAT_TYPES = ("private", "group", "supergroup", "channel")

# Administrator rights, by the Bot API's names. The first block is always present in a
# ChatMemberAdministrator; the rest only in some chat types (see ``rights_for_chat_type``).
ALWAYS_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_send_welcome_messages",
)
CHANNEL_RIGHTS = ("can_post_messages", "can_edit_messages", "can_manage_direct_messages")
GROUP_RIGHTS = ("can_pin_messages", "can_manage_tags")
SUPERGROUP_RIGHTS = ("can_manage_topics",)
ALL_RIGHTS = ALWAYS_RIGHTS + CHANNEL_RIGHTS + GROUP_RIGHTS + SUPERGROUP_RIGHTS

PERMISSIONS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_react_to_messages",
    "can_edit_tag",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
)
DEFAULT_PERMISSIONS: dict[str, bool] = {
    name: name not in ("can_change_info", "can_pin_messages", "can_manage_topics")
    for name in PERMISSIONS
}

UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
)
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

MEMBER_STATUSES = ("creator", "administrator", "member", "restricted", "left", "kicked")


def rights_for_chat_type(chat_type: str) -> tuple[str, ...]:
    """The administrator rights a ChatMemberAdministrator carries in a chat of this type."""
    if chat_type == "channel":
        return ALWAYS_RIGHTS + CHANNEL_RIGHTS
    if chat_type == "supergroup":
        return ALWAYS_RIGHTS + GROUP_RIGHTS + SUPERGROUP_RIGHTS
    return ALWAYS_RIGHTS + GROUP_RIGHTS


def default_admin_rights(chat_type: str) -> dict[str, bool]:
    """What a client offers by default when promoting: everything but adding admins."""
    rights = dict.fromkeys(rights_for_chat_type(chat_type), True)
    rights["can_promote_members"] = False
    return rights


@dataclass(eq=False)
class SimUser:
    """A Telegram account (a person, or the user side of a bot)."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"
    is_premium: bool = False
    is_bot: bool = False
    deactivated: bool = False
    bio: str | None = None

    @property
    def full_name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name


@dataclass
class PendingUpdate:
    """An update waiting in a bot's queue."""

    update_id: int
    kind: str
    payload: dict[str, Any]
    created: float

    def to_json(self) -> dict[str, Any]:
        """The Update object."""
        return {"update_id": self.update_id, self.kind: self.payload}


@dataclass
class WebhookState:
    """What setWebhook stored."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(eq=False)
class PrivateDialog:
    """A private chat between one user and one bot."""

    user_id: int
    bot_id: int
    started: bool = False
    blocked: bool = False
    messages: dict[int, SimMessage] = field(default_factory=dict)
    next_message_id: int = 1
    pinned: list[int] = field(default_factory=list)


@dataclass(eq=False)
class SimBot(SimUser):
    """A bot account and its Bot API state (token, update queue, webhook, commands)."""

    token: str = ""
    can_join_groups: bool = True
    can_read_all_group_messages: bool = False
    updates: list[PendingUpdate] = field(default_factory=list)
    next_update_id: int = 1
    allowed_updates: list[str] | None = None
    webhook: WebhookState | None = None
    commands: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    dialogs: dict[int, PrivateDialog] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)

    def wants(self, kind: str) -> bool:
        """Whether an update of this kind passes the bot's allowed_updates."""
        if not self.allowed_updates:
            return kind not in NOT_BY_DEFAULT
        return kind in self.allowed_updates


@dataclass
class SimMember:
    """One account's standing in one chat (a snapshot: changes replace the record)."""

    user_id: int
    status: str
    rights: dict[str, bool] = field(default_factory=dict)
    is_anonymous: bool = False
    custom_title: str | None = None
    until_date: int = 0
    is_member: bool = True
    permissions: dict[str, bool] = field(default_factory=dict)
    promoted_by: int | None = None
    joined_via_link: str | None = None
    joined_date: int = 0

    @property
    def in_chat(self) -> bool:
        """Whether the account currently counts as a member of the chat."""
        if self.status in ("creator", "administrator", "member"):
            return True
        return self.status == "restricted" and self.is_member

    @property
    def is_admin(self) -> bool:
        """Creator or administrator."""
        return self.status in ("creator", "administrator")

    def can(self, right: str) -> bool:
        """Whether this member holds an administrator right (the creator holds all)."""
        if self.status == "creator":
            return True
        return self.status == "administrator" and bool(self.rights.get(right))


@dataclass(eq=False)
class SimInviteLink:
    """An invite link of a group, supergroup or channel."""

    url: str
    chat_id: int
    creator_id: int
    created: int
    name: str | None = None
    expire_date: int | None = None
    member_limit: int | None = None
    creates_join_request: bool = False
    is_primary: bool = False
    is_revoked: bool = False
    joined: set[int] = field(default_factory=set)
    pending: set[int] = field(default_factory=set)

    @property
    def hash(self) -> str:
        """The part after ``https://t.me/+``."""
        return self.url.rsplit("+", 1)[-1].rsplit("/", 1)[-1]

    @property
    def masked_url(self) -> str:
        """The link as other administrators see it: the hash cut in half, then ``...``."""
        prefix = self.url[: len(self.url) - len(self.hash)]
        return prefix + self.hash[: len(self.hash) // 2] + "..."


@dataclass(eq=False)
class SimFile:
    """A file stored on the sandbox's servers (a document or a photo).

    ``unique_id`` is the same for every bot (``file_unique_id``); each bot that sees the file
    gets its own ``file_id`` (see :meth:`sandbox.state.WorldState.file_id_for`).
    """

    unique_id: str
    kind: str
    content: bytes
    created: int
    uploaded_by: int
    file_name: str | None = None
    mime_type: str | None = None
    width: int = 0
    height: int = 0

    @property
    def size(self) -> int:
        """``file_size`` in bytes."""
        return len(self.content)


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart/form-data request, as the server read it."""

    filename: str
    content_type: str
    content: bytes

    def __repr__(self) -> str:
        return f"Upload({self.filename!r}, {self.content_type!r}, {len(self.content)} bytes)"


@dataclass(eq=False)
class SimMessage:
    """A message in a chat or in a private dialog between a user and a bot."""

    message_id: int
    chat_id: int
    date: int
    sender_id: int | None = None
    sender_chat_id: int | None = None
    dialog_bot_id: int | None = None
    text: str | None = None
    entities: list[Entity] = field(default_factory=list)
    raw_text: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    reply_to_message_id: int | None = None
    edit_date: int | None = None
    deleted: bool = False
    author_signature: str | None = None
    link_preview_options: dict[str, Any] | None = None
    disable_notification: bool = False
    service: dict[str, Any] = field(default_factory=dict)
    caption: str | None = None
    caption_entities: list[Entity] = field(default_factory=list)
    raw_caption: str | None = None
    document: SimFile | None = None
    photo: SimFile | None = None

    @property
    def file(self) -> SimFile | None:
        """The document or photo the message carries, if any."""
        return self.document or self.photo

    @property
    def is_private(self) -> bool:
        """Whether the message lives in a private dialog with a bot."""
        return self.dialog_bot_id is not None

    @property
    def inline_buttons(self) -> list[dict[str, Any]]:
        """All inline keyboard buttons, row by row, as the bot sent them."""
        if not self.reply_markup or "inline_keyboard" not in self.reply_markup:
            return []
        return [button for row in self.reply_markup["inline_keyboard"] for button in row]

    def button(self, *, text: str | None = None, data: str | None = None) -> dict[str, Any]:
        """The first inline button with this text or callback data (KeyError if none)."""
        for candidate in self.inline_buttons:
            if text is not None and candidate.get("text") != text:
                continue
            if data is not None and candidate.get("callback_data") != data:
                continue
            return candidate
        raise KeyError(f"no inline button with text={text!r} data={data!r}")


@dataclass(eq=False)
class JoinRequest:
    """A pending request to join a chat."""

    chat_id: int
    user_id: int
    date: int
    invite_link: str | None
    bio: str | None = None
    notified_bots: set[int] = field(default_factory=set)


@dataclass(eq=False)
class SimChat:
    """A group, supergroup or channel."""

    id: int
    type: str
    title: str
    username: str | None = None
    description: str | None = None
    join_by_request: bool = False
    members: dict[int, SimMember] = field(default_factory=dict)
    invite_links: dict[str, SimInviteLink] = field(default_factory=dict)
    messages: dict[int, SimMessage] = field(default_factory=dict)
    next_message_id: int = 1
    pinned: list[int] = field(default_factory=list)
    join_requests: dict[int, JoinRequest] = field(default_factory=dict)
    migrated_to: int | None = None
    migrated_from: int | None = None
    permissions: dict[str, bool] = field(default_factory=lambda: dict(DEFAULT_PERMISSIONS))

    @property
    def is_public(self) -> bool:
        """Whether the chat has a public @username."""
        return bool(self.username)

    def member(self, user_id: int) -> SimMember:
        """The account's record, or a ``left`` placeholder if it never was here."""
        return self.members.get(user_id) or SimMember(user_id=user_id, status="left")

    def member_ids(self) -> list[int]:
        """Accounts currently in the chat."""
        return [uid for uid, m in self.members.items() if m.in_chat]


@dataclass(eq=False)
class CallbackQueryRecord:
    """A button press and the bot's answer to it."""

    id: str
    user_id: int
    bot_id: int
    chat_id: int
    message_id: int
    data: str | None
    date: int
    answered: bool = False
    answer_text: str | None = None
    show_alert: bool = False
    answer_url: str | None = None


@dataclass
class ApiCall:
    """One Bot API call as the server saw it."""

    bot_id: int | None
    method: str
    params: dict[str, Any]
    time: float
    monotonic: float
    ok: bool = True
    error_code: int | None = None
    description: str | None = None
    result: Any = None


@dataclass
class Fault:
    """An injected failure for the next ``remaining`` matching calls.

    ``mode``: ``"before"`` answers with the error without doing anything; ``"after"`` performs
    the call, then answers with the error (the response was lost); ``"disconnect"`` performs
    nothing and drops the connection; ``"delay"`` waits ``delay`` seconds and then answers
    normally.
    """

    method: str
    remaining: int
    chat_id: int | None = None
    error_code: int = 500
    description: str = "Internal Server Error"
    retry_after: int | None = None
    migrate_to_chat_id: int | None = None
    mode: str = "before"
    delay: float = 0.0
