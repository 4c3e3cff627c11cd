"""Message text processing as Telegram does it: HTML parse mode, entity detection, trimming.

The HTML parser is a port of TDLib's ``parse_html`` (``td/telegram/MessageEntity.cpp``): the
same accepted tags, the same attribute grammar, and the same error texts with UTF-8 byte
offsets, so a bot gets ``Bad Request: can't parse entities: Unsupported start tag "x" at byte
offset 1`` where Telegram would answer that. Offsets and lengths of entities are in UTF-16 code
units, as in the Bot API.

Entities are plain dicts shaped like the Bot API's ``MessageEntity`` (``text_mention``
entities carry ``user_id`` until serialisation fills in the user object).
"""

from __future__ import annotations

import re
from typing import Any

Entity = dict[str, Any]

MAX_MESSAGE_LENGTH = 4096

_SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
        "tg-time",
    }
)
_SIMPLE_TAGS = {
    "i": "italic",
    "em": "italic",
    "b": "bold",
    "strong": "bold",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
# TDLib's ordering of entities that start at the same offset with the same length.
_TYPE_PRIORITY = {
    "blockquote": 0,
    "expandable_blockquote": 0,
    "pre": 11,
    "code": 20,
    "text_link": 49,
    "text_mention": 49,
    "bold": 90,
    "italic": 91,
    "underline": 92,
    "strikethrough": 93,
    "spoiler": 94,
    "custom_emoji": 99,
}
_DEFAULT_PRIORITY = 50
_DATE_FORMAT_RE = re.compile(r"^(r|[tTdDwW]*)$")


class EntityParseError(ValueError):
    """The text cannot be parsed; ``str(error)`` is TDLib's message."""


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def utf16_slice(text: str, offset: int, length: int) -> str:
    """The part of ``text`` at a UTF-16 ``offset`` with a UTF-16 ``length``."""
    encoded = text.encode("utf-16-le")
    return encoded[offset * 2 : (offset + length) * 2].decode("utf-16-le", errors="replace")


def _is_space(c: int) -> bool:
    # TDLib's is_space() counts the terminating NUL as a space.
    return c in (0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C, 0x00)


def _is_alnum(c: int) -> bool:
    return 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A


def _decode_html_entity(data: bytes, pos: int) -> tuple[int, int]:
    """Decode ``&...;`` at ``pos``; return ``(code_point, new_pos)`` or ``(0, pos)``."""

    def at(k: int) -> int:
        return data[k] if k < len(data) else 0

    end = pos + 1
    value = 0
    if at(pos + 1) == ord("#"):
        end += 1
        if at(pos + 2) == ord("x"):
            end += 1
            while chr(at(end)) in "0123456789abcdefABCDEF" and at(end):
                value = value * 16 + int(chr(at(end)), 16)
                end += 1
        else:
            while 0x30 <= at(end) <= 0x39:
                value = value * 10 + at(end) - 0x30
                end += 1
        if value == 0 or value >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while chr(at(end)).isascii() and chr(at(end)).isalpha():
            end += 1
        name = data[pos + 1 : end]
        named = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"'}
        if name not in named:
            return 0, pos
        value = ord(named[name])
    if at(end) == ord(";"):
        end += 1
    return value, end


def _append_code_point(out: bytearray, cp: int) -> None:
    out += chr(cp).encode("utf-8", errors="surrogatepass")


def normalize_url(url: str) -> str | None:
    """A simplified TDLib ``check_url``: add ``http://`` and a path, reject junk."""
    if not url or any(ch.isspace() for ch in url):
        return None
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", url)
    if match:
        scheme, rest = match.group(1).lower(), match.group(2)
        if scheme in ("tg", "ton"):
            return url if rest else None
        if scheme not in ("http", "https"):
            return None
    else:
        scheme, rest = "http", url
    host, sep, path = rest.partition("/")
    host_only = host.split("@")[-1].split(":")[0].split("?")[0].split("#")[0]
    if not host_only or ("." not in host_only and host_only != "localhost"):
        return None
    if not re.fullmatch(r"[A-Za-z0-9.-]+", host_only):
        return None
    if not sep:
        query_at = min((host.find(ch) for ch in "?#" if ch in host), default=-1)
        if query_at >= 0:
            return f"{scheme}://{host[:query_at]}/{host[query_at:]}"
        return f"{scheme}://{host}/"
    return f"{scheme}://{host}/{path}"


def parse_html(text: str) -> tuple[str, list[Entity]]:
    """Parse Telegram-flavoured HTML; return ``(plain_text, entities)``.

    Raises :class:`EntityParseError` with TDLib's message on bad markup.
    """
    data = text.encode("utf-8", errors="surrogatepass")
    n = len(data)

    def at(k: int) -> int:
        return data[k] if k < n else 0

    result = bytearray()
    utf16_offset = 0
    nested: list[tuple[str, str, int, int, dict[str, str]]] = []
    entities: list[Entity] = []
    i = 0
    while i < n:
        c = data[i]
        if c == ord("&"):
            cp, new_i = _decode_html_entity(data, i)
            if cp:
                utf16_offset += 2 if cp > 0xFFFF else 1
                _append_code_point(result, cp)
                i = new_i
                continue
        if c != ord("<"):
            if c & 0xC0 != 0x80:
                utf16_offset += 2 if c >= 0xF0 else 1
            result.append(c)
            i += 1
            continue

        begin = i
        i += 1
        if at(i) != ord("/"):
            while not _is_space(at(i)) and at(i) != ord(">"):
                i += 1
            if at(i) == 0:
                raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
            tag = data[begin + 1 : i].decode("utf-8", errors="replace").lower()
            if tag not in _SUPPORTED_TAGS:
                raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {begin}')
            argument = ""
            attrs: dict[str, str] = {}
            while at(i) != ord(">"):
                while at(i) != 0 and _is_space(at(i)):
                    i += 1
                if at(i) == ord(">"):
                    break
                attr_begin = i
                while not _is_space(at(i)) and at(i) not in (ord("="), ord(">")):
                    i += 1
                attr_name = data[attr_begin:i].decode("utf-8", errors="replace")
                if not attr_name:
                    raise EntityParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {begin}'
                    )
                while at(i) != 0 and _is_space(at(i)):
                    i += 1
                if at(i) != ord("="):
                    if at(i) == 0:
                        raise EntityParseError(
                            f'Unclosed start tag "{tag}" at byte offset {begin}'
                        )
                    if tag == "blockquote" and attr_name == "expandable":
                        argument = "1"
                    continue
                i += 1
                while at(i) != 0 and _is_space(at(i)):
                    i += 1
                if at(i) == 0:
                    raise EntityParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
                if at(i) not in (ord("'"), ord('"')):
                    token_begin = i
                    while _is_alnum(at(i)) or at(i) in (ord("."), ord("-")):
                        i += 1
                    value = data[token_begin:i].decode("ascii").lower()
                    if not _is_space(at(i)) and at(i) != ord(">"):
                        raise EntityParseError(
                            f"Unexpected end of name token at byte offset {token_begin}"
                        )
                else:
                    quote = at(i)
                    i += 1
                    raw = bytearray()
                    while at(i) != quote and at(i) != 0:
                        if at(i) == ord("&"):
                            cp, new_i = _decode_html_entity(data, i)
                            if cp:
                                _append_code_point(raw, cp)
                                i = new_i
                                continue
                        raw.append(at(i))
                        i += 1
                    if at(i) == quote:
                        i += 1
                    value = raw.decode("utf-8", errors="surrogatepass")
                if at(i) == 0:
                    raise EntityParseError(f"Unclosed start tag at byte offset {begin}")
                attrs[attr_name] = value
                if tag == "a" and attr_name == "href":
                    argument = value
                elif tag == "code" and attr_name == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attr_name == "class" and value.startswith("tg-spoiler"):
                    argument = "spoiler"
                elif tag == "tg-emoji" and attr_name == "emoji-id":
                    argument = value
                elif tag == "blockquote" and attr_name == "expandable":
                    argument = "1"
            if tag == "span" and argument != "spoiler":
                raise EntityParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {begin}'
                )
            if tag == "tg-emoji" and not (argument.isdigit() and int(argument) > 0):
                raise EntityParseError("Invalid custom emoji identifier specified")
            if tag == "tg-time":
                unix = attrs.get("unix", "")
                fmt = attrs.get("format", "")
                if not unix.lstrip("-").isdigit():
                    raise EntityParseError("Invalid Unix time specified")
                if not _DATE_FORMAT_RE.match(fmt):
                    raise EntityParseError("Invalid date format used")
            nested.append((tag, argument, utf16_offset, len(result), attrs))
        else:
            if not nested:
                raise EntityParseError(f"Unexpected end tag at byte offset {begin}")
            while not _is_space(at(i)) and at(i) != ord(">"):
                i += 1
            end_tag = data[begin + 2 : i].decode("utf-8", errors="replace")
            while _is_space(at(i)) and at(i) != 0:
                i += 1
            if at(i) != ord(">"):
                raise EntityParseError(f"Unclosed end tag at byte offset {begin}")
            tag, argument, entity_offset, entity_begin, attrs = nested[-1]
            if end_tag and end_tag != tag:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {begin}, expected "</{tag}>", '
                    f'found "</{end_tag}>"'
                )
            if utf16_offset > entity_offset:
                length = utf16_offset - entity_offset
                _close_entity(
                    entities,
                    tag,
                    argument,
                    attrs,
                    entity_offset,
                    length,
                    bytes(result[entity_begin:]),
                )
            nested.pop()
        i += 1

    if nested:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{nested[-1][0]}"')
    try:
        plain = bytes(result).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EntityParseError(
            "Text contains invalid Unicode characters after decoding HTML entities, check for "
            "unmatched surrogate code units"
        ) from exc
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)
    return plain, sort_entities(entities)


