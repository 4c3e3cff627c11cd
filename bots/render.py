"""Every text a person reads comes from ``bots/templates/<locale>/``.

Telegram templates end in ``.html.j2`` and are autoescaped for Telegram's HTML parse mode,
so names and titles that people control can never inject markup. Button labels are
macros in ``labels.html.j2``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

TEMPLATES = Path(__file__).parent / "templates"
LOCALES = ("en", "id")
DEFAULT_LOCALE = "en"


def pick_locale(*candidates: str | None) -> str:
    """The first supported language among ``candidates`` (``id-ID`` counts as ``id``)."""
    for candidate in candidates:
        if candidate:
            short = candidate.split("-")[0].lower()
            if short in LOCALES:
                return short
    return DEFAULT_LOCALE


class Renderer:
    def __init__(self, root: Path = TEMPLATES) -> None:
        self.env = Environment(
            loader=FileSystemLoader(str(root)),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters["plural"] = _plural
        self.env.filters["when"] = _when

    def text(self, locale: str | None, template_name: str, /, **context: Any) -> str:
        """Render message ``template_name`` in ``locale`` (falls back to English)."""
        template = self.env.get_template(f"{pick_locale(locale)}/{template_name}.html.j2")
        return template.render(**context).strip()

    def label(self, locale: str | None, key: str, /, **context: Any) -> str:
        """A button label: the macro ``key`` of the locale's ``labels.html.j2``."""
        module = self.env.get_template(f"{pick_locale(locale)}/labels.html.j2").module
        macro = getattr(module, key)
        # Button labels are plain text for the platform: no HTML entities.
        return _unescape(str(macro(**context)).strip())

    def names(self) -> dict[str, set[str]]:
        """Template names per locale (tests check every locale has every template)."""
        found: dict[str, set[str]] = {}
        for locale in LOCALES:
            found[locale] = {
                path.name.removesuffix(".html.j2")
                for path in (TEMPLATES / locale).glob("*.html.j2")
            }
        return found


def _when(value: Any) -> str:
    """A time as ``2026-11-22 14:05 UTC`` (values travel through the outbox as ISO text)."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


def _unescape(value: str) -> str:
    return Markup(value).unescape()
