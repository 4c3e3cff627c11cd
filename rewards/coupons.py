"""Coupon files: one code per line (.txt) or the first column of a .csv (a header cell
``code`` is skipped). Parsed as a whole before anything is imported: a file that is not
text, or holds a code that is too long, is refused with nothing imported; blank lines and
duplicates are skipped and counted."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from rewards.models import BadCouponFile

MAX_FILE_BYTES = 5 * 1024 * 1024  # 5 MB: about 250,000 codes of 20 characters
MAX_CODE_LENGTH = 64
MAX_CODES = 200_000
EXTENSIONS = (".txt", ".csv")


@dataclass(frozen=True, slots=True)
class ParsedCodes:
    codes: list[str]  # unique, in file order
    blank: int
    duplicate_in_file: int
    too_long: int


def parse_coupon_file(filename: str, content: bytes) -> ParsedCodes:
    """The codes of one uploaded file; :class:`BadCouponFile` when it cannot be used."""
    name = (filename or "").lower()
    if not name.endswith(EXTENSIONS):
        raise BadCouponFile("extension", "send the codes as a .txt or .csv file")
    if len(content) > MAX_FILE_BYTES:
        raise BadCouponFile("too_big", "the file is too big", limit_mb=MAX_FILE_BYTES // 2**20)
    if b"\x00" in content:
        raise BadCouponFile("not_text", "the file is not text")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadCouponFile("not_text", "the file is not UTF-8 text") from None
    cells: list[str] = []
    if name.endswith(".csv"):
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        try:
            for index, row in enumerate(csv.reader(io.StringIO(text), dialect)):
                cell = row[0].strip() if row else ""
                if index == 0 and cell.lower() in ("code", "codes", "coupon", "kode"):
                    continue
                cells.append(cell)
        except csv.Error as exc:
            raise BadCouponFile("not_csv", f"the CSV file cannot be read: {exc}") from None
    else:
        cells = [line.strip() for line in text.splitlines()]
    codes: list[str] = []
    seen: set[str] = set()
    blank = duplicates = too_long = 0
    for cell in cells:
        if not cell:
            blank += 1
        elif len(cell) > MAX_CODE_LENGTH or not cell.isprintable():
            too_long += 1
        elif cell in seen:
            duplicates += 1
        else:
            seen.add(cell)
            codes.append(cell)
    if too_long:
        raise BadCouponFile(
            "too_long",
            f"{too_long} codes are longer than {MAX_CODE_LENGTH} characters or not printable",
            count=too_long,
            limit=MAX_CODE_LENGTH,
        )
    if len(codes) > MAX_CODES:
        raise BadCouponFile("too_many", "too many codes in one file", limit=MAX_CODES)
    if not codes:
        raise BadCouponFile("empty", "the file holds no codes")
    return ParsedCodes(codes, blank, duplicates, too_long)