def _close_entity(
    entities: list[Entity],
    tag: str,
    argument: str,
    attrs: dict[str, str],
    offset: int,
    length: int,
    inner: bytes,
) -> None:
    if tag in _SIMPLE_TAGS:
        entities.append({"type": _SIMPLE_TAGS[tag], "offset": offset, "length": length})
    elif tag == "a":
        url = argument or inner.decode("utf-8", errors="replace")
        user = re.fullmatch(r"tg://user\?id=(\d+)", url)
        if user:
            entities.append(
                {
                    "type": "text_mention",
                    "offset": offset,
                    "length": length,
                    "user_id": int(user.group(1)),
                }
            )
            return
        normalized = normalize_url(url)
        if normalized is not None:
            entities.append(
                {"type": "text_link", "offset": offset, "length": length, "url": normalized}
            )
    elif tag == "pre":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "code"
            and last["offset"] == offset
            and last["length"] == length
            and last.get("language")
        ):
            last["type"] = "pre"
        else:
            entities.append({"type": "pre", "offset": offset, "length": length})
    elif tag == "code":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "pre"
            and last["offset"] == offset
            and last["length"] == length
            and argument
        ):
            last["language"] = argument
        else:
            entity: Entity = {"type": "code", "offset": offset, "length": length}
            if argument:
                entity["language"] = argument
            entities.append(entity)
    elif tag == "tg-emoji":
        entities.append(
            {
                "type": "custom_emoji",
                "offset": offset,
                "length": length,
                "custom_emoji_id": argument,
            }
        )
    elif tag == "blockquote":
        kind = "expandable_blockquote" if argument else "blockquote"
        entities.append({"type": kind, "offset": offset, "length": length})
    elif tag == "tg-time":
        entity = {
            "type": "date_time",
            "offset": offset,
            "length": length,
            "unix_time": int(attrs.get("unix", "0")),
        }
        if attrs.get("format"):
            entity["date_time_format"] = attrs["format"]
        entities.append(entity)


