"""Rewards sent by hand, on Discord: the reader's "Answer" button (``ans:<grant>``, on the
reward's DM and on /rewards) opens a form for the reward's question, and the answer goes to
the rewards service; managers see the answers in /fulfil and mark each one sent, and
approve or reject the rewards waiting for them in /grants (Telegram's /fulfil and /grants).

The service decides: a reward that is not the reader's, or no longer waits for an answer,
is refused and said so, privately. Every manager button checks Manage Server in code and
the service checks the manager again. Custom ids carry all a press or a submit needs, so
any instance of the bot answers them, also after a restart.
"""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bots import views
from bots.discord.app import PLATFORM, ReferralBot
from bots.discord.common import (
    answer,
    defer,
    error,
    locale_of,
    manager_program,
    update,
)
from bots.render import escape_markdown
from referrals.models import EngineError, Program
from rewards.models import GrantState
from rewards.service import MAX_ANSWER

ANSWER_FIELD = "answer"
MAX_TITLE = 45  # Discord: a modal's title and a label's text
MAX_QUESTION_SHOWN = 1000
QUEUE_SIZE = 5  # Telegram's page of a queue: five grants, one row of buttons each kind
ANSWERABLE = frozenset({GrantState.AWAITING_ANSWER, GrantState.FULFILLING})


class AnswerButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"ans:(?P<grant>[0-9]{1,19})"
):
    """The "Answer" button of a reward sent by hand: opens the form for its question."""

    def __init__(self, grant_id: int, label: str = "") -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "✍️", custom_id=f"ans:{grant_id}", style=discord.ButtonStyle.primary
            )
        )
        self.grant_id = grant_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> AnswerButton:
        return cls(int(match["grant"]), getattr(item, "label", None) or "")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = interaction.client
        assert isinstance(bot, ReferralBot)
        try:
            grant, question = await bot.rewards.reader_grant(self.grant_id, interaction.user.id)
        except EngineError as exc:
            await answer(bot, interaction, "error", views.engine_error(exc))
            return
        if grant.state not in ANSWERABLE:
            await error(bot, interaction, "answer_closed", title=grant.title)
            return
        form = AnswerForm(bot, locale_of(interaction), grant.id, grant.title, question or "")
        await interaction.response.send_modal(form)
        form.stop()  # not kept: FulfilCog.on_interaction answers its submit


class AnswerForm(discord.ui.Modal):
    """The reward's question and one text field. Only drawn: its submit is answered by
    :meth:`FulfilCog.on_interaction` from the custom id, not by a form kept in memory, so a
    submit after a restart, or a second one, is answered like the first."""

    def __init__(self, bot: ReferralBot, locale: str, grant_id: int, title: str, question: str):
        heading = bot.renderer.label(locale, "answer_form", title=title)[:MAX_TITLE]
        super().__init__(title=heading, custom_id=f"ans:{grant_id}:form", timeout=None)
        if question:
            self.add_item(discord.ui.TextDisplay(escape_markdown(question[:MAX_QUESTION_SHOWN])))
        field: discord.ui.TextInput[AnswerForm] = discord.ui.TextInput(
            custom_id=ANSWER_FIELD,
            style=discord.TextStyle.paragraph,
            max_length=MAX_ANSWER,
            required=True,
        )
        label = bot.renderer.label(locale, "answer_field")[:MAX_TITLE]
        self.add_item(discord.ui.Label(text=label, component=field))


FORM = re.compile(r"ans:(?P<grant>[0-9]{1,19}):form")


def submitted_values(components: list[Any]) -> dict[str, str]:
    """custom id → value of a modal submit's fields (in action rows or in labels)."""
    found: dict[str, str] = {}
    for component in components:
        if not isinstance(component, dict):
            continue
        inner = [*component.get("components", []), component.get("component")]
        found.update(submitted_values([c for c in inner if c is not None]))
        if "custom_id" in component and "value" in component:
            found[str(component["custom_id"])] = str(component["value"] or "")
    return found


async def store_answer(
    bot: ReferralBot, interaction: discord.Interaction[Any], grant_id: int
) -> None:
    """A submitted form: the answer goes to the rewards service (which refuses a reward not
    the reader's, or one that waits for no answer), and the reader is thanked privately."""
    data: dict[str, Any] = dict(interaction.data or {})
    text = submitted_values(list(data.get("components") or [])).get(ANSWER_FIELD, "")
    try:
        grant = await bot.rewards.answer(PLATFORM, interaction.user.id, grant_id, text)
    except EngineError as exc:
        await answer(bot, interaction, "error", views.engine_error(exc))
        return
    bot.outbox.wake()  # the managers are told
    await answer(bot, interaction, "answer_prompt", views.answer_prompt(grant, None, saved=True))


def answer_buttons(bot: ReferralBot, locale: str, grant_ids: list[int]) -> discord.ui.View | None:
    """An "Answer" button for each reward that waits for the reader's answer."""
    if not grant_ids:
        return None
    view = discord.ui.View(timeout=None)
    label = bot.renderer.label(locale, "answer_question")
    for grant_id in grant_ids[:25]:
        view.add_item(AnswerButton(grant_id, f"{label} #{grant_id}"))
    return view


# --- managers: /grants and /fulfil --------------------------------------------------------


class QueueButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"gq:(?P<which>[af]):(?P<action>[arfp]):(?P<grant>[0-9]{1,19}):(?P<page>[0-9]{1,4})",
):
    """Approve (``a``), reject (``r``), mark sent (``f``) or page (``p``) a manager's queue
    of rewards (``which``: ``a`` approval, ``f`` fulfilment)."""

    def __init__(
        self,
        which: str,
        action: str,
        grant_id: int,
        page: int,
        label: str = "",
        *,
        row: int | None = None,
    ) -> None:
        style = discord.ButtonStyle.danger if action == "r" else discord.ButtonStyle.secondary
        if action in ("a", "f"):
            style = discord.ButtonStyle.success
        super().__init__(
            discord.ui.Button(
                label=label or action,
                custom_id=f"gq:{which}:{action}:{grant_id}:{page}",
                style=style,
                row=row,
            )
        )
        self.which, self.action, self.grant_id, self.page = which, action, grant_id, page

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> QueueButton:
        return cls(
            match["which"],
            match["action"],
            int(match["grant"]),
            int(match["page"]),
            getattr(item, "label", None) or "",
        )

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = interaction.client
        assert isinstance(bot, ReferralBot)
        program = await manager_program(bot, interaction)
        if program is None:
            return
        actor, done = interaction.user.id, ""
        try:
            if self.action in ("a", "r"):
                await bot.rewards.decide(self.grant_id, actor, approve=self.action == "a")
                done = "approved" if self.action == "a" else "rejected"
            elif self.action == "f":
                await bot.rewards.fulfilled(self.grant_id, actor)
                done = "fulfilled"
            text, view, buttons = await _queue(
                bot, interaction, program, self.which, self.page, done
            )
        except EngineError as exc:
            await answer(bot, interaction, "error", views.engine_error(exc))
            return
        bot.outbox.wake()
        await update(bot, interaction, text, view, buttons)


async def _queue(
    bot: ReferralBot,
    interaction: discord.Interaction[Any],
    program: Program,
    which: str,
    page: int,
    done: str = "",
) -> tuple[str, views.View, discord.ui.View | None]:
    """A page of a queue and its buttons: five rewards, their buttons a row per kind."""
    kind = "approval" if which == "a" else "fulfilment"
    grants, total = await bot.rewards.queue(
        program.id, interaction.user.id, kind, page, QUEUE_SIZE
    )
    locale = locale_of(interaction)
    label = bot.renderer.label
    view = discord.ui.View(timeout=None)
    for grant in grants:
        if which == "a":
            approving = label(locale, "approve_grant", id=grant.id)
            view.add_item(QueueButton(which, "a", grant.id, page, approving, row=0))
        else:
            sent = label(locale, "fulfilled_grant", id=grant.id)
            view.add_item(QueueButton(which, "f", grant.id, page, sent, row=0))
    if which == "a":
        for grant in grants:
            rejecting = label(locale, "reject_grant", id=grant.id)
            view.add_item(QueueButton(which, "r", grant.id, page, rejecting, row=1))
    if page > 1:
        view.add_item(QueueButton(which, "p", 0, page - 1, label(locale, "back"), row=2))
    if page * QUEUE_SIZE < total:
        view.add_item(QueueButton(which, "p", 1, page + 1, label(locale, "more"), row=2))
    shown = views.grant_queue(program, grants, total, kind, page, done=done)
    return "grant_queue", shown, view if view.children else None


class FulfilCog(commands.Cog):
    def __init__(self, bot: ReferralBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.port.buttons.register(self.bot, AnswerButton, QueueButton)

    async def cog_unload(self) -> None:
        self.bot.port.buttons.unregister(self.bot, AnswerButton, QueueButton)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A submitted answer form, known by its custom id (``ans:<grant>:form``)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        found = FORM.fullmatch(str(data.get("custom_id", "")))
        if found is not None:
            await store_answer(self.bot, interaction, int(found["grant"]))

    @app_commands.command(name="fulfil", description="Rewards to send by hand, with the answers")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def fulfil(
        self, interaction: discord.Interaction, page: app_commands.Range[int, 1, 1000] = 1
    ) -> None:
        """Rewards sent by hand whose readers answered: send each, then mark it sent (the
        reader is told). Managers only."""
        await self._show(interaction, "f", page)

    @app_commands.command(name="grants", description="Rewards waiting for a manager's approval")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    async def grants(
        self, interaction: discord.Interaction, page: app_commands.Range[int, 1, 1000] = 1
    ) -> None:
        """Rewards to approve or reject (also those whose reader fell below them since).
        Managers only."""
        await self._show(interaction, "a", page)

    async def _show(self, interaction: discord.Interaction, which: str, page: int) -> None:
        program = await manager_program(self.bot, interaction)
        if program is None:
            return
        await defer(interaction)
        try:
            template, view, buttons = await _queue(self.bot, interaction, program, which, page)
        except EngineError as exc:
            await answer(self.bot, interaction, "error", views.engine_error(exc))
            return
        await answer(self.bot, interaction, template, view, buttons=buttons)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, ReferralBot)
    await bot.add_cog(FulfilCog(bot))


__all__ = ["AnswerButton", "AnswerForm", "FulfilCog", "QueueButton", "answer_buttons", "setup"]
