"""Errors of the simulated Discord API.

:class:`DiscordApiError` becomes a JSON error answer ``{"message": ..., "code": ...}`` with
Discord's HTTP status and JSON error code (topics/opcodes-and-status-codes.mdx);
scripts that ask for something impossible get :class:`sandbox.errors.ScriptError`.
"""

from __future__ import annotations

from typing import Any


class DiscordApiError(Exception):
    """An error answer of the REST API."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors


def unknown(what: str, code: int) -> DiscordApiError:
    """A 404 ``Unknown <what>``."""
    return DiscordApiError(404, code, f"Unknown {what}")


def missing_permissions() -> DiscordApiError:
    """403 50013 Missing Permissions."""
    return DiscordApiError(403, 50013, "Missing Permissions")


def missing_access() -> DiscordApiError:
    """403 50001 Missing Access."""
    return DiscordApiError(403, 50001, "Missing Access")


def invalid_form(field: str, message: str, code: str = "BASE_TYPE_INVALID") -> DiscordApiError:
    """400 50035 Invalid Form Body, naming one field."""
    errors = {field: {"_errors": [{"code": code, "message": message}]}}
    return DiscordApiError(400, 50035, "Invalid Form Body", errors)
