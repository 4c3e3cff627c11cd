"""Bot API methods: getting updates, webhooks, the bot's profile, and messages."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from typing import Any
from urllib.parse import urlsplit

from sandbox.api import (
    Params,
    Target,
    api,
    chat_ref,
    count_send,
    require_member,
    require_private_send,
    resolve,
    throttle,
)
from sandbox.errors import ApiError, bad_request, forbidden
from sandbox.html import MAX_MESSAGE_LENGTH, EntityParseError, process_text
from sandbox.model import UPDATE_TYPES, SimBot, SimChat, SimMessage, WebhookState
from sandbox.objects import message_json, user_json
from sandbox.world import World

_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_SCOPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)


# --- the bot itself ---------------------------------------------------------------------------


@api("getMe")
def get_me(world: World, bot: SimBot, p: Params) -> Any:
    """Return the bot's User object."""
    return user_json(bot, full=True)


@api("logOut")
def log_out(world: World, bot: SimBot, p: Params) -> Any:
    """Accepted; the sandbox keeps serving the bot."""
    return True


@api("close")
def close(world: World, bot: SimBot, p: Params) -> Any:
    """Accepted; the sandbox keeps serving the bot."""
    return True


def _scope_key(p: Params) -> str:
    scope = p.get_json("scope", "BotCommandScope") if p.has("scope") else {"type": "default"}
    if not isinstance(scope, dict) or scope.get("type") not in _SCOPES:
        raise bad_request("can't parse BotCommandScope JSON object")
    language = (p.get_str("language_code") or "").strip()
    if language and not re.fullmatch(r"[a-z]{2}", language):
        raise bad_request("invalid language code specified")
    return json.dumps(scope, sort_keys=True) + "|" + language


@api("setMyCommands")
def set_my_commands(world: World, bot: SimBot, p: Params) -> Any:
    """Store the command list for a scope and language."""
    commands = p.get_json("commands", "commands")
    if not isinstance(commands, list):
        raise bad_request('field "commands" must be an Array')
    if len(commands) > 100:
        raise bad_request("too many commands specified")
    cleaned: list[dict[str, str]] = []
    for item in commands:
        if not isinstance(item, dict):
            raise bad_request('field "commands" must be an Array of BotCommand')
        command = str(item.get("command", "")).strip()
        description = str(item.get("description", "")).strip()
        if command.startswith("/"):
            command = command[1:]
        if not _COMMAND_RE.match(command):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        cleaned.append({"command": command, "description": description})
    key = _scope_key(p)
    if cleaned:
        bot.commands[key] = cleaned
    else:
        bot.commands.pop(key, None)
    return True


@api("getMyCommands")
def get_my_commands(world: World, bot: SimBot, p: Params) -> Any:
    """The command list of a scope and language."""
    return bot.commands.get(_scope_key(p), [])


@api("deleteMyCommands")
def delete_my_commands(world: World, bot: SimBot, p: Params) -> Any:
    """Forget the command list of a scope and language."""
    bot.commands.pop(_scope_key(p), None)
    return True


def _profile_setter(field: str, limit: int) -> Any:
    def handler(world: World, bot: SimBot, p: Params) -> Any:
        value = p.get_str(field) or ""
        if len(value) > limit:
            raise bad_request(f"{field} is too long")
        key = f"{field}|{p.get_str('language_code') or ''}"
        bot.profile[key] = value
        return True

    return handler


def _profile_getter(field: str) -> Any:
    def handler(world: World, bot: SimBot, p: Params) -> Any:
        key = f"{field}|{p.get_str('language_code') or ''}"
        default = bot.first_name if field == "name" else ""
        return {field: bot.profile.get(key, default)}

    return handler


for _field, _limit, _set, _get in (
    ("description", 512, "setMyDescription", "getMyDescription"),
    ("short_description", 120, "setMyShortDescription", "getMyShortDescription"),
    ("name", 64, "setMyName", "getMyName"),
):
    api(_set)(_profile_setter(_field, _limit))
    api(_get)(_profile_getter(_field))


