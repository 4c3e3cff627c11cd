"""Typed outbox actions: payloads go into JSON and come back the same, and what cannot be
read back is a clear failure of that row."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from delivery.actions import (
    Action,
    Button,
    Edit,
    MalformedRow,
    Post,
    WelcomeApprove,
    buttons_of,
    dump,
    load,
    split_legacy,
)
from delivery.outbox import Priority, message

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROWS = buttons_of(
    [
        [{"label": "share_x", "url": "https://x.com/intent/post?text=hi"}],
        [{"label": "copy_link", "copy": "https://t.me/loopbot?start=abc"}],
        [{"label": "stats_page", "args": {"page": 2}, "data": "stats:2"}],
    ]
)


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        (Action.SEND, Post()),
        (Action.SEND, Post(ROWS)),
        (Action.SEND_PIN, Post(ROWS[:1])),
        (Action.EDIT, Edit(17, ROWS)),
        (Action.WELCOME_APPROVE, WelcomeApprove(-1009, 42, NOW)),
    ],
)
def test_every_action_comes_back_as_it_was_stored(action: Action, payload: object) -> None:
    assert load(action.value, dump(action, payload)) == (action, payload)  # type: ignore[arg-type]


def test_a_plain_message_stores_no_payload() -> None:
    assert dump(Action.SEND, Post()) is None


@pytest.mark.parametrize(
    ("action", "stored", "problem"),
    [
        ("shout", None, "unknown action 'shout'"),
        ("edit", None, "lacks 'message_id'"),
        ("edit", '{"message_id": "7"}', "expected an integer"),
        ("edit", "{not json", "not JSON"),
        ("send", "[1, 2]", "JSON object"),
        ("send", '{"buttons": [[{"label": "x"}]]}', "exactly one of url, data, copy"),
        ("send", '{"buttons": [[{"label": "x", "url": "u", "colour": 1}]]}', "unknown button"),
        ("send", '{"buttons": "yes"}', "list of rows"),
        ("send", '{"pin": true}', "unknown payload fields"),
        ("welcome_approve", '{"chat_id": 1, "user_id": 2}', "lacks 'window_ends'"),
        (
            "welcome_approve",
            '{"chat_id": 1, "user_id": 2, "window_ends": "2026-03-02T09:00:00"}',
            "offset",
        ),
    ],
)
def test_what_cannot_be_read_back_is_named(action: str, stored: str | None, problem: str) -> None:
    with pytest.raises(MalformedRow, match=problem):
        load(action, stored)


def test_a_payload_that_does_not_fit_its_action_is_refused_where_the_row_is_made() -> None:
    with pytest.raises(MalformedRow, match="takes a Edit payload"):
        row(Action.EDIT, Post())
    with pytest.raises(MalformedRow, match="unknown action"):
        row("shout", None)  # type: ignore[arg-type]


def test_a_row_carries_its_payload_as_json_beside_the_templates_context() -> None:
    made = row(Action.EDIT, Edit(5, ROWS[:1]))
    assert made["action"] == "edit"
    assert made["context"] == {"program_title": "Daily Brief"}
    assert json.loads(made["payload"]) == {
        "message_id": 5,
        "buttons": [[{"label": "share_x", "url": "https://x.com/intent/post?text=hi"}]],
    }


def test_an_old_rows_underscore_keys_become_its_payload() -> None:
    context = {
        "program_title": "Daily Brief",
        "_window_ends": NOW.isoformat(),
        "_chat_id": -1009,
        "_user_id": 42,
        "_buttons": [[{"label": "human_check", "data": "hc:1"}]],
    }
    legacy = split_legacy("welcome_approve", context)
    assert legacy is not None
    public, stored = legacy
    assert public == {"program_title": "Daily Brief"}
    assert load("welcome_approve", stored) == (
        Action.WELCOME_APPROVE,
        WelcomeApprove(-1009, 42, NOW, ((Button("human_check", data="hc:1"),),)),
    )
    assert split_legacy("send", {"program_title": "x"}) is None


def row(action: Action, payload: Post | Edit | WelcomeApprove | None) -> dict[str, object]:
    return message(
        "telegram",
        "user",
        42,
        "program_notice",
        {"program_title": "Daily Brief"},
        priority=Priority.NOTIFY,
        now=NOW,
        action=action,
        payload=payload,
    )
