"""The simulated Telegram side: chats, users, members, messages, and what the bot did.

The records (:class:`Call`, :class:`SentMessage`, :class:`UploadedFile`) are what tests read;
:class:`SimulatedTelegram` is the base of :class:`~fakebot.server.FakeBotAPI` that owns the lock
and the chat/message store and resolves chats, users and stored messages.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .updates import bot_user_dict, chat_dict, chat_member_dict, infer_chat_type, user_dict
from .validation import bad, param_bool, param_int

__all__ = ["Call", "SentMessage", "SimulatedTelegram", "TelegramState", "UploadedFile"]

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class UploadedFile:
    """A multipart file part."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Call:
    """One HTTP request: method, decoded params and what was answered (``None`` = dropped)."""

    method: str
    params: JSONDict
    status: int | None
    response: JSONDict | None
    time: float

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def result(self) -> Any:
        return None if self.response is None else self.response.get("result")

    @property
    def description(self) -> str | None:
        return None if self.response is None else self.response.get("description")


@dataclass(frozen=True)
class SentMessage:
    """A message the bot successfully sent or edited."""

    method: str
    chat_id: int | None
    message_id: int | None
    params: JSONDict
    text: str
    entities: list[JSONDict]
    reply_markup: JSONDict | None
    message: JSONDict | None  # the Message answered (None for inline-message edits)
    inline_message_id: str | None = None

    @property
    def thread_id(self) -> int | None:
        """The forum topic it went to (``message_thread_id``); None: no topic."""
        thread = self.message.get("message_thread_id") if self.message else None
        return int(thread) if thread is not None else None

    @property
    def edited(self) -> bool:
        return self.method.lower().startswith("edit")

    @property
    def buttons(self) -> list[JSONDict]:
        """All inline keyboard buttons, row by row."""
        if not self.reply_markup:
            return []
        return [b for row in self.reply_markup.get("inline_keyboard", []) for b in row]

    @property
    def callback_data(self) -> list[str]:
        return [b["callback_data"] for b in self.buttons if "callback_data" in b]

    def entities_of(self, entity_type: str) -> list[str]:
        """The texts covered by entities of ``entity_type`` (UTF-16 aware)."""
        encoded = self.text.encode("utf-16-le")
        return [
            encoded[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le")
            for e in self.entities
            if e["type"] == entity_type
        ]


@dataclass
class TelegramState:
    chats: dict[int, JSONDict] = field(default_factory=dict)
    users: dict[int, JSONDict] = field(default_factory=dict)
    members: dict[tuple[int, int], JSONDict] = field(default_factory=dict)
    messages: dict[tuple[int, int], JSONDict] = field(default_factory=dict)
    deleted: set[tuple[int, int]] = field(default_factory=set)
    next_message_id: dict[int, int] = field(default_factory=dict)
    photos: dict[str, JSONDict] = field(default_factory=dict)  # file_id -> PhotoSize sent
    # (chat, message_thread_id) -> ForumTopic fields and "status": open / closed / deleted
    topics: dict[tuple[int, int], JSONDict] = field(default_factory=dict)
    general_closed: set[int] = field(default_factory=set)  # forums whose General is closed


class SimulatedTelegram:
    """Chats, users, messages, updates and records, all guarded by one lock.

    ``FakeBotAPI.__init__`` sets every attribute declared here.
    """

    token: str
    bot_id: int
    bot_username: str
    bot_first_name: str
    strict_chats: bool
    strict_messages: bool

    _lock: threading.RLock
    _cond: threading.Condition
    _stopping: bool
    _state: TelegramState
    _calls: list[Call]
    _sent: list[SentMessage]
    _deleted_log: list[tuple[int, int]]
    _callback_answers: list[JSONDict]
    _inline_answers: list[JSONDict]
    _count_429: int

    _updates: list[JSONDict]
    _next_update_id: int
    _poll_generation: int
    _allowed_updates: list[str] | None
    _webhook: JSONDict
    _commands: dict[tuple[str, str], list[JSONDict]]
    _bot_texts: dict[tuple[str, str], str]
    _menu_buttons: dict[int | None, JSONDict]
    _known_queries: set[str]
    _answered_queries: set[str]

    _methods: dict[str, Callable[[JSONDict], Any]]

    @property
    def bot_user(self) -> JSONDict:
        return bot_user_dict(self.bot_id, self.bot_username, self.bot_first_name)

    def set_member(self, chat_id: int, user_id: int, status: str, **fields: Any) -> None:
        """Configure ``getChatMember(chat_id, user_id)`` (default status: ``member``)."""
        user = self._user(user_id)
        member = chat_member_dict(user, status, **fields)
        with self._lock:
            self._state.members[(chat_id, user_id)] = member

    # ------------------------------------------------------------------ lookups

    def _user(self, user_id: int) -> JSONDict:
        with self._lock:
            known = self._state.users.get(user_id)
        if known is not None:
            return dict(known)
        if user_id == self.bot_id:
            return self.bot_user
        return user_dict(user_id, language_code=None)

    def _chat_type(self, chat_id: int) -> str:
        with self._lock:
            known = self._state.chats.get(chat_id)
        return str(known["type"]) if known else infer_chat_type(chat_id)

    def _lookup_chat(self, raw: Any) -> JSONDict:
        """Resolve ``chat_id`` (int or ``@username``) to a Chat dict, or 400 chat not found."""
        if raw is None or raw == "":
            raise bad("chat_id is empty")
        with self._lock:
            if isinstance(raw, str) and raw.startswith("@"):
                name = raw[1:].lower()
                for chat in self._state.chats.values():
                    if str(chat.get("username", "")).lower() == name:
                        return dict(chat)
                raise bad("chat not found")
            try:
                chat_id = int(raw)
            except (TypeError, ValueError):
                raise bad("chat not found") from None
            known = self._state.chats.get(chat_id)
            if known is not None:
                return dict(known)
            if chat_id == 0 or self.strict_chats:
                raise bad("chat not found")
            return chat_dict(chat_id)

    def _stored_message(self, chat: JSONDict, message_id: int, *, missing: str) -> JSONDict:
        key = (chat["id"], message_id)
        with self._lock:
            if key in self._state.deleted:
                raise bad(missing)
            existing = self._state.messages.get(key)
        if existing is None:
            if self.strict_messages:
                raise bad(missing)
            # Lenient: treat as a bot message we never saw (content unknown).
            return {
                "message_id": message_id,
                "from": self.bot_user,
                "chat": chat,
                "date": int(time.time()),
                "text": "",
                "_unknown": True,
            }
        copied: JSONDict = json.loads(json.dumps(existing))
        return copied

    def _reply_target(self, chat: JSONDict, params: JSONDict) -> JSONDict | None:
        reply = params.get("reply_parameters")
        message_id: int | None
        allow_missing = param_bool(params, "allow_sending_without_reply")
        if isinstance(reply, dict):
            message_id = int(reply["message_id"]) if reply.get("message_id") else None
            allow_missing = allow_missing or bool(reply.get("allow_sending_without_reply"))
        else:
            message_id = param_int(params, "reply_to_message_id")
        if message_id is None:
            return None
        key = (chat["id"], message_id)
        with self._lock:
            found = self._state.messages.get(key)
            deleted = key in self._state.deleted
        if found is None or deleted:
            if allow_missing or (found is None and not deleted and not self.strict_messages):
                return None
            raise bad("message to be replied not found")
        reply_copy = dict(found)
        reply_copy.pop("reply_to_message", None)
        return reply_copy

    # ------------------------------------------------------------------ changes

    def _register_update(self, update: JSONDict) -> None:
        for kind in ("callback_query", "inline_query"):
            if kind in update:
                self._known_queries.add(str(update[kind]["id"]))
        for kind in ("message", "edited_message", "channel_post"):
            message = update.get(kind)
            if isinstance(message, dict) and "chat" in message:
                chat = message["chat"]
                self._state.chats.setdefault(chat["id"], dict(chat))
                key = (chat["id"], message["message_id"])
                self._state.messages[key] = message
                counter = self._state.next_message_id.get(chat["id"], 1)
                if message["message_id"] >= counter and message["message_id"] < 1_000_000:
                    self._state.next_message_id[chat["id"]] = message["message_id"] + 1
        member = update.get("my_chat_member")
        if isinstance(member, dict):
            chat = member["chat"]
            self._state.chats.setdefault(chat["id"], dict(chat))

    def _store_edit(
        self, method: str, chat: JSONDict, message: JSONDict, params: JSONDict
    ) -> JSONDict:
        message.pop("_unknown", None)
        with self._lock:
            self._state.messages[(chat["id"], message["message_id"])] = message
        self._record_sent(
            SentMessage(
                method,
                chat["id"],
                message["message_id"],
                params,
                str(message.get("text", "")),
                list(message.get("entities", [])),
                message.get("reply_markup"),
                message,
            )
        )
        return message

    def _allocate_message_id(self, chat_id: int) -> int:
        with self._lock:
            message_id = self._state.next_message_id.get(chat_id, 1)
            self._state.next_message_id[chat_id] = message_id + 1
            return message_id

    def _record(self, call: Call) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    def _record_sent(self, sent: SentMessage) -> None:
        with self._cond:
            self._sent.append(sent)
            self._cond.notify_all()
