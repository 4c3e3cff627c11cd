"""The gateway: a websocket per connection speaking Discord's opcodes (JSON text frames).

HELLO (op 10) opens every connection; the client then IDENTIFYs (op 2) or RESUMEs (op 6).
Close codes follow topics/opcodes-and-status-codes.mdx: 4001 unknown opcode, 4002 decode
error, 4003 not authenticated, 4004 authentication failed, 4005 already authenticated,
4013 invalid intents, 4014 disallowed intents (a privileged intent the application has not
enabled). Heartbeats (op 1) are answered with op 11 in real time; the server does not close
a connection that stops heartbeating. Frames are never compressed (discord.py asks for
``zlib-stream`` but accepts plain text frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from aiohttp import WSMsgType, web

from sandbox.discord.model import PRIVILEGED_INTENTS, GatewayConnection
from sandbox.discord.payloads import user_json
from sandbox.discord.world import DiscordWorld, GatewaySession

logger = logging.getLogger(__name__)


class SocketOutlet:
    """A queue between the (synchronous) world and one websocket's writer task."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | int] = asyncio.Queue()
        self.closed = False
        self.close_code: int | None = None

    def send(self, frame: str) -> None:
        """Queue a text frame."""
        if not self.closed:
            self.queue.put_nowait(frame)

    def close(self, code: int) -> None:
        """Queue a close with ``code``; nothing is sent after it."""
        if not self.closed:
            self.closed = True
            self.close_code = code
            self.queue.put_nowait(code)


async def _write(ws: web.WebSocketResponse, outlet: SocketOutlet) -> None:
    while True:
        item = await outlet.queue.get()
        if isinstance(item, int):
            await ws.close(code=item)
            return
        try:
            await ws.send_str(item)
        except (ConnectionError, RuntimeError):
            return


class Gateway:
    """Serves gateway websockets for a world."""

    def __init__(self, world: DiscordWorld, resume_url: str) -> None:
        self.world = world
        self.resume_url = resume_url
        self._writers: set[asyncio.Task[None]] = set()
        self._sockets: set[web.WebSocketResponse] = set()

    async def close_all(self) -> None:
        """Close every open socket (server shutdown): code 1001, going away."""
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001)
        for task in list(self._writers):
            task.cancel()
        for task in list(self._writers):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One websocket connection."""
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        connection = GatewayConnection(path=request.path)
        self.world.connections.append(connection)
        outlet = SocketOutlet()
        writer = asyncio.create_task(_write(ws, outlet), name="sandbox-discord-gateway-writer")
        self._writers.add(writer)
        hello = {"op": 10, "d": {"heartbeat_interval": self.world.heartbeat_interval_ms}}
        outlet.send(json.dumps(hello))
        session: GatewaySession | None = None
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    outlet.close(4002)
                    break
                try:
                    payload = json.loads(msg.data)
                    op = payload["op"]
                except (ValueError, KeyError, TypeError):
                    outlet.close(4002)
                    break
                session = self._on_frame(op, payload.get("d"), outlet, session, connection)
                self.world.notify_change()
        finally:
            if session is not None and session.outlet is outlet:
                session.outlet = None
            if not outlet.closed:
                outlet.closed = True
                outlet.queue.put_nowait(1000)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, 1.0)
            if not writer.done():
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
            self._writers.discard(writer)
            self._sockets.discard(ws)
            # the code the server chose, else what the client closed with
            connection.close_code = outlet.close_code or ws.close_code
            self.world.notify_change()
        return ws

    def _on_frame(
        self,
        op: int,
        data: object,
        outlet: SocketOutlet,
        session: GatewaySession | None,
        connection: GatewayConnection,
    ) -> GatewaySession | None:
        if op == 1:
            outlet.send(json.dumps({"op": 11}))
            return session
        if op == 2:
            if session is not None:
                outlet.close(4005)
                return session
            return self._identify(data if isinstance(data, dict) else {}, outlet, connection)
        if op == 6:
            if session is not None:
                outlet.close(4005)
                return session
            return self._resume(data if isinstance(data, dict) else {}, outlet, connection)
        if session is None:
            outlet.close(4003)
            return None
        if op == 8 and isinstance(data, dict):
            self._request_members(session, data)
        elif op not in (3, 4):  # presence and voice state updates are accepted and ignored
            outlet.close(4001)
        return session

    def _identify(
        self, data: dict[str, object], outlet: SocketOutlet, connection: GatewayConnection
    ) -> GatewaySession | None:
        app = self.world.app_by_token(str(data.get("token", "")))
        if app is None:
            outlet.close(4004)
            return None
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents >= 1 << 26:
            outlet.close(4013)
            return None
        if intents & PRIVILEGED_INTENTS & ~app.intents_enabled:
            outlet.close(4014)
            return None
        session = self.world.new_session(app, intents)
        session.outlet = outlet
        connection.kind = "identify"
        connection.session_id = session.id
        me = user_json(app.user)
        me.update(verified=True, mfa_enabled=False, email=None, flags=0)
        guilds = self.world.guilds_of(app)
        ready = {
            "v": 10,
            "user": me,
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "resume_gateway_url": self.resume_url,
            "session_type": "normal",
            "application": {"id": str(app.id), "flags": app.flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "_trace": ["sandbox-gateway"],
        }
        shard = data.get("shard")
        if isinstance(shard, list):
            ready["shard"] = shard
        session.dispatch("READY", ready)
        for guild in guilds:
            session.dispatch("GUILD_CREATE", self.world.guild_create_payload(guild, session))
        logger.info("%s identified (session %s)", app.name, session.id)
        return session

    def _resume(
        self, data: dict[str, object], outlet: SocketOutlet, connection: GatewayConnection
    ) -> GatewaySession | None:
        connection.kind = "resume"
        session = self.world.sessions.get(str(data.get("session_id", "")))
        if session is None or not session.valid or session.app.token != data.get("token"):
            outlet.send(json.dumps({"op": 9, "d": False}))
            return None
        if session.outlet is not None and session.outlet is not outlet:
            session.outlet.close(4000)  # the old socket of a session that resumes elsewhere
        session.outlet = outlet
        connection.session_id = session.id
        seq = data.get("seq")
        after = seq if isinstance(seq, int) else 0
        for number, frame in list(session.buffer):
            if number > after:
                outlet.send(frame)
        session.dispatch("RESUMED", {"_trace": ["sandbox-gateway"]})
        logger.info("%s resumed session %s from seq %s", session.app.name, session.id, after)
        return session

    def _request_members(self, session: GatewaySession, data: dict[str, object]) -> None:
        raw_ids = data.get("user_ids")
        user_ids: list[int] | None = None
        if isinstance(raw_ids, list):
            user_ids = [int(u) for u in raw_ids]
        elif raw_ids is not None:
            user_ids = [int(str(raw_ids))]
        query = data.get("query")
        limit = data.get("limit")
        nonce = data.get("nonce")
        for chunk in self.world.member_chunks(
            session,
            int(str(data.get("guild_id", 0))),
            query=query if isinstance(query, str) else None,
            limit=limit if isinstance(limit, int) else 0,
            user_ids=user_ids,
            nonce=nonce if isinstance(nonce, str) else None,
        ):
            session.dispatch("GUILD_MEMBERS_CHUNK", chunk)