def sort_entities(entities: list[Entity]) -> list[Entity]:
    """Order entities as TDLib does: offset, longer first, then type priority."""
    return sorted(
        entities,
        key=lambda e: (
            e["offset"],
            -e["length"],
            _TYPE_PRIORITY.get(e["type"], _DEFAULT_PRIORITY),
        ),
    )


# --- automatic entities -------------------------------------------------------------------

_COMMAND_RE = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>@])")
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{2,31}(?![\w@])")
_HASHTAG_RE = re.compile(r"(?<![\w#])#\w*[^\W\d_]\w*")
_URL_RE = re.compile(
    r"(?<![\w@/.])(?:https?://[^\s<>\"]+|(?:www\.|t\.me/|telegram\.me/)[^\s<>\"]*)",
    re.IGNORECASE,
)
_NON_SPLITTABLE = frozenset({"pre", "code", "text_link", "text_mention", "custom_emoji"})


def find_entities(text: str, existing: list[Entity] | None = None) -> list[Entity]:
    """Entities Telegram detects by itself: bot commands, mentions, hashtags and URLs.

    Matches that overlap a code, pre or link entity of ``existing`` are skipped.
    """
    taken: list[tuple[int, int]] = [
        (e["offset"], e["offset"] + e["length"])
        for e in existing or []
        if e["type"] in _NON_SPLITTABLE
    ]
    found: list[Entity] = []
    for kind, pattern in (
        ("bot_command", _COMMAND_RE),
        ("url", _URL_RE),
        ("mention", _MENTION_RE),
        ("hashtag", _HASHTAG_RE),
    ):
        for match in pattern.finditer(text):
            value = match.group(0)
            if kind == "url":
                value = value.rstrip(".,;:!?)'")
                if value.lower() in ("www.", "t.me/", "telegram.me/"):
                    continue
            start = utf16_len(text[: match.start()])
            length = utf16_len(value)
            end = start + length
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            taken.append((start, end))
            found.append({"type": kind, "offset": start, "length": length})
    return found


