"""Serialisation of world records into Bot API JSON objects.

Field names follow aiogram 3.31 (Bot API 10.3). Optional fields are omitted rather than sent
as null, as the official server does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.html import Entity
from sandbox.model import (
    GROUP_ANONYMOUS_BOT_ID,
    PERMISSIONS,
    SimBot,
    SimChat,
    SimFile,
    SimInviteLink,
    SimMember,
    SimMessage,
    SimUser,
    rights_for_chat_type,
)

if TYPE_CHECKING:
    from sandbox.state import WorldState

Json = dict[str, Any]


def user_json(user: SimUser, *, full: bool = False) -> Json:
    """A ``User`` object; ``full`` adds the getMe-only fields of bots."""
    data: Json = {"id": user.id, "is_bot": user.is_bot, "first_name": user.first_name}
    if user.last_name:
        data["last_name"] = user.last_name
    if user.username:
        data["username"] = user.username
    if user.language_code and not user.is_bot:
        data["language_code"] = user.language_code
    if user.is_premium and not user.is_bot:
        data["is_premium"] = True
    if full and isinstance(user, SimBot):
        data["can_join_groups"] = user.can_join_groups
        data["can_read_all_group_messages"] = user.can_read_all_group_messages
        data["supports_inline_queries"] = False
        data["can_connect_to_business"] = False
        data["has_main_web_app"] = False
        data["has_topics_enabled"] = False
        data["allows_users_to_create_topics"] = False
    return data


def private_chat_json(user: SimUser) -> Json:
    """The ``Chat`` of a private conversation with ``user``."""
    data: Json = {"id": user.id, "first_name": user.first_name}
    if user.last_name:
        data["last_name"] = user.last_name
    if user.username:
        data["username"] = user.username
    data["type"] = "private"
    return data


def chat_json(chat: SimChat) -> Json:
    """A short ``Chat`` object of a group, supergroup or channel."""
    data: Json = {"id": chat.id, "title": chat.title}
    if chat.username:
        data["username"] = chat.username
    data["type"] = chat.type
    return data


def entities_json(world: WorldState, entities: list[Entity]) -> list[Json]:
    """``MessageEntity`` objects (text mentions get their user object)."""
    out: list[Json] = []
    for entity in entities:
        item = {k: v for k, v in entity.items() if k != "user_id"}
        if "user_id" in entity:
            user = world.users.get(entity["user_id"])
            if user is None:
                continue
            item["user"] = user_json(user)
        out.append(item)
    return out


def member_json(
    world: WorldState, chat_type: str, member: SimMember, viewer_id: int | None = None
) -> Json:
    """A ``ChatMember`` object of the right variant for the member's status."""
    user = world.users[member.user_id]
    data: Json = {"user": user_json(user), "status": member.status}
    if member.status == "creator":
        data["is_anonymous"] = member.is_anonymous
        if member.custom_title:
            data["custom_title"] = member.custom_title
    elif member.status == "administrator":
        data["can_be_edited"] = viewer_id is not None and member.promoted_by == viewer_id
        data["is_anonymous"] = member.is_anonymous
        for right in rights_for_chat_type(chat_type):
            data[right] = bool(member.rights.get(right))
        if member.custom_title:
            data["custom_title"] = member.custom_title
    elif member.status == "restricted":
        data["is_member"] = member.is_member
        for perm in PERMISSIONS:
            data[perm] = bool(member.permissions.get(perm))
        data["until_date"] = member.until_date
    elif member.status == "kicked":
        data["until_date"] = member.until_date
    return data


def bot_private_member_json(bot: SimBot, blocked: bool) -> Json:
    """The bot's own ``ChatMember`` in a private chat (``kicked`` when blocked)."""
    if blocked:
        return {"user": user_json(bot), "status": "kicked", "until_date": 0}
    return {"user": user_json(bot), "status": "member"}


def link_json(world: WorldState, link: SimInviteLink, viewer_id: int | None) -> Json:
    """A ``ChatInviteLink``; masked unless ``viewer_id`` created it."""
    creator = world.users[link.creator_id]
    url = link.url if viewer_id == link.creator_id else link.masked_url
    data: Json = {"invite_link": url}
    if link.name:
        data["name"] = link.name
    data["creator"] = user_json(creator)
    if link.expire_date:
        data["expire_date"] = link.expire_date
    if link.member_limit:
        data["member_limit"] = link.member_limit
    if link.pending:
        data["pending_join_request_count"] = len(link.pending)
    data["creates_join_request"] = link.creates_join_request
    data["is_primary"] = link.is_primary
    data["is_revoked"] = link.is_revoked
    return data


def group_anonymous_bot(world: WorldState) -> SimUser:
    """The GroupAnonymousBot account (messages and actions of anonymous admins)."""
    return world.users[GROUP_ANONYMOUS_BOT_ID]


def document_json(world: WorldState, file: SimFile, viewer_id: int) -> Json:
    """A ``Document`` object with the viewer's own ``file_id``."""
    data: Json = {
        "file_id": world.file_id_for(viewer_id, file),
        "file_unique_id": file.unique_id,
    }
    if file.file_name:
        data["file_name"] = file.file_name
    if file.mime_type:
        data["mime_type"] = file.mime_type
    data["file_size"] = file.size
    return data


