"""Errors raised inside the sandbox.

:class:`ApiError` is what a Bot API method answers with (it becomes
``{"ok": false, "error_code": ..., "description": ..., "parameters": ...}``);
:class:`ScriptError` is raised to the test or demo script that asked a simulated person to do
something impossible (open a revoked link, type to a bot they blocked, ...).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Bot API error answer, with Telegram's description text."""

    def __init__(
        self,
        error_code: int,
        description: str,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    @property
    def parameters(self) -> dict[str, Any] | None:
        """The ``parameters`` object of the answer, if any."""
        params: dict[str, Any] = {}
        if self.retry_after is not None:
            params["retry_after"] = self.retry_after
        if self.migrate_to_chat_id is not None:
            params["migrate_to_chat_id"] = self.migrate_to_chat_id
        return params or None

    def to_json(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(text: str) -> ApiError:
    """A 400 answer: ``Bad Request: <text>``."""
    return ApiError(400, f"Bad Request: {text}")


def forbidden(text: str) -> ApiError:
    """A 403 answer: ``Forbidden: <text>``."""
    return ApiError(403, f"Forbidden: {text}")


def too_many_requests(retry_after: int) -> ApiError:
    """A 429 answer with ``parameters.retry_after``."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


class ScriptError(Exception):
    """A scripted action that a real person could not perform."""


class LinkError(ScriptError):
    """A link that cannot be used (unknown, revoked, expired, full, banned user...).

    ``reason`` is the MTProto-style error a client would show, e.g. ``INVITE_HASH_EXPIRED``.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