@api("setChatMenuButton")
def set_chat_menu_button(world: World, bot: SimBot, p: Params) -> Any:
    """Store the menu button."""
    bot.profile["menu_button"] = p.get_json("menu_button") or {"type": "default"}
    return True


@api("getChatMenuButton")
def get_chat_menu_button(world: World, bot: SimBot, p: Params) -> Any:
    """The stored menu button."""
    return bot.profile.get("menu_button", {"type": "commands"})


# --- updates and webhooks ---------------------------------------------------------------------


def _allowed_updates(p: Params) -> list[str] | None:
    if not p.has("allowed_updates"):
        return None
    value = p.get_json("allowed_updates", "allowed_updates")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [str(v) for v in value if str(v) in UPDATE_TYPES]


def _int_or(value: int | None, default: int) -> int:
    return default if value is None else value


@api("getUpdates")
async def get_updates(world: World, bot: SimBot, p: Params) -> Any:
    """Long polling with Telegram's confirmation, retention and conflict rules."""
    if bot.webhook is not None:
        raise ApiError(
            409,
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook "
            "to delete the webhook first",
        )
    generation = world.poll_generation.get(bot.id, 0) + 1
    world.poll_generation[bot.id] = generation
    world.wake_pollers(bot.id)
    offset = p.get_int("offset")
    limit = min(max(_int_or(p.get_int("limit"), 100), 1), 100)
    timeout = min(max(_int_or(p.get_int("timeout"), 0), 0), 50)
    allowed = _allowed_updates(p)
    if allowed is not None:
        bot.allowed_updates = allowed
    if offset is not None:
        if offset < 0:
            bot.updates = bot.updates[offset:]
        else:
            bot.updates = [u for u in bot.updates if u.update_id >= offset]
        world.notify_change()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        world.drop_expired_updates(bot)
        if world.poll_generation.get(bot.id) != generation:
            if bot.webhook is not None:
                raise ApiError(409, "Conflict: terminated by setWebhook request")
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot "
                "instance is running",
            )
        if bot.updates:
            return [u.to_json() for u in bot.updates[:limit]]
        remaining = deadline - loop.time()
        if remaining <= 0 or world.polls_closed:
            return []
        future: asyncio.Future[None] = loop.create_future()
        world.add_poll_waiter(bot.id, future)
        try:
            await asyncio.wait_for(future, remaining)
        except TimeoutError:
            pass


