"""An in-process fake of the Telegram Bot API, served over real HTTP on 127.0.0.1.

python-telegram-bot talks to it with ``Bot(token, base_url=f"{server.url}/bot")``.  The server
runs a :class:`http.server.ThreadingHTTPServer` (HTTP/1.1 keep-alive) in a daemon thread, so
it works from sync and async tests alike.  All state is guarded by one lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import json
import math
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from .html import EntityParseError, normalize_entities, parse_html, trim_text, utf16_len
from .markdown import parse_markdown, parse_markdown_v2
from .updates import (
    BOT_FIRST_NAME,
    BOT_USERNAME,
    DEFAULT_TOKEN,
    bot_user_dict,
    callback_update,
    chat_dict,
    chat_member_dict,
    infer_chat_type,
    inline_update,
    message_dict,
    my_chat_member_update,
    user_dict,
)

if TYPE_CHECKING:
    from telegram import Bot

__all__ = ["ApiError", "Call", "FakeBotAPI", "RateLimits", "SentMessage", "UploadedFile"]

JSONDict = dict[str, Any]

MAX_TEXT = 4096
MAX_CALLBACK_TEXT = 200
MAX_INLINE_RESULTS = 50

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"

# Parameters PTB sends JSON-encoded inside form fields.
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "link_preview_options",
        "commands",
        "scope",
        "results",
        "button",
        "allowed_updates",
        "reply_parameters",
        "media",
        "options",
        "permissions",
        "explanation_entities",
        "message_ids",
        "reaction",
        "menu_button",
        "rights",
    }
)
INLINE_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
INLINE_RESULT_TYPES = frozenset(
    {
        "article",
        "photo",
        "gif",
        "mpeg4_gif",
        "video",
        "audio",
        "voice",
        "document",
        "location",
        "venue",
        "contact",
        "game",
        "sticker",
    }
)
SCOPE_TYPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
# Update types delivered when allowed_updates was never specified (Telegram's default).
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Lower-cased names of methods that deliver/modify messages in a chat: subject to chat faults.
SEND_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendaudio",
        "sendvideo",
        "sendanimation",
        "sendvoice",
        "sendvideonote",
        "sendmediagroup",
        "sendlocation",
        "sendvenue",
        "sendcontact",
        "sendpoll",
        "senddice",
        "sendsticker",
        "sendchataction",
        "copymessage",
        "forwardmessage",
        "editmessagetext",
        "editmessagereplymarkup",
        "editmessagecaption",
        "editmessagemedia",
        "deletemessage",
        "pinchatmessage",
    }
)
# Methods counted by the flood limits.
RATE_LIMITED_METHODS = frozenset(
    SEND_METHODS - {"sendchataction", "deletemessage", "pinchatmessage"}
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_LANG_RE = re.compile(r"^[a-z]{2}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_PATH_RE = re.compile(r"^/bot([^/]*)/([A-Za-z0-9_]+)/?$")


class ApiError(Exception):
    """An error answer: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(self, code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


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


@dataclass(frozen=True)
class RateLimits:
    """Telegram's flood limits (token buckets: a rate and a burst capacity)."""

    private_per_second: float = 1.0
    private_burst: int = 3
    group_per_minute: float = 20.0
    group_burst: int = 20
    global_per_second: float = 30.0
    global_burst: int = 30
    paid_per_second: float = 1000.0
    paid_burst: int = 1000


@dataclass
class _Bucket:
    tokens: float
    last: float

    def wait(self, now: float, rate: float, capacity: float) -> float:
        self.tokens = min(capacity, self.tokens + (now - self.last) * rate)
        self.last = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / rate


@dataclass
class _ChatFault:
    code: int
    description: str
    parameters: JSONDict | None = None
    send_only: bool = True


@dataclass
class _Injected:
    method: str | None
    error: ApiError | None  # None = drop the connection
    times: int


@dataclass
class _State:
    chats: dict[int, JSONDict] = field(default_factory=dict)
    users: dict[int, JSONDict] = field(default_factory=dict)
    members: dict[tuple[int, int], JSONDict] = field(default_factory=dict)
    messages: dict[tuple[int, int], JSONDict] = field(default_factory=dict)
    deleted: set[tuple[int, int]] = field(default_factory=set)
    next_message_id: dict[int, int] = field(default_factory=dict)


def _json_default(value: Any) -> Any:
    if isinstance(value, UploadedFile):
        return {"filename": value.filename, "size": len(value.data)}
    raise TypeError(type(value).__name__)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.api._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.api._track(self.connection, add=False)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        answer = self.server.api._handle(
            self.command, self.path, self.headers.get("Content-Type", ""), body
        )
        if answer is None:  # dropped: no response, close the connection
            self.close_connection = True
            return
        status, payload = answer
        data = json.dumps(payload, ensure_ascii=False, default=_json_default).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = _dispatch
    do_GET = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128  # a burst of new connections must not overflow the backlog

    def __init__(self, address: tuple[str, int], api: FakeBotAPI) -> None:
        self.api = api
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients going away mid-request (closed pools, cancelled long polls) are normal.
        pass


class FakeBotAPI:
    """A fake Telegram Bot API server.

    Use as a context manager or call :meth:`start` / :meth:`stop`.  Point PTB at
    :attr:`base_url` (``Bot(token, base_url=server.base_url)``) or use :meth:`bot`.
    """

    FAULT_EXEMPT: ClassVar[frozenset[str]] = frozenset({"getupdates", "getme"})

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
        self.fault_methods: set[str] | None = (
            None if fault_methods is None else {m.lower() for m in fault_methods}
        )
        self.html_strict = html_strict
        self.strict_chats = strict_chats
        self.strict_messages = strict_messages
        self.strict_queries = strict_queries
        self.fractional_retry_after = fractional_retry_after
        self.max_poll_timeout = max_poll_timeout

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._rng = random.Random(seed)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._stopping = False

        self._state = _State()
        self._calls: list[Call] = []
        self._sent: list[SentMessage] = []
        self._deleted_log: list[tuple[int, int]] = []
        self._callback_answers: list[JSONDict] = []
        self._inline_answers: list[JSONDict] = []
        self._count_429 = 0
        self._chat_faults: dict[int, _ChatFault] = {}
        self._injected: list[_Injected] = []
        self._buckets: dict[int, _Bucket] = {}
        self._global_bucket: _Bucket | None = None
        self._paid_bucket: _Bucket | None = None

        self._updates: list[JSONDict] = []
        self._next_update_id = 1
        self._poll_generation = 0
        self._allowed_updates: list[str] | None = None
        self._webhook: JSONDict = {}
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._bot_texts: dict[tuple[str, str], str] = {}
        self._menu_buttons: dict[int | None, JSONDict] = {}
        self._known_queries: set[str] = set()
        self._answered_queries: set[str] = set()

        self._methods: dict[str, Callable[[JSONDict], Any]] = {}
        for name in dir(self):
            if name.startswith("_m_"):
                self._methods[name[3:].lower()] = getattr(self, name)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeBotAPI:
        """Bind (an ephemeral port unless ``port`` was given) and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopping = False
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeBotAPI:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake long polls and close open keep-alive connections."""
        httpd = self._httpd
        if httpd is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeBotAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeBotAPI:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as PTB's ``base_url`` (PTB appends the token)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    def bot(self, **kwargs: Any) -> Bot:
        """A ``telegram.Bot`` pointed at this server."""
        from telegram import Bot

        return Bot(self.token, base_url=self.base_url, base_file_url=self.base_file_url, **kwargs)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # ------------------------------------------------------------------ configuration

    @property
    def bot_user(self) -> JSONDict:
        return bot_user_dict(self.bot_id, self.bot_username, self.bot_first_name)

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

    def set_member(self, chat_id: int, user_id: int, status: str, **fields: Any) -> None:
        """Configure ``getChatMember(chat_id, user_id)`` (default status: ``member``)."""
        user = self._user(user_id)
        member = chat_member_dict(user, status, **fields)
        with self._lock:
            self._state.members[(chat_id, user_id)] = member

    def block(self, chat_id: int) -> None:
        """The user blocked the bot / the bot was kicked from the group: sends answer 403."""
        chat_type = self._chat_type(chat_id)
        if chat_type == "private":
            description = "Forbidden: bot was blocked by the user"
        else:
            description = f"Forbidden: bot was kicked from the {chat_type} chat"
        self.set_chat_fault(chat_id, 403, description)

    def deactivate(self, chat_id: int) -> None:
        self.set_chat_fault(chat_id, 403, "Forbidden: user is deactivated")

    def missing(self, chat_id: int) -> None:
        """Every method naming this chat answers 400 ``chat not found``."""
        self.set_chat_fault(chat_id, 400, "Bad Request: chat not found", send_only=False)

    def migrate(self, old_chat_id: int, new_chat_id: int) -> None:
        """The group was upgraded: 400 with ``parameters.migrate_to_chat_id``."""
        self.set_chat_fault(
            old_chat_id,
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            {"migrate_to_chat_id": new_chat_id},
            send_only=False,
        )
        with self._lock:
            if new_chat_id not in self._state.chats:
                self._state.chats[new_chat_id] = chat_dict(new_chat_id, "supergroup")

    def set_chat_fault(
        self,
        chat_id: int,
        code: int,
        description: str,
        parameters: JSONDict | None = None,
        *,
        send_only: bool = True,
    ) -> None:
        """Any custom per-chat error; ``send_only`` limits it to sending/editing methods."""
        with self._lock:
            self._chat_faults[chat_id] = _ChatFault(code, description, parameters, send_only)

    def unblock(self, chat_id: int) -> None:
        """Remove any fault configured for ``chat_id``."""
        with self._lock:
            self._chat_faults.pop(chat_id, None)

    clear_fault = unblock

    def fail_next(
        self,
        method: str | None = None,
        code: int = 500,
        description: str = "Internal Server Error",
        parameters: JSONDict | None = None,
        *,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (any method if None) with an error."""
        with self._lock:
            self._injected.append(
                _Injected(
                    method.lower() if method else None,
                    ApiError(code, description, parameters),
                    times,
                )
            )

    def drop_next(self, method: str | None = None, *, times: int = 1) -> None:
        """Drop the connection for the next ``times`` calls of ``method`` (any if None)."""
        with self._lock:
            self._injected.append(_Injected(method.lower() if method else None, None, times))

    def reset_faults(self) -> None:
        with self._lock:
            self._chat_faults.clear()
            self._injected.clear()
            self.error_rate_5xx = 0.0
            self.drop_rate = 0.0
            self.delay = 0.0

    def reset_rate_limits(self) -> None:
        """Refill every flood-limit bucket."""
        with self._lock:
            self._buckets.clear()
            self._global_bucket = None
            self._paid_bucket = None

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

    def _allocate_message_id(self, chat_id: int) -> int:
        with self._lock:
            message_id = self._state.next_message_id.get(chat_id, 1)
            self._state.next_message_id[chat_id] = message_id + 1
            return message_id

    # ------------------------------------------------------------------ HTTP entry point

    def _handle(
        self, verb: str, raw_path: str, content_type: str, body: bytes
    ) -> tuple[int, JSONDict] | None:
        parts = urlsplit(raw_path)
        match = _PATH_RE.match(parts.path)
        if match is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        token, method = match.groups()
        if token != self.token:
            payload = {"ok": False, "error_code": 401, "description": "Unauthorized"}
            self._record(Call(method, {}, 401, payload, time.time()))
            return 401, payload
        try:
            params = self._decode_params(parts.query, content_type, body)
        except ValueError as exc:
            error = _bad(f"can't parse request: {exc}")
            self._record(Call(method, {}, error.code, error.payload(), time.time()))
            return error.code, error.payload()
        key = method.lower()
        handler = self._methods.get(key)

        injected, drop = self._pick_fault(key)
        if drop:
            self._record(Call(method, params, None, None, time.time()))
            return None
        delay = self.delay
        if delay > 0 and injected is None and handler is not None and self._faults_apply(key):
            time.sleep(delay)
        if injected is not None:
            status, payload = injected.code, injected.payload()
        elif handler is None:
            status, payload = 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        else:
            try:
                result = handler(params)
                status, payload = 200, {"ok": True, "result": result}
            except ApiError as exc:
                status, payload = exc.code, exc.payload()
                if exc.code == 429:
                    with self._lock:
                        self._count_429 += 1
        self._record(Call(method, params, status, payload, time.time()))
        return status, payload

    def _faults_apply(self, key: str) -> bool:
        if self.fault_methods is not None:
            return key in self.fault_methods
        return key not in self.FAULT_EXEMPT

    def _pick_fault(self, key: str) -> tuple[ApiError | None, bool]:
        with self._lock:
            for injected in self._injected:
                if injected.method is None or injected.method == key:
                    injected.times -= 1
                    if injected.times <= 0:
                        self._injected.remove(injected)
                    return injected.error, injected.error is None
            if not self._faults_apply(key):
                return None, False
            if self.drop_rate > 0 and self._rng.random() < self.drop_rate:
                return None, True
            if self.error_rate_5xx > 0 and self._rng.random() < self.error_rate_5xx:
                if self._rng.random() < 0.5:
                    return ApiError(500, "Internal Server Error"), False
                return ApiError(502, "Bad Gateway"), False
        return None, False

    def _record(self, call: Call) -> None:
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()

    @staticmethod
    def _decode_params(query: str, content_type: str, body: bytes) -> JSONDict:
        params: JSONDict = dict(parse_qsl(query, keep_blank_values=True))
        ctype = content_type.split(";")[0].strip().lower()
        if body:
            if ctype == "application/json":
                data = json.loads(body.decode("utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("JSON body must be an object")
                params.update(data)
            elif ctype == "multipart/form-data":
                message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                    b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
                )
                for part in message.iter_parts():
                    name = str(part.get_param("name", header="content-disposition") or "")
                    payload = part.get_payload(decode=True)
                    data = payload if isinstance(payload, bytes) else b""
                    filename = part.get_filename()
                    if filename is not None:
                        params[name] = UploadedFile(filename, part.get_content_type(), data)
                    else:
                        params[name] = data.decode("utf-8")
            else:
                params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        for name in JSON_FIELDS & params.keys():
            value = params[name]
            if isinstance(value, str):
                try:
                    params[name] = json.loads(value)
                except ValueError:
                    params[name] = _Unparsable(value)
        return params

    # ------------------------------------------------------------------ parameter helpers

    @staticmethod
    def _int(params: JSONDict, name: str, *, required: bool = False) -> int | None:
        value = params.get(name)
        if value is None or value == "":
            if required:
                raise _bad(f"{name} is empty")
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _bad(f"invalid {name} specified") from None

    @staticmethod
    def _bool(params: JSONDict, name: str) -> bool:
        value = params.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    @staticmethod
    def _str(params: JSONDict, name: str) -> str | None:
        value = params.get(name)
        return None if value is None else str(value)

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
            raise _bad("chat_id is empty")
        with self._lock:
            if isinstance(raw, str) and raw.startswith("@"):
                name = raw[1:].lower()
                for chat in self._state.chats.values():
                    if str(chat.get("username", "")).lower() == name:
                        return dict(chat)
                raise _bad("chat not found")
            try:
                chat_id = int(raw)
            except (TypeError, ValueError):
                raise _bad("chat not found") from None
            known = self._state.chats.get(chat_id)
            if known is not None:
                return dict(known)
            if chat_id == 0 or self.strict_chats:
                raise _bad("chat not found")
            return chat_dict(chat_id)

    def _target_chat(self, params: JSONDict, method: str, name: str = "chat_id") -> JSONDict:
        chat = self._lookup_chat(params.get(name))
        with self._lock:
            fault = self._chat_faults.get(chat["id"])
        if fault is not None and (not fault.send_only or method.lower() in SEND_METHODS):
            raise ApiError(fault.code, fault.description, fault.parameters)
        return chat

    # ------------------------------------------------------------------ validation

    def _parse_text(
        self,
        text: Any,
        parse_mode: Any,
        entities: Any,
        *,
        too_long: str = "message is too long",
        empty: str = "message text is empty",
        limit: int = MAX_TEXT,
    ) -> tuple[str, list[JSONDict]]:
        if text is None:
            raise _bad(empty)
        text = str(text)
        if entities not in (None, "", []):
            if isinstance(entities, _Unparsable) or not isinstance(entities, list):
                raise _bad("can't parse entities JSON object")
            plain, found = text, [dict(e) for e in entities if isinstance(e, dict)]
            for entity in found:
                if not {"type", "offset", "length"} <= entity.keys():
                    raise _bad('can\'t parse MessageEntity: field "type" is missing')
        elif parse_mode in (None, ""):
            plain, found = text, []
        else:
            mode = str(parse_mode).lower()
            try:
                if mode == "html":
                    plain, found = parse_html(text, strict=self.html_strict)
                elif mode == "markdownv2":
                    plain, found = parse_markdown_v2(text)
                elif mode == "markdown":
                    plain, found = parse_markdown(text)
                else:
                    raise _bad(f'unsupported parse_mode "{parse_mode}"')
            except EntityParseError as exc:
                raise _bad(f"can't parse entities: {exc}") from None
        plain, found = trim_text(plain, found)
        size = utf16_len(plain)
        if size == 0:
            raise _bad(empty)
        if size > limit:
            raise _bad(too_long)
        return plain, normalize_entities(found)

    def _validate_markup(self, raw: Any, *, inline_only: bool) -> JSONDict | None:
        """Validate reply_markup; returns the inline keyboard to echo (None if none)."""
        if raw is None or raw == "":
            return None
        if isinstance(raw, _Unparsable) or not isinstance(raw, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in raw:
            if inline_only:
                raise _bad("inline keyboard expected")
            if "keyboard" in raw:
                rows = raw["keyboard"]
                if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                    raise _bad(
                        'field "keyboard" of the ReplyKeyboardMarkup should be an Array of Arrays'
                    )
                for row in rows:
                    for button in row:
                        text = button.get("text") if isinstance(button, dict) else button
                        if not isinstance(text, str) or not text:
                            raise _bad("can't parse keyboard button: text must be non-empty")
                return None
            if raw.get("remove_keyboard") or raw.get("force_reply"):
                return None
            raise _bad("can't parse reply keyboard markup JSON object")
        rows = raw["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _bad(
                'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'
            )
        total = 0
        for row in rows:
            for button in row:
                self._validate_button(button)
                total += 1
        if total > 100:
            raise _bad("reply markup is too long")
        return raw if total else None

    @staticmethod
    def _validate_button(button: Any) -> None:
        prefix = "can't parse inline keyboard button: "
        if not isinstance(button, dict):
            raise _bad(prefix + "InlineKeyboardButton must be an Object")
        text = button.get("text")
        if not isinstance(text, str):
            raise _bad(prefix + 'Field "text" must be of type String')
        if not text.strip():
            raise _bad("BUTTON_TEXT_INVALID")
        actions = [a for a in INLINE_BUTTON_ACTIONS if a in button]
        if not actions:
            raise _bad(prefix + "Text buttons are unallowed in the inline keyboard")
        if len(actions) > 1:
            raise _bad(prefix + "exactly one of the optional fields must be used")
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
                raise _bad("BUTTON_DATA_INVALID")
        if "url" in button:
            url = button["url"]
            if not isinstance(url, str) or not re.match(r"^(https?|tg)://\S+$", url):
                raise _bad("BUTTON_URL_INVALID")

    def _check_rate(self, chat: JSONDict, method: str, *, paid: bool) -> None:
        if not self.rate_limits or method.lower() not in RATE_LIMITED_METHODS:
            return
        limits, scale = self.limits, self.rate_scale
        now = time.monotonic()
        with self._lock:
            if chat["type"] == "private":
                rate, capacity = limits.private_per_second * scale, float(limits.private_burst)
            else:
                rate, capacity = limits.group_per_minute / 60.0 * scale, float(limits.group_burst)
            bucket = self._buckets.setdefault(chat["id"], _Bucket(capacity, now))
            if paid:
                g_rate, g_capacity = limits.paid_per_second * scale, float(limits.paid_burst)
                if self._paid_bucket is None:
                    self._paid_bucket = _Bucket(g_capacity, now)
                global_bucket = self._paid_bucket
            else:
                g_rate, g_capacity = limits.global_per_second * scale, float(limits.global_burst)
                if self._global_bucket is None:
                    self._global_bucket = _Bucket(g_capacity, now)
                global_bucket = self._global_bucket
            wait = max(
                bucket.wait(now, rate, capacity), global_bucket.wait(now, g_rate, g_capacity)
            )
            if wait > 0:
                retry: float | int
                if self.fractional_retry_after:
                    retry = max(round(wait, 3), 0.001)
                else:
                    retry = max(1, math.ceil(wait))
                raise ApiError(
                    429, f"Too Many Requests: retry after {retry}", {"retry_after": retry}
                )
            bucket.tokens -= 1.0
            global_bucket.tokens -= 1.0

    def _record_sent(self, sent: SentMessage) -> None:
        with self._cond:
            self._sent.append(sent)
            self._cond.notify_all()

    def _stored_message(self, chat: JSONDict, message_id: int, *, missing: str) -> JSONDict:
        key = (chat["id"], message_id)
        with self._lock:
            if key in self._state.deleted:
                raise _bad(missing)
            existing = self._state.messages.get(key)
        if existing is None:
            if self.strict_messages:
                raise _bad(missing)
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

    # ------------------------------------------------------------------ Bot API methods

    def _m_getMe(self, params: JSONDict) -> JSONDict:
        return bot_user_dict(self.bot_id, self.bot_username, self.bot_first_name, full=True)

    def _m_logOut(self, params: JSONDict) -> bool:
        return True

    def _m_close(self, params: JSONDict) -> bool:
        return True

    def _m_getUpdates(self, params: JSONDict) -> list[JSONDict]:
        offset = self._int(params, "offset") or 0
        limit = self._int(params, "limit") or 100
        limit = min(max(limit, 1), 100)
        timeout = float(params.get("timeout") or 0)
        timeout = min(max(timeout, 0.0), self.max_poll_timeout)
        allowed = params.get("allowed_updates")
        with self._cond:
            if self._webhook.get("url"):
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if isinstance(allowed, list):
                self._allowed_updates = [str(a) for a in allowed] or None
            self._poll_generation += 1
            generation = self._poll_generation
            self._cond.notify_all()
            if offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif offset < 0:
                self._updates = self._updates[offset:]
            deadline = time.monotonic() + timeout
            while True:
                if generation != self._poll_generation:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
                self._updates = [u for u in self._updates if self._update_allowed(u)]
                if self._updates or self._stopping:
                    return [dict(u) for u in self._updates[:limit]]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(remaining)

    def _update_allowed(self, update: JSONDict) -> bool:
        kinds = set(update) - {"update_id"}
        if self._allowed_updates is None:
            return not kinds <= DEFAULT_EXCLUDED_UPDATES
        return bool(kinds & set(self._allowed_updates))

    def _m_setWebhook(self, params: JSONDict) -> bool:
        url = self._str(params, "url") or ""
        if not url:
            return self._m_deleteWebhook(params)
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        if parts.port not in (None, 80, 88, 443, 8443):
            raise _bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = self._str(params, "secret_token")
        if secret is not None and not _SECRET_RE.match(secret):
            raise _bad("bad webhook: secret token contains unallowed characters")
        with self._cond:
            self._webhook = {
                "url": url,
                "secret_token": secret,
                "max_connections": self._int(params, "max_connections") or 40,
                "allowed_updates": params.get("allowed_updates"),
                "ip_address": params.get("ip_address"),
            }
            if self._bool(params, "drop_pending_updates"):
                self._updates.clear()
            self._poll_generation += 1
            self._cond.notify_all()
        return True

    def _m_deleteWebhook(self, params: JSONDict) -> bool:
        with self._lock:
            self._webhook = {}
            if self._bool(params, "drop_pending_updates"):
                self._updates.clear()
        return True

    def _m_getWebhookInfo(self, params: JSONDict) -> JSONDict:
        with self._lock:
            info: JSONDict = {
                "url": self._webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }
            if self._webhook.get("url"):
                info["max_connections"] = self._webhook["max_connections"]
                if self._webhook.get("ip_address"):
                    info["ip_address"] = self._webhook["ip_address"]
                if isinstance(self._webhook.get("allowed_updates"), list):
                    info["allowed_updates"] = self._webhook["allowed_updates"]
        return info

    # --- commands

    def _scope_key(self, scope: Any) -> str:
        if scope in (None, ""):
            scope = {"type": "default"}
        if isinstance(scope, _Unparsable) or not isinstance(scope, dict):
            raise _bad("can't parse BotCommandScope JSON object")
        kind = scope.get("type")
        if kind not in SCOPE_TYPES:
            raise _bad("unsupported bot command scope type")
        normalized: JSONDict = {"type": kind}
        if kind in ("chat", "chat_administrators", "chat_member"):
            normalized["chat_id"] = self._lookup_chat(scope.get("chat_id"))["id"]
        if kind == "chat_member":
            user_id = scope.get("user_id")
            if user_id in (None, ""):
                raise _bad("user not found")
            normalized["user_id"] = int(user_id)
        return json.dumps(normalized, sort_keys=True)

    @staticmethod
    def _language(params: JSONDict) -> str:
        code = str(params.get("language_code") or "")
        if code and not _LANG_RE.match(code):
            raise _bad("invalid language code specified")
        return code

    def _m_setMyCommands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if isinstance(commands, _Unparsable) or not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("BOT_COMMANDS_TOO_MUCH")
        cleaned: list[JSONDict] = []
        for item in commands:
            if not isinstance(item, dict):
                raise _bad("can't parse BotCommand JSON object")
            command = item.get("command")
            description = item.get("description")
            if not isinstance(command, str) or not _COMMAND_RE.match(command):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": command, "description": description})
        key = (self._scope_key(params.get("scope")), self._language(params))
        with self._lock:
            if cleaned:
                self._commands[key] = cleaned
            else:
                self._commands.pop(key, None)
        return True

    def _m_getMyCommands(self, params: JSONDict) -> list[JSONDict]:
        key = (self._scope_key(params.get("scope")), self._language(params))
        with self._lock:
            return list(self._commands.get(key, []))

    def _m_deleteMyCommands(self, params: JSONDict) -> bool:
        key = (self._scope_key(params.get("scope")), self._language(params))
        with self._lock:
            self._commands.pop(key, None)
        return True

    def _set_bot_text(self, params: JSONDict, kind: str, field_name: str, limit: int) -> bool:
        value = str(params.get(field_name) or "")
        if len(value) > limit:
            raise _bad(f"{kind} is too long")
        key = (kind, self._language(params))
        with self._lock:
            self._bot_texts[key] = value
        return True

    def _get_bot_text(self, params: JSONDict, kind: str, field_name: str) -> JSONDict:
        key = (kind, self._language(params))
        with self._lock:
            value = self._bot_texts.get(key)
            if value is None:
                value = self._bot_texts.get((kind, ""), "")
        if kind == "name" and not value:
            value = self.bot_first_name
        return {field_name: value}

    def _m_setMyDescription(self, params: JSONDict) -> bool:
        return self._set_bot_text(params, "description", "description", 512)

    def _m_getMyDescription(self, params: JSONDict) -> JSONDict:
        return self._get_bot_text(params, "description", "description")

    def _m_setMyShortDescription(self, params: JSONDict) -> bool:
        return self._set_bot_text(params, "short_description", "short_description", 120)

    def _m_getMyShortDescription(self, params: JSONDict) -> JSONDict:
        return self._get_bot_text(params, "short_description", "short_description")

    def _m_setMyName(self, params: JSONDict) -> bool:
        return self._set_bot_text(params, "name", "name", 64)

    def _m_getMyName(self, params: JSONDict) -> JSONDict:
        return self._get_bot_text(params, "name", "name")

    def _m_setChatMenuButton(self, params: JSONDict) -> bool:
        chat_id = self._int(params, "chat_id")
        button = params.get("menu_button") or {"type": "default"}
        if isinstance(button, _Unparsable) or not isinstance(button, dict):
            raise _bad("can't parse menu button JSON object")
        with self._lock:
            self._menu_buttons[chat_id] = button
        return True

    def _m_getChatMenuButton(self, params: JSONDict) -> JSONDict:
        chat_id = self._int(params, "chat_id")
        with self._lock:
            return dict(self._menu_buttons.get(chat_id) or {"type": "commands"})

    # --- messages

    def _m_sendMessage(self, params: JSONDict) -> JSONDict:
        chat = self._target_chat(params, "sendMessage")
        text, entities = self._parse_text(
            params.get("text"), params.get("parse_mode"), params.get("entities")
        )
        markup = self._validate_markup(params.get("reply_markup"), inline_only=False)
        preview = params.get("link_preview_options")
        if isinstance(preview, _Unparsable) or (
            preview is not None and not isinstance(preview, dict)
        ):
            raise _bad("can't parse link preview options JSON object")
        reply_to = self._reply_target(chat, params)
        self._check_rate(chat, "sendMessage", paid=self._bool(params, "allow_paid_broadcast"))
        message: JSONDict = {
            "message_id": self._allocate_message_id(chat["id"]),
            "from": self.bot_user,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        thread_id = self._int(params, "message_thread_id")
        if thread_id is not None and chat["type"] == "supergroup":
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if markup is not None:
            message["reply_markup"] = markup
        with self._lock:
            self._state.messages[(chat["id"], message["message_id"])] = message
        self._record_sent(
            SentMessage(
                "sendMessage",
                chat["id"],
                message["message_id"],
                params,
                text,
                entities,
                markup,
                message,
            )
        )
        return message

    def _reply_target(self, chat: JSONDict, params: JSONDict) -> JSONDict | None:
        reply = params.get("reply_parameters")
        message_id: int | None
        allow_missing = self._bool(params, "allow_sending_without_reply")
        if isinstance(reply, dict):
            message_id = int(reply["message_id"]) if reply.get("message_id") else None
            allow_missing = allow_missing or bool(reply.get("allow_sending_without_reply"))
        else:
            message_id = self._int(params, "reply_to_message_id")
        if message_id is None:
            return None
        key = (chat["id"], message_id)
        with self._lock:
            found = self._state.messages.get(key)
            deleted = key in self._state.deleted
        if found is None or deleted:
            if allow_missing or (found is None and not deleted and not self.strict_messages):
                return None
            raise _bad("message to be replied not found")
        reply_copy = dict(found)
        reply_copy.pop("reply_to_message", None)
        return reply_copy

    def _m_editMessageText(self, params: JSONDict) -> JSONDict | bool:
        text, entities = self._parse_text(
            params.get("text"), params.get("parse_mode"), params.get("entities")
        )
        markup = self._validate_markup(params.get("reply_markup"), inline_only=True)
        inline_id = self._str(params, "inline_message_id")
        if inline_id:
            self._record_sent(
                SentMessage(
                    "editMessageText", None, None, params, text, entities, markup, None, inline_id
                )
            )
            return True
        chat = self._target_chat(params, "editMessageText")
        message_id = self._int(params, "message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        existing = self._stored_message(chat, message_id, missing="message to edit not found")
        if existing.get("from", {}).get("id") != self.bot_id:
            raise _bad("message can't be edited")
        if "text" not in existing:
            raise _bad("there is no text in the message to edit")
        if (
            not existing.get("_unknown")
            and existing["text"] == text
            and existing.get("entities", []) == entities
            and existing.get("reply_markup") == markup
        ):
            raise _bad(NOT_MODIFIED)
        self._check_rate(chat, "editMessageText", paid=False)
        existing["text"] = text
        existing["edit_date"] = int(time.time())
        existing.pop("entities", None)
        existing.pop("reply_markup", None)
        if entities:
            existing["entities"] = entities
        if markup is not None:
            existing["reply_markup"] = markup
        return self._store_edit("editMessageText", chat, existing, params)

    def _m_editMessageReplyMarkup(self, params: JSONDict) -> JSONDict | bool:
        markup = self._validate_markup(params.get("reply_markup"), inline_only=True)
        inline_id = self._str(params, "inline_message_id")
        if inline_id:
            self._record_sent(
                SentMessage(
                    "editMessageReplyMarkup", None, None, params, "", [], markup, None, inline_id
                )
            )
            return True
        chat = self._target_chat(params, "editMessageReplyMarkup")
        message_id = self._int(params, "message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        existing = self._stored_message(chat, message_id, missing="message to edit not found")
        if existing.get("from", {}).get("id") != self.bot_id:
            raise _bad("message can't be edited")
        if existing.get("reply_markup") == markup and not existing.get("_unknown"):
            raise _bad(NOT_MODIFIED)
        self._check_rate(chat, "editMessageReplyMarkup", paid=False)
        existing.pop("reply_markup", None)
        existing["edit_date"] = int(time.time())
        if markup is not None:
            existing["reply_markup"] = markup
        return self._store_edit("editMessageReplyMarkup", chat, existing, params)

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

    def _m_deleteMessage(self, params: JSONDict) -> bool:
        chat = self._target_chat(params, "deleteMessage")
        message_id = self._int(params, "message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        key = (chat["id"], message_id)
        with self._lock:
            if key in self._state.deleted or (
                self.strict_messages and key not in self._state.messages
            ):
                raise _bad("message to delete not found")
            self._state.deleted.add(key)
            self._deleted_log.append(key)
        return True

    def _m_sendChatAction(self, params: JSONDict) -> bool:
        self._target_chat(params, "sendChatAction")
        if params.get("action") not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    # --- queries

    def _check_query(self, query_id: str | None) -> str:
        if not query_id:
            raise _bad(QUERY_INVALID)
        with self._lock:
            if query_id in self._answered_queries or (
                self.strict_queries and query_id not in self._known_queries
            ):
                raise _bad(QUERY_INVALID)
        return query_id

    def _m_answerCallbackQuery(self, params: JSONDict) -> bool:
        query_id = self._str(params, "callback_query_id")
        text = self._str(params, "text") or ""
        if len(text) > MAX_CALLBACK_TEXT:
            raise _bad("MESSAGE_TOO_LONG")
        url = self._str(params, "url")
        if url and not re.match(r"^(https?|tg)://\S+$", url):
            raise _bad("URL_INVALID")
        query_id = self._check_query(query_id)
        with self._lock:
            self._answered_queries.add(query_id)
            self._callback_answers.append(dict(params))
        return True

    def _m_answerInlineQuery(self, params: JSONDict) -> bool:
        query_id = self._str(params, "inline_query_id")
        results = params.get("results")
        if isinstance(results, _Unparsable) or not isinstance(results, list):
            raise _bad("can't parse inline query results JSON object")
        if len(results) > MAX_INLINE_RESULTS:
            raise _bad("RESULTS_TOO_MUCH")
        seen: set[str] = set()
        parsed = [self._validate_inline_result(result, seen) for result in results]
        next_offset = self._str(params, "next_offset") or ""
        if len(next_offset.encode("utf-8")) > 64:
            raise _bad("NEXT_OFFSET_INVALID")
        button = params.get("button")
        if button is not None:
            if isinstance(button, _Unparsable) or not isinstance(button, dict):
                raise _bad("can't parse InlineQueryResultsButton JSON object")
            if not button.get("text"):
                raise _bad("BUTTON_TEXT_INVALID")
            start = button.get("start_parameter")
            if start is not None and not re.match(r"^[A-Za-z0-9_-]{1,64}$", str(start)):
                raise _bad("START_PARAM_INVALID")
        query_id = self._check_query(query_id)
        record = dict(params)
        record["parsed"] = parsed
        with self._lock:
            self._answered_queries.add(query_id)
            self._inline_answers.append(record)
        return True

    def _validate_inline_result(self, result: Any, seen: set[str]) -> JSONDict:
        """Validate one result; returns ``{"id", "type", "text", "entities"}`` (text parsed)."""
        prefix = "can't parse inline query result: "
        if not isinstance(result, dict):
            raise _bad(prefix + "InlineQueryResult must be an Object")
        kind = result.get("type")
        if kind not in INLINE_RESULT_TYPES:
            raise _bad("RESULT_TYPE_INVALID")
        result_id = result.get("id")
        if not isinstance(result_id, str) or not 1 <= len(result_id.encode("utf-8")) <= 64:
            raise _bad("RESULT_ID_INVALID")
        if result_id in seen:
            raise _bad("RESULT_ID_DUPLICATE")
        seen.add(result_id)
        parsed: JSONDict = {"id": result_id, "type": kind, "text": None, "entities": []}
        if kind == "article":
            if not result.get("title"):
                raise _bad(prefix + 'Can\'t find field "title"')
            if "input_message_content" not in result:
                raise _bad(prefix + 'Can\'t find field "input_message_content"')
        content = result.get("input_message_content")
        if content is not None:
            if not isinstance(content, dict):
                raise _bad(prefix + "InputMessageContent must be an Object")
            if "message_text" in content:
                text, entities = self._parse_text(
                    content.get("message_text"), content.get("parse_mode"), content.get("entities")
                )
                parsed["text"], parsed["entities"] = text, entities
        if "reply_markup" in result:
            self._validate_markup(result["reply_markup"], inline_only=True)
        return parsed

    # --- chats

    def _m_getChat(self, params: JSONDict) -> JSONDict:
        chat = self._target_chat(params, "getChat")
        info = dict(chat)
        info.setdefault("accent_color_id", 0)
        info.setdefault("max_reaction_count", 11)
        info.setdefault(
            "accepted_gift_types",
            {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        return info

    def _m_getChatMember(self, params: JSONDict) -> JSONDict:
        chat = self._target_chat(params, "getChatMember")
        user_id = self._int(params, "user_id", required=True)
        assert user_id is not None
        with self._lock:
            member = self._state.members.get((chat["id"], user_id))
        if member is not None:
            return dict(member)
        return chat_member_dict(self._user(user_id), "member")

    def _m_getChatAdministrators(self, params: JSONDict) -> list[JSONDict]:
        chat = self._target_chat(params, "getChatAdministrators")
        with self._lock:
            return [
                dict(m)
                for (chat_id, _), m in self._state.members.items()
                if chat_id == chat["id"] and m["status"] in ("creator", "administrator")
            ]

    def _m_getChatMemberCount(self, params: JSONDict) -> int:
        chat = self._target_chat(params, "getChatMemberCount")
        if chat["type"] == "private":
            return 2
        with self._lock:
            count = sum(
                1
                for (chat_id, _), m in self._state.members.items()
                if chat_id == chat["id"] and m["status"] not in ("left", "kicked")
            )
        return max(count, 2)

    def _m_leaveChat(self, params: JSONDict) -> bool:
        chat = self._target_chat(params, "leaveChat")
        self.set_member(chat["id"], self.bot_id, "left")
        return True


class _Unparsable(str):
    """A JSON-expected form field that did not contain valid JSON."""
