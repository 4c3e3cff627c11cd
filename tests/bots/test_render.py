"""The renderer's flavours: Telegram HTML and Discord markdown from the same templates, with
whatever people control kept as text (no markup, no formatting, no pings), and times shown
in the program's timezone."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bots.render import (
    FLAVOURS,
    ZWSP,
    Renderer,
    escape_markdown,
    html_to_discord,
    neutralise_mentions,
    pick_locale,
    when,
)
from tests.bots.test_templates import CASES, SAMPLES, _html_problems, _invite_card, _item, _stats

# Names people choose, each of which would do something if it were not escaped.
HOSTILE = [
    "<b>Eve</b>",
    "</code></b><i>",
    "Tom & Jerry &amp; &lt;",
    "**bold** __under__ ~~gone~~ *it* _it_",
    "@everyone",
    "@here and @everyone",
    "<@1234> <@!1234> <@&987> <#555> </invite:1> <t:1700000000:R>",
    "`code` ```block```",
    "||spoiler||",
    "[click](https://evil.example)",
    "# Heading",
    "> quote",
    "- item",
    "1. first",
    "back\\slash",
    "zero\u200bwidth\u200d joiner",
    "\u202eevil\u202c reversed \u2067isolate\u2069",
    "مرحبا שלום",
    "N" * 10_000,
]
PINGS = re.compile(r"@(everyone|here)|<(@[!&]?|#|/|t:)\S")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def _hostile_context(name: str) -> dict[str, Any]:
    return {
        **_invite_card(label="whatsapp"),
        "program_title": name,
    }


# --- Telegram ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_names_stay_text_in_telegram_html(renderer: Renderer, name: str) -> None:
    text = renderer.text("en", "invite_card", **_hostile_context(name))
    assert _html_problems(text) == [], text[:300]
    if "<" in name or "&" in name:
        assert name not in text  # shown escaped, never as markup
    assert "\u202e" not in text and "\u2067" not in text  # nothing turns the text around


def test_telegram_escapes_markup_and_entities(renderer: Renderer) -> None:
    text = renderer.text("en", "invite_card", **_hostile_context("</code>Tom & <b>Jerry</b>"))
    assert "&lt;/code&gt;Tom &amp; &lt;b&gt;Jerry&lt;/b&gt;" in text


def test_the_renderers_default_flavour_is_telegram_and_each_call_may_choose(
    renderer: Renderer,
) -> None:
    context = _hostile_context("Daily Brief")
    assert renderer.flavour == "telegram"
    html = renderer.text("en", "invite_card", **context)
    assert "<b>How it counts</b>" in html
    markdown = renderer.text("en", "invite_card", flavour="discord", **context)
    assert "**How it counts**" in markdown and "<b>" not in markdown
    assert Renderer(flavour="discord").text("en", "invite_card", **context) == markdown
    with pytest.raises(ValueError):
        Renderer(flavour="slack")  # type: ignore[arg-type]


# --- Discord -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_names_stay_text_in_discord_markdown(renderer: Renderer, name: str) -> None:
    text = renderer.text("en", "invite_card", flavour="discord", **_hostile_context(name))
    title = text.splitlines()[0]
    assert title.startswith("🔗 **Your “whatsapp” invite link for ") and title.endswith("**")
    inner = title.removeprefix("🔗 **").removesuffix("**")
    # No markdown of the name's own survives: every marker is escaped.
    unescaped = re.sub(r"\\.", "", inner)
    assert not re.search(r"[*_~`|\[\]<]", unescaped), inner[:200]
    assert not PINGS.search(text), text[:200]
    assert "<" not in text.replace("\\<", "")  # no raw tag, mention or link form
    assert "\u202e" not in text and "\u2067" not in text


def test_discord_mentions_cannot_ping(renderer: Renderer) -> None:
    name = "@everyone @here <@1234> <@!1234> <@&987> <#555>"
    text = renderer.text("en", "invite_sent_privately", flavour="discord", name=name)
    assert not PINGS.search(text)
    assert text.startswith(
        f"@{ZWSP}everyone @{ZWSP}here \\<{ZWSP}@1234> \\<{ZWSP}@!1234> \\<{ZWSP}@&987>"
        f" \\<{ZWSP}#555>, I sent your invite link"
    )


def test_discord_escapes_what_starts_a_heading_a_list_or_a_quote() -> None:
    assert escape_markdown("# big\n- item\n> quote\n1. one\n  + two") == (
        "\\# big\n\\- item\n\\> quote\n1\\. one\n  \\+ two"
    )
    assert escape_markdown("a - b # c > d 1. e") == "a - b # c > d 1. e"
    assert escape_markdown("# not at the start", line_start=False) == "# not at the start"


def test_discord_keeps_urls_whole() -> None:
    url = "https://t.me/+AbC_dEf*1~2"
    assert escape_markdown(f"see {url}.") == f"see {url}."
    assert escape_markdown("a_b https://x.example/a_b c_d") == "a\\_b https://x.example/a_b c\\_d"


def test_discord_converts_telegrams_html_subset() -> None:
    html = (
        "<b>bold</b> <i>it</i> <u>under</u> <s>gone</s> <code>a`b</code> "
        '<a href="https://x.io/p">the <b>link</b></a> <a href="https://x.io/q">https://x.io/q</a>'
        " <tg-spoiler>hid</tg-spoiler>"
        "\n<pre>line 1\n@everyone</pre>\n<blockquote>quoted\nlines</blockquote>"
    )
    assert html_to_discord(html) == (
        "**bold** *it* __under__ ~~gone~~ `a\u02cbb` [the **link**](https://x.io/p)"
        " https://x.io/q ||hid||\n```\nline 1\n@\u200beveryone\n```\n> quoted\n> lines"
    )


def test_discord_keeps_whitespace_outside_the_markers() -> None:
    assert html_to_discord("<b> padded </b>|<i></i>|<b> </b>") == " **padded** \\|\\| "


def test_neutralise_mentions_leaves_other_text_alone() -> None:
    assert neutralise_mentions("mail ana@example.com, 3 < 4") == "mail ana@example.com, 3 < 4"


def test_an_invite_card_in_discord_markdown(renderer: Renderer) -> None:
    context = _invite_card(hold_hours=1, created_new=True, replaced=True, pending=2, held=1)
    assert renderer.text("en", "invite_card", flavour="discord", **context) == (
        "🔗 **Your invite link for Daily Brief**\n"
        "https://t.me/+AbCdEf123\n"
        "\n"
        "**How it counts**\n"
        "• A friend who joins through this link counts for you once they have stayed 1 hour.\n"
        "• Each person counts once, for the first reader who invited them.\n"
        "• Leaving during the hold period, or inviting yourself, does not count.\n"
        "• This link is new; your old link no longer counts.\n"
        "\n"
        "**Your friends so far:** 3 counted, 2 waiting, 1 under review. Details: /stats"
    )


def test_a_receipt_in_discord_markdown(renderer: Renderer) -> None:
    items = [
        _item("referral", "pending", hold_until="2026-11-23T09:30:00+00:00"),
        _item("referral", "held", "burst", name="C_y*"),
        _item("attempt", "not_counted", "rejoin", name=""),
    ]
    context = {**_stats(items, 1, 2), "timezone": "Asia/Jakarta"}
    assert renderer.text("en", "stats", flavour="discord", **context) == (
        "📊 **Your referrals — Daily Brief**\n"
        "2 counted · 1 waiting · 3 under review · 5 not counted\n"
        "\n"
        "⏳ **Bob** — 2026-11-20 16:30 WIB\n"
        "   waiting: counts on 2026-11-23 16:30 WIB if they stay\n"
        "🔎 **C\\_y\\*** — 2026-11-20 16:30 WIB\n"
        "   waiting for a manager to review (many joins at once)\n"
        "➖ **Someone** — 2026-11-20 16:30 WIB\n"
        "   not counted: they were a member before\n"
        "Page 1 of 2"
    )


@pytest.mark.parametrize(("name", "i"), CASES)
def test_every_template_renders_as_discord_markdown(renderer: Renderer, name: str, i: int) -> None:
    for locale in ("en", "id"):
        text = renderer.text(locale, name, flavour="discord", **SAMPLES[name][i])
        assert text.strip() and "None" not in text
        assert not re.search(r"</?[a-z][a-z-]*[ >]", text), text  # no HTML left
        assert "&lt;" not in text and "&amp;" not in text and "&gt;" not in text
        assert len(text) <= 2000 or name == "stats"  # Discord's limit; a page is split there


# --- times ---------------------------------------------------------------------------------


def test_times_are_shown_in_the_programs_timezone() -> None:
    at = "2026-11-22T14:05:00+00:00"
    assert when(at) == "2026-11-22 14:05 UTC"
    assert when(at, "Asia/Jakarta") == "2026-11-22 21:05 WIB"
    assert when(at, "Asia/Makassar") == "2026-11-22 22:05 WITA"
    assert when(at, "Asia/Singapore") == "2026-11-22 22:05 UTC+08"  # a zone without a name
    assert when(at, "Not/AZone") == "2026-11-22 14:05 UTC"
    assert when(None, "Asia/Jakarta") == "" and when("", "UTC") == ""


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_receipt_in_jakarta_shows_jakarta_time(renderer: Renderer, flavour: Any) -> None:
    items = [_item("referral", "confirmed", left_at="2026-11-24T18:05:00+00:00")]
    for locale in ("en", "id"):
        context = {**_stats(items), "timezone": "Asia/Jakarta"}
        text = renderer.text(locale, "stats", flavour=flavour, **context)
        assert "2026-11-20 16:30 WIB" in text and "2026-11-25 01:05 WIB" in text
        assert "UTC" not in text


def test_a_receipt_without_a_timezone_shows_utc(renderer: Renderer) -> None:
    """A receipt queued before views carried the timezone still renders."""
    text = renderer.text("en", "stats", **_stats([_item("referral", "confirmed")]))
    assert "2026-11-20 09:30 UTC" in text


# --- one list of languages -----------------------------------------------------------------


def test_pick_locale_takes_the_first_supported_language() -> None:
    assert pick_locale(None, "", "id-ID", "en") == "id"
    assert pick_locale("fr", "de") == "en"