def _check_webhook_url(world: World, url: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    loopback = host == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if not host:
        raise bad_request("bad webhook: Failed to resolve host: Name or service not known")
    if loopback and world.allow_http_webhooks_on_loopback and parts.scheme in ("http", "https"):
        return
    if parts.scheme != "https":
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    if (parts.port or 443) not in (80, 88, 443, 8443):
        raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")


@api("setWebhook")
def set_webhook(world: World, bot: SimBot, p: Params) -> Any:
    """Set (or with an empty url, remove) the webhook."""
    url = (p.get_str("url") or "").strip()
    if p.get_bool("drop_pending_updates"):
        bot.updates.clear()
    allowed = _allowed_updates(p)
    if allowed is not None:
        bot.allowed_updates = allowed
    if not url:
        bot.webhook = None
        world.notify_change()
        return True
    _check_webhook_url(world, url)
    secret = p.get_str("secret_token")
    if secret is not None and not _SECRET_RE.match(secret):
        raise bad_request("secret token contains unallowed characters")
    max_connections = min(max(p.get_int("max_connections", 40) or 40, 1), 100)
    bot.webhook = WebhookState(
        url=url,
        secret_token=secret,
        max_connections=max_connections,
        ip_address=p.get_str("ip_address"),
    )
    world.poll_generation[bot.id] = world.poll_generation.get(bot.id, 0) + 1
    world.wake_pollers(bot.id)
    world.notify_change()
    return True


@api("deleteWebhook")
def delete_webhook(world: World, bot: SimBot, p: Params) -> Any:
    """Remove the webhook (optionally dropping pending updates)."""
    bot.webhook = None
    if p.get_bool("drop_pending_updates"):
        bot.updates.clear()
    world.notify_change()
    return True


@api("getWebhookInfo")
def get_webhook_info(world: World, bot: SimBot, p: Params) -> Any:
    """The webhook state and the number of pending updates."""
    world.drop_expired_updates(bot)
    info: dict[str, Any] = {
        "url": bot.webhook.url if bot.webhook else "",
        "has_custom_certificate": False,
        "pending_update_count": len(bot.updates),
    }
    if bot.webhook is not None:
        if bot.webhook.ip_address:
            info["ip_address"] = bot.webhook.ip_address
        if bot.webhook.last_error_date:
            info["last_error_date"] = bot.webhook.last_error_date
            info["last_error_message"] = bot.webhook.last_error_message
        info["max_connections"] = bot.webhook.max_connections
        if bot.allowed_updates:
            info["allowed_updates"] = list(bot.allowed_updates)
    return info


# --- messages ---------------------------------------------------------------------------------


def parse_text(p: Params, field: str = "text") -> tuple[str, list[dict[str, Any]]]:
    """Parse ``text`` with ``parse_mode``/``entities`` as Telegram stores it."""
    text = p.get_str(field)
    if not text:
        raise bad_request("message text is empty")
    entities = p.get_json("entities", "message entities") if p.has("entities") else None
    if entities is not None and not isinstance(entities, list):
        raise bad_request("can't parse message entities JSON object")
    try:
        plain, parsed = process_text(text, p.get_str("parse_mode"), entities)
    except EntityParseError as exc:
        raise bad_request(f"can't parse entities: {exc}") from None
    except ValueError:
        raise bad_request("unsupported parse_mode") from None
    if not plain:
        raise bad_request("message text is empty")
    if len(plain) > MAX_MESSAGE_LENGTH:
        raise bad_request("message is too long")
    return plain, parsed


def _button(raw: Any) -> dict[str, Any]:
    prefix = "can't parse inline keyboard button: "
    if not isinstance(raw, dict):
        raise bad_request(prefix + "InlineKeyboardButton must be an Object")
    text = raw.get("text")
    if not isinstance(text, str):
        raise bad_request(prefix + 'Field "text" must be of type String')
    if not text.strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    actions = [name for name in _BUTTON_ACTIONS if raw.get(name) is not None]
    if not actions:
        raise bad_request(prefix + "Text buttons are unallowed in the inline keyboard")
    button: dict[str, Any] = {"text": text}
    for key in ("icon_custom_emoji_id", "style"):
        if raw.get(key) is not None:
            button[key] = raw[key]
    action = actions[0]
    value = raw[action]
    if action == "callback_data":
        data = str(value)
        if not 1 <= len(data.encode("utf-8")) <= 64:
            raise bad_request("BUTTON_DATA_INVALID")
        button["callback_data"] = data
    elif action == "url":
        url = str(value).strip()
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        host = urlsplit(url if scheme else "http://" + url).hostname or ""
        if scheme not in ("", "http", "https", "tg") or (scheme != "tg" and "." not in host):
            raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
        button["url"] = url
    elif action == "copy_text":
        copied = value.get("text") if isinstance(value, dict) else None
        if not isinstance(copied, str):
            raise bad_request(prefix + 'Field "copy_text" must be of type Object')
        if not 1 <= len(copied) <= 256:
            raise bad_request("COPY_TEXT_INVALID")
        button["copy_text"] = {"text": copied}
    else:
        button[action] = value
    return button


def parse_reply_markup(p: Params, *, inline_only: bool = False) -> dict[str, Any] | None:
    """Validate ``reply_markup`` (inline keyboards fully; reply keyboards loosely)."""
    if not p.has("reply_markup"):
        return None
    markup = p.get_json("reply_markup", "reply keyboard markup")
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list):
            raise bad_request('field "inline_keyboard" must be an Array')
        if not all(isinstance(row, list) for row in rows):
            raise bad_request('field "inline_keyboard" must be an Array of Arrays')
        parsed = [[_button(raw) for raw in row] for row in rows]
        if sum(len(row) for row in parsed) > 100:
            raise bad_request("reply markup is too long")
        kept = [row for row in parsed if row]
        return {"inline_keyboard": kept} if kept else None
    if inline_only:
        raise bad_request("can't parse reply keyboard markup JSON object")
    if any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply")):
        return markup
    raise bad_request("can't parse reply keyboard markup JSON object")


