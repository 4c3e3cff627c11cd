"""Buttons on Discord: the outbox's plain button specs as a ``discord.ui.View``, and the
custom ids the bot answers.

Every button the bot answers is a ``discord.ui.DynamicItem`` registered once on the bot
(:meth:`Buttons.register`): its custom id carries all it needs (``ans:12``, ``lb:week:2``),
so a press is answered by whichever instance of the bot receives it, also after a restart,
and no view is kept in memory per message sent. A data button of the outbox whose custom id
no item answers is left out (pressing it would only fail), and so are copy buttons (Discord
has none: what they would copy is in the text).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import discord

from bots.render import Renderer
from delivery.actions import Button

MAX_LABEL = 80  # Discord's limits for a button
MAX_CUSTOM_ID = 100
MAX_URL = 512
MAX_ROWS = 5
MAX_PER_ROW = 5


class Buttons:
    """The custom ids this bot answers, and the views that draw the outbox's buttons."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self._patterns: list[re.Pattern[str]] = []

    def register(self, client: discord.Client, *items: type[discord.ui.DynamicItem[Any]]) -> None:
        """Answer presses of ``items`` from now on (cogs call this in ``cog_load``)."""
        client.add_dynamic_items(*items)
        for item in items:
            self._patterns.append(item.__discord_ui_compiled_template__)

    def unregister(
        self, client: discord.Client, *items: type[discord.ui.DynamicItem[Any]]
    ) -> None:
        client.remove_dynamic_items(*items)
        gone = {item.__discord_ui_compiled_template__ for item in items}
        self._patterns = [p for p in self._patterns if p not in gone]

    def answered(self, custom_id: str) -> bool:
        return any(pattern.fullmatch(custom_id) for pattern in self._patterns)

    def view(self, locale: str | None, rows: Sequence[Sequence[Button]]) -> discord.ui.View | None:
        """The buttons Discord can show, in their rows (None: none of them)."""
        view = discord.ui.View(timeout=None)
        shown_rows = 0
        for row in rows:
            placed = 0
            for spec in row:
                item = self._item(locale, spec, shown_rows)
                if item is None or placed == MAX_PER_ROW:
                    continue
                view.add_item(item)
                placed += 1
            if placed:
                shown_rows += 1
            if shown_rows == MAX_ROWS:
                break
        return view if view.children else None

    def _item(self, locale: str | None, spec: Button, row: int) -> discord.ui.Button[Any] | None:
        label = self.renderer.label(locale, spec.label, **spec.args)[:MAX_LABEL] or "…"
        if spec.url is not None:
            if len(spec.url) > MAX_URL or not spec.url.startswith(("https://", "http://")):
                return None
            return discord.ui.Button(label=label, url=spec.url, row=row)
        if spec.data is not None and len(spec.data) <= MAX_CUSTOM_ID and self.answered(spec.data):
            return discord.ui.Button(label=label, custom_id=spec.data, row=row)
        return None


def forget(view: discord.ui.View | None) -> None:
    """A view sent only to draw buttons (their presses go to the registered items): drop
    it from discord.py's store, which would keep it for as long as the process runs."""
    if view is not None:
        view.stop()


__all__ = ["Buttons", "forget"]
