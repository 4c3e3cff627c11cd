"""Files through aiogram: documents and photos in and out, getFile and downloads."""

from __future__ import annotations

import struct
import zlib

import aiohttp
import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramEntityTooLarge, TelegramRetryAfter
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from sandbox import FakeClock, ScriptError, World
from sandbox.files import MB
from tests.sandbox.conftest import BotFactory, Cast, drain


def png(width: int = 4, height: int = 3, *, padding: int = 0) -> bytes:
    """A real (tiny, grey) PNG; ``padding`` bytes of an ancillary chunk make it bigger."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(min(height, 4)))
    extra = chunk(b"teXt", b"c\x00" + b"x" * padding) if padding else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg(width: int, height: int) -> bytes:
    """The markers a JPEG decoder reads the size from (APP0, then a baseline SOF0)."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


CSV = b"code\nSPRING-0001\nSPRING-0002\n"


async def test_a_document_from_a_person_arrives_and_downloads(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    offset = await drain(bot)
    world.send_document(cast.owner, cast.sim, "codes.csv", CSV, caption="/upload spring pool")

    updates = await bot.get_updates(offset=offset)
    message = updates[-1].message
    assert message is not None and message.document is not None
    document = message.document
    assert document.file_name == "codes.csv"
    assert document.mime_type == "text/csv"
    assert document.file_size == len(CSV)
    assert message.caption == "/upload spring pool"
    assert message.caption_entities is not None
    assert message.caption_entities[0].type == "bot_command"
    assert message.text is None

    file = await bot.get_file(document.file_id)
    assert file.file_unique_id == document.file_unique_id
    assert file.file_size == len(CSV)
    assert file.file_path is not None and file.file_path.startswith("documents/")
    assert file.file_path.endswith(".csv")
    downloaded = await bot.download(document.file_id)
    assert downloaded is not None and downloaded.read() == CSV
    again = await bot.download_file(file.file_path)
    assert again is not None and again.read() == CSV


async def test_file_ids_belong_to_one_bot(world: World, cast: Cast, client: BotFactory) -> None:
    other_sim = world.add_bot("other_helper_bot")
    world.add_bot_to_chat(cast.chat, other_sim, by=cast.owner)
    world.add_member(cast.chat, cast.alice)
    ours, theirs = client(cast.sim), client(other_sim)
    offsets = [await drain(ours), await drain(theirs)]
    world.send_document(cast.alice, cast.chat, "report.pdf", b"%PDF-1.4 ...")

    seen = []
    for bot, offset in zip((ours, theirs), offsets, strict=True):
        message = (await bot.get_updates(offset=offset))[-1].message
        assert message is not None and message.document is not None
        seen.append(message.document)
    assert seen[0].file_unique_id == seen[1].file_unique_id
    assert seen[0].file_id != seen[1].file_id
    assert seen[0].mime_type == "application/pdf"

    with pytest.raises(TelegramBadRequest, match="wrong file_id or the file is temporarily"):
        await theirs.get_file(seen[0].file_id)
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await ours.get_file("nonsense")
    world.send_text(cast.alice, cast.sim, "/start")
    world.send_text(cast.alice, other_sim, "/start")
    with pytest.raises(TelegramBadRequest, match="wrong file identifier/HTTP URL specified"):
        await theirs.send_document(cast.alice.id, seen[0].file_id)
    # file_unique_id cannot be used to send or download.
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await ours.send_document(cast.alice.id, seen[0].file_unique_id)
    sent = await ours.send_document(cast.alice.id, seen[0].file_id)
    assert sent.document is not None and sent.document.file_id == seen[0].file_id


async def test_get_file_refuses_big_files_and_paths_expire(
    world: World, cast: Cast, client: BotFactory, clock: FakeClock
) -> None:
    bot = client(cast.sim)
    offset = await drain(bot)
    world.send_document(cast.owner, cast.sim, "big.zip", b"\x00" * (20 * MB + 1))
    world.send_document(cast.owner, cast.sim, "fits.zip", b"\x00" * (20 * MB))
    updates = await bot.get_updates(offset=offset)
    big, fits = (u.message.document for u in updates if u.message and u.message.document)
    assert big is not None and fits is not None
    with pytest.raises(TelegramBadRequest) as caught:
        await bot.get_file(big.file_id)
    assert caught.value.message == "Bad Request: file is too big"

    file = await bot.get_file(fits.file_id)
    assert file.file_path is not None
    clock.advance(3599)
    assert len((await bot.download_file(file.file_path) or b"").read()) == 20 * MB  # type: ignore[union-attr]
    clock.advance(2)
    with pytest.raises(aiohttp.ClientResponseError) as failed:
        await bot.download_file(file.file_path)
    assert failed.value.status == 404
    # A new getFile makes the path valid again.
    assert (await bot.get_file(fits.file_id)).file_path == file.file_path
    assert await bot.download_file(file.file_path) is not None


async def test_send_document_upload_with_caption_and_buttons(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    world.send_text(cast.owner, cast.sim, "/export")
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Refresh", callback_data="export:again")]]
    )
    sent = await bot.send_document(
        cast.owner.id,
        BufferedInputFile(b"rank,reader\n1,alice\n", filename="board-2026-w47.csv"),
        caption="<b>Top readers</b> this week",
        parse_mode="HTML",
        reply_markup=markup,
    )
    assert sent.document is not None
    assert sent.document.file_name == "board-2026-w47.csv"
    assert sent.document.mime_type == "text/csv"
    assert sent.caption == "Top readers this week"
    assert sent.caption_entities is not None and sent.caption_entities[0].type == "bold"

    seen = world.last_file(cast.sim, cast.owner)
    assert seen.document is not None and seen.document.content == b"rank,reader\n1,alice\n"
    assert seen.document.file_name == "board-2026-w47.csv"
    assert seen.caption == "Top readers this week"
    assert seen.chat_id == cast.owner.id and seen.is_private
    assert seen.button(data="export:again")["text"] == "Refresh"
    assert world.file_by_id(sent.document.file_id) is seen.document

    # The same file again by file_id: no new upload, same bytes.
    world.send_text(cast.alice, cast.sim, "/start")
    again = await bot.send_document(cast.alice.id, sent.document.file_id, caption="yours")
    assert again.document is not None
    assert again.document.file_unique_id == sent.document.file_unique_id
    assert [m.caption for m in world.sent_files(cast.sim, kind="document")] == [
        "Top readers this week",
        "yours",
    ]
    # Bots can download what they uploaded.
    downloaded = await bot.download(sent.document.file_id)
    assert downloaded is not None and downloaded.read() == b"rank,reader\n1,alice\n"


async def test_captions_are_checked_like_message_text(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    world.send_text(cast.owner, cast.sim, "/start")
    upload = BufferedInputFile(CSV, filename="codes.csv")
    # 1024 characters after the markup is parsed fit; 1025 do not.
    fits = await bot.send_document(
        cast.owner.id, upload, caption="<i>" + "a" * 1024 + "</i>", parse_mode="HTML"
    )
    assert fits.caption is not None and len(fits.caption) == 1024
    with pytest.raises(TelegramBadRequest) as caught:
        await bot.send_document(cast.owner.id, upload, caption="a" * 1025)
    assert caught.value.message == "Bad Request: message caption is too long"
    with pytest.raises(TelegramBadRequest, match="can't parse entities: Can't find end tag"):
        await bot.send_document(cast.owner.id, upload, caption="<b>open", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="file must be non-empty"):
        await bot.send_document(cast.owner.id, BufferedInputFile(b"", filename="empty.txt"))
    assert len(world.sent_files(cast.sim)) == 1


async def test_uploads_over_50_mb_are_refused_with_413(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    world.send_text(cast.owner, cast.sim, "/start")
    huge = BufferedInputFile(b"\x00" * (50 * MB + 1), filename="all-members.csv")
    with pytest.raises(TelegramEntityTooLarge) as caught:
        await bot.send_document(cast.owner.id, huge)
    assert caught.value.message == "Request Entity Too Large"
    assert world.sent_files(cast.sim) == []
    assert world.calls_of("sendDocument")[-1].error_code == 413


async def test_photo_uploads_must_be_readable_images_within_limits(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    world.set_rate_limits(enabled=False)  # many sends to one private chat
    world.send_text(cast.owner, cast.sim, "/start")
    chat = cast.owner.id
    sent = await bot.send_photo(chat, BufferedInputFile(png(64, 48), "card.png"), caption="You!")
    assert sent.photo is not None
    assert (sent.photo[-1].width, sent.photo[-1].height) == (64, 48)
    assert sent.caption == "You!"
    as_jpeg = await bot.send_photo(chat, BufferedInputFile(jpeg(800, 600), "card.jpg"))
    assert as_jpeg.photo is not None and as_jpeg.photo[-1].width == 800

    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(chat, BufferedInputFile(b"GIF89a not a png", "card.png"))
    with pytest.raises(TelegramBadRequest, match="PHOTO_INVALID_DIMENSIONS"):
        await bot.send_photo(chat, BufferedInputFile(png(9000, 1001), "wide.png"))
    with pytest.raises(TelegramBadRequest, match="PHOTO_INVALID_DIMENSIONS"):
        await bot.send_photo(chat, BufferedInputFile(png(2100, 100), "banner.png"))
    too_big = png(padding=10 * MB)
    with pytest.raises(TelegramBadRequest) as caught:
        await bot.send_photo(chat, BufferedInputFile(too_big, "huge.png"))
    assert caught.value.message == (
        f"Bad Request: file of size {len(too_big)} bytes is too big for a photo; "
        "the maximum size is 10485760 bytes"
    )
    # A photo cannot be sent again as a document (nor a document as a photo).
    with pytest.raises(TelegramBadRequest, match="can't use file of type Photo as Document"):
        await bot.send_document(chat, sent.photo[-1].file_id)
    document = await bot.send_document(chat, BufferedInputFile(png(), "card.png"))
    assert document.document is not None and document.document.mime_type == "image/png"
    with pytest.raises(TelegramBadRequest, match="can't use file of type Document as Photo"):
        await bot.send_photo(chat, document.document.file_id)

    photos = world.sent_files(cast.sim, cast.owner, kind="photo")
    assert [p.photo.width for p in photos if p.photo] == [64, 800]
    again = await bot.send_photo(chat, sent.photo[-1].file_id)
    assert (
        again.photo is not None and again.photo[-1].file_unique_id == sent.photo[-1].file_unique_id
    )


async def test_a_photo_from_a_person_arrives_with_its_size(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    offset = await drain(bot)
    picture = png(30, 20)
    world.send_photo(cast.alice, cast.sim, picture, caption="proof")
    message = (await bot.get_updates(offset=offset))[-1].message
    assert message is not None and message.photo is not None and message.caption == "proof"
    largest = message.photo[-1]
    assert (largest.width, largest.height, largest.file_size) == (30, 20, len(picture))
    downloaded = await bot.download(largest.file_id)
    assert downloaded is not None and downloaded.read() == picture
    file = await bot.get_file(largest.file_id)
    assert file.file_path is not None and file.file_path.startswith("photos/")
    with pytest.raises(ScriptError, match="PNG or JPEG"):
        world.send_photo(cast.alice, cast.sim, b"not an image")


async def test_sending_files_counts_against_the_flood_limits(
    world: World, cast: Cast, client: BotFactory
) -> None:
    bot = client(cast.sim)
    world.send_text(cast.owner, cast.sim, "/start")
    upload = BufferedInputFile(CSV, filename="codes.csv")
    await bot.send_message(cast.owner.id, "one")
    await bot.send_document(cast.owner.id, upload)
    await bot.send_photo(cast.owner.id, BufferedInputFile(png(), "p.png"))
    with pytest.raises(TelegramRetryAfter):
        await bot.send_document(cast.owner.id, upload)
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(cast.owner.id, "four")


async def test_media_permissions_apply_to_bots_and_people(
    world: World, cast: Cast, client: BotFactory
) -> None:
    helper = world.add_bot("plain_helper_bot")
    world.add_bot_to_chat(cast.chat, helper, admin=False)
    world.add_member(cast.chat, cast.alice)
    world.set_chat_permissions(cast.chat, can_send_documents=False)
    bot = client(helper)
    with pytest.raises(TelegramBadRequest, match="not enough rights to send documents"):
        await bot.send_document(cast.chat.id, BufferedInputFile(CSV, filename="codes.csv"))
    sent = await bot.send_photo(cast.chat.id, BufferedInputFile(png(), "p.png"))
    assert sent.chat.id == cast.chat.id
    with pytest.raises(ScriptError):
        world.send_document(cast.alice, cast.chat, "codes.csv", CSV)
    # The administrator bot is not bound by the members' permissions.
    admin_bot = client(cast.sim)
    await admin_bot.send_document(cast.chat.id, BufferedInputFile(CSV, filename="codes.csv"))
    assert [m.chat_id for m in world.sent_files(cast.sim)] == [cast.chat.id]


async def test_privacy_mode_shows_documents_with_a_command_caption_only(
    world: World, cast: Cast, client: BotFactory
) -> None:
    helper = world.add_bot("plain_helper_bot")
    world.add_bot_to_chat(cast.chat, helper, admin=False)
    world.add_member(cast.chat, cast.alice)
    bot = client(helper)
    offset = await drain(bot)
    world.send_document(cast.alice, cast.chat, "holiday.txt", b"just sharing")
    world.send_document(
        cast.alice, cast.chat, "codes.csv", CSV, caption="/import@plain_helper_bot"
    )
    messages = [u.message for u in await bot.get_updates(offset=offset) if u.message]
    assert [m.document.file_name for m in messages if m.document] == ["codes.csv"]