def store_of(world: World, bot: SimBot, target: Target) -> dict[int, SimMessage]:
    """The messages of the chat a method addresses."""
    if target.user is not None:
        return world.dialog(bot, target.user.id).messages
    assert target.chat is not None
    return target.chat.messages


def require_can_send(world: World, bot: SimBot, target: Target) -> None:
    """403/400 unless the bot may send messages to ``target``."""
    if target.user is not None:
        require_private_send(world, bot, target.user)
        return
    chat = target.chat
    assert chat is not None
    member = require_member(world, bot, chat)
    if chat.type == "channel":
        if not member.can("can_post_messages"):
            raise bad_request("need administrator rights in the channel chat")
        return
    if member.status == "restricted" and not member.permissions.get("can_send_messages"):
        raise bad_request("not enough rights to send text messages to the chat")
    if member.status == "member" and not chat.permissions.get("can_send_messages", True):
        raise bad_request("not enough rights to send text messages to the chat")


def require_chat_access(world: World, bot: SimBot, target: Target) -> None:
    """Access for non-sending methods in a chat (edits, deletes, pins)."""
    if target.user is not None:
        user = target.user
        if user.deactivated:
            raise forbidden("user is deactivated")
        dialog = bot.dialogs.get(user.id)
        if dialog is None or not dialog.messages:
            raise bad_request("chat not found")
        if dialog.blocked:
            raise forbidden("bot was blocked by the user")
        return
    assert target.chat is not None
    require_member(world, bot, target.chat)


def reply_to(p: Params, store: dict[int, SimMessage]) -> int | None:
    """The message id a send replies to (``reply_parameters`` or the legacy fields)."""
    reply_id: int | None = None
    allow_missing = p.get_bool("allow_sending_without_reply")
    if p.has("reply_parameters"):
        params = p.get_json("reply_parameters", "ReplyParameters")
        if not isinstance(params, dict) or "message_id" not in params:
            raise bad_request("can't parse ReplyParameters JSON object")
        reply_id = int(params["message_id"])
        allow_missing = bool(params.get("allow_sending_without_reply"))
    elif p.has("reply_to_message_id"):
        reply_id = p.get_int("reply_to_message_id")
    if reply_id is None:
        return None
    found = store.get(reply_id)
    if found is None or found.deleted:
        if allow_missing:
            return None
        raise bad_request("message to be replied not found")
    return reply_id