def trim_text(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Strip leading and trailing whitespace, clipping entities to what remains."""
    stripped_left = text.lstrip()
    lead = utf16_len(text) - utf16_len(stripped_left)
    trimmed = stripped_left.rstrip()
    total = utf16_len(trimmed)
    out: list[Entity] = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            clipped = dict(entity)
            clipped["offset"] = start
            clipped["length"] = end - start
            out.append(clipped)
    return trimmed, out


def process_text(
    text: str,
    parse_mode: str | None,
    explicit_entities: list[Entity] | None = None,
) -> tuple[str, list[Entity]]:
    """What Telegram stores for a sent text: parse, trim, detect entities.

    Raises :class:`EntityParseError` for bad markup and :class:`ValueError` with
    ``"unsupported parse_mode"`` for an unknown mode.
    """
    mode = (parse_mode or "").strip()
    entities: list[Entity]
    if explicit_entities:
        plain, entities = text, [dict(e) for e in explicit_entities]
    elif not mode:
        plain, entities = text, []
    elif mode.lower() == "html":
        plain, entities = parse_html(text)
    elif mode.lower() == "markdownv2":
        from sandbox.markdown import parse_markdown_v2

        plain, entities = parse_markdown_v2(text)
    elif mode.lower() == "markdown":
        from sandbox.markdown import parse_markdown_legacy

        plain, entities = parse_markdown_legacy(text)
    else:
        raise ValueError("unsupported parse_mode")
    plain, entities = trim_text(plain, entities)
    entities = sort_entities(entities + find_entities(plain, entities))
    return plain, entities
