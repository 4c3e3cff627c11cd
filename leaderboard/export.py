"""CSV exports of a program for its creator: readers (counts by state and by link label),
referrals (timestamps, states, reasons) and grants.

Cells that begin with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) are prefixed
with ``'`` so a display name can never become a spreadsheet formula. Rows come from the
database in partitions and are written to the file in a worker thread
(:func:`asyncio.to_thread`), so neither a program's size nor the CSV work weighs on the
event loop or on memory.

A file bigger than what the platform lets a bot upload is zipped (stdlib ``zipfile``); if
even the zip is too big, the CSV is split into parts of whole rows, each with the header
(:func:`fit`). Each :class:`ExportFile` says which, so the caption can tell the reader.
"""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from storage import exports as db
from storage.database import Database

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORTS = ("readers", "referrals", "grants")


def cell(value: Any) -> str:
    """One CSV cell as text, neutralised against formula injection."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A whole CSV file in memory (small files and tests; exports stream)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([cell(name) for name in header])
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return out.getvalue().encode("utf-8")


def header_of(what: str, labels: Sequence[str], other: bool = False) -> list[str]:
    """The columns of one export; the readers' adds ``confirmed_via_<label>`` columns (and
    ``confirmed_via_other`` for the labels past the first 50)."""
    columns = list(db.EXPORT_COLUMNS[what])
    if what == "readers":
        columns += [f"confirmed_via_{label or 'default'}" for label in labels]
        if other:
            columns.append("confirmed_via_other")
    return columns


class _CsvFile:
    """One CSV file written a partition at a time (each write runs in a worker thread)."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self.path = path
        self._file: BinaryIO = path.open("wb")
        self._text = io.TextIOWrapper(self._file, encoding="utf-8", newline="")
        self._writer = csv.writer(self._text, lineterminator="\n")
        self._writer.writerow([cell(name) for name in header])

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        self._writer.writerows([cell(value) for value in row] for row in rows)

    def close(self) -> None:
        self._text.close()


async def write_csvs(database: Database, program_id: int, out: Path) -> list[Path]:
    """Write ``readers.csv``, ``referrals.csv`` and ``grants.csv`` of a program into
    ``out`` (made if missing) from one read snapshot; returns their paths."""
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    paths = []
    async with database.read() as conn:
        labels, other = await db.top_labels(conn, program_id)
        for what in EXPORTS:
            path = out / f"{what}.csv"
            sink = await asyncio.to_thread(_CsvFile, path, header_of(what, labels, other))
            try:
                rows_of = db.export_rows(conn, what, program_id, labels=labels, other=other)
                async for rows in rows_of:
                    await asyncio.to_thread(sink.write, rows)
            finally:
                await asyncio.to_thread(sink.close)
            paths.append(path)
    return paths


async def write_export(database: Database, program_id: int, out: Path) -> list[Path]:
    """``inviteloop export``: the program's CSV files in ``out``; returns their paths."""
    return await write_csvs(database, program_id, out)


# --- fitting a platform's upload limit ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fitted:
    """One file to send: ``form`` is ``csv`` (as written), ``zip`` (the CSV zipped) or
    ``part`` (``part`` of ``parts`` of the CSV, each with the header); ``original`` is the
    CSV's size in bytes."""

    path: Path
    form: str
    original: int
    part: int = 1
    parts: int = 1

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def fit(path: Path, limit: int) -> list[Fitted]:
    """The file as it can be uploaded under ``limit`` bytes: as it is, zipped, or split
    into parts of whole rows (the original is removed when replaced). Blocking: run it
    in a worker thread."""
    original = path.stat().st_size
    if original <= limit:
        return [Fitted(path, "csv", original)]
    zipped = path.with_name(path.name + ".zip")
    with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        z.write(path, arcname=path.name)
    if zipped.stat().st_size <= limit:
        path.unlink()
        return [Fitted(zipped, "zip", original)]
    zipped.unlink()
    parts = _split(path, limit)
    path.unlink()
    return [Fitted(p, "part", original, i, len(parts)) for i, p in enumerate(parts, start=1)]


def _split(path: Path, limit: int) -> list[Path]:
    """Parts of at most ``limit`` bytes, each the header and then whole rows (a row is a
    CSV record: a quoted cell may hold a line break)."""
    stem = path.name.removesuffix(".csv")
    with path.open("r", encoding="utf-8", newline="") as source:
        reader = csv.reader(source)
        header = _record(next(reader))
        if len(header) >= limit:
            raise ValueError(f"{path.name}: the header alone is over {limit} bytes")
        parts: list[Path] = []
        out: BinaryIO | None = None
        used = 0
        for row in reader:
            record = _record(row)
            if len(header) + len(record) > limit:
                raise ValueError(f"{path.name}: one row is over {limit} bytes")
            if out is None or used + len(record) > limit:
                if out is not None:
                    out.close()
                part = path.with_name(f"{stem}.part{len(parts) + 1}.csv")
                parts.append(part)
                out = part.open("wb")
                out.write(header)
                used = len(header)
            out.write(record)
            used += len(record)
        if out is not None:
            out.close()
    return parts


def _record(row: Sequence[str]) -> bytes:
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(row)
    return line.getvalue().encode("utf-8")
