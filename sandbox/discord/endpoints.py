"""Where a Discord client must point to use the sandbox (no discord.py import here).

discord.py 2.7 reads ``discord.http.Route.BASE`` each time it builds a request (it must end in
``/api/v10``; interaction callbacks and webhooks use it too) and a plain ``Client`` connects
to ``DiscordWebSocket.DEFAULT_GATEWAY`` without ever calling ``GET /gateway/bot`` (only
``AutoShardedClient`` asks). So a test sets, before ``login()``/``start()``::

    endpoints = server.endpoints        # or DiscordEndpoints.for_server("http://127.0.0.1:PORT")
    discord.http.Route.BASE = endpoints.rest_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(endpoints.gateway_url)

and puts the old values back afterwards. ``GET {rest_base}/gateway/bot`` answers the same
``gateway_url``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiscordEndpoints:
    """The REST base (``http://host:port/api/v10``) and the gateway URL."""

    rest_base: str
    gateway_url: str
    resume_gateway_url: str

    @classmethod
    def for_server(cls, url: str) -> DiscordEndpoints:
        """The endpoints of a sandbox served at ``url`` (``http://host:port``)."""
        base = url.rstrip("/")
        socket = "ws" + base[len("http") :] if base.startswith("http") else base
        return cls(f"{base}/api/v10", f"{socket}/gateway", f"{socket}/gateway-resume")
