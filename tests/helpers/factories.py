"""Builders for realistic engine inputs."""

from __future__ import annotations

from datetime import datetime

from referrals.models import JoinEvent, Person, Program
from referrals.service import ReferralService

CHANNEL_ID = -1001234567890


def person(user_id: int, name: str | None = None) -> Person:
    return Person(user_id=user_id, display_name=name or f"Person {user_id}", language_code="en")


async def make_program(service: ReferralService, **settings: object) -> Program:
    settings.setdefault("hold_hours", 48)
    destination = settings.pop("destination_id", CHANNEL_ID)
    kind = settings.pop("kind", "channel")
    return await service.create_program(
        "telegram",
        destination,  # type: ignore[arg-type]
        kind,  # type: ignore[arg-type]
        "Daily Brief",
        **settings,
    )


def join(
    program: Program,
    user_id: int,
    at: datetime,
    link: str | None = None,
    key: str | None = None,
    **extra: object,
) -> JoinEvent:
    return JoinEvent(
        program_id=program.id,
        person=person(user_id),
        at=at,
        link=link,
        event_key=key,
        **extra,  # type: ignore[arg-type]
    )
