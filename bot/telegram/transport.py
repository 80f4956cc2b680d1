"""python-telegram-bot behind the sender's narrow :class:`~bot.delivery.transport.Transport`:
one factory for every ``Bot`` that sends, and the Telegram error taxonomy (which errors
mean "wait", "the chat moved", "the chat is gone", "this message is refused", "try again").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from bot.config import Config
from bot.delivery.transport import Failure, SendError
from bot.logs import redact
from bot.telegram.request import bot_requests

# BadRequest texts that mean the chat is gone for good (like a 403), not a bad message.
GONE_TEXTS = (
    "chat not found",
    "user not found",
    "peer_id_invalid",
    "chat_write_forbidden",
    "have no rights to send",
    "not enough rights to send",
    "need administrator rights",
    "group chat was deactivated",
    "bot was kicked",
    "bot is not a member",
)

# BadRequest texts that mean the forum topic is gone (closed or deleted), not the chat:
# "Bad Request: TOPIC_CLOSED" and "Bad Request: message thread not found", both 400s.
TOPIC_GONE_TEXTS = ("topic_closed", "message thread not found")


def make_bot(config: Config, token: str, *, pool: int = 8) -> Bot:
    """A Bot on the configured API server with a connection pool of ``pool``: the engine's
    sender (no rate limiter: the engine keeps the limits itself) and the CLI's; over the
    HTTP client ``telegram.http`` names (bot/telegram/request.py)."""
    api = config.telegram.api_base_url
    request, get_updates_request = bot_requests(config.telegram.http, pool)
    return Bot(
        token,
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        request=request,
        get_updates_request=get_updates_request,
    )


def is_gone(err: TelegramError) -> bool:
    """Whether Telegram says the chat is unreachable for good."""
    if isinstance(err, Forbidden):
        return True
    text = err.message.lower()
    return isinstance(err, BadRequest) and any(g in text for g in GONE_TEXTS)


def retry_after_seconds(err: RetryAfter) -> float:
    value: Any = err.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def classify(err: TelegramError) -> SendError:
    """A PTB error as the sender's outcome."""
    text = f"{type(err).__name__}: {err}"
    if isinstance(err, RetryAfter):
        return SendError(Failure.FLOOD, text, retry_after=retry_after_seconds(err))
    if isinstance(err, ChatMigrated):
        return SendError(Failure.MIGRATED, text, migrate_to=int(err.new_chat_id))
    if isinstance(err, BadRequest) and any(g in err.message.lower() for g in TOPIC_GONE_TEXTS):
        return SendError(Failure.TOPIC_GONE, text)
    if is_gone(err):
        return SendError(Failure.GONE, text)
    if isinstance(err, BadRequest):
        return SendError(Failure.REJECTED, text)
    return SendError(Failure.TRANSIENT, text)  # NetworkError, TimedOut, 5xx, ...


class PtbTransport:
    """Sends through a PTB ``Bot`` (HTML, previews off)."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send_html(
        self,
        chat_id: int,
        html: str,
        *,
        paid: bool = False,
        silent: bool = False,
        thread_id: int | None = None,
    ) -> int:
        try:
            message = await self.bot.send_message(
                chat_id=chat_id,
                text=html,
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                allow_paid_broadcast=True if paid else None,
                disable_notification=True if silent else None,
                message_thread_id=thread_id,
            )
        except TelegramError as err:
            raise classify(err) from err
        return message.message_id

    async def edit_html(self, chat_id: int, message_id: int, html: str) -> None:
        try:
            await self.bot.edit_message_text(
                html,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except TelegramError as err:
            raise classify(err) from err

    def redact(self, text: str) -> str:
        return redact(text.replace(self.bot.token, "<token>"))
