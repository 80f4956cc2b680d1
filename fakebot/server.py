"""An in-process fake of the Telegram Bot API, served over real HTTP on 127.0.0.1.

python-telegram-bot talks to it with ``Bot(token, base_url=f"{server.url}/bot")``.  The server
runs a :class:`http.server.ThreadingHTTPServer` (HTTP/1.1 keep-alive) in a daemon thread, so
it works from sync and async tests alike.  All state is guarded by one lock.

:class:`FakeBotAPI` is assembled from its parts: :mod:`fakebot.transport` (HTTP, lifecycle),
:mod:`fakebot.methods` (the Bot API methods), :mod:`fakebot.limits` (flood limits, faults),
:mod:`fakebot.state` (chats, messages, records) and :mod:`fakebot.validation` (checks and
Telegram's error strings).  This module adds the constructor, the records tests read and the
updates tests push.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Iterable
from typing import Any

from .limits import RateLimits
from .methods import BotMethods
from .state import Call, SentMessage, TelegramState, UploadedFile
from .transport import HTTPTransport
from .updates import (
    BOT_FIRST_NAME,
    BOT_USERNAME,
    DEFAULT_TOKEN,
    callback_update,
    chat_dict,
    inline_update,
    message_dict,
    my_chat_member_update,
    user_dict,
)
from .validation import ApiError

__all__ = ["ApiError", "Call", "FakeBotAPI", "RateLimits", "SentMessage", "UploadedFile"]

JSONDict = dict[str, Any]


class FakeBotAPI(HTTPTransport, BotMethods):
    """A fake Telegram Bot API server.

    Use as a context manager or call :meth:`start` / :meth:`stop`.  Point PTB at
    :attr:`base_url` (``Bot(token, base_url=server.base_url)``) or use :meth:`bot`.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = BOT_USERNAME,
        bot_first_name: str = BOT_FIRST_NAME,
        rate_limits: bool = True,
        rate_scale: float = 1.0,
        limits: RateLimits | None = None,
        error_rate_5xx: float = 0.0,
        drop_rate: float = 0.0,
        delay: float = 0.0,
        seed: int = 0,
        fault_methods: Iterable[str] | None = None,
        html_strict: bool = True,
        strict_chats: bool = False,
        strict_messages: bool = False,
        strict_queries: bool = False,
        fractional_retry_after: bool = False,
        max_poll_timeout: float = 50.0,
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.rate_limits = rate_limits
        self.rate_scale = rate_scale
        self.limits = limits or RateLimits()
        self.error_rate_5xx = error_rate_5xx
        self.drop_rate = drop_rate
        self.delay = delay
        self.fault_methods = None if fault_methods is None else {m.lower() for m in fault_methods}
        self.html_strict = html_strict
        self.strict_chats = strict_chats
        self.strict_messages = strict_messages
        self.strict_queries = strict_queries
        self.fractional_retry_after = fractional_retry_after
        self.max_poll_timeout = max_poll_timeout

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._rng = random.Random(seed)
        self._httpd = None
        self._thread = None
        self._connections = set()
        self._stopping = False

        self._state = TelegramState()
        self._calls = []
        self._sent = []
        self._deleted_log = []
        self._callback_answers = []
        self._inline_answers = []
        self._count_429 = 0
        self._chat_faults = {}
        self._injected = []
        self._buckets = {}
        self._global_bucket = None
        self._paid_bucket = None

        self._updates = []
        self._next_update_id = 1
        self._poll_generation = 0
        self._allowed_updates = None
        self._webhook = {}
        self._commands = {}
        self._bot_texts = {}
        self._menu_buttons = {}
        self._known_queries = set()
        self._answered_queries = set()

        self._methods = {}
        for name in dir(self):
            if name.startswith("_m_"):
                self._methods[name[3:].lower()] = getattr(self, name)

    # ------------------------------------------------------------------ configuration

    def add_chat(
        self,
        chat_id: int,
        chat_type: str | None = None,
        *,
        title: str | None = None,
        username: str | None = None,
        first_name: str | None = None,
        **extra: Any,
    ) -> JSONDict:
        """Register a chat (e.g. a channel or an ``@username`` chat); returns its Chat dict."""
        chat = chat_dict(chat_id, chat_type, title=title, username=username, first_name=first_name)
        chat.update(extra)
        with self._lock:
            self._state.chats[chat_id] = chat
        return dict(chat)

    def add_user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        **extra: Any,
    ) -> JSONDict:
        user = user_dict(
            user_id, first_name=first_name, username=username, language_code=language_code
        )
        user.update(extra)
        with self._lock:
            self._state.users[user_id] = user
        return dict(user)

    # ------------------------------------------------------------------ records

    @property
    def sent(self) -> list[SentMessage]:
        """Successful sends and edits, in order (a copy)."""
        with self._lock:
            return list(self._sent)

    @property
    def count_429(self) -> int:
        with self._lock:
            return self._count_429

    @property
    def deleted(self) -> list[tuple[int, int]]:
        """``(chat_id, message_id)`` of successful deleteMessage calls."""
        with self._lock:
            return list(self._deleted_log)

    @property
    def callback_answers(self) -> list[JSONDict]:
        with self._lock:
            return list(self._callback_answers)

    @property
    def inline_answers(self) -> list[JSONDict]:
        """Accepted answerInlineQuery params; ``parsed`` lists each result's id/type/text/entities."""
        with self._lock:
            return list(self._inline_answers)

    @property
    def webhook(self) -> JSONDict:
        with self._lock:
            return dict(self._webhook)

    @property
    def pending_updates(self) -> list[JSONDict]:
        with self._lock:
            return list(self._updates)

    def calls(self, method: str | None = None) -> list[Call]:
        """Every request (successful or not) in order, optionally of one method."""
        with self._lock:
            if method is None:
                return list(self._calls)
            key = method.lower()
            return [c for c in self._calls if c.method.lower() == key]

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        with self._lock:
            return [m for m in self._sent if m.chat_id == chat_id]

    def last_message(self, chat_id: int | None = None) -> SentMessage | None:
        with self._lock:
            for m in reversed(self._sent):
                if chat_id is None or m.chat_id == chat_id:
                    return m
        return None

    def message(self, chat_id: int, message_id: int) -> JSONDict | None:
        """The current state of a stored message (after edits), or None."""
        with self._lock:
            key = (chat_id, message_id)
            if key in self._state.deleted:
                return None
            found = self._state.messages.get(key)
            return None if found is None else dict(found)

    def commands(self, scope: JSONDict | None = None, language_code: str = "") -> list[JSONDict]:
        with self._lock:
            return list(self._commands.get((self._scope_key(scope), language_code), []))

    def clear(self) -> None:
        """Forget recorded calls, sent messages, answers and the 429 counter."""
        with self._lock:
            self._calls.clear()
            self._sent.clear()
            self._deleted_log.clear()
            self._callback_answers.clear()
            self._inline_answers.clear()
            self._count_429 = 0

    def wait_sent(
        self, count: int = 1, chat_id: int | None = None, timeout: float = 5.0
    ) -> list[SentMessage]:
        """Block until at least ``count`` messages were sent (to ``chat_id``); sync code only."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self._sent if chat_id is None or m.chat_id == chat_id]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"expected {count} sent messages, got {len(found)}")
                self._cond.wait(remaining)

    async def wait_sent_async(
        self, count: int = 1, chat_id: int | None = None, timeout: float = 5.0
    ) -> list[SentMessage]:
        """Like :meth:`wait_sent` without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.sent if chat_id is None or m.chat_id == chat_id]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} sent messages, got {len(found)}")
            await asyncio.sleep(0.01)

    async def wait_calls_async(
        self, method: str, count: int = 1, timeout: float = 5.0
    ) -> list[Call]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.calls(method)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} {method} calls, got {len(found)}")
            await asyncio.sleep(0.01)

    # ------------------------------------------------------------------ updates

    def push_update(self, update: JSONDict) -> JSONDict:
        """Queue an update for getUpdates; assigns the next ``update_id``. Returns the update."""
        update = json.loads(json.dumps(update))
        with self._cond:
            update["update_id"] = self._next_update_id
            self._next_update_id += 1
            self._register_update(update)
            self._updates.append(update)
            self._cond.notify_all()
        return update

    def push_message(self, chat_id: int, text: str, **kwargs: Any) -> JSONDict:
        """Queue a user's message (message_id allocated in the chat); kwargs: message_dict()."""
        chat_type = kwargs.pop("chat_type", None) or self._chat_type(chat_id)
        message_id = kwargs.pop("message_id", None) or self._allocate_message_id(chat_id)
        message = message_dict(chat_id, text, message_id=message_id, chat_type=chat_type, **kwargs)
        with self._lock:
            known = self._state.chats.get(chat_id)
        if known is not None:
            message["chat"] = dict(known)
        return self.push_update({"update_id": 0, "message": message})

    def push_callback(self, chat_id: int, message_id: int, data: str, **kwargs: Any) -> JSONDict:
        """Queue a button press on a (recorded) message; kwargs: callback_update()."""
        if "message" not in kwargs:
            stored = self.message(chat_id, message_id)
            if stored is not None:
                kwargs["message"] = stored
        kwargs.setdefault("chat_type", self._chat_type(chat_id))
        kwargs.setdefault("bot_user", self.bot_user)
        return self.push_update(callback_update(chat_id, message_id, data, **kwargs))

    def push_inline(self, query: str, offset: str = "", **kwargs: Any) -> JSONDict:
        return self.push_update(inline_update(query, offset, **kwargs))

    def push_my_chat_member(
        self,
        chat_id: int,
        old_status: str,
        new_status: str,
        *,
        chat_type: str | None = None,
        **kwargs: Any,
    ) -> JSONDict:
        """Queue a ``my_chat_member`` update and apply it: kicked/left blocks sends to the chat,
        member/administrator/creator lifts that."""
        chat_type = chat_type or self._chat_type(chat_id)
        kwargs.setdefault("bot_user", self.bot_user)
        update = my_chat_member_update(chat_id, chat_type, old_status, new_status, **kwargs)
        if new_status in ("kicked", "left"):
            if chat_type == "private":
                self.block(chat_id)
            elif new_status == "kicked":
                self.set_chat_fault(
                    chat_id, 403, f"Forbidden: bot was kicked from the {chat_type} chat"
                )
            else:
                self.set_chat_fault(
                    chat_id, 403, f"Forbidden: bot is not a member of the {chat_type} chat"
                )
        else:
            self.unblock(chat_id)
        self.set_member(chat_id, self.bot_id, new_status)
        return self.push_update(update)
