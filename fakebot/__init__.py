"""A fake Telegram Bot API server for tests and benchmarks (real HTTP on 127.0.0.1, in-process).

Typical fixture::

    from fakebot import FakeBotAPI

    @pytest.fixture
    def fake_api() -> Iterator[FakeBotAPI]:
        with FakeBotAPI() as server:
            yield server

    bot = telegram.Bot(server.token, base_url=server.base_url)   # or server.bot()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .html import EntityParseError, parse_html, trim_text, utf16_len
from .markdown import parse_markdown, parse_markdown_v2
from .server import ApiError, Call, FakeBotAPI, RateLimits, SentMessage, UploadedFile
from .updates import (
    BOT_FIRST_NAME,
    BOT_ID,
    BOT_USERNAME,
    DEFAULT_TOKEN,
    bot_user_dict,
    callback_update,
    chat_dict,
    chat_member_dict,
    command_entities,
    infer_chat_type,
    inline_update,
    message_dict,
    message_update,
    my_chat_member_update,
    user_dict,
)

__all__ = [
    "BOT_FIRST_NAME",
    "BOT_ID",
    "BOT_USERNAME",
    "DEFAULT_TOKEN",
    "ApiError",
    "Call",
    "EntityParseError",
    "FakeBotAPI",
    "RateLimits",
    "SentMessage",
    "UploadedFile",
    "bot_user_dict",
    "callback_update",
    "chat_dict",
    "chat_member_dict",
    "command_entities",
    "fake_bot_api",
    "infer_chat_type",
    "inline_update",
    "message_dict",
    "message_update",
    "my_chat_member_update",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "trim_text",
    "user_dict",
    "utf16_len",
]


@contextmanager
def fake_bot_api(**kwargs: Any) -> Iterator[FakeBotAPI]:
    """Start a :class:`FakeBotAPI` (kwargs go to its constructor) and stop it afterwards.

    Fixture body: ``with fake_bot_api() as server: yield server``.
    """
    server = FakeBotAPI(**kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()
