"""Bot API methods about files: getFile, sendDocument and sendPhoto.

Files arrive as multipart/form-data parts (aiogram names them ``attach://<part>``, curl
sends the part under the parameter's own name) or as a ``file_id`` the bot received.
A ``file_id`` belongs to one bot ("file_id is unique for each individual bot and can't be
transferred from one bot to another", Bot API "Sending files"); ``file_unique_id`` is the
same for every bot but cannot be used to download or send.
"""

from __future__ import annotations

from typing import Any

from sandbox.api import (
    Params,
    api,
    chat_ref,
    count_send,
    resolve,
    throttle,
)
from sandbox.errors import bad_request
from sandbox.files import (
    MAX_CAPTION_LENGTH,
    clean_file_name,
    guess_mime_type,
    image_size,
    photo_dimensions_ok,
)
from sandbox.html import EntityParseError, process_text
from sandbox.methods import parse_reply_markup, reply_to, require_can_send, store_of
from sandbox.model import SimBot, SimFile, Upload
from sandbox.objects import file_json, message_json
from sandbox.world import World

WRONG_FILE = "wrong file identifier/HTTP URL specified"
_KIND_NAMES = {"document": "Document", "photo": "Photo"}
_MEDIA_RIGHTS = {
    "document": ("can_send_documents", "documents"),
    "photo": ("can_send_photos", "photos"),
}


@api("getFile")
def get_file(world: World, bot: SimBot, p: Params) -> Any:
    """A File with a download path valid for an hour; files over 20 MB are refused."""
    file_id = (p.get_str("file_id") or "").strip()
    if not file_id:
        raise bad_request("invalid file_id")
    file = world.file_of(bot.id, file_id)
    if file is None:
        if world.knows_file_id(file_id):  # another bot's id
            raise bad_request("wrong file_id or the file is temporarily unavailable")
        raise bad_request("invalid file_id")
    if file.size > world.file_limits.download:
        raise bad_request("file is too big")
    return file_json(world, file, bot.id, world.file_path_for(bot.id, file))


def parse_caption(p: Params) -> tuple[str | None, list[dict[str, Any]]]:
    """``caption`` with ``parse_mode``/``caption_entities``, checked like message text."""
    text = p.get_str("caption")
    if not text:
        return None, []
    entities = (
        p.get_json("caption_entities", "caption entities") if p.has("caption_entities") else None
    )
    if entities is not None and not isinstance(entities, list):
        raise bad_request("can't parse caption entities JSON object")
    try:
        plain, parsed = process_text(text, p.get_str("parse_mode"), entities)
    except EntityParseError as exc:
        raise bad_request(f"can't parse entities: {exc}") from None
    except ValueError:
        raise bad_request("unsupported parse_mode") from None
    if len(plain) > MAX_CAPTION_LENGTH:
        raise bad_request("message caption is too long")
    if not plain:
        return None, []
    return plain, parsed


def _input_file(world: World, bot: SimBot, p: Params, kind: str) -> Upload | SimFile:
    """The file a sending method names: an uploaded part or one of the bot's file ids."""
    value = p.raw.get(kind)
    if isinstance(value, str) and value.startswith("attach://"):
        value = p.raw.get(value[len("attach://") :])
        if not isinstance(value, Upload):
            raise bad_request(WRONG_FILE)
    if value is None or value == "":
        raise bad_request(f"there is no {kind} in the request")
    if isinstance(value, Upload):
        if not value.content:
            raise bad_request("file must be non-empty")
        return value
    text = str(value).strip()
    if text.lower().startswith(("http://", "https://")):
        raise bad_request("failed to get HTTP URL content")  # the sandbox has no internet
    file = world.file_of(bot.id, text)
    if file is None:
        raise bad_request(WRONG_FILE)
    if file.kind != kind:
        names = _KIND_NAMES.get(file.kind, file.kind), _KIND_NAMES[kind]
        raise bad_request(f"can't use file of type {names[0]} as {names[1]}")
    return file


def _check_photo(world: World, upload: Upload) -> tuple[int, int]:
    size = len(upload.content)
    limit = world.file_limits.photo
    if size > limit:
        raise bad_request(
            f"file of size {size} bytes is too big for a photo; the maximum size is {limit} bytes"
        )
    dimensions = image_size(upload.content)
    if dimensions is None:
        raise bad_request("IMAGE_PROCESS_FAILED")
    if not photo_dimensions_ok(*dimensions):
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    return dimensions


def _stored(world: World, bot: SimBot, kind: str, source: Upload | SimFile) -> SimFile:
    if isinstance(source, SimFile):
        return source
    if kind == "photo":
        width, height = _check_photo(world, source)
        return world.store_file(
            "photo", source.content, uploaded_by=bot.id, width=width, height=height
        )
    name = clean_file_name(source.filename)
    mime = guess_mime_type(name)
    if mime == "application/octet-stream" and source.content_type not in ("", mime):
        mime = source.content_type
    return world.store_file(
        "document", source.content, uploaded_by=bot.id, file_name=name, mime_type=mime
    )


def _send_file(world: World, bot: SimBot, p: Params, kind: str) -> Any:
    caption, entities = parse_caption(p)
    markup = parse_reply_markup(p)
    target = resolve(world, chat_ref(p))
    require_can_send(world, bot, target)
    if target.chat is not None and target.chat.type != "channel":
        member = target.chat.member(bot.id)
        right, plural = _MEDIA_RIGHTS[kind]
        if member.status == "restricted":
            allowed = bool(member.permissions.get(right))
        elif member.status == "member":
            allowed = bool(target.chat.permissions.get(right, True))
        else:
            allowed = True
        if not allowed:
            raise bad_request(f"not enough rights to send {plural} to the chat")
    reply_id = reply_to(p, store_of(world, bot, target))
    source = _input_file(world, bot, p, kind)
    method = "send" + kind
    throttle(world, bot, method, target)
    file = _stored(world, bot, kind, source)
    fields: dict[str, Any] = {
        "sender_id": bot.id,
        kind: file,
        "caption": caption,
        "caption_entities": entities,
        "raw_caption": p.get_str("caption"),
        "parse_mode": p.get_str("parse_mode"),
        "reply_markup": markup,
        "reply_to_message_id": reply_id,
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
    count_send(world, bot, method, target)
    world.notify_change()
    return message_json(world, message, viewer_id=bot.id)


@api("sendDocument")
def send_document(world: World, bot: SimBot, p: Params) -> Any:
    """Send a file (uploaded, up to 50 MB, or by the bot's file_id) with a caption."""
    return _send_file(world, bot, p, "document")


@api("sendPhoto")
def send_photo(world: World, bot: SimBot, p: Params) -> Any:
    """Send a photo (a PNG or JPEG upload up to 10 MB, or the bot's file_id)."""
    return _send_file(world, bot, p, "photo")
