"""CSV exports of a program for its creator: readers (counts by state and by link label),
referrals (timestamps, states, reasons) and grants.

Cells that begin with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) are prefixed
with ``'`` so a display name can never become a spreadsheet formula. Building the files
runs in a worker thread (:func:`asyncio.to_thread`), off the event loop.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from storage import boards as db
from storage.database import Database

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TELEGRAM_UPLOAD_LIMIT = 50 * 1024 * 1024  # a bot may send documents up to 50 MB


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
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return out.getvalue().encode("utf-8")


def _files(
    readers: Sequence[Mapping[Any, Any]],
    labels: Sequence[Mapping[Any, Any]],
    referrals: Sequence[Mapping[Any, Any]],
    grants: Sequence[Mapping[Any, Any]],
) -> dict[str, bytes]:
    by_label: dict[int, dict[str, int]] = defaultdict(dict)
    names: set[str] = set()
    for row in labels:
        if row["state"] != "confirmed":
            continue
        name = row["label"] or "default"
        names.add(name)
        by_label[row["referrer_id"]][name] = int(row["n"])
    label_names = sorted(names)
    states = ("pending", "held", "confirmed", "rejected", "left", "counted")
    return {
        "readers.csv": to_csv(
            ["reader_id", "display_name", "username", *states]
            + [f"confirmed_via_{name}" for name in label_names],
            (
                [r["referrer_id"], r["display_name"], r["username"], *(r[s] for s in states)]
                + [by_label[r["referrer_id"]].get(name, 0) for name in label_names]
                for r in readers
            ),
        ),
        "referrals.csv": to_csv(
            list(referrals[0].keys()) if referrals else ["referred_id"],
            (list(r.values()) for r in referrals),
        ),
        "grants.csv": to_csv(
            list(grants[0].keys()) if grants else ["id"], (list(g.values()) for g in grants)
        ),
    }


async def export_program(database: Database, program_id: int) -> dict[str, bytes]:
    """The program's CSV files by name."""
    async with database.read() as conn:
        readers = await db.export_readers(conn, program_id)
        labels = await db.export_label_counts(conn, program_id)
        referrals = await db.export_referrals(conn, program_id)
        grants = await db.export_grants(conn, program_id)
    return await asyncio.to_thread(_files, readers, labels, referrals, grants)


async def write_export(database: Database, program_id: int, out: Path) -> list[Path]:
    """Write the program's CSV files into ``out``; returns their paths."""
    files = await export_program(database, program_id)
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        path = out / name
        await asyncio.to_thread(path.write_bytes, data)
        paths.append(path)
    return paths
