"""Managers' rewards: /milestones (the ladder, with pause / resume / remove buttons),
/milestone (add one through a short guided flow, or change one), /codes (coupon files),
/grants (approvals), /fulfil (rewards sent by hand), /chatid and /cancel; and the guided
flows' input — a reader's answer to a reward's question too.

A flow's state is stored by the rewards service in the database with an expiry, so a
restart does not lose a half-finished setup. The service checks the manager's rights on
every step that changes something, whatever button was pressed.
"""

from __future__ import annotations

import io
from typing import Any

from aiogram import Bot, F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bots import views
from bots.telegram.callbacks import FlowPick, GrantAct, MilestoneAct, PickProgram
from bots.telegram.context import PLATFORM, ProgramCache, Reply
from bots.telegram.handlers.common import (
    GROUP_TYPES,
    answerable_in_private,
    managed_in_private,
    managed_program,
)
from bots.telegram.port import TelegramPort
from referrals.models import NotAllowed, Program
from referrals.people import People
from referrals.service import ReferralService
from rewards.coupons import MAX_FILE_BYTES
from rewards.models import BadMilestone, RewardKind
from rewards.service import MAX_COUNT, RewardService
from rewards.templates import check_template

router = Router(name=__name__)

KINDS = (RewardKind.MESSAGE, RewardKind.COUPON, RewardKind.CHAT, RewardKind.MANUAL)
NEXT_STEP = {
    RewardKind.MESSAGE: "message",
    RewardKind.COUPON: "coupon",
    RewardKind.CHAT: "chat",
    RewardKind.MANUAL: "question",
}
QUEUE_SIZE = 5


# --- /milestones -------------------------------------------------------------------------


@router.message(Command("milestones"))
async def milestones_command(
    message: Message,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
    programs: ProgramCache,
    people: People,
    port: TelegramPort,
) -> None:
    """The program's milestones and coupon pools, with pause / resume / remove buttons."""
    if message.from_user is None:
        return
    program = await managed_in_private(
        message, referrals, reply, programs, people, port, "milestones", "milestones"
    )
    if program is None:
        return
    await _show_milestones(rewards, reply, program, message.from_user.id)


@router.callback_query(MilestoneAct.filter())
async def milestone_button(
    query: CallbackQuery,
    callback_data: MilestoneAct,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
) -> None:
    """Pause, resume or remove one milestone (the service checks the manager)."""
    await query.answer()
    actor, target = query.from_user.id, callback_data.milestone_id
    if callback_data.action in ("p", "r"):
        await rewards.set_milestone_paused(target, actor, callback_data.action == "p")
        done = "paused" if callback_data.action == "p" else "resumed"
    elif callback_data.action == "x":
        await rewards.remove_milestone(target, actor)
        done = "removed"
    else:
        return
    program = await referrals.get_program(callback_data.program_id)
    edit = query.message.message_id if query.message is not None else None
    await _show_milestones(rewards, reply, program, actor, done=done, edit=edit)


async def _show_milestones(
    rewards: RewardService,
    reply: Reply,
    program: Program,
    user_id: int,
    *,
    done: str = "",
    edit: int | None = None,
) -> None:
    milestones = await rewards.milestones(program.id)
    view = views.milestones_list(program, milestones, await rewards.pools(program.id), done=done)
    buttons = []
    for milestone in milestones[:20]:
        toggle = "r" if milestone.paused else "p"
        label = "resume_milestone" if milestone.paused else "pause_milestone"
        buttons.append(
            [
                {
                    "label": label,
                    "args": {"id": milestone.id},
                    "data": MilestoneAct(
                        program_id=program.id, milestone_id=milestone.id, action=toggle
                    ).pack(),
                },
                {
                    "label": "remove_milestone",
                    "args": {"id": milestone.id},
                    "data": MilestoneAct(
                        program_id=program.id, milestone_id=milestone.id, action="x"
                    ).pack(),
                },
            ]
        )
    if edit is not None:
        await reply.edit(user_id, edit, "milestones", view, buttons=buttons)
    else:
        await reply.to_user(user_id, "milestones", view, buttons=buttons, program_id=program.id)


