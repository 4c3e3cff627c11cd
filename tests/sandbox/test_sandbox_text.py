"""Text processing against TDLib's own parser test vectors (test/message_entities.cpp)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.html import EntityParseError, find_entities, parse_html, process_text, utf16_len
from sandbox.markdown import parse_markdown_v2

HTML_ERRORS = [
    ("🏟 🏟&lt;<abacaba", "Unclosed start tag at byte offset 13"),
    ("🏟 🏟&lt;<abac aba>", 'Unsupported start tag "abac" at byte offset 13'),
    ("🏟 🏟&lt;<abac>", 'Unsupported start tag "abac" at byte offset 13'),
    ("🏟 🏟&lt;<i   =aba>", 'Empty attribute name in the tag "i" at byte offset 13'),
    ("🏟 🏟&lt;<i    aba>", 'Can\'t find end tag corresponding to start tag "i"'),
    ("🏟 🏟&lt;<i    aba  =  ", 'Unclosed start tag "i" at byte offset 13'),
    ("🏟 🏟&lt;<i    aba  =  190azAz-.,", "Unexpected end of name token at byte offset 27"),
    ('🏟 🏟&lt;<i    aba  =  "&lt;&gt;&quot;>', "Unclosed start tag at byte offset 13"),
    ("🏟 🏟&lt;<i    aba  =  '&lt;&gt;&quot;>", "Unclosed start tag at byte offset 13"),
    ("🏟 🏟&lt;</", "Unexpected end tag at byte offset 13"),
    ("🏟 🏟&lt;<b></b></", "Unexpected end tag at byte offset 20"),
    ("🏟 🏟&lt;<i>a</i   ", "Unclosed end tag at byte offset 17"),
    (
        "🏟 🏟&lt;<i>a</em   >",
        'Unmatched end tag at byte offset 17, expected "</i>", found "</em>"',
    ),
]

HTML_RESULTS: list[tuple[str, str, list[dict[str, Any]]]] = [
    ("", "", []),
    ("➡️ ➡️", "➡️ ➡️", []),
    ("&ge;&lt;&gt;&amp;&quot;&laquo;&raquo;&#12345678;", '&ge;<>&"&laquo;&raquo;&#12345678;', []),
    ("&Or;", "&Or;", []),
    ("➡️ ➡️<i>➡️ ➡️</i>", "➡️ ➡️➡️ ➡️", [{"type": "italic", "offset": 5, "length": 5}]),
    ("🏟 🏟<i>🏟 &lt🏟</i>", "🏟 🏟🏟 <🏟", [{"type": "italic", "offset": 5, "length": 6}]),
    (
        "🏟 🏟<i>🏟 &gt;<b aba   =   caba>&lt🏟</b></i>",
        "🏟 🏟🏟 ><🏟",
        [{"type": "italic", "offset": 5, "length": 7}, {"type": "bold", "offset": 9, "length": 3}],
    ),
    ("🏟 🏟&lt;<i>🏟 🏟&lt;</>", "🏟 🏟<🏟 🏟<", [{"type": "italic", "offset": 6, "length": 6}]),
    ("🏟 🏟&lt;<b></b>", "🏟 🏟<", []),
    (
        '➡️ ➡️<span class = "tg-spoiler">➡️ ➡️</span><b>➡️ ➡️</b>',
        "➡️ ➡️➡️ ➡️➡️ ➡️",
        [
            {"type": "spoiler", "offset": 5, "length": 5},
            {"type": "bold", "offset": 10, "length": 5},
        ],
    ),
    (
        "<a href=telegram.org>\t</a>",
        "\t",
        [{"type": "text_link", "offset": 0, "length": 1, "url": "http://telegram.org/"}],
    ),
    ("<a> </a>", " ", []),
    ("<a>telegram.org </a>", "telegram.org ", []),
    (
        "<a>telegram.org</a>",
        "telegram.org",
        [{"type": "text_link", "offset": 0, "length": 12, "url": "http://telegram.org/"}],
    ),
    (
        "<code><i><b> </b></i></code><i><b><code> </code></b></i>",
        "  ",
        [
            {"type": "code", "offset": 0, "length": 1},
            {"type": "bold", "offset": 0, "length": 1},
            {"type": "italic", "offset": 0, "length": 1},
            {"type": "code", "offset": 1, "length": 1},
            {"type": "bold", "offset": 1, "length": 1},
            {"type": "italic", "offset": 1, "length": 1},
        ],
    ),
    (
        '🏟 🏟&lt;<pre><code class="language-fift">🏟 🏟&lt;</></>',
        "🏟 🏟<🏟 🏟<",
        [{"type": "pre", "offset": 6, "length": 6, "language": "fift"}],
    ),
    (
        "🏟 🏟&lt;<pre><code>🏟 🏟&lt;</code></>",
        "🏟 🏟<🏟 🏟<",
        [{"type": "pre", "offset": 6, "length": 6}, {"type": "code", "offset": 6, "length": 6}],
    ),
    (
        "<blockquote   expandable>a&lt;<pre  >b;</></>",
        "a<b;",
        [
            {"type": "expandable_blockquote", "offset": 0, "length": 4},
            {"type": "pre", "offset": 2, "length": 2},
        ],
    ),
]


@pytest.mark.parametrize(("html", "error"), HTML_ERRORS)
def test_html_errors_match_tdlib(html: str, error: str) -> None:
    with pytest.raises(EntityParseError) as caught:
        parse_html(html)
    assert str(caught.value) == error


@pytest.mark.parametrize(("html", "text", "entities"), HTML_RESULTS)
def test_html_results_match_tdlib(html: str, text: str, entities: list[dict[str, Any]]) -> None:
    assert parse_html(html) == (text, entities)


def test_detected_entities_use_utf16_offsets() -> None:
    text = "🎉 /invite@invite_loop_bot now, see https://t.me/+AbC and @alice_s #top"
    found = {(e["type"], e["offset"], e["length"]) for e in find_entities(text)}
    assert ("bot_command", 3, 23) in found
    assert ("url", 36, 17) in found
    assert ("mention", 58, 8) in found
    assert ("hashtag", 67, 4) in found
    assert utf16_len("🎉") == 2


def test_process_text_trims_and_keeps_entities_in_bounds() -> None:
    text, entities = process_text("  <b>hi</b> there  ", "HTML")
    assert text == "hi there"
    assert entities == [{"type": "bold", "offset": 0, "length": 2}]
    with pytest.raises(ValueError, match="unsupported parse_mode"):
        process_text("x", "Markup")


@pytest.mark.parametrize(
    ("markdown", "error"),
    [
        ("🏟 🏟_abacaba", "Can't find end of Italic entity at byte offset 9"),
        ("🏟 🏟_abac * asd ", "Can't find end of Bold entity at byte offset 15"),
        ("🏟 🏟`", "Can't find end of Code entity at byte offset 9"),
        ("🏟 🏟```", "Can't find end of Pre entity at byte offset 9"),
        ("🏟 🏟!", "Character '!' is reserved and must be escaped with the preceding '\\'"),
        ("[telegram\\.org](asd", "Can't find end of a URL at byte offset 16"),
    ],
)
def test_markdown_v2_errors_match_tdlib(markdown: str, error: str) -> None:
    with pytest.raises(EntityParseError) as caught:
        parse_markdown_v2(markdown)
    assert str(caught.value) == error


def test_markdown_v2_entities() -> None:
    text, entities = parse_markdown_v2("*bold* _it_ __u__ [link](https://t.me/x) 1\\.5")
    assert text == "bold it u link 1.5"
    assert [(e["type"], e["offset"], e["length"]) for e in entities] == [
        ("bold", 0, 4),
        ("italic", 5, 2),
        ("underline", 8, 1),
        ("text_link", 10, 4),
    ]
