"""Bot API methods about chats: info, members, invite links, join requests, leaving."""

from __future__ import annotations

from typing import Any

from sandbox.api import (
    Params,
    Target,
    api,
    chat_ref,
    require_member,
    require_private_chat,
    resolve,
    user_id_param,
)
from sandbox.errors import bad_request
from sandbox.model import SimBot, SimChat, SimInviteLink, SimMember
from sandbox.objects import (
    bot_private_member_json,
    chat_full_info_json,
    link_json,
    member_json,
    private_full_info_json,
    user_json,
)
from sandbox.world import World

MAX_LINK_NAME = 32
MAX_MEMBER_LIMIT = 99_999


def clean_name(name: str, limit: int = MAX_LINK_NAME) -> str:
    """TDLib's ``clean_name``: control characters become spaces, trim, cut to ``limit``."""
    cleaned = "".join(" " if ord(ch) < 32 else ch for ch in name).strip()
    return cleaned[:limit].rstrip()


def _group_target(world: World, bot: SimBot, p: Params, private_error: str) -> SimChat:
    target = resolve(world, chat_ref(p))
    if target.user is not None:
        require_private_chat(world, bot, target.user)
        raise bad_request(private_error)
    assert target.chat is not None
    require_member(world, bot, target.chat)
    return target.chat


# --- reading chats ----------------------------------------------------------------------------


@api("getChat")
def get_chat(world: World, bot: SimBot, p: Params) -> Any:
    """ChatFullInfo of a chat the bot is in, a public chat, or a private chat it knows."""
    target = resolve(world, chat_ref(p))
    if target.user is not None:
        require_private_chat(world, bot, target.user)
        return private_full_info_json(world, target.user, bot)
    chat = target.chat
    assert chat is not None
    if not chat.is_public:
        require_member(world, bot, chat)
    return chat_full_info_json(world, chat, bot)


@api("getChatMember")
def get_chat_member(world: World, bot: SimBot, p: Params) -> Any:
    """Anyone's status in a chat the bot is in (``left`` if they never were there)."""
    target = resolve(world, chat_ref(p))
    user_id = user_id_param(p)
    if target.user is not None:
        require_private_chat(world, bot, target.user)
        if user_id == target.user.id:
            return {"user": user_json(target.user), "status": "member"}
        if user_id == bot.id:
            dialog = bot.dialogs.get(target.user.id)
            return bot_private_member_json(bot, dialog is not None and dialog.blocked)
        raise bad_request("user not found")
    chat = target.chat
    assert chat is not None
    require_member(world, bot, chat)
    if user_id not in world.users:
        raise bad_request("user not found")
    return member_json(world, chat.type, chat.member(user_id), bot.id)


@api("getChatAdministrators")
def get_chat_administrators(world: World, bot: SimBot, p: Params) -> Any:
    """The owner and administrators (other bots only with ``return_bots``)."""
    target = resolve(world, chat_ref(p))
    if target.user is not None:
        require_private_chat(world, bot, target.user)
        raise bad_request("there are no administrators in the private chat")
    chat = target.chat
    assert chat is not None
    require_member(world, bot, chat)
    with_bots = p.get_bool("return_bots")
    result = []
    for uid, member in chat.members.items():
        if not member.is_admin:
            continue
        account = world.users[uid]
        if account.is_bot and uid != bot.id and not with_bots:
            continue
        result.append(member_json(world, chat.type, member, bot.id))
    return result


@api("getChatMemberCount")
def get_chat_member_count(world: World, bot: SimBot, p: Params) -> Any:
    """How many accounts are in the chat."""
    target = resolve(world, chat_ref(p))
    if target.user is not None:
        require_private_chat(world, bot, target.user)
        return 2
    chat = target.chat
    assert chat is not None
    if not chat.is_public:
        require_member(world, bot, chat)
    return len(chat.member_ids())


api("getChatMembersCount")(get_chat_member_count)


@api("leaveChat")
def leave_chat(world: World, bot: SimBot, p: Params) -> Any:
    """The bot leaves a group, supergroup or channel (``my_chat_member``)."""
    chat = _group_target(world, bot, p, "chat member status can't be changed in private chats")
    world.set_member(chat, SimMember(user_id=bot.id, status="left"), actor=bot)
    return True