# --- /milestone ----------------------------------------------------------------------------


@router.message(Command("milestone"))
async def milestone_command(
    message: Message,
    command: CommandObject,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
    programs: ProgramCache,
    people: People,
    port: TelegramPort,
) -> None:
    """``/milestone add 3 Sticker pack`` · ``every 5 Code`` · ``friend Welcome gift`` ·
    ``prize Gift card`` (a season's prize, chosen with /season) start the guided setup;
    ``/milestone ID count|title|approval|cost|pause|resume|remove …`` changes one."""
    if message.from_user is None:
        return
    user_id = message.from_user.id
    words = (command.args or "").split(maxsplit=2)
    if not words:
        await reply.error("milestone_usage")
        return
    verb = words[0].lower()
    if verb.isdigit():
        await _change(rewards, reply, user_id, int(verb), words[1:])
        return
    start = _parse_start(verb, words[1:])
    if start is None:
        await reply.error("milestone_usage")
        return
    program = await managed_program(message, referrals, reply, programs, "milestone")
    if program is None:
        # several programs: the pick continues from the stored flow
        if message.chat.type == "private":
            await rewards.set_flow(PLATFORM, user_id, "milestone", "program", start)
        return
    if not await answerable_in_private(message, reply, people, port, program, "milestones"):
        return
    await _begin(rewards, reply, user_id, program, start)


def _parse_start(verb: str, rest: list[str]) -> dict[str, Any] | None:
    """``add N title`` / ``every N title`` / ``friend title`` / ``prize title`` as the
    flow's first data."""
    if verb in ("add", "every") and len(rest) == 2 and rest[0].isdigit():
        number = int(rest[0])
        if not 1 <= number <= MAX_COUNT:
            raise BadMilestone("count", "out of range", high=MAX_COUNT)
        return {
            "role": "milestone",
            "count": number if verb == "add" else None,
            "step": number if verb == "every" else None,
            "title": rest[1],
        }
    if verb in ("friend", "prize") and rest:
        return {"role": verb, "count": None, "step": None, "title": " ".join(rest)}
    return None


async def _begin(
    rewards: RewardService, reply: Reply, user_id: int, program: Program, start: dict[str, Any]
) -> None:
    """Ask which reward the new milestone gives."""
    await rewards.managed(program.id, user_id)
    data = {**start, "program_id": program.id}
    await rewards.set_flow(PLATFORM, user_id, "milestone", "kind", data)
    buttons = [
        [{"label": f"kind_{kind}", "data": FlowPick(choice=str(kind)).pack()}] for kind in KINDS
    ]
    buttons.append([{"label": "cancel", "data": FlowPick(choice="cancel").pack()}])
    await reply.to_user(
        user_id, "milestone_flow", _flow_view("kind", data), buttons=buttons, program_id=program.id
    )


async def _change(
    rewards: RewardService, reply: Reply, user_id: int, milestone_id: int, words: list[str]
) -> None:
    """``/milestone ID what [value]``: a lower count is confirmed first (it grants)."""
    what = words[0].lower() if words else ""
    value = words[1] if len(words) > 1 else ""
    milestone = await rewards.milestone(milestone_id)
    program_id = milestone.program_id
    if what in ("pause", "resume") and not value:
        await rewards.set_milestone_paused(milestone_id, user_id, what == "pause")
    elif what == "remove" and not value:
        await rewards.remove_milestone(milestone_id, user_id)
    elif what == "title" and value:
        await rewards.edit_milestone(milestone_id, user_id, title=value)
    elif what == "approval" and value:
        await rewards.edit_milestone(milestone_id, user_id, approval=value.lower())
    elif what == "cost" and value:
        await rewards.edit_milestone(milestone_id, user_id, cost_cents=_cents(value))
    elif what in ("count", "every") and value.isdigit() and milestone.role == "milestone":
        field = "count" if what == "count" else "step"
        data = {
            "program_id": program_id,
            "milestone_id": milestone_id,
            "role": "milestone",
            "title": milestone.title,
            "count": int(value) if field == "count" else None,
            "step": int(value) if field == "step" else None,
            "pool_id": milestone.pool_id,
        }
        await rewards.set_flow(PLATFORM, user_id, "edit", "confirm", data)
        await _confirm(rewards, reply, user_id, data)
        return
    else:
        await reply.error("milestone_usage")
        return
    done = {"pause": "paused", "resume": "resumed", "remove": "removed"}.get(what, "saved")
    await reply.here(
        "milestones",
        views.milestones_list(
            await rewards.program(program_id),
            await rewards.milestones(program_id),
            await rewards.pools(program_id),
            done=done,
        ),
    )


