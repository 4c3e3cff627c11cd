"""/review: the held referrals of a program with approve / reject buttons (one, or all of
one reader), and /undo to reverse a decision. Managers only: the engine checks the admin
right on every decision, whatever button was pressed."""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bots import views
from bots.telegram.callbacks import PickProgram, Review
from bots.telegram.context import ProgramCache, Reply
from bots.telegram.handlers.common import managed_in_private, managed_program
from bots.telegram.port import TelegramPort
from referrals.models import NotAllowed, NotReversible, Program, ReviewOutcome, ReviewPage
from referrals.people import People
from referrals.service import ReferralService

router = Router(name=__name__)

NAME_ON_BUTTON = 24
EXPECT = {"c": "confirmed", "r": "rejected"}
SHORT = {state: short for short, state in EXPECT.items()}


@router.message(Command("review"))
async def review(
    message: Message,
    referrals: ReferralService,
    reply: Reply,
    programs: ProgramCache,
    people: People,
    port: TelegramPort,
) -> None:
    """Held referrals waiting for a manager, with approve and reject buttons."""
    if message.from_user is None:
        return
    program = await managed_in_private(
        message, referrals, reply, programs, people, port, "review", "review"
    )
    if program is None:
        return
    page = await referrals.review_queue(program.id)
    await _show(reply, program, page, message.from_user.id)


@router.callback_query(PickProgram.filter(F.action == "review"))
async def picked_for_review(
    query: CallbackQuery, callback_data: PickProgram, referrals: ReferralService, reply: Reply
) -> None:
    """The program picked for /review (its managers only)."""
    await query.answer()
    program = await referrals.get_program(callback_data.program_id)
    if not await referrals.is_manager(program, query.from_user.id):
        raise NotAllowed("not an admin")
    await _show(reply, program, await referrals.review_queue(program.id), query.from_user.id)


@router.callback_query(Review.filter())
async def decided(
    query: CallbackQuery, callback_data: Review, referrals: ReferralService, reply: Reply
) -> None:
    """A decision button: approve / reject one referral or all of one reader, undo, or a
    page. The engine refuses anyone who is not a manager of the program."""
    await query.answer()
    program = await referrals.get_program(callback_data.program_id)
    action, target, actor = callback_data.action, callback_data.target, query.from_user.id
    outcomes: list[ReviewOutcome] = []
    undo = False
    if action in ("a", "r"):
        outcomes = [await referrals.review(program.id, target, actor, approve=action == "a")]
    elif action in ("A", "R"):
        outcomes = await referrals.review_reader(program.id, target, actor, approve=action == "A")
    elif action == "u":
        expect = EXPECT.get(callback_data.expect)
        outcomes, undo = [await referrals.undo(program.id, target, actor, expect=expect)], True
    elif action == "p":  # only a page: nothing changes, but the queue is managers' alone
        if not await referrals.is_manager(program, actor):
            raise NotAllowed("not an admin")
    else:
        return  # a made-up action
    page = await referrals.review_queue(program.id, callback_data.page)
    context = views.review_queue(program, page, decided=outcomes, undo=undo)
    buttons = _buttons(program, page, outcomes)
    if query.message is not None:
        await reply.edit(actor, query.message.message_id, "review", context, buttons=buttons)
    else:
        await reply.to_user(actor, "review", context, buttons=buttons, program_id=program.id)


@router.message(Command("undo"))
async def undo(
    message: Message,
    command: CommandObject,
    referrals: ReferralService,
    reply: Reply,
    programs: ProgramCache,
) -> None:
    """Reverse the decision on a friend's referral: /undo <user id or @username>."""
    if message.from_user is None:
        return
    words = (command.args or "").split()
    if len(words) != 1:
        await reply.error("undo_usage")
        return
    program = await managed_program(message, referrals, reply, programs, "review")
    if program is None:
        return
    referred = await referrals.find_member(program.id, words[0])
    found = await referrals.referral_of(program.id, referred) if referred is not None else None
    if found is None or found.state not in SHORT:
        raise NotReversible("no decided referral of that friend in this program")
    # Ask first: the button carries the state seen, so pressing it twice reverses once.
    data = Review(
        program_id=program.id, action="u", target=found.referred_id, expect=SHORT[found.state]
    )
    await reply.here(
        "undo",
        views.undo_prompt(program, found),
        buttons=[[{"label": "undo_confirm", "args": {"state": found.state}, "data": data.pack()}]],
    )


async def _show(reply: Reply, program: Program, page: ReviewPage, user_id: int) -> None:
    await reply.to_user(
        user_id,
        "review",
        views.review_queue(program, page),
        buttons=_buttons(program, page, []),
        program_id=program.id,
    )


def _buttons(
    program: Program, page: ReviewPage, decided: list[ReviewOutcome]
) -> list[list[dict[str, Any]]]:
    """Per friend: approve and reject; per reader with several held friends on the page:
    all of them at once; an undo of what was just decided; paging."""

    def button(label: str, action: str, target: int = 0, **args: Any) -> dict[str, Any]:
        data = Review(program_id=program.id, action=action, target=target, page=page.page)
        return {"label": label, "args": args, "data": data.pack()}

    rows: list[list[dict[str, Any]]] = []
    readers: dict[int, tuple[str, int]] = {}
    for item in page.items:
        name = item.referred_name[:NAME_ON_BUTTON]
        rows.append(
            [
                button("approve_one", "a", item.referred_id, name=name),
                button("reject_one", "r", item.referred_id, name=name),
            ]
        )
        if item.referrer_id is not None:
            seen = readers.get(item.referrer_id, (item.referrer_name[:NAME_ON_BUTTON], 0))
            readers[item.referrer_id] = (seen[0], seen[1] + 1)
    for reader_id, (name, count) in readers.items():
        if count > 1:
            rows.append(
                [
                    button("approve_all", "A", reader_id, name=name, count=count),
                    button("reject_all", "R", reader_id, name=name, count=count),
                ]
            )
    if len(decided) == 1 and decided[0].state in SHORT:
        undo = Review(
            program_id=program.id,
            action="u",
            target=decided[0].referred_id,
            page=page.page,
            expect=SHORT[decided[0].state],
        )
        rows.append([{"label": "undo", "args": {}, "data": undo.pack()}])
    paging = []
    if page.page > 1:
        paging.append(
            {
                "label": "back",
                "data": Review(program_id=program.id, action="p", page=page.page - 1).pack(),
            }
        )
    if page.page < page.pages:
        paging.append(
            {
                "label": "more",
                "data": Review(program_id=program.id, action="p", page=page.page + 1).pack(),
            }
        )
    if paging:
        rows.append(paging)
    return rows
