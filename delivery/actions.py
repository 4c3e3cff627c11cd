"""What an outbox row asks the platform to do: a typed action and its payload.

The template's context (what the text says) stays in the row's ``context``; what the
platform call needs besides the text — buttons as plain specs, the message to edit, the
join request to approve — is the action's payload, stored as JSON in ``outbox.payload``.
This module is the one place that turns payloads into JSON and back, and it checks them
on the way out: an unknown action or a payload that does not fit it (a row written by an
older version, a hand-edited row) raises :class:`MalformedRow`, which fails that row and
nothing else.

The outbox itself only carries actions; their meaning belongs to the platform's sender.
``WELCOME_APPROVE`` is Telegram's: a join request allows a DM only until it is processed,
so the Telegram port sends the welcome and then approves the request.

``SEND_DOCUMENT`` and ``SEND_PHOTO`` carry a file (an export, a chart) that waits in the
outbox's spool directory (:mod:`delivery.spool`): the payload names it there, so the row
survives a restart and a retry after a 429 sends the very same file; the row's text is the
file's caption.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Action(enum.StrEnum):
    SEND = "send"  # a new message
    SEND_PIN = "send_pin"  # a new message, pinned when the bot may
    EDIT = "edit"  # replace the text (and buttons) of a message the bot sent
    WELCOME_APPROVE = "welcome_approve"  # Telegram: DM a join requester, then approve
    SEND_DOCUMENT = "send_document"  # a file from the spool, with the text as its caption
    SEND_PHOTO = "send_photo"  # an image from the spool, with the text as its caption


FILE_ACTIONS = frozenset({Action.SEND_DOCUMENT, Action.SEND_PHOTO})


class MalformedRow(ValueError):
    """An outbox row whose action or payload cannot be read; the row fails, nothing else."""


@dataclass(frozen=True, slots=True)
class Button:
    """One button as a plain spec: ``label`` names a label macro (rendered with ``args`` in
    the reader's language) and exactly one of ``url``, ``data`` (a callback payload) or
    ``copy`` (text the button copies) says what it does."""

    label: str
    url: str | None = None
    data: str | None = None
    copy: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label:
            raise MalformedRow(f"a button needs a label, not {self.label!r}")
        kinds = [value for value in (self.url, self.data, self.copy) if value is not None]
        if len(kinds) != 1 or not all(isinstance(value, str) for value in kinds):
            raise MalformedRow(f"button {self.label!r} needs exactly one of url, data, copy")
        if not isinstance(self.args, Mapping):
            raise MalformedRow(f"button {self.label!r}: args must be a mapping")

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Button:
        """A button from ``{"label": ..., "args": {...}, "url" | "data" | "copy": ...}``."""
        if not isinstance(spec, Mapping):
            raise MalformedRow(f"a button must be a mapping, not {type(spec).__name__}")
        unknown = set(spec) - {"label", "url", "data", "copy", "args"}
        if unknown:
            raise MalformedRow(f"unknown button fields {sorted(unknown)}")
        return cls(
            label=spec.get("label", ""),
            url=spec.get("url"),
            data=spec.get("data"),
            copy=spec.get("copy"),
            args=dict(spec.get("args") or {}),
        )

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label}
        for name in ("url", "data", "copy"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.args:
            out["args"] = dict(self.args)
        return out


Buttons = tuple[tuple[Button, ...], ...]


def buttons_of(rows: Sequence[Sequence[Button | Mapping[str, Any]]] | None) -> Buttons:
    """Rows of buttons from buttons or plain specs (what handlers build)."""
    if not rows:
        return ()
    if isinstance(rows, str | bytes) or not isinstance(rows, Sequence):
        raise MalformedRow("buttons must be a list of rows")
    built = []
    for row in rows:
        if isinstance(row, str | bytes) or not isinstance(row, Sequence):
            raise MalformedRow("a row of buttons must be a list")
        built.append(
            tuple(spec if isinstance(spec, Button) else Button.from_spec(spec) for spec in row)
        )
    return tuple(built)


@dataclass(frozen=True, slots=True)
class Post:
    """``SEND`` and ``SEND_PIN``: a new message with optional buttons."""

    buttons: Buttons = ()


@dataclass(frozen=True, slots=True)
class Edit:
    """``EDIT``: the message to change and its new buttons."""

    message_id: int
    buttons: Buttons = ()


@dataclass(frozen=True, slots=True)
class WelcomeApprove:
    """``WELCOME_APPROVE``: the join request (chat, user) and when its DM window ends."""

    chat_id: int
    user_id: int
    window_ends: datetime
    buttons: Buttons = ()


@dataclass(frozen=True, slots=True)
class Attachment:
    """``SEND_DOCUMENT`` and ``SEND_PHOTO``: ``spooled`` is the file's name in the spool
    (``<batch>/<file>``, nothing else), ``filename`` the name the person sees."""

    spooled: str
    filename: str
    buttons: Buttons = ()

    def __post_init__(self) -> None:
        parts = self.spooled.split("/") if isinstance(self.spooled, str) else []
        if len(parts) != 2 or not all(_plain_name(part) for part in parts):
            raise MalformedRow(f"not a spooled file name: {self.spooled!r}")
        if not isinstance(self.filename, str) or not _plain_name(self.filename):
            raise MalformedRow(f"not a file name: {self.filename!r}")


def _plain_name(name: str) -> bool:
    """One path part: no separators, no parent or hidden names, no control characters."""
    return (
        0 < len(name) <= 128
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and all(ord(ch) >= 32 for ch in name)
    )


Payload = Post | Edit | WelcomeApprove | Attachment

PAYLOADS: dict[Action, type[Payload]] = {
    Action.SEND: Post,
    Action.SEND_PIN: Post,
    Action.EDIT: Edit,
    Action.WELCOME_APPROVE: WelcomeApprove,
    Action.SEND_DOCUMENT: Attachment,
    Action.SEND_PHOTO: Attachment,
}


def check(action: Action | str, payload: Payload | None) -> tuple[Action, Payload]:
    """The action and its payload (``None``: an empty :class:`Post`), or MalformedRow."""
    try:
        kind = Action(action)
    except ValueError:
        raise MalformedRow(f"unknown action {action!r}") from None
    if payload is None:
        payload = Post()
    if not isinstance(payload, PAYLOADS[kind]):
        raise MalformedRow(
            f"action {kind.value} takes a {PAYLOADS[kind].__name__} payload, "
            f"not {type(payload).__name__}"
        )
    return kind, payload


def dump(action: Action, payload: Payload) -> str | None:
    """The payload as stored in ``outbox.payload`` (``None`` for a plain message)."""
    check(action, payload)
    data: dict[str, Any] = {}
    if payload.buttons:
        data["buttons"] = [[button.spec() for button in row] for row in payload.buttons]
    if isinstance(payload, Edit):
        data["message_id"] = payload.message_id
    elif isinstance(payload, WelcomeApprove):
        data.update(
            chat_id=payload.chat_id,
            user_id=payload.user_id,
            window_ends=payload.window_ends.isoformat(),
        )
    elif isinstance(payload, Attachment):
        data.update(spooled=payload.spooled, filename=payload.filename)
    return json.dumps(data, sort_keys=True) if data else None


def load(action: str, stored: str | None) -> tuple[Action, Payload]:
    """Read a row's action and payload back; :class:`MalformedRow` if they do not fit."""
    try:
        kind = Action(action)
    except ValueError:
        raise MalformedRow(f"unknown action {action!r}") from None
    try:
        data = json.loads(stored) if stored else {}
    except ValueError as exc:
        raise MalformedRow(f"payload is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedRow("payload must be a JSON object")
    buttons = buttons_of(data.pop("buttons", None))
    try:
        payload: Payload
        if kind is Action.EDIT:
            payload = Edit(_int(data.pop("message_id")), buttons)
        elif kind is Action.WELCOME_APPROVE:
            payload = WelcomeApprove(
                _int(data.pop("chat_id")),
                _int(data.pop("user_id")),
                _when(data.pop("window_ends")),
                buttons,
            )
        elif kind in FILE_ACTIONS:
            payload = Attachment(_text(data.pop("spooled")), _text(data.pop("filename")), buttons)
        else:
            payload = Post(buttons)
    except KeyError as exc:
        raise MalformedRow(f"action {kind.value}: payload lacks {exc.args[0]!r}") from None
    if data:
        raise MalformedRow(f"action {kind.value}: unknown payload fields {sorted(data)}")
    return kind, payload


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedRow(f"expected an integer, not {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise MalformedRow(f"expected text, not {value!r}")
    return value


def _when(value: Any) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise MalformedRow(f"expected an ISO time, not {value!r}") from None
    if when.tzinfo is None:
        raise MalformedRow(f"expected a time with its offset, not {value!r}")
    return when


LEGACY_KEYS = ("_buttons", "_message_id", "_window_ends", "_chat_id", "_user_id")


def split_legacy(
    action: str, context: Mapping[str, Any]
) -> tuple[dict[str, Any], str | None] | None:
    """Rows queued before payloads existed (migration 0003) kept theirs in the context
    under underscore keys: the template's context and the stored payload for such a row,
    or None when the context has none. (Remove once no deployment can hold such rows.)"""
    if not any(key in context for key in LEGACY_KEYS):
        return None
    public = {key: value for key, value in context.items() if not key.startswith("_")}
    data: dict[str, Any] = {}
    if context.get("_buttons"):
        data["buttons"] = context["_buttons"]
    if action == Action.EDIT and "_message_id" in context:
        data["message_id"] = context["_message_id"]
    if action == Action.WELCOME_APPROVE:
        for key in ("_chat_id", "_user_id", "_window_ends"):
            if key in context:
                data[key[1:]] = context[key]
    return public, json.dumps(data, sort_keys=True) if data else None
