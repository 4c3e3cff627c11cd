"""What every engine service shares: the database, the clock, the platform ports, and the
one check that a person manages a program."""

from __future__ import annotations

from collections.abc import Mapping

from delivery.port import AdminResult, PlatformPort
from referrals.clock import Clock
from referrals.models import NotAllowed, PlatformUnavailable, Program
from storage.database import Database


class Engine:
    """The database, the clock and the platform ports (``"telegram"`` → its port), shared by
    the services of ``referrals/``. Ports are added by the composition root (main.py)."""

    def __init__(
        self, db: Database, clock: Clock, ports: Mapping[str, PlatformPort] | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.ports: dict[str, PlatformPort] = dict(ports or {})

    def add_port(self, port: PlatformPort) -> None:
        self.ports[port.platform] = port

    def port(self, platform: str) -> PlatformPort:
        port = self.ports.get(platform)
        if port is None:
            raise PlatformUnavailable(f"no adapter for {platform!r} is running")
        return port

    async def require_manager(self, program: Program, actor_id: int | None) -> None:
        """Raise :class:`NotAllowed` unless ``actor_id`` is an admin of the program's
        destination (asked of the platform every time). ``None`` is the operator (CLI,
        scheduler) and is not checked."""
        if actor_id is None:
            return
        result = await self.port(program.platform).is_admin(program.destination, actor_id)
        if isinstance(result, AdminResult):
            if not result.is_admin:
                raise NotAllowed("only an admin of the program's chat can do this")
            return
        raise PlatformUnavailable("could not check admin rights right now", outcome=result)

    async def is_manager(self, program: Program, user_id: int) -> bool:
        try:
            await self.require_manager(program, user_id)
        except (NotAllowed, PlatformUnavailable):
            return False
        return True
