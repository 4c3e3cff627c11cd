"""The HTTP side: a Bot API server on 127.0.0.1 backed by a :class:`World`.

Point aiogram at it with
``Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(server.url)))``.
Parameters are read from the query string and from JSON, urlencoded or multipart bodies;
method names are case-insensitive. When a bot has a webhook, the server also pushes its
updates there (one at a time, in order, retrying failures) and runs a method returned in the
webhook's response, as Telegram does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.api import handle_call
from sandbox.model import SimBot, Upload
from sandbox.world import World

logger = logging.getLogger(__name__)


class SandboxServer:
    """Serve ``world`` over HTTP; usable as ``async with SandboxServer(world) as server``.

    ``port=0`` picks a free port on :meth:`start`; later restarts reuse the same port, so a
    bot keeps its ``url``. ``webhook_retry_delay`` is the pause after a failed webhook push.
    """

    def __init__(
        self,
        world: World | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_retry_delay: float = 1.0,
        webhook_timeout: float = 10.0,
    ) -> None:
        self.world = world if world is not None else World()
        self.host = host
        self.port = port
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_timeout = webhook_timeout
        self._runner: web.AppRunner | None = None
        self._pusher: asyncio.Task[None] | None = None
        self._deliveries: dict[int, asyncio.Task[None]] = {}
        self._client: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """Base URL for ``TelegramAPIServer.from_base``."""
        if not self.port:
            raise RuntimeError("the server has not been started")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the HTTP server is accepting connections."""
        return self._runner is not None

    async def start(self) -> str:
        """Start listening (on the previous port after a restart); return :attr:`url`."""
        if self._runner is not None:
            return self.url
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/file/bot{token}/{path:.*}", self._download)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._not_found)
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
        self.world.polls_closed = False
        self._client = aiohttp.ClientSession()
        self._pusher = asyncio.create_task(self._push_webhooks(), name="sandbox-webhooks")
        logger.info("sandbox Bot API server listening on %s", self.url)
        return self.url

    async def stop(self) -> None:
        """Stop listening; the world (queues, chats, links) is kept for a later start."""
        if self._runner is None:
            return
        self.world.close_polls()
        tasks = [t for t in [self._pusher, *self._deliveries.values()] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pusher = None
        self._deliveries.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None
        runner, self._runner = self._runner, None
        await runner.cleanup()
        logger.info("sandbox Bot API server on port %s stopped", self.port)

    async def restart(self) -> None:
        """Stop and start again on the same port, keeping the world."""
        await self.stop()
        await self.start()

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- HTTP -------------------------------------------------------------------------------

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    async def _download(self, request: web.Request) -> web.StreamResponse:
        """``GET /file/bot<token>/<file_path>``: the bytes of a path getFile gave this bot."""
        bot = self.world.bots_by_token.get(request.match_info["token"])
        if bot is None:
            body = {"ok": False, "error_code": 401, "description": "Unauthorized"}
            return web.json_response(body, status=401)
        file = self.world.file_at_path(bot.id, request.match_info["path"])
        if file is None:
            return await self._not_found(request)
        return web.Response(
            body=file.content,
            content_type=file.mime_type or "application/octet-stream",
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            params = await _read_params(request)
        except web.HTTPRequestEntityTooLarge:
            body = {"ok": False, "error_code": 413, "description": "Request Entity Too Large"}
            return web.json_response(body, status=413)
        except ValueError as exc:
            body = {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}
            return web.json_response(body, status=400)
        result = await handle_call(
            self.world, request.match_info["token"], request.match_info["method"], params
        )
        if result.disconnect:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        return web.json_response(result.body, status=result.status)

    # --- webhooks ---------------------------------------------------------------------------

    def _bots_to_push(self) -> list[SimBot]:
        return [
            bot
            for bot in self.world.all_bots()
            if bot.webhook is not None
            and bot.updates
            and (bot.id not in self._deliveries or self._deliveries[bot.id].done())
        ]

    async def _push_webhooks(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await self.world.wait_for(self._bots_to_push, timeout=3600, what="webhook work")
            for bot in self._bots_to_push():
                self._deliveries[bot.id] = asyncio.create_task(
                    self._deliver(bot), name=f"sandbox-webhook-{bot.username}"
                )
            await asyncio.sleep(0)

    async def _deliver(self, bot: SimBot) -> None:
        try:
            await self._deliver_queue(bot)
        finally:
            self.world.notify_change()  # let the pusher see this task finish

    async def _deliver_queue(self, bot: SimBot) -> None:
        assert self._client is not None
        while bot.webhook is not None and bot.updates:
            hook = bot.webhook
            update = bot.updates[0]
            headers = {"Content-Type": "application/json"}
            if hook.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
            error: str | None = None
            reply: Any = None
            try:
                async with self._client.post(
                    hook.url,
                    data=json.dumps(update.to_json()),
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
                ) as response:
                    raw = await response.read()
                    if 200 <= response.status < 300:
                        with contextlib.suppress(ValueError):
                            reply = json.loads(raw) if raw else None
                    else:
                        error = f"Wrong response from the webhook: {response.status} "
                        error += response.reason or ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure to reach the webhook is retried
                error = f"Connection failed: {type(exc).__name__}"
            if error is not None:
                hook.last_error_date = self.world.now()
                hook.last_error_message = error
                logger.info("webhook of @%s failed: %s", bot.username, error)
                await asyncio.sleep(self.webhook_retry_delay)
                continue
            if bot.updates and bot.updates[0] is update:
                bot.updates.pop(0)
            self.world.notify_change()
            if isinstance(reply, dict) and isinstance(reply.get("method"), str):
                params = {k: v for k, v in reply.items() if k != "method"}
                await handle_call(self.world, bot.token, reply["method"], params)


async def _read_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return params
    if request.content_type == "application/json":
        raw = await request.read()
        if not raw.strip():
            return params
        try:
            body = json.loads(raw)
        except ValueError:
            raise ValueError("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise ValueError("JSON object expected")
        params.update(body)
        return params
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, str):
            params[key] = value
        elif isinstance(value, web.FileField):
            content = value.file.read()
            params[key] = Upload(value.filename, value.content_type, content)
        else:
            params[key] = value.decode("utf-8", "replace")
    return params
