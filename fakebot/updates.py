"""Builders for complete incoming Bot API ``Update`` dicts (what Telegram would deliver).

Every builder returns plain JSON-able dicts that ``telegram.Update.de_json`` accepts, so they
can be pushed through :meth:`FakeBotAPI.push_update` or fed to ``Application.process_update``
directly.  ``update_id`` is filled from a process-wide counter; ``FakeBotAPI.push_update``
renumbers updates so ids stay monotonic per server.
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

from .html import utf16_len

__all__ = [
    "BOT_FIRST_NAME",
    "BOT_ID",
    "BOT_USERNAME",
    "DEFAULT_TOKEN",
    "bot_user_dict",
    "callback_update",
    "chat_dict",
    "chat_member_dict",
    "command_entities",
    "infer_chat_type",
    "inline_update",
    "message_dict",
    "message_update",
    "my_chat_member_update",
    "topic_created_dict",
    "user_dict",
]

JSONDict = dict[str, Any]

DEFAULT_TOKEN = "123456:TEST-token"
BOT_ID = 123456
BOT_USERNAME = "briefbot_test_bot"
BOT_FIRST_NAME = "BriefBot Test"
DEFAULT_GROUP_USER_ID = 1001
DEFAULT_LANGUAGE = "zh-hans"

_update_ids = itertools.count(1)
_message_ids = itertools.count(1_000_001)
_query_ids = itertools.count(4_000_000_001)

_COMMAND = re.compile(r"(?<![^\s])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@/])")

MEMBER_STATUSES = ("creator", "administrator", "member", "restricted", "left", "kicked")


def next_message_id() -> int:
    """A process-wide message id (for messages not allocated by a server)."""
    return next(_message_ids)


def next_update_id() -> int:
    return next(_update_ids)


def infer_chat_type(chat_id: int) -> str:
    """``private`` for positive ids, ``supergroup`` for ``-100…`` ids, ``group`` otherwise."""
    if chat_id > 0:
        return "private"
    if chat_id <= -1_000_000_000_000:
        return "supergroup"
    return "group"


def bot_user_dict(
    bot_id: int = BOT_ID,
    username: str = BOT_USERNAME,
    first_name: str = BOT_FIRST_NAME,
    *,
    full: bool = False,
) -> JSONDict:
    """The bot's ``User``; ``full=True`` adds the ``getMe``-only capability fields."""
    user: JSONDict = {"id": bot_id, "is_bot": True, "first_name": first_name, "username": username}
    if full:
        user.update(
            can_join_groups=True,
            can_read_all_group_messages=False,
            supports_inline_queries=True,
            can_connect_to_business=False,
            has_main_web_app=False,
        )
    return user


def user_dict(
    user_id: int,
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    username: str | None = None,
    language_code: str | None = DEFAULT_LANGUAGE,
    is_bot: bool = False,
) -> JSONDict:
    user: JSONDict = {
        "id": user_id,
        "is_bot": is_bot,
        "first_name": first_name if first_name is not None else f"User{user_id}",
    }
    if last_name:
        user["last_name"] = last_name
    if username:
        user["username"] = username
    if language_code:
        user["language_code"] = language_code
    return user


def chat_dict(
    chat_id: int,
    chat_type: str | None = None,
    *,
    title: str | None = None,
    username: str | None = None,
    first_name: str | None = None,
    is_forum: bool = False,
) -> JSONDict:
    """A ``Chat`` object; names default from the id; ``is_forum``: a supergroup with topics."""
    chat_type = chat_type or infer_chat_type(chat_id)
    chat: JSONDict = {"id": chat_id, "type": chat_type}
    if chat_type == "private":
        chat["first_name"] = first_name if first_name is not None else f"User{chat_id}"
    else:
        default_title = {"group": "Group", "supergroup": "Supergroup", "channel": "Channel"}.get(
            chat_type, "Chat"
        )
        chat["title"] = title if title is not None else f"{default_title} {chat_id}"
    if username:
        chat["username"] = username
    if is_forum:
        chat["is_forum"] = True
    return chat


def topic_created_dict(chat: JSONDict, thread_id: int, name: str, icon_color: int) -> JSONDict:
    """The service message that opened a forum topic (its id is the topic's thread id)."""
    return {
        "message_id": thread_id,
        "from": user_dict(DEFAULT_GROUP_USER_ID),
        "chat": dict(chat),
        "date": int(time.time()),
        "message_thread_id": thread_id,
        "is_topic_message": True,
        "forum_topic_created": {"name": name, "icon_color": icon_color},
    }