def _cents(value: str) -> int | None:
    if value.lower() in ("off", "none", "0"):
        return None
    try:
        amount = round(float(value.replace(",", ".")) * 100)
    except ValueError:
        raise BadMilestone("cost", "not an amount") from None
    if not 0 <= amount <= 10**9:
        raise BadMilestone("cost", "out of range")
    return amount


# --- the guided flow ---------------------------------------------------------------------


@router.callback_query(PickProgram.filter(F.action.in_({"milestones", "milestone"})))
async def picked_program(
    query: CallbackQuery,
    callback_data: PickProgram,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
) -> None:
    """The program picked for /milestones, or for the /milestone setup typed before."""
    await query.answer()
    program = await referrals.get_program(callback_data.program_id)
    user_id = query.from_user.id
    if not await referrals.is_manager(program, user_id):
        raise NotAllowed("not an admin")
    if callback_data.action == "milestones":
        await _show_milestones(rewards, reply, program, user_id)
        return
    flow = await rewards.flow(PLATFORM, user_id)
    if flow is None or flow["kind"] != "milestone" or flow["step"] != "program":
        await reply.to_user(user_id, "milestone_flow", _flow_view("expired", {}))
        return
    await _begin(rewards, reply, user_id, program, flow["data"])


@router.callback_query(FlowPick.filter())
async def flow_pick(
    query: CallbackQuery, callback_data: FlowPick, rewards: RewardService, reply: Reply
) -> None:
    """A choice in the guided setup: the reward kind, a pool, save or cancel."""
    await query.answer()
    user_id = query.from_user.id
    flow = await rewards.flow(PLATFORM, user_id)
    choice = callback_data.choice
    if flow is None:
        await reply.to_user(user_id, "milestone_flow", _flow_view("expired", {}))
        return
    data = dict(flow["data"])
    if choice == "cancel":
        await rewards.end_flow(PLATFORM, user_id)
        await reply.to_user(user_id, "milestone_flow", _flow_view("cancelled", data))
        return
    if flow["kind"] == "codes" and choice == "pool":
        data["pool_id"] = callback_data.pool_id
        await rewards.set_flow(PLATFORM, user_id, "codes", "file", data)
        await reply.to_user(user_id, "milestone_flow", _flow_view("codes", data))
        return
    if choice == "save" and flow["step"] == "confirm":
        await _save(rewards, reply, user_id, flow["kind"], data)
        return
    if flow["kind"] != "milestone":
        return
    if flow["step"] == "kind" and choice in NEXT_STEP:
        data["reward_kind"] = choice
        step = NEXT_STEP[RewardKind(choice)]
        await rewards.set_flow(PLATFORM, user_id, "milestone", step, data)
        buttons = []
        pools = await rewards.pools(int(data["program_id"])) if step == "coupon" else []
        for pool in pools[:10]:
            pick = FlowPick(choice="pool", pool_id=pool.id).pack()
            buttons.append(
                [
                    {
                        "label": "use_pool",
                        "args": {"name": pool.name, "free": pool.free},
                        "data": pick,
                    }
                ]
            )
        buttons.append([{"label": "cancel", "data": FlowPick(choice="cancel").pack()}])
        await reply.to_user(
            user_id, "milestone_flow", _flow_view(step, data, pools=bool(pools)), buttons=buttons
        )
    elif flow["step"] == "coupon" and choice == "pool":
        data["pool_id"] = callback_data.pool_id
        await _to_confirm(rewards, reply, user_id, data)


