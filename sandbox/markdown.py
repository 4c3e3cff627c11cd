"""MarkdownV2 and legacy Markdown parse modes, ported from TDLib's parsers.

Error texts match TDLib's (``Character '!' is reserved and must be escaped with the preceding
'\\'``, ``Can't find end of Bold entity at byte offset 9``, ...). Offsets are UTF-16.
"""

from __future__ import annotations

import re

from sandbox.html import Entity, EntityParseError, normalize_url, sort_entities

_RESERVED = "_*[]()~`>#+-=|{}.!"
_TYPE_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "code": "Code",
    "pre": "Pre",
    "pre_code": "PreCode",
    "text_link": "TextUrl",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "custom_emoji": "CustomEmoji",
}


def _cu(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def parse_markdown_v2(text: str) -> tuple[str, list[Entity]]:
    """Parse MarkdownV2; return ``(plain_text, entities)`` or raise EntityParseError."""
    out: list[str] = []
    entities: list[Entity] = []
    utf16 = 0
    # (type, argument, utf16_offset, char index in text, len(out) at start)
    nested: list[tuple[str, str, int, int, int]] = []
    quote_start: int | None = None
    n = len(text)

    def at(k: int) -> str:
        return text[k] if k < n else "\0"

    i = 0
    while i < n:
        c = text[i]
        at_line_start = i == 0 or text[i - 1] == "\n"
        if at_line_start and quote_start is not None and c != ">":
            _close_quote(entities, quote_start, utf16)
            quote_start = None
        if c == "\\" and 0 < ord(at(i + 1)) <= 126:
            out.append(text[i + 1])
            utf16 += 1
            i += 2
            continue
        reserved = _RESERVED
        if nested and nested[-1][0] in ("code", "pre", "pre_code"):
            reserved = "`"
        if c not in reserved:
            out.append(c)
            utf16 += _cu(c)
            i += 1
            continue
        if c == ">" and at_line_start and not nested:
            if quote_start is None:
                quote_start = utf16
            i += 1
            continue
        is_end = False
        if nested:
            kind = nested[-1][0]
            is_end = {
                "bold": c == "*",
                "italic": c == "_" and at(i + 1) != "_",
                "code": c == "`",
                "pre": c == "`" and at(i + 1) == "`" and at(i + 2) == "`",
                "pre_code": c == "`" and at(i + 1) == "`" and at(i + 2) == "`",
                "text_link": c == "]",
                "underline": c == "_" and at(i + 1) == "_",
                "strikethrough": c == "~",
                "spoiler": c == "|" and at(i + 1) == "|",
                "custom_emoji": c == "]",
            }[kind]
        if not is_end:
            start_index = i
            argument = ""
            if c == "_":
                if at(i + 1) == "_":
                    kind = "underline"
                    i += 1
                else:
                    kind = "italic"
            elif c == "*":
                kind = "bold"
            elif c == "~":
                kind = "strikethrough"
            elif c == "|" and at(i + 1) == "|":
                kind = "spoiler"
                i += 1
            elif c == "[":
                kind = "text_link"
            elif c == "`":
                if at(i + 1) == "`" and at(i + 2) == "`":
                    i += 3
                    kind = "pre"
                    lang_end = i
                    while at(lang_end) not in " \t\r\n\0`":
                        lang_end += 1
                    if i != lang_end and lang_end < n and at(lang_end) != "`":
                        kind = "pre_code"
                        argument = text[i:lang_end]
                        i = lang_end
                    if at(i) in "\r\n":
                        i += 2 if at(i + 1) in "\r\n" and at(i) != at(i + 1) else 1
                    i -= 1
                else:
                    kind = "code"
            elif c == "!" and at(i + 1) == "[":
                kind = "custom_emoji"
                i += 1
            else:
                raise EntityParseError(
                    f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
                )
            nested.append((kind, argument, utf16, start_index, len(out)))
            i += 1
            continue
        kind, argument, start_utf16, start_index, out_begin = nested.pop()
        skip = utf16 == start_utf16
        url = ""
        if kind in ("underline", "spoiler"):
            i += 1
        elif kind in ("pre", "pre_code"):
            i += 2
        elif kind in ("text_link", "custom_emoji"):
            if at(i + 1) != "(":
                url = "".join(out[out_begin:])
            else:
                i += 2
                url_begin = i
                chars: list[str] = []
                while i < n and text[i] != ")":
                    if text[i] == "\\" and 0 < ord(at(i + 1)) <= 126:
                        chars.append(text[i + 1])
                        i += 2
                        continue
                    chars.append(text[i])
                    i += 1
                if at(i) != ")":
                    raise EntityParseError(
                        f"Can't find end of a URL at byte offset {_byte_offset(text, url_begin)}"
                    )
                url = "".join(chars)
        if not skip:
            _add_entity(entities, kind, argument, url, start_utf16, utf16 - start_utf16)
        i += 1
    if nested:
        kind, _, _, start_index, _ = nested[-1]
        raise EntityParseError(
            f"Can't find end of {_TYPE_NAMES[kind]} entity at byte offset "
            f"{_byte_offset(text, start_index)}"
        )
    if quote_start is not None:
        _close_quote(entities, quote_start, utf16)
    return "".join(out), sort_entities(entities)


def _close_quote(entities: list[Entity], start: int, end: int) -> None:
    if end > start:
        entities.append({"type": "blockquote", "offset": start, "length": end - start})


def _add_entity(
    entities: list[Entity], kind: str, argument: str, url: str, offset: int, length: int
) -> None:
    if kind == "text_link":
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
        return
    if kind == "custom_emoji":
        match = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
        if not url:
            raise EntityParseError("The entity must contain a tg://emoji or tg://time URL")
        if not match:
            raise EntityParseError("Invalid tg://emoji or tg://time URL specified")
        entities.append(
            {
                "type": "custom_emoji",
                "offset": offset,
                "length": length,
                "custom_emoji_id": match.group(1),
            }
        )
        return
    if kind == "pre_code":
        entities.append({"type": "pre", "offset": offset, "length": length, "language": argument})
        return
    entities.append({"type": kind, "offset": offset, "length": length})


def parse_markdown_legacy(text: str) -> tuple[str, list[Entity]]:
    """Parse the legacy ``Markdown`` mode (``*bold*``, ``_italic_``, code, pre, links)."""
    out: list[str] = []
    entities: list[Entity] = []
    utf16 = 0
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c not in "_*`[":
            out.append(c)
            utf16 += _cu(c)
            i += 1
            continue
        begin = i
        if c == "`" and text.startswith("```", i):
            end = text.find("```", i + 3)
            if end < 0:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset "
                    f"{_byte_offset(text, begin)}"
                )
            body = text[i + 3 : end]
            language = ""
            first, sep, rest = body.partition("\n")
            if sep and first and " " not in first:
                language, body = first, rest
            if body:
                entity: Entity = {"type": "pre", "offset": utf16, "length": 0}
                if language:
                    entity["language"] = language
                out.append(body)
                length = sum(_cu(ch) for ch in body)
                entity["length"] = length
                utf16 += length
                entities.append(entity)
            i = end + 3
            continue
        if c == "[":
            close = text.find("]", i + 1)
            if close < 0 or not text.startswith("(", close + 1):
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset "
                    f"{_byte_offset(text, begin)}"
                )
            url_end = text.find(")", close + 2)
            if url_end < 0:
                raise EntityParseError(
                    f"Can't find end of a URL at byte offset {_byte_offset(text, close + 2)}"
                )
            label = text[i + 1 : close]
            url = text[close + 2 : url_end]
            length = sum(_cu(ch) for ch in label)
            if length:
                _add_entity(entities, "text_link", "", url, utf16, length)
            out.append(label)
            utf16 += length
            i = url_end + 1
            continue
        end = text.find(c, i + 1)
        if end < 0:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}"
            )
        body = text[i + 1 : end]
        length = sum(_cu(ch) for ch in body)
        if length:
            kind = {"_": "italic", "*": "bold", "`": "code"}[c]
            entities.append({"type": kind, "offset": utf16, "length": length})
        out.append(body)
        utf16 += length
        i = end + 1
    return "".join(out), sort_entities(entities)
