"""Every text a person reads comes from ``bots/templates/<locale>/``.

The templates end in ``.html.j2`` and are written in the small HTML subset Telegram's HTML
parse mode accepts (``<b> <i> <u> <s> <code> <pre> <a href>``); they are autoescaped, so
names and titles that people control can never inject markup. Each platform renders them
in its own escaping *flavour*:

- ``telegram``: the HTML as it is (every value a person controls is HTML-escaped);
- ``discord``: the same HTML turned into Discord markdown, every text markdown-escaped and
  every mention (``@everyone``, ``@here``, ``<@123>``, ``<#123>``…) neutralised, so no name
  can format a message or ping anyone.

Button labels are macros in ``labels.html.j2`` and the command menu's descriptions macros
in ``commands.html.j2``; both are plain text on every platform. The list of languages and
how one is chosen have their one home in ``referrals.locale``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from referrals.locale import LOCALES, pick_locale

TEMPLATES = Path(__file__).parent / "templates"
MACRO_FILES = ("labels", "commands", "_rewards")  # macros, not messages

Flavour = Literal["telegram", "discord"]
FLAVOURS: tuple[Flavour, ...] = ("telegram", "discord")

# Characters that reorder the text around them (embeddings, overrides, isolates): a name
# must not turn the rest of a message around.
_BIDI_CONTROLS = dict.fromkeys(
    [*range(0x202A, 0x202F), *range(0x2066, 0x206A)],
    None,
)


class Renderer:
    """Renders messages, button labels and command descriptions in one flavour (the
    default for :meth:`text`; each call may ask for another)."""

    def __init__(self, root: Path = TEMPLATES, flavour: Flavour = "telegram") -> None:
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}")
        self.root = root
        self.flavour: Flavour = flavour
        self.env = Environment(
            loader=FileSystemLoader(str(root)),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            finalize=_finalize,
        )
        self.env.filters["plural"] = _plural
        self.env.filters["when"] = when
        # Contexts queued before a template read the program's timezone still render.
        self.env.globals["timezone"] = "UTC"

    def text(
        self,
        locale: str | None,
        template_name: str,
        /,
        *,
        flavour: Flavour | None = None,
        **context: Any,
    ) -> str:
        """Render message ``template_name`` in ``locale`` (falls back to English) in
        ``flavour`` (the renderer's own when not given)."""
        template = self.env.get_template(f"{pick_locale(locale)}/{template_name}.html.j2")
        html = template.render(**context).strip()
        if (flavour or self.flavour) == "discord":
            return html_to_discord(html)
        return html

    def label(self, locale: str | None, key: str, /, **context: Any) -> str:
        """A button label: the macro ``key`` of the locale's ``labels.html.j2``."""
        return self._macro(locale, "labels", key, context)

    def command(self, locale: str | None, name: str, /) -> str:
        """The command menu's description of ``/name``: a macro of ``commands.html.j2``."""
        return self._macro(locale, "commands", name, {})

    def _macro(self, locale: str | None, file: str, key: str, context: dict[str, Any]) -> str:
        module = self.env.get_template(f"{pick_locale(locale)}/{file}.html.j2").module
        macro = getattr(module, key)
        # Plain text for every platform: no HTML entities, no markup.
        return _unescape(str(macro(**context)).strip())

    def names(self) -> dict[str, set[str]]:
        """Template names per locale (tests check every locale has every template)."""
        found: dict[str, set[str]] = {}
        for locale in LOCALES:
            found[locale] = {
                path.name.removesuffix(".html.j2")
                for path in (self.root / locale).glob("*.html.j2")
            }
        return found


def when(value: Any, timezone: str | None = "UTC") -> str:
    """A time in ``timezone`` as ``2026-11-22 21:05 WIB`` (the zone's abbreviation, or its
    offset from UTC such as ``UTC+08`` where the zone has none); values travel through the
    outbox as ISO text. An unknown zone shows UTC."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(_zone(timezone))
    name = local.tzname() or "UTC"
    if not name.isalpha():  # "+08", "-0330": say what it is
        name = f"UTC{name}"
    return f"{local:%Y-%m-%d %H:%M} {name}"


def _zone(name: str | None) -> ZoneInfo:
    if not name or name == "UTC":
        return _UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return _UTC


_UTC = ZoneInfo("UTC")


def _plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}`` passes here before escaping: text loses bidi controls."""
    if isinstance(value, str) and not value.isascii():
        stripped = value.translate(_BIDI_CONTROLS)
        if stripped != value:
            return Markup(stripped) if isinstance(value, Markup) else stripped
    return value


def _unescape(value: str) -> str:
    return Markup(value).unescape()


# --- Discord markdown ------------------------------------------------------------------------

ZWSP = "\u200b"
_MARKS = {"b": "**", "strong": "**", "i": "*", "em": "*", "u": "__", "ins": "__"}
_MARKS |= {"s": "~~", "strike": "~~", "del": "~~", "tg-spoiler": "||"}
# Markdown that works anywhere in a line, and what starts a heading, a list or a quote there.
_INLINE = re.compile(r"([\\*_~`|\[\]<])")
_LINE_MARK = re.compile(r"^([ \t]*)([#>+-])", re.M)
_LINE_NUMBER = re.compile(r"^([ \t]*\d+)([.)])", re.M)
# Discord links a URL before it reads markdown: inside one nothing is formatted.
_URL = re.compile(r"https?://[^\s<>\"'`|\[\]()\\]*[^\s<>\"'`|\[\]()\\.,;:!?*_~]")
_MENTIONS = re.compile(r"@(?=everyone|here)|<(?=[@#&/:a-z])", re.I)


def neutralise_mentions(text: str) -> str:
    """``@everyone``, ``@here``, ``<@123>``, ``<@!123>``, ``<@&123>``, ``<#123>``,
    ``</cmd:1>`` and ``<t:1>`` that cannot ping or resolve: a zero-width space after the
    ``@`` or the ``<``."""
    return _MENTIONS.sub(lambda m: m.group(0) + ZWSP, text)


def escape_markdown(text: str, *, line_start: bool = True) -> str:
    """``text`` shown as it is in Discord markdown, with mentions neutralised. URLs stay
    whole (Discord links them and formats nothing inside); ``line_start`` says whether the
    text begins a line (a ``#`` or ``-`` there would start a heading or a list)."""
    pieces = []
    last = 0
    for match in _URL.finditer(text):
        pieces.append(_escape_plain(text[last : match.start()]))
        pieces.append(match.group(0))
        last = match.end()
    pieces.append(_escape_plain(text[last:]))
    escaped = "".join(pieces)
    if line_start:
        escaped = _escape_line_starts(escaped)
    else:
        head, newline, rest = escaped.partition("\n")
        escaped = head + newline + _escape_line_starts(rest) if newline else head
    return neutralise_mentions(escaped)


def _escape_line_starts(text: str) -> str:
    return _LINE_NUMBER.sub(r"\1\\\2", _LINE_MARK.sub(r"\1\\\2", text))


def _escape_plain(text: str) -> str:
    return _INLINE.sub(r"\\\1", text)


def _code_text(text: str) -> str:
    """Text inside a code span or block: markdown does not apply there, but a backtick
    would end it (shown as a look-alike) and mentions are still neutralised."""
    return neutralise_mentions(text.replace("`", "\u02cb"))


def html_to_discord(html: str) -> str:
    """Telegram's HTML subset (what our templates use) as Discord markdown."""
    converter = _DiscordMarkdown()
    converter.feed(html)
    converter.close()
    return converter.result()


class _DiscordMarkdown(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        # One buffer per open element that needs its content before it can be written.
        self.stack: list[tuple[str, dict[str, str | None], list[str]]] = [("", {}, [])]

    @property
    def out(self) -> list[str]:
        return self.stack[-1][2]

    def _at_line_start(self) -> bool:
        for _tag, _attrs, buffer in reversed(self.stack):
            for piece in reversed(buffer):
                if piece:
                    return piece.endswith("\n")
        return True

    def _inside(self, *tags: str) -> bool:
        return any(tag in tags for tag, _attrs, _buffer in self.stack)

    def result(self) -> str:
        """What was converted; elements left open are written as they are."""
        while len(self.stack) > 1:
            tag, attrs, buffer = self.stack.pop()
            self.out.append(self._wrap(tag, attrs, "".join(buffer)))
        return "".join(self.out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.out.append("\n")
            return
        if tag == "span" and ("class", "tg-spoiler") in attrs:
            tag = "tg-spoiler"
        self.stack.append((tag, dict(attrs), []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self.stack[-1][0] == "tg-spoiler":
            tag = "tg-spoiler"
        if len(self.stack) == 1 or self.stack[-1][0] != tag:
            return  # a stray end tag: our templates never make one
        open_tag, attrs, buffer = self.stack.pop()
        self.out.append(self._wrap(open_tag, attrs, "".join(buffer)))

    def handle_data(self, data: str) -> None:
        if self._inside("code", "pre"):
            self.out.append(_code_text(data))
        else:
            self.out.append(escape_markdown(data, line_start=self._at_line_start()))

    def _wrap(self, tag: str, attrs: dict[str, str | None], inner: str) -> str:
        if tag in _MARKS:
            return _around(_MARKS[tag], inner)
        if tag == "code":
            if self._inside("pre"):
                return inner
            return f"`{inner}`" if inner else ""
        if tag == "pre":
            return f"```\n{inner.strip(chr(10))}\n```"
        if tag == "a":
            href = attrs.get("href") or ""
            if not href.startswith(("http://", "https://")) or not _URL.fullmatch(href):
                return inner  # not a link Discord would show as one
            if not inner or inner == escape_markdown(href, line_start=False):
                return href
            return f"[{inner}]({href})"
        if tag == "blockquote":
            return "\n".join(f"> {line}" for line in inner.strip("\n").split("\n"))
        return inner


def _around(mark: str, inner: str) -> str:
    """``inner`` between ``mark``s, with its outer whitespace kept outside (``** x**``
    would not be bold)."""
    core = inner.strip()
    if not core:
        return inner
    start = inner[: len(inner) - len(inner.lstrip())]
    end = inner[len(inner.rstrip()) :]
    return f"{start}{mark}{core}{mark}{end}"
