"""sendMessage and friends: HTML, limits, keyboards, callbacks, edits, deletes, pins."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    CopyTextButton,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
)

from sandbox import ScriptError, World
from tests.sandbox.conftest import BotFactory, Cast, drain


def keyboard(*buttons: InlineKeyboardButton) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[list(buttons)])


@pytest.fixture
def started(world: World, cast: Cast) -> Cast:
    world.send_text(cast.alice, cast.sim, "/start")
    return cast


async def test_html_is_parsed_into_entities(
    world: World, started: Cast, client: BotFactory
) -> None:
    bot = client(started.sim)
    sent = await bot.send_message(
        started.alice.id,
        '  <b>Your link</b> &amp; <a href="https://t.me/+abc">join</a> 🎉 <i>now</i>\n',
        parse_mode="HTML",
    )
    assert sent.text == "Your link & join 🎉 now"
    kinds = [(e.type, e.offset, e.length) for e in sent.entities or []]
    assert kinds == [("bold", 0, 9), ("text_link", 12, 4), ("italic", 20, 3)]
    stored = world.last_sent(started.sim, started.alice)
    assert stored.text == "Your link & join 🎉 now"
    assert stored.parse_mode == "HTML"


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("a <br> b", 'Unsupported start tag "br" at byte offset 2'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
async def test_bad_html_is_refused_like_telegram(
    started: Cast, client: BotFactory, html: str, error: str
) -> None:
    bot = client(started.sim)
    with pytest.raises(TelegramBadRequest) as caught:
        await bot.send_message(started.alice.id, html, parse_mode="HTML")
    assert caught.value.message == f"Bad Request: can't parse entities: {error}"


async def test_text_length_and_emptiness(started: Cast, client: BotFactory) -> None:
    bot = client(started.sim)
    await bot.send_message(started.alice.id, "x" * 4096)
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(started.alice.id, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(started.alice.id, "<b> </b>", parse_mode="HTML")
    await bot.send_message(started.alice.id, "<b>" + "y" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="unsupported parse_mode"):
        await bot.send_message(started.alice.id, "hi", parse_mode="BBCode")


async def test_inline_keyboards_are_validated(started: Cast, client: BotFactory) -> None:
    bot = client(started.sim)
    ok = keyboard(
        InlineKeyboardButton(text="Share", url="https://t.me/share/url?url=https://t.me/+x"),
        InlineKeyboardButton(text="Copy", copy_text=CopyTextButton(text="https://t.me/+x")),
        InlineKeyboardButton(text="Stats", callback_data="s" * 64),
    )
    sent = await bot.send_message(started.alice.id, "menu", reply_markup=ok)
    assert sent.reply_markup is not None
    assert len(sent.reply_markup.inline_keyboard[0]) == 3

    too_long = keyboard(InlineKeyboardButton(text="x", callback_data="é" * 33))
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(started.alice.id, "menu", reply_markup=too_long)
    bad_url = keyboard(InlineKeyboardButton(text="x", url="javascript:alert(1)"))
    with pytest.raises(TelegramBadRequest, match="inline keyboard button URL"):
        await bot.send_message(started.alice.id, "menu", reply_markup=bad_url)
    text_only = keyboard(InlineKeyboardButton(text="just text"))
    with pytest.raises(TelegramBadRequest, match="Text buttons are unallowed"):
        await bot.send_message(started.alice.id, "menu", reply_markup=text_only)


async def test_reply_parameters_and_link_previews(
    world: World, started: Cast, client: BotFactory
) -> None:
    bot = client(started.sim)
    first = await bot.send_message(started.alice.id, "first")
    reply = await bot.send_message(
        started.alice.id,
        "second",
        reply_parameters=ReplyParameters(message_id=first.message_id),
        link_preview_options=LinkPreviewOptions(is_disabled=True),
        disable_notification=True,
    )
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.message_id == first.message_id
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(
            started.alice.id, "third", reply_parameters=ReplyParameters(message_id=999)
        )
    stored = world.last_sent(started.sim)
    assert stored.disable_notification and stored.link_preview_options == {"is_disabled": True}


async def test_button_press_sends_a_callback_query_answered_once(
    world: World, started: Cast, client: BotFactory
) -> None:
    bot = client(started.sim)
    offset = await drain(bot)
    await bot.send_message(
        started.alice.id,
        "Your stats",
        reply_markup=keyboard(InlineKeyboardButton(text="Refresh", callback_data="stats:1")),
    )
    message = world.last_sent(started.sim, started.alice)
    press = world.press_button(started.alice, message, data="stats:1")
    assert press.kind == "callback" and press.callback_query is not None

    updates = await bot.get_updates(offset=offset)
    query = updates[-1].callback_query
    assert query is not None
    assert query.data == "stats:1"
    assert query.from_user.id == started.alice.id
    assert query.message is not None and query.message.message_id == message.message_id

    with pytest.raises(TelegramBadRequest, match="MESSAGE_TOO_LONG"):
        await bot.answer_callback_query(query.id, text="x" * 201)
    assert await bot.answer_callback_query(query.id, text="Updated", show_alert=True)
    assert press.callback_query.answer_text == "Updated" and press.callback_query.show_alert
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("12345")
    with pytest.raises(ScriptError):
        world.press_button(started.bob, message, data="stats:1")


async def test_url_and_copy_buttons(world: World, started: Cast, client: BotFactory) -> None:
    bot = client(started.sim)
    link = await bot.create_chat_invite_link(started.chat.id)
    await bot.send_message(
        started.alice.id,
        "Join us",
        reply_markup=keyboard(
            InlineKeyboardButton(text="Join", url=link.invite_link),
            InlineKeyboardButton(text="Copy", copy_text=CopyTextButton(text=link.invite_link)),
        ),
    )
    message = world.last_sent(started.sim, started.alice)
    press = world.press_button(started.alice, message, text="Join")
    assert press.kind == "url" and press.link is not None and press.link.kind == "joined"
    copied = world.press_button(started.alice, message, text="Copy")
    assert copied.copied_text == link.invite_link


async def test_editing_messages(world: World, started: Cast, client: BotFactory) -> None:
    bot = client(started.sim)
    markup = keyboard(InlineKeyboardButton(text="Refresh", callback_data="r"))
    sent = await bot.send_message(started.alice.id, "3 referrals", reply_markup=markup)
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "3 referrals",
            chat_id=started.alice.id,
            message_id=sent.message_id,
            reply_markup=markup,
        )
    edited = await bot.edit_message_text(
        "<b>4</b> referrals",
        chat_id=started.alice.id,
        message_id=sent.message_id,
        parse_mode="HTML",
    )
    assert not isinstance(edited, bool)
    assert edited.text == "4 referrals" and edited.edit_date is not None
    assert edited.reply_markup is None  # an omitted reply_markup removes the keyboard
    again = await bot.edit_message_reply_markup(
        chat_id=started.alice.id, message_id=sent.message_id, reply_markup=markup
    )
    assert not isinstance(again, bool) and again.reply_markup is not None

    theirs = world.messages(bot=started.sim, user=started.alice)[0]
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text(
            "hacked", chat_id=started.alice.id, message_id=theirs.message_id
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=started.alice.id, message_id=999)


async def test_deleting_messages(world: World, started: Cast, client: BotFactory) -> None:
    bot = client(started.sim)
    sent = await bot.send_message(started.alice.id, "oops")
    assert await bot.delete_message(started.alice.id, sent.message_id)
    assert world.sent_messages(started.sim, started.alice) == []
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(started.alice.id, sent.message_id)

    world.add_member(started.chat, started.bob)
    said = world.send_text(started.bob, started.chat, "spam")
    world.set_admin_rights(started.chat, started.sim, rights={"can_delete_messages": False})
    with pytest.raises(TelegramBadRequest, match="message can't be deleted"):
        await bot.delete_message(started.chat.id, said.message_id)
    world.set_admin_rights(started.chat, started.sim, rights={"can_delete_messages": True})
    assert await bot.delete_message(started.chat.id, said.message_id)
    assert said.deleted


async def test_pinning_needs_the_right(world: World, started: Cast, client: BotFactory) -> None:
    bot = client(started.sim)
    world.set_admin_rights(started.chat, started.sim, rights={"can_pin_messages": False})
    board = await bot.send_message(started.chat.id, "Leaderboard")
    with pytest.raises(TelegramBadRequest) as caught:
        await bot.pin_chat_message(started.chat.id, board.message_id)
    assert caught.value.message == (
        "Bad Request: not enough rights to manage pinned messages in the chat"
    )
    world.set_admin_rights(started.chat, started.sim, rights={"can_pin_messages": True})
    assert await bot.pin_chat_message(started.chat.id, board.message_id)
    assert [m.text for m in world.pinned_messages(started.chat)] == ["Leaderboard"]
    chat = await bot.get_chat(started.chat.id)
    assert chat.pinned_message is not None and chat.pinned_message.text == "Leaderboard"
    assert await bot.unpin_chat_message(started.chat.id)
    assert world.pinned_messages(started.chat) == []

    channel = world.add_chat("channel", "News", owner=started.owner)
    world.add_bot_to_chat(channel, started.sim, rights={"can_edit_messages": False})
    post = await bot.send_message(channel.id, "Top readers")
    with pytest.raises(TelegramBadRequest, match="not enough rights to manage pinned"):
        await bot.pin_chat_message(channel.id, post.message_id)


async def test_privacy_mode_in_groups(world: World, cast: Cast, client: BotFactory) -> None:
    group = world.add_chat("group", "Book club", owner=cast.owner)
    world.add_member(group, cast.alice)
    world.add_bot_to_chat(group, cast.sim, admin=False)
    bot = client(cast.sim)
    offset = await drain(bot)
    world.send_text(cast.alice, group, "just chatting")
    world.send_text(cast.alice, group, "/top@invite_loop_bot")
    world.send_text(cast.alice, group, "/top@someone_elses_bot")
    world.send_text(cast.alice, group, "/invite")
    texts = [u.message.text for u in await bot.get_updates(offset=offset) if u.message]
    assert texts == ["/top@invite_loop_bot", "/invite"]


async def test_bot_commands_per_scope(started: Cast, client: BotFactory) -> None:
    bot = client(started.sim)
    await bot.set_my_commands([BotCommand(command="invite", description="Your link")])
    group_scope = BotCommandScopeAllGroupChats()
    await bot.set_my_commands(
        [BotCommand(command="top", description="Leaderboard")], scope=group_scope
    )
    assert [c.command for c in await bot.get_my_commands()] == ["invite"]
    assert [c.command for c in await bot.get_my_commands(scope=group_scope)] == ["top"]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])
    assert await bot.delete_my_commands(scope=group_scope)
    assert await bot.get_my_commands(scope=group_scope) == []
