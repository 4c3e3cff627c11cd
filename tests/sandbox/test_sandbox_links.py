"""Invite links, joins, join requests and deep links, as a bot sees them through aiogram."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.types import ChatMemberUpdated, Update

from sandbox import FakeClock, LinkError, World
from tests.sandbox.conftest import BotFactory, Cast, drain

ALL = ["message", "chat_member", "my_chat_member", "chat_join_request", "callback_query"]


async def subscribed(bot: Bot) -> int | None:
    """Confirm what is queued and subscribe to every update kind we test."""
    offset = await drain(bot)
    await bot.get_updates(offset=offset, allowed_updates=ALL)
    return offset


async def fetch(bot: Bot, offset: int | None, kind: str) -> list[Update]:
    return [u for u in await bot.get_updates(offset=offset) if u.event_type == kind]


def only_member_change(updates: list[Update]) -> ChatMemberUpdated:
    assert len(updates) == 1
    change = updates[0].chat_member
    assert change is not None
    return change


async def test_link_creation_follows_telegram_rules(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    long_name = "reader-" + "x" * 40
    link = await bot.create_chat_invite_link(cast.chat.id, name=long_name, member_limit=5)
    # TDLib cleans the name and keeps at most 32 characters (it does not refuse it).
    assert link.name == long_name[:32]
    assert link.member_limit == 5
    assert link.invite_link.startswith("https://t.me/+")
    assert len(link.invite_link) == len("https://t.me/+") + 16
    assert link.creator.id == cast.sim.id and not link.is_primary and not link.is_revoked

    with pytest.raises(TelegramBadRequest) as caught:
        await bot.create_chat_invite_link(cast.chat.id, member_limit=5, creates_join_request=True)
    assert caught.value.message == (
        "Bad Request: member limit can't be specified for links requiring administrator approval"
    )
    with pytest.raises(TelegramBadRequest, match="USAGE_LIMIT_INVALID"):
        await bot.create_chat_invite_link(cast.chat.id, member_limit=100_000)
    with pytest.raises(TelegramBadRequest, match="EXPIRE_DATE_INVALID"):
        await bot.create_chat_invite_link(cast.chat.id, expire_date=world.now() - 10)
    with pytest.raises(TelegramBadRequest, match="can't invite members to a private chat"):
        world.send_text(cast.alice, cast.sim, "/start")
        await bot.create_chat_invite_link(cast.alice.id)

    world.set_admin_rights(cast.chat, cast.sim, rights={"can_invite_users": False})
    with pytest.raises(TelegramBadRequest) as caught:
        await bot.create_chat_invite_link(cast.chat.id)
    assert caught.value.message == "Bad Request: not enough rights to manage chat invite link"

    world.remove_bot_from_chat(cast.chat, cast.sim)
    with pytest.raises(TelegramForbiddenError, match="bot was kicked from the supergroup chat"):
        await bot.create_chat_invite_link(cast.chat.id)


async def test_join_through_the_bots_link_shows_the_full_link(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    offset = await subscribed(bot)
    link = await bot.create_chat_invite_link(cast.chat.id, name="ref:alice")
    outcome = world.open_link(cast.bob, link.invite_link)
    assert outcome.kind == "joined"

    change = only_member_change(await fetch(bot, offset, "chat_member"))
    assert change.from_user.id == cast.bob.id
    assert change.old_chat_member.status == "left"
    assert change.new_chat_member.status == "member"
    assert change.invite_link is not None
    assert change.invite_link.invite_link == link.invite_link
    assert change.invite_link.name == "ref:alice"
    assert change.via_join_request is None
    assert world.member(cast.chat, cast.bob).joined_via_link == link.invite_link


async def test_another_admins_link_is_masked(world: World, cast: Cast, client: BotFactory) -> None:
    bot = client(cast.sim)
    offset = await subscribed(bot)
    human_link = world.create_invite_link(cast.owner, cast.chat, name="owner's link")
    world.open_link(cast.alice, human_link.url)

    change = only_member_change(await fetch(bot, offset, "chat_member"))
    assert change.invite_link is not None
    shown = change.invite_link.invite_link
    assert shown != human_link.url
    assert shown.endswith("...")
    assert human_link.url.startswith(shown[:-3])
    assert change.invite_link.creator.id == cast.owner.id


async def test_public_chat_joins_carry_no_invite_link(
    world: World, cast: Cast, client: BotFactory
) -> None:
    world.set_chat_username(cast.chat, "readers_club")
    bot = client(cast.sim)
    offset = await subscribed(bot)
    link = await bot.create_chat_invite_link(cast.chat.id, name="ref:alice")
    assert world.open_link(cast.alice, link.invite_link).kind == "joined"
    assert world.open_link(cast.bob, "https://t.me/readers_club").kind == "joined"

    changes = await fetch(bot, offset, "chat_member")
    assert [u.chat_member.new_chat_member.user.id for u in changes if u.chat_member] == [
        cast.alice.id,
        cast.bob.id,
    ]
    assert all(u.chat_member and u.chat_member.invite_link is None for u in changes)


async def test_join_request_flow_with_the_five_minute_window(
    world: World, cast: Cast, client: BotFactory, clock: FakeClock
) -> None:
    bot = client(cast.sim)
    offset = await subscribed(bot)
    link = await bot.create_chat_invite_link(cast.chat.id, creates_join_request=True)
    assert world.open_link(cast.alice, link.invite_link).kind == "requested"
    assert not world.member(cast.chat, cast.alice).in_chat

    updates = await bot.get_updates(offset=offset)
    requests = [u.chat_join_request for u in updates if u.chat_join_request]
    assert len(requests) == 1
    request = requests[0]
    assert request.from_user.id == cast.alice.id
    assert request.user_chat_id == cast.alice.id
    assert request.invite_link is not None
    assert request.invite_link.invite_link == link.invite_link
    assert request.invite_link.pending_join_request_count == 1
    offset = updates[-1].update_id + 1

    # Alice never started the bot, yet the request opens her private chat for 5 minutes.
    await bot.send_message(request.user_chat_id, "Welcome! Tap to confirm you are human.")
    clock.advance(299)
    await bot.send_message(request.user_chat_id, "Still there?")
    clock.advance(2)
    with pytest.raises(TelegramForbiddenError, match="bot can't initiate conversation"):
        await bot.send_message(request.user_chat_id, "Too late")
    assert [m.text for m in world.inbox(cast.alice)] == [
        "Welcome! Tap to confirm you are human.",
        "Still there?",
    ]

    assert await bot.approve_chat_join_request(cast.chat.id, cast.alice.id)
    change = only_member_change(await fetch(bot, offset, "chat_member"))
    assert change.from_user.id == cast.sim.id
    assert change.new_chat_member.status == "member"
    assert change.invite_link is not None
    assert change.invite_link.invite_link == link.invite_link
    assert change.via_join_request is None  # it came through a link
    with pytest.raises(TelegramBadRequest, match="USER_ALREADY_PARTICIPANT"):
        await bot.approve_chat_join_request(cast.chat.id, cast.alice.id)


async def test_window_closes_when_the_request_is_processed(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    offset = await subscribed(bot)
    link = await bot.create_chat_invite_link(cast.chat.id, creates_join_request=True)
    world.open_link(cast.bob, link.invite_link)
    await bot.send_message(cast.bob.id, "Hi Bob")
    assert await bot.decline_chat_join_request(cast.chat.id, cast.bob.id)
    with pytest.raises(TelegramForbiddenError, match="bot can't initiate conversation"):
        await bot.send_message(cast.bob.id, "Hi again")
    assert await fetch(bot, offset, "chat_member") == []
    assert not world.member(cast.chat, cast.bob).in_chat
    assert world.join_requests(cast.chat) == []
    with pytest.raises(TelegramBadRequest, match="HIDE_REQUESTER_MISSING"):
        await bot.decline_chat_join_request(cast.chat.id, cast.bob.id)


async def test_public_chat_requests_have_no_link_and_approval_sets_via_join_request(
    world: World, cast: Cast, client: BotFactory
) -> None:
    world.set_chat_username(cast.chat, "approved_only")
    world.set_join_by_request(cast.chat, True)
    bot = client(cast.sim)
    offset = await subscribed(bot)
    assert world.join_public(cast.alice, cast.chat).kind == "requested"
    updates = await bot.get_updates(offset=offset)
    request = updates[-1].chat_join_request
    assert request is not None and request.invite_link is None
    offset = updates[-1].update_id + 1

    world.approve(cast.owner, cast.chat, cast.alice)
    change = only_member_change(await fetch(bot, offset, "chat_member"))
    assert change.from_user.id == cast.owner.id
    assert change.via_join_request is True
    assert change.invite_link is None


async def test_member_limit_counts_current_members_only(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    link = await bot.create_chat_invite_link(cast.chat.id, member_limit=1)
    world.open_link(cast.alice, link.invite_link)
    with pytest.raises(LinkError) as caught:
        world.open_link(cast.bob, link.invite_link)
    assert caught.value.reason == "USERS_TOO_MUCH"
    world.leave(cast.alice, cast.chat)
    assert world.open_link(cast.bob, link.invite_link).kind == "joined"


async def test_revoked_and_expired_links_cannot_be_used(
    world: World, cast: Cast, client: BotFactory, clock: FakeClock
) -> None:
    bot = client(cast.sim)
    revoked = await bot.create_chat_invite_link(cast.chat.id, name="old")
    result = await bot.revoke_chat_invite_link(cast.chat.id, revoked.invite_link)
    assert result.is_revoked and result.name == "old"
    with pytest.raises(LinkError, match="INVITE_HASH_EXPIRED"):
        world.open_link(cast.alice, revoked.invite_link)
    with pytest.raises(TelegramBadRequest, match="INVITE_REVOKED_MISSING"):
        await bot.edit_chat_invite_link(cast.chat.id, revoked.invite_link, name="again")

    expiring = await bot.create_chat_invite_link(cast.chat.id, expire_date=world.now() + 60)
    assert expiring.expire_date is not None
    clock.advance(61)
    with pytest.raises(LinkError, match="INVITE_HASH_EXPIRED"):
        world.open_link(cast.alice, expiring.invite_link)
    assert not world.member(cast.chat, cast.alice).in_chat


async def test_editing_resets_omitted_fields_and_only_works_on_own_links(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    link = await bot.create_chat_invite_link(cast.chat.id, name="spring", member_limit=10)
    edited = await bot.edit_chat_invite_link(cast.chat.id, link.invite_link, name="summer")
    assert edited.name == "summer" and edited.member_limit is None
    other = world.create_invite_link(cast.owner, cast.chat)
    with pytest.raises(TelegramBadRequest, match="CHAT_ADMIN_REQUIRED"):
        await bot.edit_chat_invite_link(cast.chat.id, other.url, name="mine now")
    with pytest.raises(TelegramBadRequest, match="CHAT_ADMIN_REQUIRED"):
        await bot.revoke_chat_invite_link(cast.chat.id, other.url)


async def test_primary_link_export_and_get_chat(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    first = await bot.export_chat_invite_link(cast.chat.id)
    assert (await bot.get_chat(cast.chat.id)).invite_link == first
    second = await bot.export_chat_invite_link(cast.chat.id)
    assert second != first
    assert (await bot.get_chat(cast.chat.id)).invite_link == second
    with pytest.raises(LinkError):
        world.open_link(cast.alice, first)
    assert world.open_link(cast.alice, second).kind == "joined"


async def test_deep_links_start_the_bot_with_the_payload(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    offset = await drain(bot)
    outcome = world.open_link(cast.bob, "https://t.me/invite_loop_bot?start=r_alice-01")
    assert outcome.kind == "started"
    messages = [u.message for u in await bot.get_updates(offset=offset) if u.message]
    assert [m.text for m in messages] == ["/start r_alice-01"]
    entity = (messages[0].entities or [])[0]
    assert (entity.type, entity.offset, entity.length) == ("bot_command", 0, 6)
    await bot.send_message(cast.bob.id, "Hi Bob, you came from Alice")

    with pytest.raises(LinkError, match="START_PARAM_INVALID"):
        world.open_link(cast.bob, "https://t.me/invite_loop_bot?start=" + "a" * 65)
    with pytest.raises(LinkError, match="START_PARAM_INVALID"):
        world.open_link(cast.bob, "https://t.me/invite_loop_bot?start=a:b")
