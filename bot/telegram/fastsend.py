"""A lean sending transport for the delivery engine: aiohttp, one request body per text.

python-telegram-bot costs about 3 ms of CPU per sendMessage (its request objects, the
form encoding, httpx/httpcore, then a whole ``Message`` built from the answer). A broadcast
sends the same few texts to thousands of chats, so this transport serialises each text once
and builds every body by concatenation, changing only ``chat_id`` (and the silent/topic
flags), POSTs it over a keep-alive aiohttp pool as wide as the sender's in-flight window,
and reads from the answer only what the sender needs: ``ok``, ``result.message_id``,
``error_code``, ``description`` and ``parameters``. Outcomes are the ones
:func:`bot.telegram.transport.classify` gives for PTB's errors, with the same descriptions,
so the outbox's ``last_error`` reads the same whichever transport sent.

JSON through the standard library (orjson measured no faster here).
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from http import HTTPStatus
from typing import Any

import aiohttp

from bot.delivery.transport import Failure, SendError
from bot.logs import redact
from bot.telegram.transport import GONE_TEXTS, TOPIC_GONE_TEXTS

# orjson and uvloop were measured here and made no difference (docs/benchmarks.md): the
# standard library's json it is.


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_loads = json.loads


BODY_CACHE = 64  # serialised texts kept: a broadcast uses a handful
HEADERS = {"Content-Type": "application/json"}
# Telegram answers a sent message with message_id first; reading it there avoids parsing
# the echoed message (text, entities, chat) at all. Anything else is parsed in full.
_SENT = re.compile(rb'\s*\{\s*"ok"\s*:\s*true\s*,\s*"result"\s*:\s*\{\s*"message_id"\s*:\s*(\d+)')
_PREVIEW_OFF = b',"parse_mode":"HTML","link_preview_options":{"is_disabled":true}'


class TokenRejected(SendError):
    """Telegram refused the token (401/404 on the bot's URL): nothing will get through.

    A SendError of kind TRANSIENT, as PTB's InvalidToken is to the sender, so the engine
    behaves as before; callers that can stop (the CLI's token check) catch it by type."""

    def __init__(self, description: str) -> None:
        super().__init__(Failure.TRANSIENT, f"InvalidToken: {description}")


def _error_class(code: int) -> str:
    """The PTB exception name for an HTTP status, as PTB's ``_request_wrapper`` picks it."""
    if code == HTTPStatus.FORBIDDEN:
        return "Forbidden"
    if code in (HTTPStatus.NOT_FOUND, HTTPStatus.UNAUTHORIZED):
        return "InvalidToken"
    if code == HTTPStatus.BAD_REQUEST:
        return "BadRequest"
    if code == HTTPStatus.CONFLICT:
        return "Conflict"
    return "NetworkError"


def _tidy(message: str) -> str:
    """PTB's TelegramError text: an API prefix stripped and the rest capitalised."""
    tidy = message.removeprefix("Error: ").removeprefix("[Error]: ")
    tidy = tidy.removeprefix("Bad Request: ")
    return tidy.capitalize() if tidy != message else message


def classify_answer(code: int, payload: bytes) -> SendError:
    """A refused request (HTTP ``code``, body ``payload``) as the sender's outcome; the same
    taxonomy and texts as :func:`bot.telegram.transport.classify` on PTB's errors."""
    try:
        phrase = f"{HTTPStatus(code).phrase} ({code})"
    except ValueError:
        phrase = f"Unknown HTTPError ({code})"
    try:
        data = _loads(payload)
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except ValueError:
        return SendError(Failure.TRANSIENT, f"NetworkError: {phrase}. Unparsable answer")
    message = str(data.get("description") or phrase)
    parameters = data.get("parameters")
    if isinstance(parameters, dict):
        migrate_to = parameters.get("migrate_to_chat_id")
        if migrate_to:
            text = f"ChatMigrated: Group migrated to supergroup. New chat id: {migrate_to}"
            return SendError(Failure.MIGRATED, text, migrate_to=int(migrate_to))
        retry_after = parameters.get("retry_after")
        if retry_after:
            text = f"RetryAfter: Flood control exceeded. Retry in {retry_after} seconds"
            return SendError(Failure.FLOOD, text, retry_after=float(retry_after))
    name = _error_class(code)
    text = f"{name}: {_tidy(message)}"
    if name == "InvalidToken":
        return TokenRejected(_tidy(message))
    lowered = message.lower()
    if name == "BadRequest" and any(g in lowered for g in TOPIC_GONE_TEXTS):
        return SendError(Failure.TOPIC_GONE, text)
    if name == "Forbidden" or (name == "BadRequest" and any(g in lowered for g in GONE_TEXTS)):
        return SendError(Failure.GONE, text)
    if name == "BadRequest":
        return SendError(Failure.REJECTED, text)
    return SendError(Failure.TRANSIENT, text)  # 5xx, 409, anything else


def message_id_of(payload: bytes) -> int:
    """``result.message_id`` of a successful answer (the fast path reads only its head)."""
    match = _SENT.match(payload)
    if match is not None:
        return int(match.group(1))
    data = _loads(payload)
    if not (isinstance(data, dict) and data.get("ok") and isinstance(data.get("result"), dict)):
        raise SendError(Failure.TRANSIENT, "NetworkError: an answer without a result")
    return int(data["result"]["message_id"])


class FastTransport:
    """The engine's :class:`~bot.delivery.transport.Transport` over aiohttp.

    ``base_url`` is PTB's convention (``https://api.telegram.org/bot``; the token is
    appended). ``pool``: the most connections kept open, the sender's in-flight window.
    The aiohttp session is made on first use, in the running loop; ``close()`` ends it."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.telegram.org/bot",
        pool: int = 16,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
    ) -> None:
        self.token = token
        self._api = f"{base_url}{token}/"
        self._send_url = self._api + "sendMessage"
        self._pool = max(1, pool)
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self._bodies: OrderedDict[str, bytes] = OrderedDict()

    # -- lifecycle -------------------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool, limit_per_host=self._pool, keepalive_timeout=60.0
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                json_serialize=lambda v: _dumps(v).decode("utf-8"),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> FastTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests --------------------------------------------------------------------------

    async def _post(self, url: str, body: bytes) -> bytes:
        """POST ``body``; the answer's bytes when it is a 2xx, else the SendError it means."""
        try:
            async with self._client().post(url, data=body, headers=HEADERS) as response:
                payload = await response.read()
                status = response.status
        except TimeoutError:
            raise SendError(Failure.TRANSIENT, "TimedOut: Timed out") from None
        except aiohttp.ClientError as err:
            text = f"NetworkError: aiohttp.{type(err).__name__}: {err}"
            raise SendError(Failure.TRANSIENT, self.redact(text)) from None
        if 200 <= status <= 299:
            return payload
        raise classify_answer(status, payload)

    def _tail(self, html: str) -> bytes:
        """Everything after ``chat_id`` for this text, serialised once."""
        tail = self._bodies.get(html)
        if tail is None:
            tail = b',"text":' + _dumps(html) + _PREVIEW_OFF
            if len(self._bodies) >= BODY_CACHE:
                self._bodies.popitem(last=False)
            self._bodies[html] = tail
        return tail

    def body(
        self,
        chat_id: int,
        html: str,
        *,
        paid: bool = False,
        silent: bool = False,
        thread_id: int | None = None,
    ) -> bytes:
        """The sendMessage JSON body: the cached text plus this chat's fields."""
        parts = [b'{"chat_id":', str(int(chat_id)).encode(), self._tail(html)]
        if paid:
            parts.append(b',"allow_paid_broadcast":true')
        if silent:
            parts.append(b',"disable_notification":true')
        if thread_id is not None:
            parts.append(b',"message_thread_id":' + str(int(thread_id)).encode())
        parts.append(b"}")
        return b"".join(parts)

    async def send_html(
        self,
        chat_id: int,
        html: str,
        *,
        paid: bool = False,
        silent: bool = False,
        thread_id: int | None = None,
    ) -> int:
        body = self.body(chat_id, html, paid=paid, silent=silent, thread_id=thread_id)
        return message_id_of(await self._post(self._send_url, body))

    async def edit_html(self, chat_id: int, message_id: int, html: str) -> None:
        body = _dumps(
            {
                "chat_id": chat_id,
                "message_id": message_id,
                "text": html,
                "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": True},
            }
        )
        await self._post(self._api + "editMessageText", body)

    async def check_token(self) -> dict[str, Any]:
        """getMe: the bot's user; TokenRejected when Telegram refuses the token, another
        SendError when it cannot be reached."""
        payload = await self._post(self._api + "getMe", b"{}")
        data = _loads(payload)
        result: dict[str, Any] = data.get("result") or {}
        return result

    def redact(self, text: str) -> str:
        return redact(text.replace(self.token, "<token>")) if self.token else redact(text)
