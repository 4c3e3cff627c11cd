"""Texts managers write for their rewards: jinja2 in a sandbox, autoescaped, in the HTML
subset every adapter renders (Telegram's HTML parse mode; the Discord flavour turns it into
markdown). A template is checked when it is saved — its syntax, the variables it may use,
its markup, its length — so a reader never sees a template error."""

from __future__ import annotations

from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from rewards.models import BadMilestone

MAX_TEMPLATE = 4096  # Telegram's limit for a message's text
VARIABLES = ("name", "count", "link", "program", "reward", "code")
SAMPLE: dict[str, Any] = {
    "name": "Alice",
    "count": 10,
    "link": "https://t.me/example?start=ref",
    "program": "Example",
    "reward": "Sticker pack",
    "code": "CODE-1234",
}
# Telegram's HTML parse mode: these tags (with these attributes) and nothing else.
ALLOWED_TAGS: dict[str, frozenset[str]] = {
    "b": frozenset(),
    "strong": frozenset(),
    "i": frozenset(),
    "em": frozenset(),
    "u": frozenset(),
    "ins": frozenset(),
    "s": frozenset(),
    "strike": frozenset(),
    "del": frozenset(),
    "tg-spoiler": frozenset(),
    "span": frozenset({"class"}),
    "a": frozenset({"href"}),
    "code": frozenset({"class"}),
    "pre": frozenset(),
    "blockquote": frozenset({"expandable"}),
}

_env = ImmutableSandboxedEnvironment(autoescape=True, undefined=StrictUndefined)


def check_template(source: str) -> str:
    """The template as it will be used; :class:`BadMilestone` (``template``, ``markup`` or
    ``length``) with the line and the problem when it cannot be."""
    if not isinstance(source, str) or not source.strip():
        raise BadMilestone("template", "the message is empty")
    if len(source) > MAX_TEMPLATE:
        raise BadMilestone("length", "the message is too long", limit=MAX_TEMPLATE)
    try:
        rendered = render_template(source, SAMPLE)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        raise BadMilestone(
            "template", f"template error: {exc.message or exc}", line=line, detail=str(exc)
        ) from None
    problem = markup_problem(rendered)
    if problem is not None:
        raise BadMilestone("markup", problem, detail=problem)
    if len(rendered) > MAX_TEMPLATE:
        raise BadMilestone("length", "the message is too long", limit=MAX_TEMPLATE)
    return source


def render_template(source: str, variables: Mapping[str, Any]) -> str:
    """Render a checked template with the reader's values (escaped)."""
    values = {name: variables.get(name, "") for name in VARIABLES}
    return _env.from_string(source).render(**values)


def markup_problem(text: str) -> str | None:
    """Why ``text`` is not Telegram HTML (an unknown tag, an attribute, an unclosed or
    stray tag), or None."""
    checker = _MarkupChecker()
    try:
        checker.feed(text)
        checker.close()
    except _Bad as exc:
        return str(exc)
    if checker.open:
        return f"<{checker.open[-1]}> is not closed"
    return None


class _Bad(Exception):
    pass


class _MarkupChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            raise _Bad(f"<{tag}> is not allowed; use b, i, u, s, a, code, pre, blockquote")
        for name, _ in attrs:
            if name not in ALLOWED_TAGS[tag]:
                raise _Bad(f'<{tag} {name}="…"> is not allowed')
        if tag == "a" and not dict(attrs).get("href"):
            raise _Bad("<a> needs an href")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise _Bad(f"<{tag}/> is not allowed")

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            raise _Bad(f"</{tag}> does not close an open tag")
        self.open.pop()
