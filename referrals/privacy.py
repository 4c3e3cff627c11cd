"""Forgetting a person: what identifies them goes; what others' truth depends on stays."""

from __future__ import annotations

from referrals.context import Engine
from referrals.links import LinkService
from referrals.models import DeletionSummary, PlatformUser
from referrals.people import People
from referrals.programs import ProgramService
from storage import links as db_links
from storage import privacy as db_privacy


class PrivacyService:
    """Deletes a person's data on one platform, in every program there."""

    def __init__(
        self, engine: Engine, programs: ProgramService, links: LinkService, people: People
    ) -> None:
        self._engine = engine
        self._programs = programs
        self._links = links
        self._people = people

    async def forget(self, user: PlatformUser) -> DeletionSummary:
        """Forget a person (they asked, e.g. ``/forget``).

        Deleted: their member rows (names), links (revoked on the platform too), counts,
        receipts, remembered choices, events about them, their contact record (language,
        whether they started the bot), the messages still queued for them, their reward
        progress and fulfilment answers (addresses). Kept: the bare
        referral row that counted *them* for another reader (user id and state only), so the
        same account cannot be counted twice and that reader's count stays true; the audit
        events of decisions they made as a manager, with their bare id as the actor.
        Referrals they made stay counted for nobody. Their rewards stay as
        grants without their identity, and codes assigned to them stay used.
        """
        summary = await self.delete_user_data(user)
        await self._people.forget(user.platform, user.user_id)
        return summary

    async def delete_user_data(self, user: PlatformUser) -> DeletionSummary:
        """The program side of :meth:`forget` (the contact record stays)."""
        programs = await self._programs.list_programs(user.platform)
        ids = [program.id for program in programs]
        async with self._engine.db.read() as conn:
            live = {p.id: await db_links.live_links_of(conn, p.id, user.user_id) for p in programs}
        async with self._engine.db.write() as conn:
            done = await db_privacy.delete_person(conn, ids, user.user_id)
        for program in programs:
            for row in live[program.id]:
                await self._links.revoke_on_platform(program, row["url"])
        return DeletionSummary(
            members=done.get("members", 0),
            links=done.get("links", 0),
            join_attempts=done.get("join_attempts", 0),
            events=done.get("events", 0),
            referrals_unlinked=done.get("referrals_unlinked", 0),
            grants=done.get("grants_anonymised", 0),
        )
