"""Join-request links of a private reward chat, as the rewards feature uses them."""

from __future__ import annotations

import pytest
from aiogram import Bot
from aiogram.types import ChatJoinRequest, Update

from sandbox import FakeClock, LinkError, SimBot, SimChat, World
from tests.sandbox.conftest import BotFactory, Cast, drain

ALL = ["message", "chat_member", "my_chat_member", "chat_join_request"]
DAY = 24 * 3600


def reward_chat(world: World, cast: Cast) -> SimChat:
    """A private channel that only holds rewards; the bot is an admin there."""
    chat = world.add_chat("channel", "VIP Lounge", owner=cast.owner)
    world.add_bot_to_chat(chat, cast.sim, by=cast.owner)
    return chat


async def subscribed(bot: Bot) -> int | None:
    offset = await drain(bot)
    await bot.get_updates(offset=offset, allowed_updates=ALL)
    return offset


async def requests_of(bot: Bot, offset: int | None) -> tuple[list[ChatJoinRequest], int | None]:
    updates = await bot.get_updates(offset=offset)
    found = [u.chat_join_request for u in updates if u.chat_join_request is not None]
    return found, (updates[-1].update_id + 1 if updates else offset)


def member_changes(updates: list[Update]) -> list[Update]:
    return [u for u in updates if u.chat_member is not None]


async def test_a_reward_link_request_reaches_the_bot_with_the_full_link(
    world: World, cast: Cast, client: BotFactory
) -> None:
    chat = reward_chat(world, cast)
    watcher = world.add_bot("watcher_bot")
    world.add_bot_to_chat(chat, watcher, by=cast.owner, rights={"can_invite_users": False})
    bot, other = client(cast.sim), client(watcher)
    offset = await subscribed(bot)
    other_offset = await subscribed(other)

    expires = world.now() + 7 * DAY
    link = await bot.create_chat_invite_link(
        chat.id, name="reward:alice:10", expire_date=expires, creates_join_request=True
    )
    assert link.creates_join_request and link.expire_date is not None
    assert int(link.expire_date.timestamp()) == expires
    assert link.member_limit is None and link.pending_join_request_count is None

    assert world.open_link(cast.alice, link.invite_link).kind == "requested"
    requests, offset = await requests_of(bot, offset)
    assert len(requests) == 1
    request = requests[0]
    assert request.chat.id == chat.id and request.from_user.id == cast.alice.id
    assert request.invite_link is not None
    assert request.invite_link.invite_link == link.invite_link  # the bot's own link: in full
    assert request.invite_link.name == "reward:alice:10"
    assert request.invite_link.creates_join_request
    assert request.invite_link.pending_join_request_count == 1
    # Only administrators with can_invite_users get join requests.
    assert (await requests_of(other, other_offset))[0] == []

    assert await bot.approve_chat_join_request(chat.id, cast.alice.id)
    assert world.member(chat, cast.alice).in_chat
    changes = member_changes(await bot.get_updates(offset=offset))
    assert len(changes) == 1
    change = changes[0].chat_member
    assert change is not None
    assert change.old_chat_member.status == "left"
    assert change.new_chat_member.status == "member"
    assert change.invite_link is not None and change.invite_link.invite_link == link.invite_link
    edited = await bot.edit_chat_invite_link(
        chat.id, link.invite_link, name="reward:alice:10", creates_join_request=True
    )
    assert edited.pending_join_request_count is None  # nobody waits any more


