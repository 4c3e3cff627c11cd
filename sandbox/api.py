"""Bot API plumbing: parameters, the method registry, access checks and one call's life.

:func:`handle_call` is what the HTTP server runs for ``/bot<token>/<method>``: authenticate,
apply injected faults, run the handler, log the call, and build the JSON answer.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.errors import ApiError, bad_request, forbidden, too_many_requests
from sandbox.model import ApiCall, Fault, SimBot, SimChat, SimMember, SimUser, Upload
from sandbox.world import World

logger = logging.getLogger(__name__)

Handler = Callable[[World, SimBot, "Params"], Any]
HANDLERS: dict[str, Handler] = {}
CANONICAL: dict[str, str] = {}


def api(name: str) -> Callable[[Handler], Handler]:
    """Register a handler for a Bot API method (matched case-insensitively)."""

    def register(func: Handler) -> Handler:
        HANDLERS[name.lower()] = func
        CANONICAL[name.lower()] = name
        return func

    return register


def _load_methods() -> None:
    # The method modules register themselves on import.
    from sandbox import methods, methods_chats, methods_files  # noqa: F401


class Params:
    """Request parameters as strings (form data) or JSON values, read leniently."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = dict(raw)

    def has(self, name: str) -> bool:
        """Whether the parameter was sent (and is not null)."""
        return self.raw.get(name) is not None

    def get_str(self, name: str) -> str | None:
        """A string parameter (numbers and booleans are converted)."""
        value = self.raw.get(name)
        if value is None or isinstance(value, Upload):
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return value
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(value)

    def get_int(self, name: str, default: int | None = None) -> int | None:
        """An integer parameter; junk is a 400."""
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)
        text = str(value).strip()
        try:
            return int(text)
        except ValueError:
            try:
                return int(float(text))
            except ValueError:
                raise bad_request(f'field "{name}" must be a valid Number') from None

    def get_bool(self, name: str) -> bool:
        """A boolean parameter (``true``/``1`` are true)."""
        value = self.raw.get(name)
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return value != 0
        return str(value).strip().lower() in ("true", "1", "yes", "on")

    def get_json(self, name: str, what: str | None = None) -> Any:
        """A JSON-serialised parameter (already decoded when the body was JSON)."""
        value = self.raw.get(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {what or name} JSON object") from None


@dataclass
class Target:
    """A chat as a method addresses it: a group/supergroup/channel or a private chat."""

    chat: SimChat | None = None
    user: SimUser | None = None

    @property
    def id(self) -> int:
        """The chat id."""
        if self.chat is not None:
            return self.chat.id
        assert self.user is not None
        return self.user.id

    @property
    def is_private(self) -> bool:
        """Whether this is a private chat."""
        return self.user is not None


def chat_ref(p: Params, name: str = "chat_id") -> int | str:
    """The ``chat_id`` parameter: an integer or ``@username``."""
    value = p.get_str(name)
    if value is None or not value.strip():
        raise bad_request("chat_id is empty")
    value = value.strip()
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if value.startswith("@") and len(value) > 1:
        return value
    raise bad_request("chat not found")


def user_id_param(p: Params, name: str = "user_id") -> int:
    """A positive ``user_id``."""
    value = p.get_int(name)
    if value is None or value <= 0:
        raise bad_request("invalid user_id specified")
    return value


def resolve(world: World, ref: int | str) -> Target:
    """Find the chat a method names (400 ``chat not found``, or the migration error)."""
    if isinstance(ref, str):
        chat = world.chat_by_username(ref[1:])
        if chat is None:
            raise bad_request("chat not found")
        return Target(chat=chat)
    if ref > 0:
        user = world.users.get(ref)
        if user is None:
            raise bad_request("chat not found")
        return Target(user=user)
    found = world.chats.get(ref)
    if found is None:
        raise bad_request("chat not found")
    if found.migrated_to is not None:
        raise ApiError(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            migrate_to_chat_id=found.migrated_to,
        )
    return Target(chat=found)


def require_member(world: World, bot: SimBot, chat: SimChat) -> SimMember:
    """The bot's membership; 403 if it was removed or left, 400 if the chat is unknown."""
    member = chat.member(bot.id)
    if member.in_chat:
        return member
    if member.status == "kicked":
        raise forbidden(f"bot was kicked from the {chat.type} chat")
    if bot.id in chat.members or chat.is_public:
        raise forbidden(f"bot is not a member of the {chat.type} chat")
    raise bad_request("chat not found")


def require_private_send(world: World, bot: SimBot, user: SimUser) -> None:
    """Whether the bot may message this user (started, or a join request window)."""
    if user.is_bot:
        raise forbidden("bot can't send messages to bots")
    if user.deactivated:
        raise forbidden("user is deactivated")
    dialog = bot.dialogs.get(user.id)
    if dialog is not None and dialog.blocked:
        raise forbidden("bot was blocked by the user")
    if dialog is not None and dialog.started:
        return
    if world.contact_window_open(bot, user.id):
        return
    if world.knows_user(bot, user.id):
        raise forbidden("bot can't initiate conversation with a user")
    raise bad_request("chat not found")


def require_private_chat(world: World, bot: SimBot, user: SimUser) -> None:
    """Whether the private chat exists for this bot (non-sending methods)."""
    dialog = bot.dialogs.get(user.id)
    if (dialog is None or not dialog.started) and not world.knows_user(bot, user.id):
        raise bad_request("chat not found")


def throttle(world: World, bot: SimBot, method: str, target: Target) -> None:
    """429 if a sending method would exceed the flood limits."""
    if not world.limiter.applies_to(method):
        return
    wait = world.limiter.check(bot.id, target.id, target.is_private)
    if wait is not None:
        raise too_many_requests(wait)


def count_send(world: World, bot: SimBot, method: str, target: Target) -> None:
    """Use up flood allowance for a successful send."""
    if world.limiter.applies_to(method):
        world.limiter.record(bot.id, target.id, target.is_private)


@dataclass
class CallResult:
    """What the HTTP layer sends back (``disconnect``: drop the connection instead)."""

    status: int
    body: dict[str, Any]
    disconnect: bool = False


def _take_fault(world: World, method: str, params: Params) -> Fault | None:
    chat_value = params.get_str("chat_id")
    chat_id: int | None = None
    if chat_value is not None and re.fullmatch(r"-?\d+", chat_value.strip()):
        chat_id = int(chat_value)
    elif chat_value is not None and chat_value.startswith("@"):
        found = world.chat_by_username(chat_value[1:])
        chat_id = found.id if found is not None else None
    for fault in world.faults:
        if fault.method != method or fault.remaining <= 0:
            continue
        if fault.chat_id is not None and fault.chat_id != chat_id:
            continue
        fault.remaining -= 1
        if fault.remaining <= 0:
            world.faults.remove(fault)
        world.notify_change()  # scripts may wait for a fault to be hit
        return fault
    return None


def _too_large(world: World, params: Params) -> bool:
    limit = world.file_limits.upload
    return any(isinstance(v, Upload) and len(v.content) > limit for v in params.raw.values())


def _fault_error(fault: Fault) -> ApiError:
    return ApiError(
        fault.error_code,
        fault.description,
        retry_after=fault.retry_after,
        migrate_to_chat_id=fault.migrate_to_chat_id,
    )


async def handle_call(
    world: World, token: str, method: str, raw_params: Mapping[str, Any]
) -> CallResult:
    """Run one Bot API call and return the HTTP status and JSON body."""
    if not HANDLERS:
        _load_methods()
    params = Params(raw_params)
    bot = world.bots_by_token.get(token)
    name = method.lower()
    call = ApiCall(
        bot_id=bot.id if bot else None,
        method=CANONICAL.get(name, method),
        params=dict(params.raw),
        time=world.clock.time(),
        monotonic=world.monotonic(),
    )
    error: ApiError | None = None
    result: Any = None
    disconnect = False
    if bot is None:
        error = ApiError(401, "Unauthorized")
    elif name not in HANDLERS:
        error = ApiError(404, "Not Found")
    elif _too_large(world, params):
        # Bots upload at most 50 MB; Telegram's front end refuses a bigger request outright.
        error = ApiError(413, "Request Entity Too Large")
    else:
        fault = _take_fault(world, name, params)
        if fault is not None and fault.mode == "delay":
            await asyncio.sleep(fault.delay)
            fault = None
        if fault is not None and fault.mode in ("before", "disconnect"):
            error = _fault_error(fault)
            disconnect = fault.mode == "disconnect"
        else:
            try:
                outcome = HANDLERS[name](world, bot, params)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
                result = outcome
            except ApiError as exc:
                error = exc
            except Exception:  # a sandbox bug must not look like a network failure
                logger.exception("sandbox failed while handling %s", call.method)
                error = ApiError(500, "Internal Server Error: sandbox failure")
            if fault is not None and error is None:
                error = _fault_error(fault)
    if error is not None:
        call.ok = False
        call.error_code = error.error_code
        call.description = error.description
        if error.error_code >= 500 or error.error_code in (401, 404):
            logger.info("%s -> %s %s", call.method, error.error_code, error.description)
        world.log_call(call)
        return CallResult(error.error_code, error.to_json(), disconnect)
    call.result = result
    world.log_call(call)
    return CallResult(200, {"ok": True, "result": result})


AsyncHandler = Callable[[World, SimBot, Params], Awaitable[Any]]