@api("sendMessage")
def send_message(world: World, bot: SimBot, p: Params) -> Any:
    """Send a text message."""
    plain, entities = parse_text(p)
    markup = parse_reply_markup(p)
    target = resolve(world, chat_ref(p))
    require_can_send(world, bot, target)
    store = store_of(world, bot, target)
    reply_id = reply_to(p, store)
    preview = p.get_json("link_preview_options", "LinkPreviewOptions")
    throttle(world, bot, "sendmessage", target)
    fields: dict[str, Any] = {
        "sender_id": bot.id,
        "text": plain,
        "entities": entities,
        "raw_text": p.get_str("text"),
        "parse_mode": p.get_str("parse_mode"),
        "reply_markup": markup,
        "reply_to_message_id": reply_id,
        "link_preview_options": preview if isinstance(preview, dict) else None,
        "disable_notification": p.get_bool("disable_notification"),
    }
    if target.user is not None:
        message = world.new_dialog_message(bot, target.user.id, **fields)
    else:
        chat = target.chat
        assert chat is not None
        if chat.type == "channel":
            fields["sender_chat_id"] = chat.id
        message = world.new_message(chat, **fields)
    world.sent_log.append(message)
    count_send(world, bot, "sendmessage", target)
    world.notify_change()
    return message_json(world, message)


@api("sendChatAction")
def send_chat_action(world: World, bot: SimBot, p: Params) -> Any:
    """Accepted when the bot could send to the chat."""
    target = resolve(world, chat_ref(p))
    if not p.get_str("action"):
        raise bad_request("wrong parameter action in request")
    require_can_send(world, bot, target)
    return True


def _own_message(
    world: World, bot: SimBot, p: Params, *, missing: str
) -> tuple[Target, SimMessage]:
    if p.has("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")
    if not p.has("chat_id") or not p.has("message_id"):
        raise bad_request("message identifier is not specified")
    target = resolve(world, chat_ref(p))
    require_chat_access(world, bot, target)
    message_id = p.get_int("message_id") or 0
    message = store_of(world, bot, target).get(message_id)
    if message is None or message.deleted:
        raise bad_request(missing)
    if message.sender_id != bot.id:
        chat = target.chat
        if not (
            chat is not None
            and chat.type == "channel"
            and chat.member(bot.id).can("can_edit_messages")
        ):
            raise bad_request("message can't be edited")
    return target, message


@api("editMessageText")
def edit_message_text(world: World, bot: SimBot, p: Params) -> Any:
    """Edit a message's text; an omitted reply_markup removes the inline keyboard."""
    plain, entities = parse_text(p)
    markup = parse_reply_markup(p, inline_only=True)
    target, message = _own_message(world, bot, p, missing="message to edit not found")
    if message.text is None:
        raise bad_request("there is no text in the message to edit")
    if message.text == plain and message.entities == entities and message.reply_markup == markup:
        raise bad_request(NOT_MODIFIED)
    throttle(world, bot, "editmessagetext", target)
    message.text = plain
    message.entities = entities
    message.raw_text = p.get_str("text")
    message.parse_mode = p.get_str("parse_mode")
    message.reply_markup = markup
    message.edit_date = world.now()
    preview = p.get_json("link_preview_options", "LinkPreviewOptions")
    if isinstance(preview, dict):
        message.link_preview_options = preview
    count_send(world, bot, "editmessagetext", target)
    world.notify_change()
    return message_json(world, message)


@api("editMessageReplyMarkup")
def edit_message_reply_markup(world: World, bot: SimBot, p: Params) -> Any:
    """Replace (or with no reply_markup, remove) a message's inline keyboard."""
    markup = parse_reply_markup(p, inline_only=True)
    target, message = _own_message(world, bot, p, missing="message to edit not found")
    if message.reply_markup == markup:
        raise bad_request(NOT_MODIFIED)
    throttle(world, bot, "editmessagereplymarkup", target)
    message.reply_markup = markup
    message.edit_date = world.now()
    count_send(world, bot, "editmessagereplymarkup", target)
    world.notify_change()
    return message_json(world, message)


