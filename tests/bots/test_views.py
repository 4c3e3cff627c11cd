"""Views: what each template receives, built from the engine's models without any platform
library, as plain JSON values (they travel through the outbox), with the program's
timezone wherever times are shown."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jinja2 import meta

from bots import views
from bots.render import Renderer
from leaderboard.models import Season
from referrals.models import (
    Counts,
    EngineError,
    Link,
    NotAllowed,
    Program,
    Receipt,
    ReceiptItem,
    SettingsError,
)
from rewards.models import ClaimOutcome, Milestone, PrizeClaim

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

PROGRAM = Program(
    id=7,
    platform="telegram",
    destination_id=-1001,
    kind="supergroup",
    title="Kopi Pagi",
    username=None,
    locale="id",
    timezone="Asia/Jakarta",
    hold_hours=72,
    join_mode="direct",
    min_account_age_days=0,
    leave_policy="subtract",
    human_check=False,
    referrer_cap=None,
    burst_limit=None,
    burst_window_minutes=10,
    paused=False,
    paused_reason=None,
    join_url=None,
    created_by=1,
    created_at=NOW,
    updated_at=NOW,
)
SEASON = Season(
    id=3,
    program_id=7,
    name="Piala Maret",
    starts_at=NOW,
    ends_at=NOW.replace(day=27),
    mode="draw",
    winners=2,
    min_referrals=3,
    prize_id=4,
    seed_hash="ab" * 32,
    seed=None,
    final_at=None,
    prize_title="Mug",
)
PRIZE = Milestone(
    id=4,
    program_id=7,
    role="prize",
    count=None,
    step=None,
    title="Mug",
    reward_kind="coupon",
    message=None,
    pool_id=1,
    chat_id=None,
    chat_title=None,
    question=None,
    role_id=None,
    approval="auto",
    cost_cents=None,
    paused=False,
    created_at=NOW,
)
LINK = Link(1, 7, 42, "whatsapp", "abc", "https://t.me/+abc", NOW, None)
COUNTS = Counts(pending=2, held=1, confirmed=3, counted=3)
RECEIPT = Receipt(
    program_id=7,
    referrer_id=42,
    counts=COUNTS,
    items=[
        ReceiptItem(5, "Budi", "referral", "pending", None, NOW, NOW.replace(day=23), None, None),
        ReceiptItem(6, "Sari", "referral", "confirmed", None, NOW, None, NOW, NOW.replace(day=24)),
    ],
    page=1,
    pages=1,
    total=6,
    not_counted=1,
)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def _template_variables(renderer: Renderer, name: str) -> set[str]:
    source = (ROOT / "bots" / "templates" / "en" / f"{name}.html.j2").read_text()
    return meta.find_undeclared_variables(renderer.env.parse(source))


ALL_VIEWS: dict[str, dict[str, Any]] = {
    "invite_card": views.invite_card(PROGRAM, LINK, COUNTS, created=True, replaced=False),
    "stats": views.receipt(PROGRAM, RECEIPT),
    "settings": views.settings(PROGRAM, saved=True),
    "program_totals": views.program_totals(
        PROGRAM,
        {"readers": 1, "confirmed": 2, "pending": 3, "held": 0, "rejected": 1, "unattributed": 4},
    ),
    "friend_card": views.friend_card(PROGRAM, "Ana", "https://t.me/+join"),
    "friend_subscribed": views.friend_subscribed(PROGRAM, None),
    "link_problem": views.link_problem("already_remembered", PROGRAM, "Ana"),
    "welcome": views.welcome("Ana", [PROGRAM]),
    "program_notice": views.program_notice(PROGRAM, paused=True, reason="lost_rights"),
    "program_state": views.program_state(PROGRAM),
    "posted": views.posted(PROGRAM, ok=True, pinned=True),
    "post_invite": views.post_invite(PROGRAM),
    "setup": views.setup_done(PROGRAM),
    "join_welcome": views.join_welcome(PROGRAM, "Ana"),
    "human_check_passed": views.human_check_passed(PROGRAM),
    "error": views.engine_error(NotAllowed("not an admin")),
    "open_bot": views.open_bot("Ana", purpose="settings"),
    "share_text": views.share_text(PROGRAM),
    "season_created": views.season_created(PROGRAM, SEASON, changed=True),
    "seasons": views.season_list(PROGRAM, [SEASON, replace(SEASON, id=4, prize_title=None)]),
    "season_prize_pick": views.season_prize_pick("ask", SEASON.name, [PRIZE]),
    "prize_claim": views.prize_claim(PrizeClaim(ClaimOutcome.CLAIMED, "Mug", 2), 7),
}


@pytest.mark.parametrize("name", sorted(ALL_VIEWS))
def test_each_view_is_plain_json_and_renders_its_template(renderer: Renderer, name: str) -> None:
    view = ALL_VIEWS[name]
    assert json.loads(json.dumps(view)) == view
    for flavour in ("telegram", "discord"):
        assert renderer.text("en", name, flavour=flavour, **view)  # type: ignore[arg-type]
    if name not in ("error", "setup", "link_problem", "open_bot"):  # branch-specific keys
        assert _template_variables(renderer, name) <= set(view) | {"timezone"}, name


def test_the_receipt_carries_the_programs_timezone_and_iso_times(renderer: Renderer) -> None:
    view = views.receipt(PROGRAM, RECEIPT)
    assert view["timezone"] == "Asia/Jakarta"
    assert view["items"][0]["at"] == "2026-11-20T09:30:00+00:00"
    assert view["items"][0]["hold_until"] == "2026-11-23T09:30:00+00:00"
    assert view["subtract"] is True and view["not_counted"] == 1
    text = renderer.text("en", "stats", **json.loads(json.dumps(view)))  # through the outbox
    assert "⏳ <b>Budi</b> — 2026-11-20 16:30 WIB" in text
    assert "counts on 2026-11-23 16:30 WIB" in text
    assert "left on 2026-11-24 16:30 WIB" in text


def test_a_program_in_utc_shows_utc(renderer: Renderer) -> None:
    view = views.receipt(replace(PROGRAM, timezone="UTC"), RECEIPT)
    assert "2026-11-20 09:30 UTC" in renderer.text("id", "stats", **view)


def test_a_settings_error_keeps_its_details_for_the_template() -> None:
    exc = SettingsError("hold_hours", "must be 0-720", problem="number", low=0, high=720)
    view = views.engine_error(exc)
    assert view["code"] == "bad_setting" and view["key"] == "hold_hours"
    assert (view["problem"], view["low"], view["high"]) == ("number", 0, 720)
    assert view["message"] == "must be 0-720"
    plain = views.engine_error(EngineError("nope"))
    assert plain == {**views.ERROR_DEFAULTS, "code": "error"}


def test_views_import_no_platform_library() -> None:
    tree = ast.parse((ROOT / "bots" / "views.py").read_text())
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert imported <= {
        "__future__",
        "collections",
        "dataclasses",
        "datetime",
        "typing",
        "referrals",
        "rewards",
        "leaderboard",
    }