def command_entities(text: str) -> list[JSONDict]:
    """``bot_command`` entities for ``/command`` and ``/command@bot`` tokens, as Telegram adds."""
    entities: list[JSONDict] = []
    for m in _COMMAND.finditer(text):
        entities.append(
            {
                "type": "bot_command",
                "offset": utf16_len(text[: m.start()]),
                "length": utf16_len(m.group(0)),
            }
        )
    return entities


def message_dict(
    chat_id: int,
    text: str,
    *,
    message_id: int | None = None,
    user_id: int | None = None,
    chat_type: str | None = None,
    language_code: str | None = DEFAULT_LANGUAGE,
    first_name: str | None = None,
    username: str | None = None,
    chat_title: str | None = None,
    chat_username: str | None = None,
    date: int | None = None,
    entities: list[JSONDict] | None = None,
    reply_to_message: JSONDict | None = None,
    from_user: JSONDict | None = None,
    extra: JSONDict | None = None,
    thread_id: int | None = None,
    is_forum: bool = False,
) -> JSONDict:
    """A user's text ``Message``; a leading ``/command`` gets its ``bot_command`` entity.

    ``thread_id``: sent inside that forum topic of an ``is_forum`` supergroup (implied):
    Telegram marks it ``is_topic_message`` and, when it answers nothing, makes it a reply
    to the topic's creation message. ``is_forum`` alone: the forum's General topic, where
    messages carry no thread id."""
    chat_type = chat_type or infer_chat_type(chat_id)
    if from_user is None:
        if user_id is None:
            user_id = chat_id if chat_type == "private" else DEFAULT_GROUP_USER_ID
        from_user = user_dict(
            user_id, first_name=first_name, username=username, language_code=language_code
        )
    chat = chat_dict(
        chat_id,
        chat_type,
        title=chat_title,
        username=chat_username if chat_type != "private" else (chat_username or username),
        first_name=from_user.get("first_name") if chat_type == "private" else None,
        is_forum=is_forum or thread_id is not None,
    )
    message: JSONDict = {
        "message_id": message_id if message_id is not None else next_message_id(),
        "from": from_user,
        "chat": chat,
        "date": date if date is not None else int(time.time()),
        "text": text,
    }
    found = entities if entities is not None else command_entities(text)
    if found:
        message["entities"] = found
    if thread_id is not None:
        message["message_thread_id"] = thread_id
        message["is_topic_message"] = True
        if reply_to_message is None:
            reply_to_message = topic_created_dict(chat, thread_id, f"Topic {thread_id}", 7322096)
    if reply_to_message is not None:
        message["reply_to_message"] = reply_to_message
    if extra:
        message.update(extra)
    return message


def message_update(
    chat_id: int,
    text: str,
    *,
    update_id: int | None = None,
    message_id: int | None = None,
    user_id: int | None = None,
    chat_type: str | None = None,
    language_code: str | None = DEFAULT_LANGUAGE,
    first_name: str | None = None,
    username: str | None = None,
    chat_title: str | None = None,
    chat_username: str | None = None,
    date: int | None = None,
    entities: list[JSONDict] | None = None,
    reply_to_message: JSONDict | None = None,
    edited: bool = False,
    thread_id: int | None = None,
    is_forum: bool = False,
) -> JSONDict:
    """An ``Update`` with ``message`` (or ``edited_message`` with ``edited=True``)."""
    message = message_dict(
        chat_id,
        text,
        message_id=message_id,
        user_id=user_id,
        chat_type=chat_type,
        language_code=language_code,
        first_name=first_name,
        username=username,
        chat_title=chat_title,
        chat_username=chat_username,
        date=date,
        entities=entities,
        reply_to_message=reply_to_message,
        thread_id=thread_id,
        is_forum=is_forum,
    )
    if edited:
        message["edit_date"] = message["date"]
    return {
        "update_id": update_id if update_id is not None else next_update_id(),
        "edited_message" if edited else "message": message,
    }