async def test_a_forwarded_reward_link_makes_a_request_the_bot_can_decline(
    world: World, cast: Cast, client: BotFactory
) -> None:
    chat = reward_chat(world, cast)
    bot = client(cast.sim)
    offset = await subscribed(bot)
    link = await bot.create_chat_invite_link(
        chat.id, name="reward:alice", creates_join_request=True
    )
    world.open_link(cast.alice, link.invite_link)
    # Alice forwards the link; Bob opens it: Telegram sends a request like any other.
    assert world.open_link(cast.bob, link.invite_link).kind == "requested"
    assert world.open_link(cast.bob, link.invite_link).kind == "already_requested"
    requests, offset = await requests_of(bot, offset)
    assert [r.from_user.id for r in requests] == [cast.alice.id, cast.bob.id]
    assert requests[1].invite_link is not None
    assert requests[1].invite_link.pending_join_request_count == 2

    assert await bot.decline_chat_join_request(chat.id, cast.bob.id)
    assert not world.member(chat, cast.bob).in_chat
    assert member_changes(await bot.get_updates(offset=offset)) == []
    assert [r.user_id for r in world.join_requests(chat)] == [cast.alice.id]
    edited = await bot.edit_chat_invite_link(chat.id, link.invite_link, creates_join_request=True)
    assert edited.pending_join_request_count == 1
    # Declined, Bob may ask again through the same link.
    assert world.open_link(cast.bob, link.invite_link).kind == "requested"


async def test_an_expired_reward_link_fails_but_is_not_revoked(
    world: World, cast: Cast, client: BotFactory, clock: FakeClock
) -> None:
    chat = reward_chat(world, cast)
    bot = client(cast.sim)
    link = await bot.create_chat_invite_link(
        chat.id, expire_date=world.now() + DAY, creates_join_request=True
    )
    world.open_link(cast.alice, link.invite_link)
    clock.advance(DAY)
    with pytest.raises(LinkError) as caught:
        world.open_link(cast.bob, link.invite_link)
    assert caught.value.reason == "INVITE_HASH_EXPIRED"
    assert "expired" in caught.value.detail
    assert world.join_requests(chat)[0].user_id == cast.alice.id

    # Expired is not revoked: the bot may still edit the link (here: extend it) ...
    extended = await bot.edit_chat_invite_link(
        chat.id, link.invite_link, expire_date=world.now() + DAY, creates_join_request=True
    )
    assert extended.is_revoked is False
    assert extended.pending_join_request_count == 1
    assert world.open_link(cast.bob, link.invite_link).kind == "requested"
    # ... and a request made before the expiry can still be approved.
    assert await bot.approve_chat_join_request(chat.id, cast.alice.id)
    assert world.member(chat, cast.alice).joined_via_link == link.invite_link


async def test_a_revoked_reward_link_fails_and_shows_as_revoked(
    world: World, cast: Cast, client: BotFactory
) -> None:
    chat = reward_chat(world, cast)
    bot = client(cast.sim)
    offset = await subscribed(bot)
    link = await bot.create_chat_invite_link(chat.id, name="reward:bob", creates_join_request=True)
    world.open_link(cast.bob, link.invite_link)
    revoked = await bot.revoke_chat_invite_link(chat.id, link.invite_link)
    assert revoked.is_revoked and revoked.name == "reward:bob"
    with pytest.raises(LinkError) as caught:
        world.open_link(cast.alice, link.invite_link)
    assert caught.value.reason == "INVITE_HASH_EXPIRED"
    assert "revoked" in caught.value.detail

    # The request made before the revocation is still pending and can be approved.
    _, offset = await requests_of(bot, offset)
    assert await bot.approve_chat_join_request(chat.id, cast.bob.id)
    change = member_changes(await bot.get_updates(offset=offset))[0].chat_member
    assert change is not None and change.invite_link is not None
    assert change.invite_link.is_revoked


async def test_the_bot_loses_requests_with_its_invite_right(
    world: World, cast: Cast, client: BotFactory
) -> None:
    chat = reward_chat(world, cast)
    sim: SimBot = cast.sim
    bot = client(sim)
    offset = await subscribed(bot)
    link = await bot.create_chat_invite_link(chat.id, creates_join_request=True)
    world.set_admin_rights(chat, sim, rights={"can_invite_users": False}, by=cast.owner)
    offset = await drain(bot)
    assert world.open_link(cast.alice, link.invite_link).kind == "requested"
    assert (await requests_of(bot, offset))[0] == []