def _require_restrict(world: World, bot: SimBot, chat: SimChat) -> None:
    if not chat.member(bot.id).can("can_restrict_members"):
        raise bad_request("not enough rights to restrict/unrestrict chat member")


@api("banChatMember")
def ban_chat_member(world: World, bot: SimBot, p: Params) -> Any:
    """Ban a user (``kicked``; ``from`` is the bot)."""
    user_id = user_id_param(p)
    chat = _group_target(world, bot, p, "can't ban members in private chats")
    _require_restrict(world, bot, chat)
    if user_id not in world.users:
        raise bad_request("user not found")
    current = chat.member(user_id)
    if current.status == "creator":
        raise bad_request("can't remove chat owner")
    if current.status == "administrator" and current.promoted_by != bot.id:
        raise bad_request("user is an administrator of the chat")
    until = max(p.get_int("until_date", 0) or 0, 0)
    world.set_member(
        chat, SimMember(user_id=user_id, status="kicked", until_date=until), actor=bot
    )
    return True


api("kickChatMember")(ban_chat_member)


@api("unbanChatMember")
def unban_chat_member(world: World, bot: SimBot, p: Params) -> Any:
    """Lift a ban; without ``only_if_banned`` a current member is removed too."""
    user_id = user_id_param(p)
    chat = _group_target(world, bot, p, "can't unban members in private chats")
    _require_restrict(world, bot, chat)
    current = chat.member(user_id)
    if current.status == "creator":
        raise bad_request("can't remove chat owner")
    if current.status == "kicked" or (current.in_chat and not p.get_bool("only_if_banned")):
        if current.status == "administrator" and current.promoted_by != bot.id:
            raise bad_request("user is an administrator of the chat")
        world.set_member(chat, SimMember(user_id=user_id, status="left"), actor=bot)
    return True


# --- invite links -----------------------------------------------------------------------------

_NO_LINK_RIGHTS = "not enough rights to manage chat invite link"


def _link_fields(world: World, p: Params) -> tuple[str | None, int, int, bool]:
    name = clean_name(p.get_str("name") or "") or None
    expire_date = max(p.get_int("expire_date", 0) or 0, 0)
    member_limit = min(max(p.get_int("member_limit", 0) or 0, 0), 100_000)
    creates_join_request = p.get_bool("creates_join_request")
    return name, expire_date, member_limit, creates_join_request


def _check_link_fields(world: World, expire_date: int, member_limit: int) -> None:
    if expire_date and expire_date <= world.now():
        raise bad_request("EXPIRE_DATE_INVALID")
    if member_limit > MAX_MEMBER_LIMIT:
        raise bad_request("USAGE_LIMIT_INVALID")


@api("createChatInviteLink")
def create_chat_invite_link(world: World, bot: SimBot, p: Params) -> Any:
    """Create an additional invite link (the bot needs can_invite_users)."""
    chat = _group_target(world, bot, p, "can't invite members to a private chat")
    name, expire_date, member_limit, creates_join_request = _link_fields(world, p)
    if creates_join_request and member_limit:
        raise bad_request(
            "member limit can't be specified for links requiring administrator approval"
        )
    if not chat.member(bot.id).can("can_invite_users"):
        raise bad_request(_NO_LINK_RIGHTS)
    _check_link_fields(world, expire_date, member_limit)
    link = SimInviteLink(
        url=world.new_invite_url(),
        chat_id=chat.id,
        creator_id=bot.id,
        created=world.now(),
        name=name,
        expire_date=expire_date or None,
        member_limit=member_limit or None,
        creates_join_request=creates_join_request,
    )
    chat.invite_links[link.url] = link
    world.notify_change()
    return link_json(world, link, bot.id)


def _bots_link(world: World, bot: SimBot, chat: SimChat, p: Params) -> SimInviteLink:
    url = (p.get_str("invite_link") or "").strip()
    if not url:
        raise bad_request("invite link must be non-empty")
    link = world.find_link(url)
    if link is None or link.chat_id != chat.id:
        raise bad_request("INVITE_HASH_EXPIRED")
    if link.creator_id != bot.id:
        raise bad_request("CHAT_ADMIN_REQUIRED")
    return link


