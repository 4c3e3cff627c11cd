"""The scripting API: build a world, make simulated people act, read what bots did.

Everything here is synchronous and runs on the event loop thread (the same loop as the
:class:`sandbox.server.SandboxServer`); only the ``wait_*`` helpers are coroutines. Actions
produce the updates Telegram would produce, queued for each bot according to its rights and
``allowed_updates``. Impossible actions raise :class:`sandbox.errors.ScriptError`.

Typical use::

    world = World(clock=FakeClock())
    alice = world.add_user("Alice", username="alice")
    bot = world.add_bot("referral_bot")
    chat = world.add_chat("supergroup", "Readers", owner=alice)
    world.add_bot_to_chat(chat, bot, by=alice, admin=True)
    world.send_text(alice, bot, "/start")
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from sandbox.errors import LinkError, ScriptError
from sandbox.files import MAX_CAPTION_LENGTH, clean_file_name, guess_mime_type, image_size
from sandbox.html import process_text
from sandbox.model import (
    ALL_RIGHTS,
    GROUP_ANONYMOUS_BOT_ID,
    PERMISSIONS,
    CallbackQueryRecord,
    JoinRequest,
    PrivateDialog,
    SimBot,
    SimChat,
    SimInviteLink,
    SimMember,
    SimMessage,
    SimUser,
    default_admin_rights,
    rights_for_chat_type,
)
from sandbox.objects import (
    Json,
    bot_private_member_json,
    chat_json,
    link_json,
    message_json,
    private_chat_json,
    user_json,
)
from sandbox.observe import Observer
from sandbox.state import BotRef, ChatRef, UserRef

logger = logging.getLogger(__name__)

T = TypeVar("T")

_USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
_START_PARAM_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class LinkOutcome:
    """What happened when a simulated user opened a link.

    ``kind`` is one of ``"joined"``, ``"requested"`` (a join request was sent),
    ``"already_member"``, ``"already_requested"``, ``"started"`` (the user sent ``/start``
    to a bot) or ``"opened"`` (a chat with a bot the user had already started).
    """

    kind: str
    chat: SimChat | None = None
    bot: SimBot | None = None
    message: SimMessage | None = None
    invite_link: SimInviteLink | None = None


@dataclass
class ButtonPress:
    """What happened when a simulated user pressed an inline button.

    ``kind`` is ``"callback"`` (``callback_query`` holds the query and, once the bot
    answered, its answer), ``"url"`` (``link`` holds the outcome for t.me links) or
    ``"copy_text"`` (``copied_text``).
    """

    kind: str
    callback_query: CallbackQueryRecord | None = None
    url: str | None = None
    link: LinkOutcome | None = None
    copied_text: str | None = None


class World(Observer):
    """An offline Telegram: accounts, chats, links, messages and per-bot update queues.

    ``clock`` (default: the system clocks) supplies wall-clock dates and the monotonic time
    of the rate limiter; pass a :class:`sandbox.clock.FakeClock` for deterministic tests.
    ``monotonic`` gives the rate limiter its own time source instead (e.g. ``time.monotonic``
    in a demo whose fake clock only jumps). ``seed`` makes generated tokens, link hashes and
    query ids reproducible.
    """

    # --- building the world -----------------------------------------------------------------

    def add_user(
        self,
        first_name: str,
        username: str | None = None,
        *,
        last_name: str | None = None,
        language_code: str | None = "en",
        is_premium: bool = False,
        bio: str | None = None,
        user_id: int | None = None,
    ) -> SimUser:
        """Create a person's account."""
        self._check_username_free(username)
        if user_id is not None and (user_id <= 0 or user_id in self.users):
            raise ScriptError(f"account id {user_id} is invalid or taken")
        user = SimUser(
            id=user_id or self._allocate_user_id(False),
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
            is_premium=is_premium,
            bio=bio,
        )
        self.users[user.id] = user
        return user

    def add_bot(
        self,
        username: str,
        first_name: str | None = None,
        *,
        token: str | None = None,
        privacy_mode: bool = True,
        can_join_groups: bool = True,
        bot_id: int | None = None,
    ) -> SimBot:
        """Register a bot; its ``.token`` (``"{id}:{secret}"``) authenticates API calls.

        ``privacy_mode=True`` (Telegram's default) limits what it sees in groups where it is
        not an administrator: commands, replies to it and service messages.
        """
        if not username.lower().endswith("bot"):
            raise ScriptError("a bot's username must end in 'bot'")
        self._check_username_free(username)
        if token is not None:
            prefix = token.split(":", 1)[0]
            if not prefix.isdigit() or ":" not in token:
                raise ScriptError("a token looks like '<bot_id>:<secret>'")
            bot_id = int(prefix)
        new_id = bot_id or self._allocate_user_id(True)
        if new_id in self.users:
            raise ScriptError(f"account id {new_id} is taken")
        bot = SimBot(
            id=new_id,
            first_name=first_name or username,
            username=username,
            is_bot=True,
            language_code=None,
            token=token or f"{new_id}:AA{self.random_hash(33)}",
            can_read_all_group_messages=not privacy_mode,
            can_join_groups=can_join_groups,
            next_update_id=100_000_000 + self.rng.randrange(1_000_000),
        )
        self.users[bot.id] = bot
        self.bots_by_token[bot.token] = bot
        return bot

    def add_chat(
        self,
        type: str,
        title: str,
        username: str | None = None,
        *,
        owner: UserRef | None = None,
        description: str | None = None,
        join_by_request: bool = False,
        owner_is_anonymous: bool = False,
    ) -> SimChat:
        """Create a group, supergroup or channel owned by ``owner`` (created if omitted).

        ``username`` makes it public. ``join_by_request`` makes people who join by username
        send a join request instead.
        """
        if type not in ("group", "supergroup", "channel"):
            raise ScriptError("chat type must be group, supergroup or channel")
        if username is not None and type == "group":
            raise ScriptError("basic groups cannot be public; use a supergroup")
        self._check_username_free(username)
        creator = self.user(owner) if owner is not None else self.add_user("Owner")
        chat = SimChat(
            id=self._allocate_chat_id(type),
            type=type,
            title=title,
            username=username,
            description=description,
            join_by_request=join_by_request,
        )
        self.chats[chat.id] = chat
        chat.members[creator.id] = SimMember(
            user_id=creator.id,
            status="creator",
            is_anonymous=owner_is_anonymous,
            joined_date=self.now(),
        )
        return chat

    def set_chat_username(self, chat: ChatRef, username: str | None) -> SimChat:
        """Make a supergroup or channel public (``username``) or private (``None``)."""
        target = self.chat(chat)
        if target.type == "group" and username:
            raise ScriptError("basic groups cannot be public")
        if username and (target.username or "").lower() != username.lower():
            self._check_username_free(username)
        target.username = username
        return target

    def set_join_by_request(self, chat: ChatRef, enabled: bool) -> SimChat:
        """Require admin approval for people joining a public chat by username."""
        target = self.chat(chat)
        target.join_by_request = enabled
        return target

    def set_chat_permissions(self, chat: ChatRef, **permissions: bool) -> SimChat:
        """Change the default permissions of members (e.g. ``can_send_messages=False``)."""
        target = self.chat(chat)
        unknown = set(permissions) - set(PERMISSIONS)
        if unknown:
            raise ScriptError(f"unknown permissions: {sorted(unknown)}")
        target.permissions.update({k: bool(v) for k, v in permissions.items()})
        return target

    def add_member(self, chat: ChatRef, user: UserRef, *, by: UserRef | None = None) -> SimMember:
        """An administrator (default: the owner) adds a person directly, without a link."""
        target = self.chat(chat)
        person = self.user(user)
        actor = self.user(by) if by is not None else self._owner(target)
        self._require_admin(target, actor, "can_invite_users")
        current = target.member(person.id)
        if current.in_chat:
            raise ScriptError(f"{person.full_name} is already a member")
        if person.is_bot:
            raise ScriptError("use add_bot_to_chat for bots")
        new = SimMember(user_id=person.id, status="member")
        if current.status == "restricted":
            new = replace(current, is_member=True, joined_date=0)
        return self.set_member(target, new, actor=actor)

    def add_bot_to_chat(
        self,
        chat: ChatRef,
        bot: BotRef,
        *,
        by: UserRef | None = None,
        admin: bool = True,
        rights: dict[str, bool] | None = None,
        is_anonymous: bool = False,
    ) -> SimMember:
        """Add a bot to a chat as an administrator (default) or a plain member.

        ``rights`` override the default administrator rights (everything except
        ``can_promote_members``). Channels only accept bots as administrators. The bot gets
        ``my_chat_member`` (and, in groups, a ``new_chat_members`` message).
        """
        target = self.chat(chat)
        account = self.bot(bot)
        actor = self.user(by) if by is not None else self._owner(target)
        if target.member(account.id).in_chat:
            raise ScriptError(f"@{account.username} is already in {target.title}")
        if target.type == "channel" and not admin:
            raise ScriptError("bots can only be added to channels as administrators")
        if target.type != "channel" and not account.can_join_groups:
            raise ScriptError(f"@{account.username} cannot be added to groups")
        if admin:
            self._require_admin(target, actor, "can_promote_members")
            new = SimMember(
                user_id=account.id,
                status="administrator",
                rights=self._merge_rights(target, default_admin_rights(target.type), rights),
                is_anonymous=is_anonymous,
                promoted_by=actor.id,
            )
        else:
            self._require_admin(target, actor, "can_invite_users")
            new = SimMember(user_id=account.id, status="member")
        return self.set_member(target, new, actor=actor)

    def set_admin_rights(
        self,
        chat: ChatRef,
        account: UserRef | BotRef,
        *,
        by: UserRef | None = None,
        rights: dict[str, bool] | None = None,
        is_anonymous: bool | None = None,
        custom_title: str | None = None,
    ) -> SimMember:
        """Promote a member to administrator, or change an administrator's rights.

        Rights not named in ``rights`` keep their value (for a new administrator: the
        default set). Emits ``my_chat_member`` for bots and ``chat_member`` to admin bots.
        """
        target = self.chat(chat)
        subject = self.account(account)
        actor = self.user(by) if by is not None else self._owner(target)
        self._require_admin(target, actor, "can_promote_members")
        current = target.member(subject.id)
        if not current.in_chat:
            raise ScriptError(f"{subject.full_name} is not a member of {target.title}")
        if current.status == "creator":
            raise ScriptError("the owner's rights cannot be changed")
        base = (
            dict(current.rights)
            if current.status == "administrator"
            else default_admin_rights(target.type)
        )
        new = SimMember(
            user_id=subject.id,
            status="administrator",
            rights=self._merge_rights(target, base, rights),
            is_anonymous=current.is_anonymous if is_anonymous is None else is_anonymous,
            custom_title=custom_title if custom_title is not None else current.custom_title,
            promoted_by=actor.id,
            joined_date=current.joined_date,
            joined_via_link=current.joined_via_link,
        )
        return self.set_member(target, new, actor=actor)

    promote = set_admin_rights

    def demote(
        self, chat: ChatRef, account: UserRef | BotRef, *, by: UserRef | None = None
    ) -> SimMember:
        """Turn an administrator back into a plain member."""
        target = self.chat(chat)
        subject = self.account(account)
        actor = self.user(by) if by is not None else self._owner(target)
        self._require_admin(target, actor, "can_promote_members")
        current = target.member(subject.id)
        if current.status != "administrator":
            raise ScriptError(f"{subject.full_name} is not an administrator")
        if target.type == "channel" and subject.is_bot:
            return self.remove_bot_from_chat(target, subject.id, by=actor)
        new = SimMember(
            user_id=subject.id,
            status="member",
            joined_date=current.joined_date,
            joined_via_link=current.joined_via_link,
        )
        return self.set_member(target, new, actor=actor)

    def remove_bot_from_chat(
        self, chat: ChatRef, bot: BotRef, *, by: UserRef | None = None
    ) -> SimMember:
        """An administrator removes a bot (it becomes ``kicked``; ``my_chat_member``)."""
        target = self.chat(chat)
        account = self.bot(bot)
        actor = self.user(by) if by is not None else self._owner(target)
        return self.kick(actor, account.id, target)

    def create_invite_link(
        self,
        admin: UserRef,
        chat: ChatRef,
        *,
        name: str | None = None,
        expire_date: int | None = None,
        member_limit: int | None = None,
        creates_join_request: bool = False,
    ) -> SimInviteLink:
        """A human administrator creates an invite link (bots see it masked)."""
        target = self.chat(chat)
        actor = self.user(admin)
        self._require_admin(target, actor, "can_invite_users")
        if creates_join_request and member_limit:
            raise ScriptError("member_limit cannot be combined with creates_join_request")
        link = SimInviteLink(
            url=self.new_invite_url(),
            chat_id=target.id,
            creator_id=actor.id,
            created=self.now(),
            name=name,
            expire_date=expire_date,
            member_limit=member_limit,
            creates_join_request=creates_join_request,
        )
        target.invite_links[link.url] = link
        return link

    # --- people acting ----------------------------------------------------------------------

    def send_text(
        self,
        user: UserRef,
        to: BotRef | ChatRef,
        text: str,
        *,
        reply_to: SimMessage | int | None = None,
    ) -> SimMessage:
        """A person types ``text`` in a private chat with a bot, a group or a channel.

        Commands become ``bot_command`` entities (``/cmd`` and ``/cmd@botname``). Writing to
        a bot starts it (the bot may then message the person). In groups, anonymous
        administrators write as the chat (``from`` is GroupAnonymousBot); in channels only
        administrators with ``can_post_messages`` post, as the channel.
        """
        person = self.user(user)
        self._require_active(person)
        target = self._bot_or_chat(to)
        plain, entities = process_text(text, None)
        if not plain:
            raise ScriptError("a message cannot be empty")
        fields: dict[str, Any] = {"text": plain, "entities": entities, "raw_text": text}
        return self._post_as(person, target, fields, reply_to=reply_to)

    def send_document(
        self,
        user: UserRef,
        to: BotRef | ChatRef,
        filename: str,
        content: bytes,
        *,
        mime_type: str | None = None,
        caption: str | None = None,
        reply_to: SimMessage | int | None = None,
    ) -> SimMessage:
        """A person sends a file (a ``document``) to a bot, a group or a channel.

        The bot gets a ``message`` with ``document`` (its own ``file_id``, the shared
        ``file_unique_id``, ``file_name``, ``mime_type`` — by default from the extension —
        and ``file_size``) and the caption; it can download the bytes with ``getFile``
        (up to 20 MB). Commands in the caption are ``bot_command`` caption entities.
        """
        person = self.user(user)
        self._require_active(person)
        target = self._bot_or_chat(to)
        if not content:
            raise ScriptError("a file cannot be empty")
        name = clean_file_name(filename)
        file = self.store_file(
            "document",
            content,
            uploaded_by=person.id,
            file_name=name,
            mime_type=mime_type or guess_mime_type(name),
        )
        fields = self._caption_fields(caption)
        fields["document"] = file
        return self._post_as(
            person, target, fields, reply_to=reply_to, permission="can_send_documents"
        )

    def send_photo(
        self,
        user: UserRef,
        to: BotRef | ChatRef,
        content: bytes,
        *,
        caption: str | None = None,
        reply_to: SimMessage | int | None = None,
    ) -> SimMessage:
        """A person sends a picture (a ``photo``: PNG or JPEG bytes) to a bot or a chat.

        The bot gets one ``PhotoSize`` with the image's width and height (Telegram would
        send several recompressed sizes; the sandbox keeps the original bytes).
        """
        person = self.user(user)
        self._require_active(person)
        target = self._bot_or_chat(to)
        size = image_size(content)
        if size is None:
            raise ScriptError("a photo must be a PNG or JPEG image")
        file = self.store_file(
            "photo", content, uploaded_by=person.id, width=size[0], height=size[1]
        )
        fields = self._caption_fields(caption)
        fields["photo"] = file
        return self._post_as(
            person, target, fields, reply_to=reply_to, permission="can_send_photos"
        )

    def _caption_fields(self, caption: str | None) -> dict[str, Any]:
        if caption is None:
            return {}
        plain, entities = process_text(caption, None)
        if len(plain) > MAX_CAPTION_LENGTH:
            raise ScriptError("a caption is at most 1024 characters")
        if not plain:
            return {}
        return {"caption": plain, "caption_entities": entities, "raw_caption": caption}

    def _post_as(
        self,
        person: SimUser,
        target: SimBot | SimChat,
        fields: dict[str, Any],
        *,
        reply_to: SimMessage | int | None,
        permission: str | None = None,
    ) -> SimMessage:
        reply_id = reply_to.message_id if isinstance(reply_to, SimMessage) else reply_to
        fields = {**fields, "reply_to_message_id": reply_id}
        if isinstance(target, SimBot):
            dialog = self.dialog(target, person.id)
            if dialog.blocked:
                raise ScriptError(f"{person.full_name} blocked @{target.username}; unblock first")
            dialog.started = True
            message = self.new_dialog_message(target, person.id, sender_id=person.id, **fields)
            self.emit(target, "message", message_json(self, message))
            return message
        chat = target
        self._require_not_migrated(chat)
        member = chat.member(person.id)
        if chat.type == "channel":
            if not member.can("can_post_messages"):
                raise ScriptError(f"{person.full_name} cannot post in {chat.title}")
            message = self.new_message(chat, sender_id=person.id, sender_chat_id=chat.id, **fields)
        else:
            if not member.in_chat:
                raise ScriptError(f"{person.full_name} is not a member of {chat.title}")
            if not self._may_send(chat, member, permission):
                raise ScriptError(f"{person.full_name} may not send that in {chat.title}")
            if member.is_admin and member.is_anonymous:
                message = self.new_message(
                    chat,
                    sender_id=GROUP_ANONYMOUS_BOT_ID,
                    sender_chat_id=chat.id,
                    author_signature=member.custom_title,
                    **fields,
                )
            else:
                message = self.new_message(chat, sender_id=person.id, **fields)
        self.deliver_chat_message(chat, message)
        self.notify_change()
        return message

    def edit_text(self, user: UserRef, message: SimMessage, text: str) -> SimMessage:
        """A person edits their message: ``edited_message`` (``edited_channel_post``)."""
        person = self.user(user)
        self._require_active(person)
        author = message.sender_id
        if message.sender_chat_id is not None and not message.is_private:
            chat = self.chats[message.chat_id]
            if not chat.member(person.id).is_admin:
                raise ScriptError(f"{person.full_name} cannot edit that message")
        elif author != person.id:
            raise ScriptError(f"{person.full_name} cannot edit someone else's message")
        plain, entities = process_text(text, None)
        if not plain:
            raise ScriptError("a message cannot be empty")
        message.text, message.entities, message.raw_text = plain, entities, text
        message.edit_date = self.now()
        if message.dialog_bot_id is not None:
            self.emit(
                self.bot(message.dialog_bot_id), "edited_message", message_json(self, message)
            )
        else:
            chat = self.chats[message.chat_id]
            kind = "edited_channel_post" if chat.type == "channel" else "edited_message"
            for bot in self.bots_in(chat):
                if kind == "edited_channel_post" or self.bot_sees(bot, chat, message):
                    self.emit(bot, kind, message_json(self, message, viewer_id=bot.id))
        self.notify_change()
        return message

    def start_bot(self, user: UserRef, bot: BotRef, payload: str | None = None) -> LinkOutcome:
        """The person presses START (``/start`` or ``/start <payload>``), unblocking if needed."""
        person = self.user(user)
        account = self.bot(bot)
        if payload is not None and not _START_PARAM_RE.match(payload):
            raise LinkError(
                "START_PARAM_INVALID", "start payload must be 1-64 characters of A-Za-z0-9_-"
            )
        dialog = self.dialog(account, person.id)
        if dialog.blocked:
            self.unblock_bot(person, account)
        text = f"/start {payload}" if payload else "/start"
        message = self.send_text(person, account, text)
        return LinkOutcome("started", bot=account, message=message)

    def open_link(self, user: UserRef, url: str) -> LinkOutcome:
        """A person opens a t.me link: a bot deep link, an invite link or a public chat.

        ``https://t.me/<bot>?start=<payload>`` sends ``/start <payload>`` to the bot;
        ``https://t.me/+<hash>`` joins (or requests to join) the chat; ``https://t.me/<chat>``
        joins a public chat by username. Unusable links raise :class:`LinkError`.
        """
        person = self.user(user)
        self._require_active(person)
        parts = _parse_tme(url)
        if parts is None:
            raise LinkError("LINK_INVALID", f"not a Telegram link: {url!r}")
        kind, value, payload = parts
        if kind == "invite":
            link = self.find_link(url)
            if link is None:
                raise LinkError("INVITE_HASH_INVALID", f"unknown invite link {url!r}")
            return self._use_invite_link(person, link)
        account = self.account_by_username(value)
        if isinstance(account, SimBot):
            if payload is not None or not self.dialog(account, person.id).started:
                return self.start_bot(person, account, payload or None)
            return LinkOutcome("opened", bot=account)
        chat = self.chat_by_username(value)
        if chat is None:
            raise LinkError("USERNAME_NOT_OCCUPIED", f"nobody has the username {value!r}")
        return self.join_public(person, chat)

    def join_public(self, user: UserRef, chat: ChatRef) -> LinkOutcome:
        """A person joins a public chat by its username (no ``invite_link`` in updates).

        If the chat requires approval, a join request without a link is sent instead.
        """
        person = self.user(user)
        target = self.chat(chat)
        self._require_active(person)
        if not target.is_public:
            raise LinkError("CHANNEL_PRIVATE", f"{target.title} is private; use an invite link")
        return self._join(person, target, link=None, wants_request=target.join_by_request)

    def leave(self, user: UserRef, chat: ChatRef) -> SimMember:
        """A person (or bot) leaves a chat (``left``; ``from`` is the person)."""
        person = self.account(user)
        target = self.chat(chat)
        current = target.member(person.id)
        if not current.in_chat:
            raise ScriptError(f"{person.full_name} is not a member of {target.title}")
        if current.status == "creator":
            raise ScriptError("the owner cannot leave in this sandbox")
        if current.status == "restricted":
            new = replace(current, is_member=False)
        else:
            new = SimMember(user_id=person.id, status="left")
        return self.set_member(target, new, actor=person)

    def kick(
        self, admin: UserRef, user: UserRef | BotRef, chat: ChatRef, *, until_date: int = 0
    ) -> SimMember:
        """An administrator bans someone (``kicked`` with ``until_date``; 0 = forever)."""
        target = self.chat(chat)
        actor = self.user(admin)
        subject = self.account(user)
        self._require_admin(target, actor, "can_restrict_members")
        current = target.member(subject.id)
        if current.status == "creator":
            raise ScriptError("the owner cannot be banned")
        new = SimMember(user_id=subject.id, status="kicked", until_date=until_date)
        return self.set_member(target, new, actor=actor)

    ban = kick

    def unban(self, admin: UserRef, user: UserRef, chat: ChatRef) -> SimMember:
        """An administrator lifts a ban (``kicked`` → ``left``)."""
        target = self.chat(chat)
        actor = self.user(admin)
        subject = self.account(user)
        self._require_admin(target, actor, "can_restrict_members")
        if target.member(subject.id).status != "kicked":
            raise ScriptError(f"{subject.full_name} is not banned")
        return self.set_member(target, SimMember(user_id=subject.id, status="left"), actor=actor)

    def restrict(
        self,
        admin: UserRef,
        user: UserRef,
        chat: ChatRef,
        *,
        permissions: dict[str, bool] | None = None,
        until_date: int = 0,
    ) -> SimMember:
        """An administrator restricts someone (``restricted``; unnamed permissions: False)."""
        target = self.chat(chat)
        actor = self.user(admin)
        subject = self.user(user)
        self._require_admin(target, actor, "can_restrict_members")
        current = target.member(subject.id)
        if current.is_admin:
            raise ScriptError("administrators cannot be restricted")
        unknown = set(permissions or {}) - set(PERMISSIONS)
        if unknown:
            raise ScriptError(f"unknown permissions: {sorted(unknown)}")
        perms = {name: bool((permissions or {}).get(name)) for name in PERMISSIONS}
        new = SimMember(
            user_id=subject.id,
            status="restricted",
            is_member=current.in_chat,
            permissions=perms,
            until_date=until_date,
            joined_date=current.joined_date,
            joined_via_link=current.joined_via_link,
        )
        return self.set_member(target, new, actor=actor)

    def approve(self, admin: UserRef, chat: ChatRef, user: UserRef) -> SimMember:
        """A human administrator approves a join request."""
        target = self.chat(chat)
        actor = self.user(admin)
        self._require_admin(target, actor, "can_invite_users")
        subject = self.user(user)
        if subject.id not in target.join_requests:
            raise ScriptError(f"{subject.full_name} has no pending request")
        return self.approve_request(target, subject.id, actor)

    def decline(self, admin: UserRef, chat: ChatRef, user: UserRef) -> None:
        """A human administrator declines a join request (no update is sent)."""
        target = self.chat(chat)
        actor = self.user(admin)
        self._require_admin(target, actor, "can_invite_users")
        subject = self.user(user)
        if subject.id not in target.join_requests:
            raise ScriptError(f"{subject.full_name} has no pending request")
        self.decline_request(target, subject.id)

    def block_bot(self, user: UserRef, bot: BotRef) -> None:
        """A person blocks a bot: the bot gets ``my_chat_member`` (member → kicked)."""
        person = self.user(user)
        account = self.bot(bot)
        dialog = self.dialog(account, person.id)
        if dialog.blocked:
            raise ScriptError("already blocked")
        dialog.blocked = True
        self._emit_private_status(account, person, dialog, blocked=True)

    def unblock_bot(self, user: UserRef, bot: BotRef) -> None:
        """A person unblocks a bot: ``my_chat_member`` (kicked → member)."""
        person = self.user(user)
        account = self.bot(bot)
        dialog = self.dialog(account, person.id)
        if not dialog.blocked:
            raise ScriptError("not blocked")
        dialog.blocked = False
        self._emit_private_status(account, person, dialog, blocked=False)

    def deactivate(self, user: UserRef) -> None:
        """A person deletes their account: bots get 403 ``user is deactivated``."""
        person = self.user(user)
        person.deactivated = True
        person.first_name = "Deleted Account"
        person.last_name = None
        person.username = None
        self.notify_change()

    def press_button(
        self,
        user: UserRef,
        message: SimMessage,
        data: str | None = None,
        *,
        text: str | None = None,
    ) -> ButtonPress:
        """A person presses an inline button (found by callback data or by its text).

        Callback buttons send a ``callback_query`` to the bot that sent the message; t.me URL
        buttons open the link (:meth:`open_link`); copy_text buttons copy their text.
        """
        person = self.user(user)
        self._require_active(person)
        if data is None and text is None:
            raise ScriptError("name the button by data= or text=")
        if message.deleted:
            raise ScriptError("the message was deleted")
        self._require_can_see(person, message)
        try:
            button = message.button(text=text, data=data)
        except KeyError as exc:
            raise ScriptError(str(exc)) from None
        if "callback_data" in button:
            return ButtonPress("callback", callback_query=self._callback(person, message, button))
        if "url" in button:
            url = button["url"]
            link = self.open_link(person, url) if _parse_tme(url) is not None else None
            return ButtonPress("url", url=url, link=link)
        if "copy_text" in button:
            return ButtonPress("copy_text", copied_text=button["copy_text"]["text"])
        raise ScriptError(f"this sandbox cannot press {button!r}")

    def migrate_to_supergroup(self, chat: ChatRef, *, by: UserRef | None = None) -> SimChat:
        """Upgrade a basic group to a supergroup; returns the new chat.

        The group gets a ``migrate_to_chat_id`` message, the supergroup a
        ``migrate_from_chat_id`` message; the old id then answers 400 with
        ``migrate_to_chat_id``. Members, rights, links and requests move over.
        """
        old = self.chat(chat)
        if old.type != "group" or old.migrated_to is not None:
            raise ScriptError("only a basic group can be upgraded, once")
        actor = self.user(by) if by is not None else self._owner(old)
        new = SimChat(
            id=self._allocate_chat_id("supergroup"),
            type="supergroup",
            title=old.title,
            description=old.description,
            join_by_request=old.join_by_request,
            permissions=dict(old.permissions),
            migrated_from=old.id,
        )
        self.chats[new.id] = new
        for uid, member in old.members.items():
            copied = replace(member)
            if copied.status == "administrator":
                copied.rights = self._merge_rights(new, copied.rights, None)
            new.members[uid] = copied
        for url, link in old.invite_links.items():
            link.chat_id = new.id
            new.invite_links[url] = link
        old.invite_links = {}
        new.join_requests, old.join_requests = old.join_requests, {}
        for request in new.join_requests.values():
            request.chat_id = new.id
        old.migrated_to = new.id
        self.post_service(old, actor, migrate_to_chat_id=new.id)
        self.post_service(new, actor, migrate_from_chat_id=old.id)
        self.notify_change()
        return new

    # --- shared by the API ------------------------------------------------------------------

    def approve_request(self, chat: SimChat, user_id: int, actor: SimUser) -> SimMember:
        """Let a requester in (used by approveChatJoinRequest and :meth:`approve`)."""
        request = chat.join_requests[user_id]
        link = chat.invite_links.get(request.invite_link) if request.invite_link else None
        current = chat.member(user_id)
        if current.status == "restricted":
            new = replace(current, is_member=True, joined_date=0)
        else:
            new = SimMember(user_id=user_id, status="member")
        return self.set_member(
            chat,
            new,
            actor=actor,
            invite_link=link,
            via_join_request=link is None,
            service_from=self.users[user_id],
        )

    def decline_request(self, chat: SimChat, user_id: int) -> None:
        """Drop a join request (used by declineChatJoinRequest and :meth:`decline`)."""
        request = chat.join_requests.pop(user_id)
        if request.invite_link:
            link = chat.invite_links.get(request.invite_link)
            if link is not None:
                link.pending.discard(user_id)
        self.notify_change()

    # --- internals --------------------------------------------------------------------------

    def _use_invite_link(self, person: SimUser, link: SimInviteLink) -> LinkOutcome:
        chat = self.chats[link.chat_id]
        if link.is_revoked:
            raise LinkError("INVITE_HASH_EXPIRED", "the invite link was revoked")
        if link.expire_date and link.expire_date <= self.now():
            raise LinkError("INVITE_HASH_EXPIRED", "the invite link has expired")
        member = chat.member(person.id)
        if member.in_chat:
            return LinkOutcome("already_member", chat=chat, invite_link=link)
        if member.status == "kicked":
            raise LinkError("USER_BANNED_IN_CHANNEL", f"{person.full_name} is banned")
        if person.id in chat.join_requests:
            return LinkOutcome("already_requested", chat=chat, invite_link=link)
        if not link.creates_join_request and self.link_is_full(chat, link):
            raise LinkError("USERS_TOO_MUCH", "the invite link's member limit is reached")
        if chat.is_public:
            # Clients join public chats by username: bots never see the link.
            return self._join(person, chat, link=None, wants_request=link.creates_join_request)
        return self._join(person, chat, link=link, wants_request=link.creates_join_request)

    def _join(
        self,
        person: SimUser,
        chat: SimChat,
        *,
        link: SimInviteLink | None,
        wants_request: bool,
    ) -> LinkOutcome:
        member = chat.member(person.id)
        if member.in_chat:
            return LinkOutcome("already_member", chat=chat, invite_link=link)
        if member.status == "kicked":
            raise LinkError("USER_BANNED_IN_CHANNEL", f"{person.full_name} is banned")
        if wants_request:
            if person.id in chat.join_requests:
                return LinkOutcome("already_requested", chat=chat, invite_link=link)
            request = JoinRequest(
                chat_id=chat.id,
                user_id=person.id,
                date=self.now(),
                invite_link=link.url if link else None,
                bio=person.bio,
            )
            chat.join_requests[person.id] = request
            if link is not None:
                link.pending.add(person.id)
            self._emit_join_request(chat, request)
            self.notify_change()
            return LinkOutcome("requested", chat=chat, invite_link=link)
        if member.status == "restricted":
            new = replace(member, is_member=True, joined_date=0)
        else:
            new = SimMember(user_id=person.id, status="member")
        self.set_member(chat, new, actor=person, invite_link=link)
        return LinkOutcome("joined", chat=chat, invite_link=link)

    def _emit_join_request(self, chat: SimChat, request: JoinRequest) -> None:
        person = self.users[request.user_id]
        link = chat.invite_links.get(request.invite_link) if request.invite_link else None
        for bot in self.bots_in(chat):
            if not chat.member(bot.id).can("can_invite_users"):
                continue
            request.notified_bots.add(bot.id)
            payload: Json = {
                "chat": chat_json(chat),
                "from": user_json(person),
                "user_chat_id": person.id,
                "date": request.date,
            }
            if request.bio:
                payload["bio"] = request.bio
            if link is not None:
                payload["invite_link"] = link_json(self, link, bot.id)
            self.emit(bot, "chat_join_request", payload)

    def _emit_private_status(
        self, bot: SimBot, person: SimUser, dialog: PrivateDialog, *, blocked: bool
    ) -> None:
        payload: Json = {
            "chat": private_chat_json(person),
            "from": user_json(person),
            "date": self.now(),
            "old_chat_member": bot_private_member_json(bot, not blocked),
            "new_chat_member": bot_private_member_json(bot, blocked),
        }
        self.emit(bot, "my_chat_member", payload)
        self.notify_change()

    def _callback(
        self, person: SimUser, message: SimMessage, button: dict[str, Any]
    ) -> CallbackQueryRecord:
        sender = self.users.get(message.sender_id) if message.sender_id is not None else None
        if not isinstance(sender, SimBot):
            raise ScriptError("callback buttons only exist on messages sent by bots")
        query = CallbackQueryRecord(
            id=str(self.rng.getrandbits(62)),
            user_id=person.id,
            bot_id=sender.id,
            chat_id=message.chat_id,
            message_id=message.message_id,
            data=button["callback_data"],
            date=self.now(),
        )
        self.callback_queries[query.id] = query
        payload: Json = {
            "id": query.id,
            "from": user_json(person),
            "message": message_json(self, message),
            "chat_instance": str((sender.id * 1_000_003 ^ abs(message.chat_id)) % 10**18),
            "data": query.data,
        }
        self.emit(sender, "callback_query", payload)
        return query

    def _require_can_see(self, person: SimUser, message: SimMessage) -> None:
        if message.is_private:
            if message.chat_id != person.id:
                raise ScriptError("that message is in someone else's private chat")
            return
        chat = self.chats[message.chat_id]
        if not chat.member(person.id).in_chat and not chat.is_public:
            raise ScriptError(f"{person.full_name} cannot see messages of {chat.title}")

    def _may_send(self, chat: SimChat, member: SimMember, permission: str | None = None) -> bool:
        if member.is_admin:
            return True
        wanted = ["can_send_messages"] if permission is None else [permission]
        if member.status == "restricted":
            return all(member.permissions.get(name) for name in wanted)
        return all(chat.permissions.get(name, True) for name in wanted)

    def _owner(self, chat: SimChat) -> SimUser:
        for uid, member in chat.members.items():
            if member.status == "creator":
                return self.users[uid]
        raise ScriptError(f"{chat.title} has no owner")

    def _require_admin(self, chat: SimChat, actor: SimUser, right: str) -> None:
        self._require_not_migrated(chat)
        if not chat.member(actor.id).can(right):
            raise ScriptError(f"{actor.full_name} lacks {right} in {chat.title}")

    def _require_not_migrated(self, chat: SimChat) -> None:
        if chat.migrated_to is not None:
            raise ScriptError(f"{chat.title} was upgraded to supergroup {chat.migrated_to}")

    @staticmethod
    def _require_active(person: SimUser) -> None:
        if person.deactivated:
            raise ScriptError("a deleted account cannot act")

    def _merge_rights(
        self, chat: SimChat, base: dict[str, bool], changes: dict[str, bool] | None
    ) -> dict[str, bool]:
        unknown = set(changes or {}) - set(ALL_RIGHTS) - {"is_anonymous"}
        if unknown:
            raise ScriptError(f"unknown administrator rights: {sorted(unknown)}")
        allowed = rights_for_chat_type(chat.type)
        merged = {name: bool(base.get(name)) for name in allowed}
        for name, value in (changes or {}).items():
            if name in allowed:
                merged[name] = bool(value)
        return merged

    def _check_username_free(self, username: str | None) -> None:
        if username is None:
            return
        if not _USERNAME_RE.match(username):
            raise ScriptError(f"invalid username {username!r}")
        if self.account_by_username(username) or self.chat_by_username(username):
            raise ScriptError(f"username {username!r} is taken")

    def _bot_or_chat(self, ref: BotRef | ChatRef) -> SimBot | SimChat:
        if isinstance(ref, SimBot | SimChat):
            return ref
        if isinstance(ref, int):
            return self.chat(ref) if ref < 0 else self.bot(ref)
        try:
            return self.bot(ref)
        except ScriptError:
            return self.chat(ref)


def _parse_tme(url: str) -> tuple[str, str, str | None] | None:
    """Split a t.me / tg:// link into (kind, name_or_hash, start_payload)."""
    value = url.strip()
    if value.lower().startswith("tg://"):
        parts = urlsplit(value)
        query = parse_qs(parts.query)
        if parts.netloc == "join" and "invite" in query:
            return "invite", query["invite"][0], None
        if parts.netloc == "resolve" and "domain" in query:
            start = query.get("start", [None])[0]
            return "name", query["domain"][0], start
        return None
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if parts.netloc.lower() not in ("t.me", "telegram.me", "telegram.dog", "www.t.me"):
        return None
    path = parts.path.strip("/")
    if path.startswith("+") or path.lower().startswith("joinchat/"):
        return "invite", path.split("/")[-1].lstrip("+"), None
    if not path or "/" in path:
        return None
    query = parse_qs(parts.query, keep_blank_values=True)
    start = query.get("start", [None])[0]
    return "name", path, start
