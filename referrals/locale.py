"""The languages texts come in, and how a person's language is chosen: the one home of both."""

from __future__ import annotations

LOCALES = ("en", "id")
DEFAULT_LOCALE = "en"


def pick_locale(*candidates: str | None) -> str:
    """The first supported language among ``candidates`` (``id-ID`` counts as ``id``), in the
    order given (say: the person's choice, their app's language, the program's); English
    when none is supported."""
    for candidate in candidates:
        if candidate:
            short = candidate.split("-")[0].lower()
            if short in LOCALES:
                return short
    return DEFAULT_LOCALE
