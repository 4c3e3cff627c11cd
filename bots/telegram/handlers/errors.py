"""First: the engine's refusals (``EngineError``), answered by one aiogram error handler
with the ``error`` template where the handler would have answered.

aiogram's dispatcher catches what a handler raises and propagates it as an ``error`` event
through every router; this router's handler matches engine errors of messages and button
presses only. Anything else (a database that is restarting, a bug) is not handled here and
propagates, so our update loop retries the update and keeps it when it still fails.
"""

from __future__ import annotations

from contextvars import ContextVar

from aiogram import F, Router
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent

from bots import views
from bots.telegram.context import PLATFORM, Reply
from delivery.outbox import Outbox
from referrals.clock import Clock
from referrals.models import EngineError
from referrals.people import People

router = Router(name=__name__)

# (update id, user id): this update's engine errors go to that person in private.
_PRIVATE: ContextVar[tuple[int, int] | None] = ContextVar("private_errors", default=None)


def answer_errors_privately(reply: Reply, user_id: int) -> None:
    """The answer to this update goes to ``user_id`` in private (an invite card asked for
    in a group): so does the engine's refusal."""
    _PRIVATE.set((reply.update_id, user_id))


@router.errors(ExceptionTypeFilter(EngineError), F.update.message | F.update.callback_query)
async def engine_refused(event: ErrorEvent, outbox: Outbox, clock: Clock, people: People) -> None:
    """Answer the engine's refusal in the person's language: in the chat of the message, or
    in private for a button press (its answers go there)."""
    refusal = event.exception
    if not isinstance(refusal, EngineError):  # the filter let only these through
        raise refusal
    update = event.update
    chat_id: int | None = None
    if update.message is not None:
        user = update.message.from_user
        chat_id = update.message.chat.id
    elif update.callback_query is not None:
        user = update.callback_query.from_user
    else:
        raise refusal
    if user is None:  # a channel post: there is nobody to answer
        return
    private = _PRIVATE.get()
    to_user = private[1] if private is not None and private[0] == update.update_id else None
    if chat_id is None:
        to_user = user.id
    locale = (await people.get(PLATFORM, user.id)).locale
    reply = Reply(outbox, clock, update.update_id, locale, chat_id, user.id)
    view = views.engine_error(refusal)
    key = f"tg:{update.update_id}:error"
    if to_user is not None:
        await reply.to_user(to_user, "error", view, key=key)
    else:
        await reply.here("error", view, key=key)
