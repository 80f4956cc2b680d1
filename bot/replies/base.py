"""The shapes every reply shares: messages with buttons, inline answers, and the context a
reply is decided in (who asks, where, and what only Telegram can tell)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.config import Delivery
from bot.core import buttons
from bot.core.buttons import FindPage, OpenIssue, OpenMonth
from bot.core.i18n import t
from bot.core.render import (
    escape,
)
from bot.db.archive import Archive
from bot.db.chats import ChatInfo
from bot.db.database import Database

FIND_PAGE = 5
INLINE_PAGE = 20  # Telegram allows 50 results per answer
_MONTH = re.compile(r"^(\d{4})[-./年](\d{1,2})月?$")


@dataclass(frozen=True)
class Button:
    text: str
    data: str  # callback data, at most 64 bytes

    def __post_init__(self) -> None:
        if not 1 <= len(self.data.encode()) <= buttons.MAX_BYTES:
            raise ValueError(f"callback data must be 1-64 bytes: {self.data!r}")


@dataclass(frozen=True)
class Reply:
    """HTML messages to send (the keyboard goes under the last one). ``edit``: when
    answering a button, replace the pressed message instead of sending a new one."""

    messages: tuple[str, ...] = ()
    keyboard: tuple[tuple[Button, ...], ...] = ()
    edit: bool = False
    notice: str = ""  # the short popup text of a button answer
    photo: bytes | None = None  # a PNG sent before the messages (/trend), with its caption
    caption: str = ""  # HTML, at most CAPTION_LIMIT UTF-16 units of visible text


@dataclass(frozen=True)
class InlineResult:
    id: str
    title: str
    description: str
    html: str


@dataclass(frozen=True)
class InlineAnswer:
    results: tuple[InlineResult, ...]
    next_offset: str = ""


async def _yes() -> bool:
    return True


@dataclass
class Ctx:
    """Who is asking and what the edge knows: the archive, the reply language, today's
    date where they are, the chat (and forum topic) the command came from, and whether the
    user may change this chat's subscription (a group administrator; asked of Telegram
    only when needed)."""

    archive: Archive
    lang: str = "zh"
    today: dt.date = field(default_factory=dt.date.today)
    bot_username: str = "briefbot"
    chat: ChatInfo | None = None
    user_id: int | None = None
    is_admin: bool = False  # one of telegram.admins
    can_manage: Callable[[], Awaitable[bool]] = _yes
    delivery: Delivery = field(default_factory=Delivery)
    # The forum topic the command came from (message_thread_id of a topic message); 0:
    # none (a private chat, a plain group, a forum's General topic).
    thread_id: int = 0

    @property
    def db(self) -> Database:
        return self.archive.db

    def say(self, key: str, **values: object) -> Reply:
        """One message from the texts table, the values escaped."""
        escaped = {k: escape(str(v)) for k, v in values.items()}
        return Reply((t(self.lang, key, **escaped),))


def _open(date: dt.date) -> str:
    return buttons.encode(OpenIssue(date))


def _month(date: dt.date) -> str:
    return buttons.encode(OpenMonth(date.year, date.month))


def find_data(query: str, offset: int) -> str:
    return buttons.encode(FindPage(query, offset))


NEEDS_TELEGRAM = "needs_telegram"