async def _to_confirm(
    rewards: RewardService, reply: Reply, user_id: int, data: dict[str, Any]
) -> None:
    await rewards.set_flow(PLATFORM, user_id, "milestone", "confirm", data)
    await _confirm(rewards, reply, user_id, data)


async def _confirm(
    rewards: RewardService, reply: Reply, user_id: int, data: dict[str, Any]
) -> None:
    """How many rewards saving it grants at once; then Save or Cancel."""
    preview = await rewards.preview(
        int(data["program_id"]),
        user_id,
        count=data.get("count"),
        step=data.get("step"),
        pool_id=data.get("pool_id"),
        milestone_id=data.get("milestone_id"),
    )
    view = views.milestone_preview(
        data["title"], data.get("count"), data.get("step"), data.get("role", "milestone"), preview
    )
    buttons = [
        [
            {"label": "save", "data": FlowPick(choice="save").pack()},
            {"label": "cancel", "data": FlowPick(choice="cancel").pack()},
        ]
    ]
    await reply.to_user(user_id, "milestone_flow", view, buttons=buttons)


async def _save(
    rewards: RewardService, reply: Reply, user_id: int, kind: str, data: dict[str, Any]
) -> None:
    if kind == "edit":
        changes = {key: data[key] for key in ("count", "step") if data.get(key) is not None}
        milestone, granted = await rewards.edit_milestone(
            int(data["milestone_id"]), user_id, **changes
        )
    else:
        values = {
            key: data.get(key)
            for key in (
                "role",
                "count",
                "step",
                "title",
                "reward_kind",
                "message",
                "pool_id",
                "chat_id",
                "question",
            )
        }
        milestone, granted = await rewards.add_milestone(
            int(data["program_id"]), user_id, **values
        )
    await rewards.end_flow(PLATFORM, user_id)
    view = _flow_view(
        "saved",
        {
            "title": milestone.title,
            "count": milestone.count,
            "step": milestone.step,
            "role": milestone.role,
        },
        granted=granted,
    )
    await reply.to_user(user_id, "milestone_flow", view, program_id=milestone.program_id)


def _flow_view(step: str, data: dict[str, Any], **extra: Any) -> views.View:
    return views.milestone_flow(
        step,
        title=data.get("title", ""),
        count=data.get("count"),
        every=data.get("step"),
        role=data.get("role", "milestone"),
        **extra,
    )


# --- /codes --------------------------------------------------------------------------------


@router.message(Command("codes"))
async def codes_command(
    message: Message,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
    programs: ProgramCache,
    people: People,
    port: TelegramPort,
) -> None:
    """Upload more coupon codes to a pool: the next file sent is imported."""
    if message.from_user is None:
        return
    program = await managed_in_private(
        message, referrals, reply, programs, people, port, "codes", "milestones"
    )
    if program is None:
        return
    await _ask_for_codes(rewards, reply, program, message.from_user.id)


@router.callback_query(PickProgram.filter(F.action == "codes"))
async def picked_for_codes(
    query: CallbackQuery,
    callback_data: PickProgram,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
) -> None:
    await query.answer()
    program = await referrals.get_program(callback_data.program_id)
    await _ask_for_codes(rewards, reply, program, query.from_user.id)


async def _ask_for_codes(
    rewards: RewardService, reply: Reply, program: Program, user_id: int
) -> None:
    await rewards.managed(program.id, user_id)
    pools = await rewards.pools(program.id)
    if not pools:
        await reply.to_user(user_id, "error", views.error("codes_usage"))
        return
    data: dict[str, Any] = {"program_id": program.id, "pool_id": pools[0].id}
    if len(pools) == 1:
        await rewards.set_flow(PLATFORM, user_id, "codes", "file", data)
        await reply.to_user(user_id, "milestone_flow", _flow_view("codes", data))
        return
    await rewards.set_flow(PLATFORM, user_id, "codes", "pool", data)
    buttons = [
        [
            {
                "label": "use_pool",
                "args": {"name": pool.name, "free": pool.free},
                "data": FlowPick(choice="pool", pool_id=pool.id).pack(),
            }
        ]
        for pool in pools[:10]
    ]
    await reply.to_user(
        user_id, "milestone_flow", _flow_view("coupon", data, pools=True), buttons=buttons
    )


