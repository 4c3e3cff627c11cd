"""Program settings validation and personal links."""

from __future__ import annotations

import pytest

from delivery.port import RetryAfter
from referrals.clock import FakeClock
from referrals.links import MAX_LINKS_PER_READER
from referrals.models import (
    BadLabel,
    NotAllowed,
    PlatformUnavailable,
    ProgramExists,
    ProgramPaused,
    SettingsError,
    TooManyLinks,
)
from referrals.service import ReferralService
from storage.database import Database
from tests.helpers.factories import CHANNEL_ID, make_program, person
from tests.helpers.ports import FakePlatform
from tests.helpers.rows import event_kinds

READER = 1001
ADMIN = 42


async def test_program_has_sensible_defaults(service: ReferralService) -> None:
    program = await make_program(service)
    again = await service.get_program(program.id)
    assert again == program
    assert (program.hold_hours, program.locale, program.timezone) == (48, "en", "UTC")
    assert (program.join_mode, program.leave_policy, program.paused) == ("bot", "keep", False)
    assert await service.find_program("telegram", CHANNEL_ID) == program
    assert await service.list_programs("telegram") == [program]


async def test_a_destination_has_one_program(service: ReferralService) -> None:
    await make_program(service)
    with pytest.raises(ProgramExists):
        await make_program(service)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("hold_hours", -1),
        ("hold_hours", 721),
        ("hold_hours", "48"),
        ("hold_hours", True),
        ("timezone", "Mars/Olympus"),
        ("timezone", "../../etc/passwd"),
        ("locale", "fr"),
        ("join_mode", "teleport"),
        ("leave_policy", "forget"),
        ("min_account_age_days", 99999),
        ("human_check", "yes"),
        ("title", "\u200b\u200b"),
        ("colour", "red"),
    ],
)
async def test_bad_settings_name_the_key_and_change_nothing(
    service: ReferralService, key: str, value: object
) -> None:
    program = await make_program(service)
    with pytest.raises(SettingsError) as caught:
        await service.update_settings(program.id, None, **{key: value})
    assert caught.value.key == key
    assert await service.get_program(program.id) == program


async def test_good_settings_are_stored(service: ReferralService, db: Database) -> None:
    program = await make_program(service)
    updated = await service.update_settings(
        program.id,
        None,
        hold_hours=0,
        timezone="Asia/Jakarta",
        locale="id",
        join_mode="direct",
        min_account_age_days=7,
        leave_policy="subtract",
        human_check=True,
        referrer_cap=50,
    )
    assert (updated.hold_hours, updated.timezone, updated.locale) == (0, "Asia/Jakarta", "id")
    assert (updated.join_mode, updated.min_account_age_days) == ("direct", 7)
    assert (updated.leave_policy, updated.human_check, updated.referrer_cap) == (
        "subtract",
        True,
        50,
    )
    assert "program.settings" in await event_kinds(db, program.id)


async def test_direct_links_need_a_private_chat(service: ReferralService) -> None:
    public = await make_program(service, username="dailybrief")
    with pytest.raises(SettingsError):
        await service.update_settings(public.id, None, join_mode="direct")
    bot_mode = await make_program(service, destination_id=777, kind="bot")
    with pytest.raises(SettingsError):
        await service.update_settings(bot_mode.id, None, join_mode="direct")


async def test_only_admins_change_settings(
    service: ReferralService, platform: FakePlatform
) -> None:
    program = await make_program(service)
    platform.admins[CHANNEL_ID] = {ADMIN}
    with pytest.raises(NotAllowed):
        await service.update_settings(program.id, READER, hold_hours=1)
    assert (await service.get_program(program.id)).hold_hours == 48
    updated = await service.update_settings(program.id, ADMIN, hold_hours=1)
    assert updated.hold_hours == 1


async def test_one_live_link_per_reader_and_label(
    service: ReferralService, platform: FakePlatform
) -> None:
    program = await make_program(service)
    first = await service.get_or_create_link(program.id, person(READER))
    again = await service.get_or_create_link(program.id, person(READER))
    whatsapp = await service.get_or_create_link(program.id, person(READER), "WhatsApp")
    assert first.created and not again.created
    assert again.link == first.link
    assert whatsapp.link.label == "whatsapp" and whatsapp.link.code != first.link.code
    assert first.link.url == f"https://t.me/loopbot?start={first.link.code}"
    assert len(platform.created) == 2
    live = await service.links_of(program.id, READER)
    assert {link.label for link in live} == {"", "whatsapp"}


@pytest.mark.parametrize("label", ["x" * 25, "with space", "<b>", "emoji🙂", "a/b", "\u200b"])
async def test_bad_labels_are_refused(service: ReferralService, label: str) -> None:
    program = await make_program(service)
    with pytest.raises(BadLabel):
        await service.get_or_create_link(program.id, person(READER), label)
    assert await service.links_of(program.id, READER) == []


async def test_a_reader_has_a_bounded_number_of_links(service: ReferralService) -> None:
    program = await make_program(service)
    for n in range(MAX_LINKS_PER_READER):
        await service.get_or_create_link(program.id, person(READER), f"l{n}")
    with pytest.raises(TooManyLinks):
        await service.get_or_create_link(program.id, person(READER), "one-more")


async def test_reset_revokes_the_leaked_direct_link(
    service: ReferralService, platform: FakePlatform
) -> None:
    program = await make_program(service, join_mode="direct")
    old = (await service.get_or_create_link(program.id, person(READER))).link
    new = await service.reset_link(program.id, person(READER))
    assert platform.revoked == [old.url]
    assert [link.code for link in await service.links_of(program.id, READER)] == [new.code]


async def test_link_creation_failure_stores_nothing(
    service: ReferralService, platform: FakePlatform
) -> None:
    program = await make_program(service)
    platform.invite_failure = RetryAfter(3)
    with pytest.raises(PlatformUnavailable):
        await service.get_or_create_link(program.id, person(READER))
    assert await service.links_of(program.id, READER) == []


async def test_no_new_links_while_paused(service: ReferralService) -> None:
    program = await make_program(service)
    await service.set_paused(program.id, True, "lost rights")
    with pytest.raises(ProgramPaused):
        await service.get_or_create_link(program.id, person(READER))


async def test_concurrent_first_requests_make_one_link(
    service: ReferralService, platform: FakePlatform, clock: FakeClock
) -> None:
    import asyncio

    program = await make_program(service, join_mode="direct")
    results = await asyncio.gather(
        *(service.get_or_create_link(program.id, person(READER)) for _ in range(5))
    )
    assert len({r.link.code for r in results}) == 1
    assert len(await service.links_of(program.id, READER)) == 1
    # every extra link the platform made was revoked again
    assert len(platform.created) - len(platform.revoked) == 1
