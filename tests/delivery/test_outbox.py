"""The outbox sending through the real Telegram port to the sandbox: priority order, the
limits, retry_after, the 403 cases, idempotency keys and expiry — asserted on the rows,
the people table and what the sandbox's people received."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from delivery.actions import Action, Edit, WelcomeApprove, buttons_of
from delivery.outbox import OutboundMessage, Priority, Refusal
from delivery.port import Delivered, Destination, MembershipResult, RetryAfter, SendResult
from delivery.ratelimit import Limits, RateLimiter
from sandbox import SimChat, SimUser
from storage import outbox as store
from tests.delivery.conftest import PLATFORM, Rig


async def test_rows_go_out_answers_first_then_timed_then_notifications_then_bulk(
    rig: Rig,
) -> None:
    rig.use_limits(Limits(global_per_second=1, global_burst=1))  # one send per drain
    owner = rig.world.add_user("Owner")
    group = rig.world.add_chat("supergroup", "Readers", owner=owner)
    rig.world.add_bot_to_chat(group, rig.sim, by=owner)
    people = [await rig.reader(f"P{i}") for i in range(6)]
    # Queued least urgent first, so the order out is the drainer's doing.
    await rig.add([rig.row(group.id, "bulk-1", kind="chat", priority=Priority.BULK)])
    await rig.add([rig.row(group.id, "bulk-2", kind="chat", priority=Priority.BULK)])
    await rig.add([rig.row(people[0].id, "notify-1"), rig.row(people[1].id, "notify-2")])
    await rig.add([rig.row(people[2].id, "timed-1", priority=Priority.TIMED)])
    await rig.add([rig.row(people[3].id, "timed-2", priority=Priority.TIMED)])
    await rig.add([rig.row(people[4].id, "answer-1", priority=Priority.ANSWER)])
    await rig.add([rig.row(people[5].id, "answer-2", priority=Priority.ANSWER)])

    first = await rig.drain()
    assert (first.sent, first.rate_limited) == (1, 7)
    await rig.drain_all()

    assert rig.markers() == [
        "answer-1",
        "answer-2",
        "timed-1",
        "timed-2",
        "notify-1",
        "notify-2",
        "bulk-1",
        "bulk-2",
    ]
    assert {row["state"] for row in await rig.rows()} == {"sent"}


async def test_a_private_chat_gets_a_short_burst_then_one_message_a_second(rig: Rig) -> None:
    rig.sandbox_limits()
    ana = await rig.reader("Ana")
    await rig.add([rig.row(ana.id, f"m{i}") for i in range(6)])

    first = await rig.drain()
    assert first.sent == 3
    again = await rig.drain()  # no time has passed: the chat is over its limit
    assert (again.sent, again.rate_limited) == (0, 3)
    assert again.wait is not None and 0.99 <= again.wait <= 1.01
    await rig.drain_all()

    times = [call.time - rig.sends()[0].time for call in rig.sends(ok=True)]
    assert times[:3] == [0.0, 0.0, 0.0]
    assert all(0.99 <= b - a <= 1.1 for a, b in itertools.pairwise(times[3:]))
    assert times[3] >= 0.99
    assert rig.markers_to(ana) == [f"m{i}" for i in range(6)]
    assert not rig.refusals()


async def test_a_group_gets_at_most_twenty_messages_a_minute(rig: Rig) -> None:
    rig.sandbox_limits()
    owner = rig.world.add_user("Owner")
    group = rig.world.add_chat("supergroup", "Readers", owner=owner)
    rig.world.add_bot_to_chat(group, rig.sim, by=owner)
    await rig.add([rig.row(group.id, f"post-{i}", kind="chat") for i in range(25)])

    await rig.drain_all()

    times = [call.time for call in rig.sends(ok=True)]
    assert len(times) == 25
    for i in range(len(times) - 20):
        assert times[i + 20] - times[i] >= 60.0  # never 21 within a minute
    assert times[20] - times[0] <= 62.0  # and not much slower than the limit
    assert rig.markers_to(group) == [f"post-{i}" for i in range(25)]
    assert not rig.refusals()


async def test_many_readers_are_paced_at_the_overall_limit_without_a_429(rig: Rig) -> None:
    rig.sandbox_limits()
    readers = [await rig.reader(f"R{i}") for i in range(40)]
    await rig.add([rig.row(r.id, f"{r.id}-{n}") for n in range(3) for r in readers])
    started = rig.clock.now()

    await rig.drain_all()

    elapsed = (rig.clock.now() - started).total_seconds()
    # 120 messages: 30 at once, then 30 a second: about three seconds, never faster.
    assert 2.9 <= elapsed <= 3.0 * 1.2
    times = sorted(call.time for call in rig.sends(ok=True))
    assert max(sum(1 for t in times if s <= t < s + 1.0) for s in times) == 30
    assert not rig.refusals()
    for r in readers:
        assert rig.markers_to(r) == [f"{r.id}-{n}" for n in range(3)]


async def test_retry_after_is_honoured_for_that_chat_and_nothing_is_lost(rig: Rig) -> None:
    ana, ben = await rig.reader("Ana"), await rig.reader("Ben")
    rig.world.inject_fault("sendMessage", chat=ana, retry_after=7)
    await rig.add([rig.row(ana.id, "for-ana"), rig.row(ben.id, "for-ben")])

    report = await rig.drain()

    assert (report.sent, report.retried) == (1, 1)
    assert rig.markers_to(ben) == ["for-ben"]  # the other chat is not held up
    row = next(r for r in await rig.rows() if r["target_id"] == ana.id)
    assert row["state"] == "queued"
    assert row["attempts"] == 0  # a 429 is not a failed attempt
    assert row["last_error"] == "retry after 7s"
    assert row["next_attempt_at"] == rig.at(7)
    assert rig.outbox.limiter(PLATFORM).target_wait("user", ana.id) == 7

    rig.clock.advance(seconds=6.9)
    assert (await rig.drain()).sent == 0
    assert len(rig.sends()) == 2  # nothing was even tried before the wait was over
    rig.clock.advance(seconds=0.1)
    assert (await rig.drain()).sent == 1
    assert rig.markers_to(ana) == ["for-ana"]
    assert {r["state"] for r in await rig.rows()} == {"sent"}


async def test_a_429_storm_delivers_every_notification_once(rig: Rig) -> None:
    """Telegram's limits on, ours far too generous, and extra 429s for some readers: the
    outbox keeps retrying after each retry_after until everything is delivered."""
    rig.sandbox_limits()
    rig.use_limits(Limits(global_per_second=500, global_burst=500, user_burst=10))
    readers = [await rig.reader(f"R{i}") for i in range(40)]
    for r in readers[:8]:
        rig.world.inject_fault("sendMessage", chat=r, retry_after=3, times=2)
    await rig.add([rig.row(r.id, f"{r.id}-{n}") for n in range(4) for r in readers])

    await rig.drain_all()

    assert len(rig.refusals()) > 100  # it was a storm
    rows = await rig.rows()
    assert Counter(r["state"] for r in rows) == {"sent": 160}
    for r in readers:
        assert sorted(rig.markers_to(r)) == sorted(f"{r.id}-{n}" for n in range(4))
    assert len(rig.sends(ok=True)) == 160  # none twice


async def test_groups_in_slow_mode_hold_back_only_themselves(rig: Rig) -> None:
    owner = rig.world.add_user("Owner")
    groups = [rig.world.add_chat("supergroup", f"G{i}", owner=owner) for i in range(2)]
    for group in groups:
        rig.world.add_bot_to_chat(group, rig.sim, by=owner)
        rig.world.inject_fault("sendMessage", chat=group, retry_after=60)
    ana = await rig.reader("Ana")
    await rig.add([rig.row(g.id, f"post-{g.title}", kind="chat") for g in groups])

    await rig.drain()
    await rig.add([rig.row(ana.id, "for-ana")])
    rig.clock.advance(seconds=1)
    assert (await rig.drain()).sent == 1  # not paused for the groups' minute

    assert rig.markers_to(ana) == ["for-ana"]
    await rig.drain_all()
    assert sorted(rig.markers()) == ["for-ana", "post-G0", "post-G1"]


async def test_many_private_chats_refused_at_once_pause_every_send(rig: Rig) -> None:
    readers = [await rig.reader(f"R{i}") for i in range(3)]
    for r in readers[:2]:
        rig.world.inject_fault("sendMessage", chat=r, retry_after=2)
    await rig.add([rig.row(r.id, "first") for r in readers[:2]])
    await rig.drain()

    await rig.add([rig.row(readers[2].id, "third")])
    report = await rig.drain()

    assert report.sent == 0 and report.rate_limited == 1  # the bot waits as a whole
    assert rig.outbox.limiter(PLATFORM).global_wait() == 2
    await rig.drain_all()
    assert rig.markers_to(readers[2]) == ["third"]


async def test_blocked_reader_is_recorded_on_the_row_and_in_people(rig: Rig) -> None:
    ana = await rig.reader("Ana")
    rig.world.block_bot(ana, rig.sim)  # the my_chat_member update is never fetched here
    await rig.add([rig.row(ana.id, "hello")])

    report = await rig.drain()

    assert report.failures == [(report.failures[0][0], "blocked")]
    [row] = await rig.rows()
    assert row["state"] == "failed"
    assert row["last_error"].startswith("blocked: ")
    person = await rig.person(ana)
    assert person is not None and person["blocked_at"] == rig.clock.now()
    assert rig.markers_to(ana) == []


async def test_never_started_reader_is_recorded_but_not_marked_gone(rig: Rig) -> None:
    owner = rig.world.add_user("Owner")
    group = rig.world.add_chat("supergroup", "Readers", owner=owner)
    rig.world.add_bot_to_chat(group, rig.sim, by=owner)
    cid = await rig.reader("Cid", started=False)
    rig.world.add_member(group, cid)  # the bot knows Cid, but Cid never opened it
    await rig.add([rig.row(cid.id, "hello")])

    await rig.drain()

    [row] = await rig.rows()
    assert row["state"] == "failed"
    assert row["last_error"].startswith("not_started: ")
    assert "initiate conversation" in row["last_error"]
    person = await rig.person(cid)
    assert person is not None and person["blocked_at"] is None  # may still start the bot


async def test_deactivated_account_is_recorded_as_gone(rig: Rig) -> None:
    dee = await rig.reader("Dee")
    rig.world.deactivate(dee)
    await rig.add([rig.row(dee.id, "hello")])

    await rig.drain()

    [row] = await rig.rows()
    assert row["state"] == "failed"
    assert row["last_error"].startswith("account_gone: ")
    person = await rig.person(dee)
    assert person is not None and person["blocked_at"] == rig.clock.now()


async def test_bot_removed_from_a_chat_is_recorded_for_each_post(rig: Rig) -> None:
    owner = rig.world.add_user("Owner")
    group = rig.world.add_chat("supergroup", "Readers", owner=owner)
    rig.world.add_bot_to_chat(group, rig.sim, by=owner)
    rig.world.remove_bot_from_chat(group, rig.sim, by=owner)
    await rig.add([rig.row(group.id, f"post-{i}", kind="chat") for i in range(2)])

    await rig.drain()

    rows = await rig.rows()
    assert [r["state"] for r in rows] == ["failed", "failed"]
    assert all(r["last_error"].startswith("bot_removed: ") for r in rows)
    assert "kicked" in rows[0]["last_error"]


async def test_deleted_group_is_not_mistaken_for_a_deleted_account(rig: Rig) -> None:
    owner = rig.world.add_user("Owner")
    group = rig.world.add_chat("group", "Old group", owner=owner)
    rig.world.add_bot_to_chat(group, rig.sim, by=owner)
    rig.world.inject_fault(
        "sendMessage",
        chat=group,
        error_code=403,
        description="Forbidden: the group chat was deleted",
    )
    await rig.add([rig.row(group.id, "post", kind="chat")])

    await rig.drain()

    [row] = await rig.rows()
    assert row["state"] == "failed"
    assert row["last_error"].startswith("not_found: ")


async def test_a_repeated_enqueue_with_the_same_key_is_a_no_op(rig: Rig) -> None:
    ana = await rig.reader("Ana")
    assert await rig.add([rig.row(ana.id, "first", key="joined:1:42")]) == 1
    assert await rig.add([rig.row(ana.id, "second", key="joined:1:42")]) == 0
    await rig.drain_all()
    assert await rig.add([rig.row(ana.id, "third", key="joined:1:42")]) == 0  # even once sent
    await rig.drain_all()

    assert rig.markers_to(ana) == ["first"]
    assert len(await rig.rows()) == 1


async def test_a_time_limited_message_expires_instead_of_going_out_late(rig: Rig) -> None:
    ana, ben = await rig.reader("Ana"), await rig.reader("Ben")
    rig.world.inject_fault("sendMessage", chat=ana, retry_after=400)
    await rig.add(
        [
            rig.row(ana.id, "check", priority=Priority.TIMED, expires_at=rig.at(300)),
            rig.row(
                ben.id,
                "later",
                priority=Priority.TIMED,
                expires_at=rig.at(60),
                not_before=rig.at(120),
            ),
        ]
    )

    await rig.drain_all()

    rows = {r["target_id"]: r for r in await rig.rows()}
    assert rows[ana.id]["state"] == rows[ben.id]["state"] == "expired"
    assert rows[ana.id]["last_error"] == "expired before it could be sent"
    assert rig.markers_to(ana) == rig.markers_to(ben) == []
    assert len(rig.sends()) == 1  # only the refused first try


async def test_reads_are_not_held_back_by_the_sending_limits(rig: Rig) -> None:
    """getChatMember is no sending method: with the second's thirty messages spent, forty
    membership checks still go through at once, and leave the limiter as it was."""
    rig.sandbox_limits()
    owner = rig.world.add_user("Owner")
    group = rig.world.add_chat("supergroup", "Readers", owner=owner)
    rig.world.add_bot_to_chat(group, rig.sim, by=owner)
    readers = [await rig.reader(f"R{i}") for i in range(40)]
    for r in readers:
        rig.world.add_member(group, r)
    await rig.add([rig.row(r.id, "hi") for r in readers])
    await rig.drain()
    limiter = rig.outbox.limiter(PLATFORM)
    assert limiter.global_wait() > 0  # the second's thirty are spent
    wait = limiter.global_wait()

    destination = Destination("telegram", group.id, "supergroup", "direct")
    results = [await rig.port.get_membership(destination, r.id) for r in readers]

    assert all(isinstance(result, MembershipResult) for result in results)
    assert all(call.ok for call in rig.world.calls_of("getChatMember"))
    assert limiter.global_wait() == wait


async def test_welcome_waits_out_a_short_retry_after_inside_the_join_window(rig: Rig) -> None:
    chat, friend = join_request(rig)
    rig.world.inject_fault("sendMessage", chat=friend, retry_after=3)
    await rig.add([welcome_row(rig, chat.id, friend.id)])

    await rig.drain()
    assert rig.world.member(chat, friend).status == "left"  # not approved without welcome
    [row] = await rig.rows()
    assert (row["state"], row["last_error"]) == ("queued", "retry after 3s")

    await rig.drain_all()
    assert rig.world.member(chat, friend).status == "member"
    assert len(rig.world.inbox(friend, rig.sim)) == 1
    assert [r["state"] for r in await rig.rows()] == ["sent"]


async def test_welcome_is_skipped_when_the_wait_would_outlast_the_window(rig: Rig) -> None:
    chat, friend = join_request(rig)
    rig.world.inject_fault("sendMessage", chat=friend, retry_after=600)
    await rig.add([welcome_row(rig, chat.id, friend.id)])

    await rig.drain()

    assert rig.world.member(chat, friend).status == "member"  # never punish the friend
    assert rig.world.inbox(friend, rig.sim) == []
    assert [r["state"] for r in await rig.rows()] == ["sent"]


async def test_welcome_is_not_repeated_when_only_the_approval_is_retried(rig: Rig) -> None:
    chat, friend = join_request(rig)
    rig.world.inject_fault("approveChatJoinRequest", error_code=502)
    await rig.add([welcome_row(rig, chat.id, friend.id)])

    await rig.drain_all()

    assert rig.world.member(chat, friend).status == "member"
    assert len(rig.world.inbox(friend, rig.sim)) == 1
    assert len(rig.world.calls_of("approveChatJoinRequest")) == 2


async def test_an_approval_the_bot_lost_the_right_for_is_recorded_not_dropped(rig: Rig) -> None:
    chat, friend = join_request(rig)
    rig.world.set_admin_rights(chat, rig.sim, rights={"can_invite_users": False})
    await rig.add([welcome_row(rig, chat.id, friend.id)])

    await rig.drain()

    [row] = await rig.rows()
    assert row["state"] == "failed"
    assert row["last_error"].startswith("no_rights: ")
    assert [r.user_id for r in rig.world.join_requests(chat)] == [friend.id]


def join_request(rig: Rig) -> tuple[SimChat, SimUser]:
    owner = rig.world.add_user("Owner")
    chat = rig.world.add_chat("channel", "Daily Brief", owner=owner)
    rig.world.add_bot_to_chat(chat, rig.sim, by=owner)
    link = rig.world.create_invite_link(owner, chat, creates_join_request=True)
    friend = rig.world.add_user("Fay")
    rig.world.open_link(friend, link.url)
    return chat, friend


def welcome_row(rig: Rig, chat_id: int, user_id: int) -> dict[str, Any]:
    """What the join-request handler queues: welcome in the 5-minute window, then approve."""
    window_ends = rig.clock.now() + timedelta(minutes=5)
    row = rig.row(
        user_id,
        "welcome",
        priority=Priority.TIMED,
        action=Action.WELCOME_APPROVE,
        payload=WelcomeApprove(chat_id, user_id, window_ends),
    )
    row["template"] = "join_welcome"
    row["context"] = {"program_title": "Daily Brief", "referrer_name": "Ana"}
    return row


async def test_a_malformed_row_fails_alone_and_the_rest_go_out(rig: Rig) -> None:
    ana, ben = await rig.reader("Ana"), await rig.reader("Ben")
    bad = rig.row(ana.id, "bad")
    bad["action"], bad["payload"] = "edit", None  # an edit that says not what to edit
    odd = rig.row(ana.id, "odd")
    odd["action"] = "shout"  # written by a newer (or broken) version
    await rig.add([bad, odd, rig.row(ben.id, "fine")])

    reports = await rig.drain_all()

    assert sum(r.malformed for r in reports) == 2
    rows = {r["idempotency_key"] or r["id"]: r for r in await rig.rows()}
    states = sorted((r["state"], r["last_error"] or "") for r in rows.values())
    assert states == [
        ("failed", "malformed row: action edit: payload lacks 'message_id'"),
        ("failed", "malformed row: unknown action 'shout'"),
        ("sent", ""),
    ]
    assert rig.markers_to(ben) == ["fine"] and rig.markers_to(ana) == []


async def test_a_row_queued_before_payloads_is_still_sent_with_its_buttons(rig: Rig) -> None:
    ana = await rig.reader("Ana")
    old = rig.row(ana.id, "old")
    old["context"] = {
        **old["context"],
        "_buttons": [[{"label": "get_link", "url": "https://t.me/outboxbot?start=go_1"}]],
    }
    async with rig.db.write() as conn:  # as an older version stored it: no payload
        await store.enqueue(conn, [{**old, "payload": None}])

    await rig.drain_all()

    [sent] = rig.world.sent_messages(rig.sim, ana)
    assert "old" in (sent.text or "")
    assert [b["url"] for b in sent.inline_buttons] == ["https://t.me/outboxbot?start=go_1"]


async def test_an_edit_changes_the_message_its_payload_names(rig: Rig) -> None:
    ana = await rig.reader("Ana")
    await rig.add([rig.row(ana.id, "before")])
    await rig.drain_all()
    [first] = await rig.rows()

    edit = rig.row(
        ana.id,
        "after",
        action=Action.EDIT,
        payload=Edit(first["message_id"], buttons_of([[{"label": "copy_link", "copy": "x"}]])),
    )
    await rig.add([edit])
    await rig.drain_all()

    [message] = rig.world.sent_messages(rig.sim, ana)
    assert "after" in (message.text or "")
    assert message.inline_buttons[0]["copy_text"] == {"text": "x"}
    assert [r["message_id"] for r in await rig.rows()] == [first["message_id"]] * 2


@dataclass
class OtherPlatform:
    """A second platform whose sender refuses everyone and never pauses the whole bot."""

    platform: str = "other"
    limits: Limits = field(default_factory=Limits)
    sent: list[int] = field(default_factory=list)
    asked: list[list[Refusal]] = field(default_factory=list)

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message.target_id)
        return RetryAfter(4) if len(self.sent) <= 3 else Delivered(len(self.sent))

    def pause_for(self, refusals: Sequence[Refusal]) -> float | None:
        self.asked.append(list(refusals))
        return None


async def test_each_platform_has_its_own_limiter_and_its_own_policy_for_refusals(
    rig: Rig,
) -> None:
    other = OtherPlatform()
    rig.outbox.add_sender(other)
    rig.outbox.limiters["other"] = RateLimiter(Limits(), rig.monotonic)
    readers = [await rig.reader(f"R{i}") for i in range(3)]
    for r in readers[:2]:
        rig.world.inject_fault("sendMessage", chat=r, retry_after=2)
    rows = [rig.row(r.id, "tg") for r in readers[:2]]
    for user in (1, 2, 3):
        row = rig.row(user, "other")
        row["platform"] = "other"
        rows.append(row)
    await rig.add(rows)

    await rig.drain()

    assert [len(refused) for refused in other.asked] == [3]
    assert rig.outbox.limiter("telegram").global_wait() == 2  # Telegram's rule: pause all
    assert rig.outbox.limiter("other").global_wait() == 0  # the other platform's: only them
    assert rig.outbox.limiter("other").target_wait("user", 1) == 4
    await rig.drain_all()
    assert sorted(other.sent[3:]) == [1, 2, 3]
    assert sorted(rig.markers()) == ["tg", "tg"]