@api("deleteMessage")
def delete_message(world: World, bot: SimBot, p: Params) -> Any:
    """Delete a message (own ones younger than 48 h; others' with can_delete_messages)."""
    target = resolve(world, chat_ref(p))
    require_chat_access(world, bot, target)
    message_id = p.get_int("message_id")
    if message_id is None:
        raise bad_request("message identifier is not specified")
    message = store_of(world, bot, target).get(message_id)
    if message is None or message.deleted:
        raise bad_request("message to delete not found")
    chat = target.chat
    own = message.sender_id == bot.id
    if chat is not None and not own and not chat.member(bot.id).can("can_delete_messages"):
        raise bad_request("message can't be deleted")
    too_old = world.now() - message.date >= 48 * 3600
    if too_old and (chat is None or chat.type == "group" or not own):
        raise bad_request("message can't be deleted for everyone")
    message.deleted = True
    pinned = chat.pinned if chat is not None else world.dialog(bot, target.id).pinned
    if message_id in pinned:
        pinned.remove(message_id)
    world.notify_change()
    return True


@api("answerCallbackQuery")
def answer_callback_query(world: World, bot: SimBot, p: Params) -> Any:
    """Answer a button press once."""
    query_id = p.get_str("callback_query_id") or ""
    query = world.callback_queries.get(query_id)
    if query is None or query.bot_id != bot.id or query.answered:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = p.get_str("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    query.answered = True
    query.answer_text = text
    query.show_alert = p.get_bool("show_alert")
    query.answer_url = p.get_str("url")
    world.notify_change()
    return True


def _require_pin_rights(world: World, bot: SimBot, target: Target) -> list[int]:
    if target.user is not None:
        require_chat_access(world, bot, target)
        return world.dialog(bot, target.user.id).pinned
    chat = target.chat
    assert chat is not None
    member = require_member(world, bot, chat)
    if chat.type == "channel":
        allowed = member.can("can_edit_messages")
    elif member.is_admin:
        allowed = member.can("can_pin_messages")
    elif member.status == "restricted":
        allowed = bool(member.permissions.get("can_pin_messages"))
    else:
        allowed = chat.type == "supergroup" and bool(chat.permissions.get("can_pin_messages"))
    if not allowed:
        raise bad_request("not enough rights to manage pinned messages in the chat")
    return chat.pinned


@api("pinChatMessage")
def pin_chat_message(world: World, bot: SimBot, p: Params) -> Any:
    """Pin a message (groups: can_pin_messages; channels: can_edit_messages)."""
    target = resolve(world, chat_ref(p))
    pinned = _require_pin_rights(world, bot, target)
    message_id = p.get_int("message_id") or 0
    message = store_of(world, bot, target).get(message_id)
    if message is None or message.deleted:
        raise bad_request("message to pin not found")
    throttle(world, bot, "pinchatmessage", target)
    if message_id in pinned:
        pinned.remove(message_id)
    pinned.append(message_id)
    chat = target.chat
    if chat is not None and chat.type != "channel":
        world.post_service(chat, bot, pinned_message=message_id)
    count_send(world, bot, "pinchatmessage", target)
    world.notify_change()
    return True


@api("unpinChatMessage")
def unpin_chat_message(world: World, bot: SimBot, p: Params) -> Any:
    """Unpin one message (default: the most recent pin)."""
    target = resolve(world, chat_ref(p))
    pinned = _require_pin_rights(world, bot, target)
    message_id = p.get_int("message_id")
    if message_id is None:
        if pinned:
            pinned.pop()
    else:
        if message_id not in store_of(world, bot, target):
            raise bad_request("message to unpin not found")
        if message_id in pinned:
            pinned.remove(message_id)
    throttle(world, bot, "unpinchatmessage", target)
    count_send(world, bot, "unpinchatmessage", target)
    world.notify_change()
    return True


@api("unpinAllChatMessages")
def unpin_all_chat_messages(world: World, bot: SimBot, p: Params) -> Any:
    """Unpin everything."""
    target = resolve(world, chat_ref(p))
    _require_pin_rights(world, bot, target).clear()
    world.notify_change()
    return True


def chat_of(target: Target) -> SimChat:
    """The group/supergroup/channel of a target (400 for private chats)."""
    if target.chat is None:
        raise bad_request("method is available only for supergroups and channel")
    return target.chat