def callback_update(
    chat_id: int,
    message_id: int,
    data: str,
    *,
    update_id: int | None = None,
    user_id: int | None = None,
    chat_type: str | None = None,
    language_code: str | None = DEFAULT_LANGUAGE,
    first_name: str | None = None,
    username: str | None = None,
    query_id: str | None = None,
    message: JSONDict | None = None,
    message_text: str = "",
    reply_markup: JSONDict | None = None,
    bot_user: JSONDict | None = None,
) -> JSONDict:
    """An ``Update`` with a ``callback_query`` pressed on the bot's message ``message_id``.

    ``message`` (e.g. a message the server recorded) is used verbatim when given; otherwise a
    bot message with ``message_text`` and ``reply_markup`` is synthesised.
    """
    chat_type = chat_type or infer_chat_type(chat_id)
    if user_id is None:
        user_id = chat_id if chat_type == "private" else DEFAULT_GROUP_USER_ID
    if message is None:
        message = {
            "message_id": message_id,
            "from": bot_user or bot_user_dict(),
            "chat": chat_dict(chat_id, chat_type),
            "date": int(time.time()),
            "text": message_text,
        }
        if reply_markup:
            message["reply_markup"] = reply_markup
    return {
        "update_id": update_id if update_id is not None else next_update_id(),
        "callback_query": {
            "id": query_id or str(next(_query_ids)),
            "from": user_dict(
                user_id, first_name=first_name, username=username, language_code=language_code
            ),
            "message": message,
            "chat_instance": str(abs(hash((chat_id, "chat_instance"))) % 10**18),
            "data": data,
        },
    }


def inline_update(
    query: str,
    offset: str = "",
    *,
    update_id: int | None = None,
    user_id: int = DEFAULT_GROUP_USER_ID,
    language_code: str | None = DEFAULT_LANGUAGE,
    first_name: str | None = None,
    username: str | None = None,
    query_id: str | None = None,
    chat_type: str | None = "sender",
) -> JSONDict:
    """An ``Update`` with an ``inline_query`` (``chat_type``: sender/private/group/...)."""
    inline: JSONDict = {
        "id": query_id or str(next(_query_ids)),
        "from": user_dict(
            user_id, first_name=first_name, username=username, language_code=language_code
        ),
        "query": query,
        "offset": offset,
    }
    if chat_type:
        inline["chat_type"] = chat_type
    return {
        "update_id": update_id if update_id is not None else next_update_id(),
        "inline_query": inline,
    }


def chat_member_dict(user: JSONDict, status: str, **extra: Any) -> JSONDict:
    """A complete ``ChatMember`` variant for ``status``."""
    if status not in MEMBER_STATUSES:
        raise ValueError(f"unknown chat member status {status!r}")
    member: JSONDict = {"status": status, "user": user}
    if status == "creator":
        member["is_anonymous"] = False
    elif status == "administrator":
        member.update(
            can_be_edited=False,
            is_anonymous=False,
            can_manage_chat=True,
            can_delete_messages=True,
            can_manage_video_chats=True,
            can_restrict_members=True,
            can_promote_members=False,
            can_change_info=True,
            can_invite_users=True,
            can_post_stories=True,
            can_edit_stories=True,
            can_delete_stories=True,
            can_pin_messages=True,
        )
    elif status == "restricted":
        member.update(
            is_member=True,
            can_change_info=False,
            can_invite_users=False,
            can_pin_messages=False,
            can_send_messages=False,
            can_send_polls=False,
            can_send_other_messages=False,
            can_add_web_page_previews=False,
            can_manage_topics=False,
            until_date=0,
            can_send_audios=False,
            can_send_documents=False,
            can_send_photos=False,
            can_send_videos=False,
            can_send_video_notes=False,
            can_send_voice_notes=False,
            can_edit_tag=False,
        )
    elif status == "kicked":
        member["until_date"] = 0
    member.update(extra)
    return member


def my_chat_member_update(
    chat_id: int,
    chat_type: str | None = None,
    old_status: str = "left",
    new_status: str = "member",
    *,
    update_id: int | None = None,
    user_id: int | None = None,
    language_code: str | None = DEFAULT_LANGUAGE,
    bot_user: JSONDict | None = None,
    date: int | None = None,
    chat_title: str | None = None,
) -> JSONDict:
    """An ``Update`` with ``my_chat_member``: the bot's status in ``chat_id`` changed.

    Private chat: ``member``→``kicked`` is the user blocking the bot, ``kicked``→``member``
    unblocking it.  Groups: ``left``→``member`` is the bot being added.
    """
    chat_type = chat_type or infer_chat_type(chat_id)
    if user_id is None:
        user_id = chat_id if chat_type == "private" else DEFAULT_GROUP_USER_ID
    bot = bot_user or bot_user_dict()
    return {
        "update_id": update_id if update_id is not None else next_update_id(),
        "my_chat_member": {
            "chat": chat_dict(chat_id, chat_type, title=chat_title),
            "from": user_dict(user_id, language_code=language_code),
            "date": date if date is not None else int(time.time()),
            "old_chat_member": chat_member_dict(bot, old_status),
            "new_chat_member": chat_member_dict(bot, new_status),
        },
    }
