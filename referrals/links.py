"""Personal invite links: one live link per reader and label, made once, replaced when leaked."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from delivery.port import Delivered, InviteCreated
from referrals.context import Engine
from referrals.models import (
    BadLabel,
    Link,
    LinkResult,
    Person,
    PlatformUnavailable,
    Program,
    ProgramPaused,
    TooManyLinks,
)
from referrals.programs import ProgramService
from referrals.text import member_row
from storage import events as db_events
from storage import links as db_links
from storage import members as db_members

logger = logging.getLogger(__name__)

LABEL_RE = re.compile(r"^[a-z0-9_-]{1,24}$")
MAX_LINKS_PER_READER = 10


def normalise_label(label: str | None) -> str:
    """'' for the reader's main link, else 1–24 characters of a-z 0-9 _ - (case folded)."""
    if label is None or label == "":
        return ""
    folded = label.strip().lower()
    if not LABEL_RE.fullmatch(folded):
        raise BadLabel("a label is 1–24 characters of a-z, 0-9, _ and -", label=label[:40])
    return folded


def link_from_row(row: Mapping[Any, Any]) -> Link:
    return Link(
        id=row["id"],
        program_id=row["program_id"],
        referrer_id=row["referrer_id"],
        label=row["label"],
        code=row["code"],
        url=row["url"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def note_person(
    conn: AsyncConnection, program_id: int, person: Person, now: datetime
) -> None:
    """Insert or refresh the member row (name) of someone acting in a program."""
    await db_members.upsert_people(
        conn,
        [member_row(program_id, person, now)],
        joined=False,
    )


def link_event(
    program_id: int, user_id: int, kind: str, at: datetime, code: str, label: str
) -> dict[str, Any]:
    return {
        "program_id": program_id,
        "user_id": user_id,
        "actor_id": user_id,
        "kind": kind,
        "at": at,
        "data": {"code": code, "label": label},
    }


class LinkService:
    """Readers' links: get (made on first use), replace, list."""

    def __init__(self, engine: Engine, programs: ProgramService) -> None:
        self._engine = engine
        self._programs = programs

    async def get_or_create_link(
        self, program_id: int, referrer: Person, label: str | None = None
    ) -> LinkResult:
        """The reader's live link for ``label`` (their main link when empty), made once."""
        label = normalise_label(label)
        program = await self._programs.get_program(program_id)
        async with self._engine.db.read() as conn:
            row = await db_links.live_link(conn, program_id, referrer.user_id, label)
            others = await db_links.live_links_of(conn, program_id, referrer.user_id)
        if row is not None:
            async with self._engine.db.write() as conn:
                await note_person(conn, program_id, referrer, self._engine.clock.now())
            return LinkResult(link_from_row(row), created=False)
        if len(others) >= MAX_LINKS_PER_READER:
            raise TooManyLinks(f"at most {MAX_LINKS_PER_READER} links per reader")
        return LinkResult(await self._create_link(program, referrer, label), created=True)

    async def reset_link(
        self, program_id: int, referrer: Person, label: str | None = None
    ) -> Link:
        """Replace a leaked link: the old one is revoked, a new one is made."""
        label = normalise_label(label)
        program = await self._programs.get_program(program_id)
        now = self._engine.clock.now()
        async with self._engine.db.write() as conn:
            old = await db_links.live_link(conn, program_id, referrer.user_id, label)
            if old is not None:
                await db_links.revoke_link(conn, old["id"], now)
                await db_events.insert_events(
                    conn,
                    [
                        link_event(
                            program_id, referrer.user_id, "link.revoked", now, old["code"], label
                        )
                    ],
                )
        if old is not None:
            await self.revoke_on_platform(program, old["url"])
        return await self._create_link(program, referrer, label)

    async def links_of(self, program_id: int, referrer_id: int) -> list[Link]:
        async with self._engine.db.read() as conn:
            rows = await db_links.live_links_of(conn, program_id, referrer_id)
        return [link_from_row(row) for row in rows]

    async def _create_link(self, program: Program, referrer: Person, label: str) -> Link:
        if program.paused:
            raise ProgramPaused("the program is paused")
        code = secrets.token_urlsafe(9)  # 12 characters of A-Za-z0-9_-
        name = f"{label or 'main'} {referrer.user_id}"[:32]
        created = await self._engine.port(program.platform).create_invite(
            program.destination, code=code, name=name
        )
        if not isinstance(created, InviteCreated):
            raise PlatformUnavailable("the platform did not create the link", outcome=created)
        now = self._engine.clock.now()
        async with self._engine.db.write() as conn:
            await note_person(conn, program.id, referrer, now)
            link_id = await db_links.insert_link(
                conn,
                {
                    "program_id": program.id,
                    "referrer_id": referrer.user_id,
                    "label": label,
                    "code": code,
                    "url": created.url,
                    "created_at": now,
                },
            )
            if link_id is not None:
                await db_events.insert_events(
                    conn,
                    [link_event(program.id, referrer.user_id, "link.created", now, code, label)],
                )
            row = await db_links.live_link(conn, program.id, referrer.user_id, label)
        if link_id is None:
            # Another request made this reader's link first: keep theirs, drop ours.
            await self.revoke_on_platform(program, created.url)
        if row is None:
            raise PlatformUnavailable("the link was revoked while it was being made")
        return link_from_row(row)

    async def revoke_on_platform(self, program: Program, url: str) -> None:
        """Stop a link on the platform (a deep link is ours alone: nothing to do there)."""
        if program.join_mode != "direct" and program.platform != "discord":
            return  # a Discord invite is always the platform's own
        try:
            outcome = await self._engine.port(program.platform).revoke_invite(
                program.destination, url
            )
        except PlatformUnavailable:
            return
        if not isinstance(outcome, Delivered):
            logger.warning("could not revoke %s on %s: %s", url, program.platform, outcome)
