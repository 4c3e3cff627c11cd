"""What the Bot API allows for files: size limits, photo checks, MIME types, paths.

The limits are the Bot API's documented ones (core.telegram.org/bots/api, "Sending files"
and ``getFile``): bots upload up to 50 MB (photos up to 10 MB) and download up to 20 MB.
Photos must be images the sandbox can read the size of (PNG or JPEG here), at most 10000
pixels wide and high together, with a side ratio of at most 20.
"""

from __future__ import annotations

import mimetypes
import struct
from dataclasses import dataclass

MB = 1024 * 1024
MAX_CAPTION_LENGTH = 1024


@dataclass
class FileLimits:
    """Byte limits; the defaults are Telegram's (a test may lower them)."""

    download: int = 20 * MB
    upload: int = 50 * MB
    photo: int = 10 * MB


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def image_size(content: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG or JPEG image, or None if it is neither."""
    if content.startswith(PNG_SIGNATURE):
        if len(content) < 24 or content[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", content[16:24])
        return (width, height) if width and height else None
    if content.startswith(b"\xff\xd8"):
        return _jpeg_size(content)
    return None


def _jpeg_size(content: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(content):
        if content[pos] != 0xFF:
            return None
        marker = content[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", content[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            if pos + 9 > len(content):
                return None
            height, width = struct.unpack(">HH", content[pos + 5 : pos + 9])
            return (width, height) if width and height else None
        if length < 2:
            return None
        pos += 2 + length
    return None


def photo_dimensions_ok(width: int, height: int) -> bool:
    """sendPhoto: "width and height must not exceed 10000 in total", ratio at most 20."""
    return width + height <= 10000 and max(width, height) <= 20 * min(width, height)


def guess_mime_type(file_name: str | None) -> str:
    """The MIME type Telegram reports for an upload: from the extension, else octet-stream."""
    if file_name:
        guessed, _ = mimetypes.guess_type(file_name, strict=False)
        if guessed:
            return guessed
    return "application/octet-stream"


def clean_file_name(name: str | None) -> str | None:
    """The name part of an uploaded file's name, without control characters."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ord(ch) >= 32).strip()
    return cleaned[:255] or None


def extension_of(file: str | None, default: str) -> str:
    """The extension used in a ``file_path`` (``file_7.pdf``)."""
    if file and "." in file:
        ext = file.rsplit(".", 1)[-1].lower()
        if ext.isalnum() and len(ext) <= 8:
            return ext
    return default