# --- /grants and /fulfil -------------------------------------------------------------------


@router.message(Command("grants", "fulfil"))
async def queue_command(
    message: Message,
    command: CommandObject,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
    programs: ProgramCache,
    people: People,
    port: TelegramPort,
) -> None:
    """Rewards waiting for a manager: to approve (/grants) or to send by hand (/fulfil)."""
    if message.from_user is None:
        return
    which = "approval" if command.command == "grants" else "fulfilment"
    program = await managed_in_private(
        message, referrals, reply, programs, people, port, command.command, "milestones"
    )
    if program is None:
        return
    await _show_queue(rewards, reply, program, message.from_user.id, which, 1)


@router.callback_query(PickProgram.filter(F.action.in_({"grants", "fulfil"})))
async def picked_for_queue(
    query: CallbackQuery,
    callback_data: PickProgram,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
) -> None:
    await query.answer()
    program = await referrals.get_program(callback_data.program_id)
    which = "approval" if callback_data.action == "grants" else "fulfilment"
    await _show_queue(rewards, reply, program, query.from_user.id, which, 1)


@router.callback_query(GrantAct.filter())
async def grant_button(
    query: CallbackQuery,
    callback_data: GrantAct,
    referrals: ReferralService,
    rewards: RewardService,
    reply: Reply,
) -> None:
    """Approve, reject, mark sent, or page (the service checks the manager)."""
    await query.answer()
    actor, action = query.from_user.id, callback_data.action
    done = ""
    if action in ("a", "r"):
        await rewards.decide(callback_data.grant_id, actor, approve=action == "a")
        done = "approved" if action == "a" else "rejected"
    elif action == "f":
        await rewards.fulfilled(callback_data.grant_id, actor)
        done = "fulfilled"
    elif action != "p":
        return
    program = await referrals.get_program(callback_data.program_id)
    which = "approval" if callback_data.which == "approval" else "fulfilment"
    edit = query.message.message_id if query.message is not None else None
    await _show_queue(
        rewards, reply, program, actor, which, callback_data.page, done=done, edit=edit
    )


async def _show_queue(
    rewards: RewardService,
    reply: Reply,
    program: Program,
    user_id: int,
    which: str,
    page: int,
    *,
    done: str = "",
    edit: int | None = None,
) -> None:
    grants, total = await rewards.queue(program.id, user_id, which, page, QUEUE_SIZE)
    view = views.grant_queue(program, grants, total, which, page, done=done)
    buttons: list[list[dict[str, Any]]] = []

    def act(action: str, grant_id: int = 0, to_page: int = page) -> str:
        return GrantAct(
            program_id=program.id, grant_id=grant_id, action=action, which=which, page=to_page
        ).pack()

    for grant in grants:
        if which == "approval":
            buttons.append(
                [
                    {
                        "label": "approve_grant",
                        "args": {"id": grant.id},
                        "data": act("a", grant.id),
                    },
                    {
                        "label": "reject_grant",
                        "args": {"id": grant.id},
                        "data": act("r", grant.id),
                    },
                ]
            )
        else:
            buttons.append(
                [
                    {
                        "label": "fulfilled_grant",
                        "args": {"id": grant.id},
                        "data": act("f", grant.id),
                    }
                ]
            )
    paging = []
    if page > 1:
        paging.append({"label": "back", "data": act("p", to_page=page - 1)})
    if page * QUEUE_SIZE < total:
        paging.append({"label": "more", "data": act("p", to_page=page + 1)})
    if paging:
        buttons.append(paging)
    if edit is not None:
        await reply.edit(user_id, edit, "grant_queue", view, buttons=buttons)
    else:
        await reply.to_user(user_id, "grant_queue", view, buttons=buttons, program_id=program.id)


