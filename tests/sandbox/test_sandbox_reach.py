"""Who a bot can reach: private chats, blocks, deleted accounts, removals, member statuses."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.types import ChatMemberBanned, ChatMemberRestricted

from sandbox import GROUP_ANONYMOUS_BOT_ID, World
from tests.sandbox.conftest import BotFactory, Cast, drain


async def test_private_chat_needs_the_user_to_start_the_bot(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    stranger = world.add_user("Stranger")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(stranger.id, "hi")
    world.add_member(cast.chat, cast.alice)  # the bot has now seen Alice
    with pytest.raises(TelegramForbiddenError) as caught:
        await bot.send_message(cast.alice.id, "hi")
    assert caught.value.message == "Forbidden: bot can't initiate conversation with a user"
    world.send_text(cast.alice, cast.sim, "hello?")
    sent = await bot.send_message(cast.alice.id, "hi")
    assert sent.chat.id == cast.alice.id and sent.chat.type == "private"


async def test_blocking_sends_my_chat_member_and_403(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    offset = await drain(bot)
    world.send_text(cast.alice, cast.sim, "/start")
    world.block_bot(cast.alice, cast.sim)
    updates = await bot.get_updates(offset=offset)
    change = updates[-1].my_chat_member
    assert change is not None
    assert change.chat.type == "private" and change.chat.id == cast.alice.id
    assert change.from_user.id == cast.alice.id
    assert change.old_chat_member.status == "member"
    assert change.new_chat_member.status == "kicked"
    with pytest.raises(TelegramForbiddenError) as caught:
        await bot.send_message(cast.alice.id, "come back")
    assert caught.value.message == "Forbidden: bot was blocked by the user"

    world.unblock_bot(cast.alice, cast.sim)
    updates = await bot.get_updates(offset=updates[-1].update_id + 1)
    back = updates[-1].my_chat_member
    assert back is not None and back.new_chat_member.status == "member"
    await bot.send_message(cast.alice.id, "welcome back")


async def test_deleted_accounts_and_other_bots_are_unreachable(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    world.send_text(cast.bob, cast.sim, "/start")
    world.deactivate(cast.bob)
    with pytest.raises(TelegramForbiddenError) as caught:
        await bot.send_message(cast.bob.id, "still there?")
    assert caught.value.message == "Forbidden: user is deactivated"
    other = world.add_bot("other_helper_bot")
    with pytest.raises(TelegramForbiddenError, match="bot can't send messages to bots"):
        await bot.send_message(other.id, "hi")


async def test_removed_bot_gets_403_by_chat_type(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    offset = await drain(bot)
    world.remove_bot_from_chat(cast.chat, cast.sim, by=cast.owner)
    change = (await bot.get_updates(offset=offset))[-1].my_chat_member
    assert change is not None
    assert change.from_user.id == cast.owner.id
    assert change.new_chat_member.status == "kicked"
    with pytest.raises(TelegramForbiddenError) as caught:
        await bot.send_message(cast.chat.id, "hello?")
    assert caught.value.message == "Forbidden: bot was kicked from the supergroup chat"

    channel = world.add_chat("channel", "News", owner=cast.owner)
    world.add_bot_to_chat(channel, cast.sim, by=cast.owner)
    await bot.leave_chat(channel.id)
    with pytest.raises(TelegramForbiddenError) as caught:
        await bot.send_message(channel.id, "post")
    assert caught.value.message == "Forbidden: bot is not a member of the channel chat"

    group = world.add_chat("group", "Old group", owner=cast.owner)
    world.add_bot_to_chat(group, cast.sim, by=cast.owner, admin=False)
    world.leave(cast.sim, group)
    with pytest.raises(TelegramForbiddenError, match="bot is not a member of the group chat"):
        await bot.send_message(group.id, "hi")

    secret = world.add_chat("supergroup", "Never joined", owner=cast.owner)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(secret.id, "hi")


async def test_channel_posting_needs_can_post_messages(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    channel = world.add_chat("channel", "News", owner=cast.owner, username="news_feed")
    world.add_bot_to_chat(channel, cast.sim, rights={"can_post_messages": False})
    with pytest.raises(TelegramBadRequest, match="need administrator rights in the channel chat"):
        await bot.send_message(channel.id, "post")
    world.set_admin_rights(channel, cast.sim, rights={"can_post_messages": True})
    post = await bot.send_message("@news_feed", "post")
    assert post.from_user is None
    assert post.sender_chat is not None and post.sender_chat.id == channel.id


async def test_get_chat_member_reports_every_status(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    chat = cast.chat
    world.add_member(chat, cast.alice)
    world.add_member(chat, cast.bob)
    carol = world.add_user("Carol")
    dave = world.add_user("Dave")
    world.add_member(chat, carol)
    world.kick(cast.owner, carol, chat, until_date=world.now() + 3600)
    world.add_member(chat, dave)
    world.restrict(cast.owner, dave, chat, permissions={"can_send_messages": True})
    world.set_admin_rights(chat, cast.bob, rights={"can_invite_users": True}, is_anonymous=True)

    async def status(user_id: int) -> str:
        return (await bot.get_chat_member(chat.id, user_id)).status

    assert await status(cast.owner.id) == "creator"
    assert await status(cast.alice.id) == "member"
    assert await status(cast.bob.id) == "administrator"
    assert await status(carol.id) == "kicked"
    assert await status(dave.id) == "restricted"
    assert await status(world.add_user("Eve").id) == "left"
    kicked = await bot.get_chat_member(chat.id, carol.id)
    assert isinstance(kicked, ChatMemberBanned)
    assert kicked.until_date is not None and int(kicked.until_date.timestamp()) > world.now()
    restricted = await bot.get_chat_member(chat.id, dave.id)
    assert isinstance(restricted, ChatMemberRestricted)
    assert restricted.is_member and restricted.can_send_messages
    assert not restricted.can_pin_messages
    assert await bot.get_chat_member_count(chat.id) == 5  # owner, bot, alice, bob, dave

    admins = await bot.get_chat_administrators(chat.id)
    assert {a.user.id for a in admins} == {cast.owner.id, cast.bob.id, cast.sim.id}
    other = world.add_bot("second_helper_bot")
    world.add_bot_to_chat(chat, other)
    assert other.id not in {a.user.id for a in await bot.get_chat_administrators(chat.id)}
    with_bots = await bot.get_chat_administrators(chat.id, return_bots=True)
    assert other.id in {a.user.id for a in with_bots}
    with pytest.raises(TelegramBadRequest, match="invalid user_id specified"):
        await bot.get_chat_member(chat.id, 0)


async def test_leaves_and_kicks_name_the_performer(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    offset = await drain(bot)
    await bot.get_updates(offset=offset, allowed_updates=["chat_member"])
    world.add_member(cast.chat, cast.alice)
    world.add_member(cast.chat, cast.bob)
    world.leave(cast.alice, cast.chat)
    world.kick(cast.owner, cast.bob, cast.chat)
    world.unban(cast.owner, cast.bob, cast.chat)
    changes = [u.chat_member for u in await bot.get_updates(offset=offset) if u.chat_member]
    summary = [
        (
            c.new_chat_member.user.id,
            c.old_chat_member.status,
            c.new_chat_member.status,
            c.from_user.id,
        )
        for c in changes
    ]
    assert summary == [
        (cast.alice.id, "left", "member", cast.owner.id),
        (cast.bob.id, "left", "member", cast.owner.id),
        (cast.alice.id, "member", "left", cast.alice.id),
        (cast.bob.id, "member", "kicked", cast.owner.id),
        (cast.bob.id, "kicked", "left", cast.owner.id),
    ]


async def test_anonymous_admins_act_as_group_anonymous_bot(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    offset = await drain(bot)
    await bot.get_updates(offset=offset, allowed_updates=["chat_member", "message"])
    world.add_member(cast.chat, cast.alice)
    world.set_admin_rights(cast.chat, cast.alice, is_anonymous=True, custom_title="Editor")
    world.send_text(cast.alice, cast.chat, "/leaderboard")
    world.add_member(cast.chat, cast.bob)
    world.kick(cast.alice, cast.bob, cast.chat)
    updates = await bot.get_updates(offset=offset)
    typed = [u.message for u in updates if u.message and u.message.text]
    assert typed[0].from_user is not None and typed[0].from_user.id == GROUP_ANONYMOUS_BOT_ID
    assert typed[0].sender_chat is not None and typed[0].sender_chat.id == cast.chat.id
    assert typed[0].author_signature == "Editor"
    kick = [u.chat_member for u in updates if u.chat_member][-1]
    assert kick.new_chat_member.status == "kicked"
    assert kick.from_user.id == GROUP_ANONYMOUS_BOT_ID


async def test_bot_status_changes_and_bans_through_the_api(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    offset = await drain(bot)
    await bot.get_updates(offset=offset, allowed_updates=["chat_member", "my_chat_member"])
    world.add_member(cast.chat, cast.alice)
    assert await bot.ban_chat_member(cast.chat.id, cast.alice.id)
    assert await bot.unban_chat_member(cast.chat.id, cast.alice.id, only_if_banned=True)
    with pytest.raises(TelegramBadRequest, match="can't remove chat owner"):
        await bot.ban_chat_member(cast.chat.id, cast.owner.id)
    world.demote(cast.chat, cast.sim)
    with pytest.raises(TelegramBadRequest, match="not enough rights to restrict"):
        await bot.ban_chat_member(cast.chat.id, cast.alice.id)
    await bot.leave_chat(cast.chat.id)

    updates = await bot.get_updates(offset=offset)
    seen = [
        (u.event_type, c.new_chat_member.user.id, c.new_chat_member.status, c.from_user.id)
        for u in updates
        if (c := u.chat_member or u.my_chat_member) is not None
    ]
    assert seen == [
        ("chat_member", cast.alice.id, "member", cast.owner.id),
        ("chat_member", cast.alice.id, "kicked", cast.sim.id),
        ("chat_member", cast.alice.id, "left", cast.sim.id),
        ("my_chat_member", cast.sim.id, "member", cast.owner.id),
        ("my_chat_member", cast.sim.id, "left", cast.sim.id),
    ]


async def test_get_chat_of_people_and_public_chats(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    public = world.add_chat("supergroup", "Open", "open_readers", owner=cast.owner)
    info = await bot.get_chat("@open_readers")
    assert info.id == public.id and info.active_usernames == ["open_readers"]
    with pytest.raises(TelegramForbiddenError, match="bot is not a member of the supergroup"):
        await bot.send_message(public.id, "hi")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_chat(cast.alice.id)
    world.send_text(cast.alice, cast.sim, "/start")
    person = await bot.get_chat(cast.alice.id)
    assert (person.type, person.first_name, person.last_name) == ("private", "Alice", "Smith")


async def test_edits_and_channel_posts_reach_the_bot(
    world: World, cast: Cast, client: BotFactory
) -> None:
    channel = world.add_chat("channel", "News", owner=cast.owner)
    world.add_bot_to_chat(channel, cast.sim)
    bot = client(cast.sim)
    offset = await drain(bot)
    said = world.send_text(cast.alice, cast.sim, "/invite")
    world.edit_text(cast.alice, said, "/invite whatsapp")
    world.send_text(cast.owner, channel, "Issue #12 is out")
    updates = await bot.get_updates(offset=offset)
    assert [u.event_type for u in updates] == ["message", "edited_message", "channel_post"]
    edited = updates[1].edited_message
    assert edited is not None and edited.text == "/invite whatsapp" and edited.edit_date
    post = updates[2].channel_post
    assert post is not None and post.sender_chat is not None and post.from_user is None
