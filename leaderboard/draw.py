"""A verifiable refer-to-win draw.

Before a draw season ends the bot posts ``SHA-256(seed)``; the draw publishes the seed and
the ticket ranges. Every confirmed referral of the season is one ticket; readers with at
least the season's minimum take part, in the order of their pseudonymous reader numbers,
each holding the consecutive tickets ``first..last``. Winner ``k`` (1, 2, …) is ticket
``int(SHA-256(seed ‖ k)) mod tickets`` — ``seed ‖ k`` is the seed's 64 hex characters
followed by ``k`` in decimal, as UTF-8 — and a ticket of a reader already drawn is skipped
(``k`` moves on). A redraw (a winner who cannot be reached) takes the next ``k``. Nothing is
random after the seed is committed, so anyone can re-check the result::

    python -m leaderboard.draw --seed SEED --ranges "#3:0-4,#7:5-5,#12:6-9" --winners 2
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass


def new_seed() -> str:
    return secrets.token_hex(32)


def commitment(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One reader's tickets: pseudonymous ``number`` holds ``first``..``last``."""

    number: int
    first: int
    last: int


def ranges(entrants: Sequence[tuple[int, int]]) -> list[Entry]:
    """Ticket ranges of (number, tickets) pairs, in number order."""
    out: list[Entry] = []
    nxt = 0
    for number, tickets in sorted(entrants):
        if tickets <= 0:
            continue
        out.append(Entry(number, nxt, nxt + tickets - 1))
        nxt += tickets
    return out


def ticket(seed: str, k: int, tickets: int) -> int:
    return int(hashlib.sha256(f"{seed}{k}".encode()).hexdigest(), 16) % tickets


def draw(
    seed: str, entries: Sequence[Entry], winners: int, start_k: int = 1
) -> list[tuple[int, int, int]]:
    """The winners as (k, ticket, number), in draw order; at most one win per reader."""
    if not entries:
        return []
    total = entries[-1].last + 1
    want = min(winners, len(entries))
    drawn: list[tuple[int, int, int]] = []
    taken: set[int] = set()
    k = start_k
    while len(drawn) < want:
        t = ticket(seed, k, total)
        number = holder(entries, t)
        if number not in taken:
            taken.add(number)
            drawn.append((k, t, number))
        k += 1
    return drawn


def holder(entries: Sequence[Entry], t: int) -> int:
    lo, hi = 0, len(entries) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if entries[mid].last < t:
            lo = mid + 1
        else:
            hi = mid
    return entries[lo].number


def format_ranges(entries: Sequence[Entry]) -> str:
    return ",".join(f"#{e.number}:{e.first}-{e.last}" for e in entries)


def parse_ranges(text: str) -> list[Entry]:
    out = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        number, _, span = part.lstrip("#").partition(":")
        first, _, last = span.partition("-")
        out.append(Entry(int(number), int(first), int(last)))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m leaderboard.draw", description="Re-check a published draw."
    )
    parser.add_argument("--seed", required=True, help="the seed the draw published")
    parser.add_argument("--ranges", required=True, help='"#number:first-last,..."')
    parser.add_argument("--winners", type=int, required=True)
    parser.add_argument("--commitment", help="the SHA-256 posted before the end, to compare")
    args = parser.parse_args(argv)
    if args.commitment:
        ok = commitment(args.seed) == args.commitment.lower()
        print(f"commitment {'matches' if ok else 'DOES NOT match'} the seed")
        if not ok:
            return 1
    entries = parse_ranges(args.ranges)
    for k, t, number in draw(args.seed, entries, args.winners):
        print(f"k={k} ticket={t} winner=Reader #{number}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
