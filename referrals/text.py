"""Cleaning text that people control (names, titles) before it is stored."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

from referrals.models import Person

_SPACES = re.compile(r"\s+")
# Categories that render invisibly or reorder text: controls, format characters
# (zero-width joiners, bidi overrides), private use, surrogates, unassigned.
_DROP = {"Cc", "Cf", "Co", "Cs", "Cn"}


def clean_name(value: str | None, max_length: int = 64) -> str:
    """Printable, single-line, at most ``max_length`` characters; '' when nothing is left."""
    if not value:
        return ""
    value = value[: max_length * 8]  # a 10 KB name is cut before any work is done on it
    if value.isprintable() and unicodedata.is_normalized("NFC", value):
        # The common case, checked in C: no controls, format or unassigned characters and no
        # whitespace but plain spaces (str.isprintable), already NFC.
        kept = value if "  " not in value else _SPACES.sub(" ", value)
        kept = kept.strip()
    else:
        value = unicodedata.normalize("NFC", value)
        kept = "".join(ch for ch in value if unicodedata.category(ch) not in _DROP)
        kept = _SPACES.sub(" ", kept).strip()
    if len(kept) > max_length:
        kept = kept[: max_length - 1].rstrip() + "…"
    return kept


def member_row(program_id: int, person: Person, seen_at: datetime) -> dict[str, Any]:
    """The member row of someone acting in a program: their names, cleaned."""
    return {
        "program_id": program_id,
        "user_id": person.user_id,
        "display_name": clean_name(person.display_name),
        "username": clean_name(person.username, 64) or None,
        "first_seen_at": seen_at,
    }