# --- /chatid, /cancel ------------------------------------------------------------------


@router.message(Command("chatid"))
async def chat_id(message: Message, reply: Reply) -> None:
    """The id of this chat, for a private-chat reward."""
    if message.chat.type in GROUP_TYPES or message.chat.type == "private":
        await reply.here("chat_id", {"chat_id": message.chat.id})


@router.message(Command("cancel"))
async def cancel(message: Message, rewards: RewardService, reply: Reply) -> None:
    """Stop a guided setup (nothing is saved)."""
    if message.from_user is None or message.chat.type != "private":
        return
    await rewards.end_flow(PLATFORM, message.from_user.id)
    await reply.here("milestone_flow", _flow_view("cancelled", {}))


# --- what a flow waits for: text or a file, in private ---------------------------------


@router.message(F.chat.type == "private", F.document)
async def document_in(message: Message, bot: Bot, rewards: RewardService, reply: Reply) -> None:
    """A coupon file for the milestone setup or for /codes."""
    if message.from_user is None or message.document is None:
        return
    user_id = message.from_user.id
    flow = await rewards.flow(PLATFORM, user_id)
    wants_file = flow is not None and (
        (flow["kind"] == "milestone" and flow["step"] == "coupon")
        or (flow["kind"] == "codes" and flow["step"] == "file")
    )
    if flow is None or not wants_file:
        raise SkipHandler  # not ours: the fallback answers
    document = message.document
    if document.file_size is not None and document.file_size > MAX_FILE_BYTES:
        await reply.error("file_too_big")
        return
    buffer = io.BytesIO()
    await bot.download(document, destination=buffer)
    data = dict(flow["data"])
    report = await rewards.import_codes(
        int(data["program_id"]),
        user_id,
        document.file_name or "",
        buffer.getvalue(),
        pool_id=data.get("pool_id"),
        pool_name=data.get("title"),
    )
    await reply.here("coupon_import", views.coupon_import(report))
    if flow["kind"] == "codes":
        await rewards.end_flow(PLATFORM, user_id)
        return
    data["pool_id"] = report.pool_id
    await _to_confirm(rewards, reply, user_id, data)


@router.message(F.chat.type == "private", F.text, ~F.text.startswith("/"))
async def text_in(message: Message, rewards: RewardService, reply: Reply) -> None:
    """The text a flow waits for: a reward's message, a chat id, a question, an answer."""
    if message.from_user is None or message.text is None:
        return
    user_id = message.from_user.id
    flow = await rewards.flow(PLATFORM, user_id)
    if flow is None:
        raise SkipHandler  # not ours: the fallback answers
    data = dict(flow["data"])
    text = message.text.strip()
    if flow["kind"] == "answer":
        grant = await rewards.answer(PLATFORM, user_id, int(data["grant_id"]), text)
        await rewards.end_flow(PLATFORM, user_id)
        await reply.here("answer_prompt", views.answer_prompt(grant, None, saved=True))
        return
    if flow["kind"] == "codes" or flow["step"] == "coupon":
        await reply.error("flow_file")
        return
    if flow["kind"] != "milestone":
        raise SkipHandler
    step = flow["step"]
    if step == "message":
        # The manager's formatting arrives as entities: their HTML is what readers get.
        data["message"] = check_template(message.html_text)
    elif step == "chat":
        chosen = text.removeprefix("/chatid").strip()
        if not chosen.lstrip("-").isdigit():
            raise BadMilestone("chat", "send the chat's id, a number such as -1001234567890")
        program = await rewards.program(int(data["program_id"]))
        access = await rewards.check_reward_chat(program, int(chosen))
        data["chat_id"] = access.chat_id
    elif step == "question":
        data["question"] = text
    else:
        raise SkipHandler
    await _to_confirm(rewards, reply, user_id, data)