def photo_json(world: WorldState, file: SimFile, viewer_id: int) -> list[Json]:
    """The ``PhotoSize`` list of a photo (the sandbox keeps one size: the original)."""
    return [
        {
            "file_id": world.file_id_for(viewer_id, file),
            "file_unique_id": file.unique_id,
            "file_size": file.size,
            "width": file.width,
            "height": file.height,
        }
    ]


def file_json(world: WorldState, file: SimFile, viewer_id: int, path: str | None) -> Json:
    """A ``File`` object (getFile)."""
    data: Json = {
        "file_id": world.file_id_for(viewer_id, file),
        "file_unique_id": file.unique_id,
        "file_size": file.size,
    }
    if path is not None:
        data["file_path"] = path
    return data


def _viewer(world: WorldState, message: SimMessage) -> int | None:
    if message.dialog_bot_id is not None:
        return message.dialog_bot_id
    sender = world.users.get(message.sender_id) if message.sender_id is not None else None
    return sender.id if isinstance(sender, SimBot) else None


def message_json(
    world: WorldState,
    message: SimMessage,
    *,
    nested: bool = False,
    viewer_id: int | None = None,
) -> Json:
    """A ``Message`` object as the bot ``viewer_id`` sees it (its own file ids).

    Without ``viewer_id``: the bot of a private chat, else the bot that sent the message.
    """
    viewer = viewer_id if viewer_id is not None else _viewer(world, message)
    data: Json = {"message_id": message.message_id}
    if message.is_private:
        user = world.users[message.chat_id]
        chat: Json = private_chat_json(user)
        chat_type = "private"
    else:
        sim_chat = world.chats[message.chat_id]
        chat = chat_json(sim_chat)
        chat_type = sim_chat.type
    if chat_type != "channel" and message.sender_id is not None:
        data["from"] = user_json(world.users[message.sender_id])
    if message.sender_chat_id is not None:
        data["sender_chat"] = chat_json(world.chats[message.sender_chat_id])
    data["chat"] = chat
    data["date"] = message.date
    if message.edit_date:
        data["edit_date"] = message.edit_date
    if message.author_signature:
        data["author_signature"] = message.author_signature
    if message.reply_to_message_id is not None and not nested:
        replied = world.find_message(message)
        if replied is not None:
            data["reply_to_message"] = message_json(world, replied, nested=True, viewer_id=viewer)
    if message.text is not None:
        data["text"] = message.text
        if message.entities:
            data["entities"] = entities_json(world, message.entities)
    if message.link_preview_options:
        data["link_preview_options"] = message.link_preview_options
    if message.file is not None and viewer is not None:
        if message.document is not None:
            data["document"] = document_json(world, message.document, viewer)
        if message.photo is not None:
            data["photo"] = photo_json(world, message.photo, viewer)
    if message.caption is not None:
        data["caption"] = message.caption
        if message.caption_entities:
            data["caption_entities"] = entities_json(world, message.caption_entities)
    for key, value in message.service.items():
        if key in ("new_chat_members",):
            data[key] = [user_json(world.users[uid]) for uid in value]
        elif key == "left_chat_member":
            data[key] = user_json(world.users[value])
        elif key == "pinned_message":
            pinned = world.message_by_id(message, value)
            if pinned is not None and not nested:
                data[key] = message_json(world, pinned, nested=True, viewer_id=viewer)
        else:
            data[key] = value
    if message.reply_markup and "inline_keyboard" in message.reply_markup:
        data["reply_markup"] = message.reply_markup
    return data


def chat_full_info_json(world: WorldState, chat: SimChat, bot: SimBot) -> Json:
    """``ChatFullInfo`` of a group, supergroup or channel as ``bot`` sees it."""
    data = chat_json(chat)
    data.update(
        {
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
    )
    if chat.username:
        data["active_usernames"] = [chat.username]
    if chat.description:
        data["description"] = chat.description
    if chat.type != "channel":
        data["permissions"] = dict(chat.permissions)
    if chat.join_by_request:
        data["join_by_request"] = True
    if chat.type == "supergroup":
        data["has_visible_history"] = True
    me = chat.member(bot.id)
    if me.can("can_invite_users"):
        primary = world.primary_link(chat, bot.id)
        if primary is not None:
            data["invite_link"] = primary.url
    if chat.pinned:
        pinned = chat.messages.get(chat.pinned[-1])
        if pinned is not None and not pinned.deleted:
            data["pinned_message"] = message_json(world, pinned, nested=True)
    return data


def private_full_info_json(world: WorldState, user: SimUser, bot: SimBot) -> Json:
    """``ChatFullInfo`` of the private chat between ``bot`` and ``user``."""
    data = private_chat_json(user)
    data.update(
        {
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        }
    )
    if user.username:
        data["active_usernames"] = [user.username]
    if user.bio:
        data["bio"] = user.bio
    dialog = bot.dialogs.get(user.id)
    if dialog is not None and dialog.pinned:
        pinned = dialog.messages.get(dialog.pinned[-1])
        if pinned is not None and not pinned.deleted:
            data["pinned_message"] = message_json(world, pinned, nested=True)
    return data