@api("editChatInviteLink")
def edit_chat_invite_link(world: World, bot: SimBot, p: Params) -> Any:
    """Edit a non-primary link the bot created; omitted fields are reset, as Telegram does."""
    chat = _group_target(world, bot, p, "can't invite members to a private chat")
    if not chat.member(bot.id).can("can_invite_users"):
        raise bad_request(_NO_LINK_RIGHTS)
    name, expire_date, member_limit, creates_join_request = _link_fields(world, p)
    if creates_join_request and member_limit:
        raise bad_request(
            "member limit can't be specified for links requiring administrator approval"
        )
    link = _bots_link(world, bot, chat, p)
    if link.is_revoked:
        raise bad_request("INVITE_REVOKED_MISSING")
    if link.is_primary:
        raise bad_request("CHAT_INVITE_PERMANENT")
    _check_link_fields(world, expire_date, member_limit)
    link.name = name
    link.expire_date = expire_date or None
    link.member_limit = member_limit or None
    link.creates_join_request = creates_join_request
    world.notify_change()
    return link_json(world, link, bot.id)


def _new_primary(world: World, bot: SimBot, chat: SimChat) -> SimInviteLink:
    old = world.primary_link(chat, bot.id)
    if old is not None:
        old.is_revoked = True
    link = SimInviteLink(
        url=world.new_invite_url(),
        chat_id=chat.id,
        creator_id=bot.id,
        created=world.now(),
        is_primary=True,
    )
    chat.invite_links[link.url] = link
    return link


@api("revokeChatInviteLink")
def revoke_chat_invite_link(world: World, bot: SimBot, p: Params) -> Any:
    """Revoke a link the bot created (a revoked primary link is replaced)."""
    chat = _group_target(world, bot, p, "can't invite members to a private chat")
    if not chat.member(bot.id).can("can_invite_users"):
        raise bad_request(_NO_LINK_RIGHTS)
    link = _bots_link(world, bot, chat, p)
    if link.is_revoked:
        raise bad_request("INVITE_REVOKED_MISSING")
    if link.is_primary:
        _new_primary(world, bot, chat)
    link.is_revoked = True
    world.notify_change()
    return link_json(world, link, bot.id)


@api("exportChatInviteLink")
def export_chat_invite_link(world: World, bot: SimBot, p: Params) -> Any:
    """Generate a new primary link for the bot (the previous one is revoked)."""
    chat = _group_target(world, bot, p, "can't invite members to a private chat")
    if not chat.member(bot.id).can("can_invite_users"):
        raise bad_request(_NO_LINK_RIGHTS)
    link = _new_primary(world, bot, chat)
    world.notify_change()
    return link.url


# --- join requests ----------------------------------------------------------------------------


def _request_target(world: World, bot: SimBot, p: Params) -> tuple[SimChat, int]:
    user_id = user_id_param(p)
    target: Target = resolve(world, chat_ref(p))
    if target.user is not None:
        require_private_chat(world, bot, target.user)
        raise bad_request("the chat can't have join requests")
    chat = target.chat
    assert chat is not None
    require_member(world, bot, chat)
    if not chat.member(bot.id).can("can_invite_users"):
        raise bad_request("not enough rights to manage chat join requests")
    if chat.member(user_id).in_chat:
        raise bad_request("USER_ALREADY_PARTICIPANT")
    if user_id not in chat.join_requests:
        raise bad_request("HIDE_REQUESTER_MISSING")
    return chat, user_id


@api("approveChatJoinRequest")
def approve_chat_join_request(world: World, bot: SimBot, p: Params) -> Any:
    """Let the requester in (``chat_member`` from the bot, with the request's link)."""
    chat, user_id = _request_target(world, bot, p)
    world.approve_request(chat, user_id, bot)
    return True


@api("declineChatJoinRequest")
def decline_chat_join_request(world: World, bot: SimBot, p: Params) -> Any:
    """Turn the requester away (no update)."""
    chat, user_id = _request_target(world, bot, p)
    world.decline_request(chat, user_id)
    return True
