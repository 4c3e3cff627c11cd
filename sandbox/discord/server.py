"""The HTTP side: Discord's REST API v10 and gateway on 127.0.0.1, backed by a world.

``/api/v10/...`` serves REST, ``/gateway`` the gateway websocket (``/gateway-resume`` is the
``resume_gateway_url`` READY hands out) and ``/attachments/{id}/{name}`` the files simulated
users attach. Every answer is JSON with ``Content-Type: application/json`` exactly (discord.py
parses nothing else) and a ``Via`` header (a 429 without one is taken for a Cloudflare ban).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from types import TracebackType
from typing import Any

from aiohttp import BodyPartReader, web

from sandbox.discord import rest
from sandbox.discord.endpoints import DiscordEndpoints
from sandbox.discord.errors import DiscordApiError
from sandbox.discord.gateway import Gateway
from sandbox.discord.model import Json
from sandbox.discord.world import ApiRequest, DiscordWorld

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v10"


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = {"Via": "1.1 google", **(headers or {})}
    if body is None and status == 204:
        return web.Response(status=204, headers=all_headers)
    all_headers["Content-Type"] = "application/json"
    return web.Response(status=status, body=json.dumps(body).encode(), headers=all_headers)


class DiscordSandboxServer:
    """Serve ``world``; usable as ``async with DiscordSandboxServer(world) as server``.

    ``port=0`` picks a free port on :meth:`start` (kept across restarts). ``tick`` is how
    often delayed events (the member-add delay) are checked against the world's clock.
    """

    def __init__(
        self,
        world: DiscordWorld | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tick: float = 0.005,
    ) -> None:
        self.world = world if world is not None else DiscordWorld()
        self.host = host
        self.port = port
        self.tick = tick
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._gateway: Gateway | None = None

    @property
    def url(self) -> str:
        """``http://host:port``."""
        if not self.port:
            raise RuntimeError("the server has not been started")
        return f"http://{self.host}:{self.port}"

    @property
    def endpoints(self) -> DiscordEndpoints:
        """The REST base and gateway URL to point a client at."""
        return DiscordEndpoints.for_server(self.url)

    async def start(self) -> str:
        """Start listening; return :attr:`url`."""
        if self._runner is not None:
            return self.url
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", API_PREFIX + "/{path:.*}", self._handle)
        app.router.add_get("/gateway", self._ws)
        app.router.add_get("/gateway-resume", self._ws)
        app.router.add_get("/attachments/{id}/{filename}", self._attachment)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self.world.set_attachment_base(self.url)
        self._gateway = Gateway(self.world, self.endpoints.resume_gateway_url)
        self._ticker = asyncio.create_task(self._tick(), name="sandbox-discord-ticker")
        logger.info("sandbox Discord listening on %s", self.url)
        return self.url

    async def stop(self) -> None:
        """Close every gateway socket and stop listening; the world is kept."""
        if self._runner is None:
            return
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._gateway is not None:
            await self._gateway.close_all()
        for session in self.world.sessions.values():
            session.outlet = None
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> DiscordSandboxServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _tick(self) -> None:
        while True:
            self.world.release_due()
            await asyncio.sleep(self.tick)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        assert self._gateway is not None
        return await self._gateway.handle(request)

    async def _attachment(self, request: web.Request) -> web.StreamResponse:
        try:
            attachment_id = int(request.match_info["id"])
            content = self.world.attachment_content[attachment_id]
        except (KeyError, ValueError):
            return web.Response(status=404, headers={"Via": "1.1 google"})
        self.world.downloads.append(attachment_id)
        return web.Response(body=content, headers={"Via": "1.1 google"})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        found = rest.match(request.method, path)
        if found is None:
            status = 405 if rest.path_exists(path) else 404
            text = "405: Method Not Allowed" if status == 405 else "404: Not Found"
            body: Json = {"message": text, "code": 0}
            self._log(request.method, path, f"{request.method} {path}", status, 0, None)
            return _json_response(status, body)
        route, params = found
        app = None
        if route.bot_auth:
            header = request.headers.get("Authorization", "")
            token = header[4:] if header.startswith("Bot ") else ""
            app = self.world.app_by_token(token) if token else None
            if app is None:
                self._log(request.method, path, route.key, 401, 0, None)
                return _json_response(401, {"message": "401: Unauthorized", "code": 0})
        try:
            body, attachments = await self._read_body(request)
        except ValueError as exc:
            self._log(request.method, path, route.key, 400, 50109, app)
            return _json_response(400, {"message": str(exc), "code": 50109})
        if any(a["size"] > self.world.attachment_size_limit for a in attachments):
            self._log(request.method, path, route.key, 413, 40005, app)
            return _json_response(413, {"message": "Request entity too large", "code": 40005})
        major = params.get("channel_id") or params.get("guild_id") or ""
        if "webhook_id" in params:
            major = f"{params['webhook_id']}+{params.get('webhook_token', '')}"
        if "interaction_id" in params:
            major = params["interaction_id"]
        limiter_id = app.id if app is not None else 0
        verdict = self.world.rate_limiter.check(
            limiter_id, route.key, major, exempt_global=route.exempt_global
        )
        if verdict.retry_after is not None:
            headers = dict(verdict.headers)
            headers.update(
                {
                    "Retry-After": str(math.ceil(verdict.retry_after)),
                    "X-RateLimit-Scope": verdict.scope,
                }
            )
            if verdict.is_global:
                headers["X-RateLimit-Global"] = "true"
            answer = {
                "message": "You are being rate limited.",
                "retry_after": verdict.retry_after,
                "global": verdict.is_global,
                "code": 0,
            }
            self._log(
                request.method, path, route.key, 429, 0, app, shared=verdict.scope == "shared"
            )
            return _json_response(429, answer, headers)
        req = rest.RestRequest(
            method=request.method,
            route=route.key,
            params=params,
            query=dict(request.query),
            body=body,
            app=app,
            attachments=attachments,
            gateway_url=self.endpoints.gateway_url,
        )
        try:
            status, result = route.handler(self.world, req)
        except DiscordApiError as exc:
            error: Json = {"message": exc.message, "code": exc.code}
            if exc.errors:
                error["errors"] = exc.errors
            self._log(request.method, path, route.key, exc.status, exc.code, app, body=body)
            return _json_response(exc.status, error, verdict.headers)
        self._log(request.method, path, route.key, status, None, app, body=body)
        return _json_response(status, result, verdict.headers)

    def _log(
        self,
        method: str,
        path: str,
        route: str,
        status: int,
        code: int | None,
        app: Any,
        *,
        body: Any = None,
        shared: bool = False,
    ) -> None:
        entry = ApiRequest(
            method,
            path,
            route,
            status,
            code,
            self.world.now(),
            app.id if app is not None else None,
            body,
        )
        invalid = status in (401, 403) or (status == 429 and not shared)
        self.world.record_request(entry, counts_as_invalid=invalid)

    async def _read_body(self, request: web.Request) -> tuple[Any, list[Json]]:
        if not request.can_read_body:
            return None, []
        if request.content_type == "application/json":
            raw = await request.read()
            if not raw.strip():
                return None, []
            try:
                return json.loads(raw), []
            except ValueError:
                raise ValueError("The request body contains invalid JSON.") from None
        if request.content_type.startswith("multipart/"):
            body: Any = None
            attachments: list[Json] = []
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                data = await part.read()
                if part.name == "payload_json":
                    body = json.loads(data)
                elif part.filename is not None:
                    attachment_id = self.world.snowflake()
                    url = f"{self.url}/attachments/{attachment_id}/{part.filename}"
                    self.world.attachment_content[attachment_id] = bytes(data)
                    attachments.append(
                        {
                            "id": str(attachment_id),
                            "filename": part.filename,
                            "size": len(data),
                            "url": url,
                            "proxy_url": url,
                            "content_type": part.headers.get("Content-Type"),
                        }
                    )
            return body, attachments
        await request.read()
        return None, []
