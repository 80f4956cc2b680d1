"""A bot under test: the real Application, talking HTTP to the fake Bot API server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from telegram import Update
from telegram.ext import Application

from bot.config import Config, parse_config
from bot.telegram.app import build_application
from fakebot import FakeBotAPI
from fakebot.state import SentMessage
from fakebot.updates import callback_update, inline_update, message_update


def make_config(tmp: Path, content: Path, api: FakeBotAPI, **sections: Any) -> Config:
    raw: dict[str, Any] = {
        "content": {"dir": str(content), "reload_seconds": 0},
        "storage": {"path": str(tmp / "bot.sqlite3")},
        "telegram": {"api_base_url": api.url, "admins": [42]},
        "ops": {"listen": ""},  # no health endpoint unless a test asks for one
    }
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    return parse_config(raw, tmp)


class BotUnderTest:
    def __init__(self, api: FakeBotAPI, config: Config) -> None:
        self.api = api
        self.config = config
        self.app: Application[Any, Any, Any, Any, Any, Any] = build_application(config, api.token)

    async def __aenter__(self) -> BotUnderTest:
        await self.app.initialize()
        assert self.app.post_init is not None
        await self.app.post_init(self.app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.app.post_shutdown:
            await self.app.post_shutdown(self.app)
        await self.app.shutdown()

    async def feed(self, update: dict[str, Any]) -> None:
        await self.app.process_update(Update.de_json(update, self.app.bot))

    async def say(self, chat_id: int, text: str, **kw: Any) -> list[SentMessage]:
        """Send a message as a user; return what the bot sent to that chat in answer."""
        before = len(self.api.messages_to(chat_id))
        await self.feed(message_update(chat_id, text, **kw))
        return self.api.messages_to(chat_id)[before:]

    async def press(
        self, chat_id: int, message: SentMessage, data: str, **kw: Any
    ) -> list[SentMessage]:
        before = len(self.api.sent)
        await self.feed(
            callback_update(chat_id, message.message_id or 0, data, message=message.message, **kw)
        )
        return [m for m in self.api.sent[before:] if m.chat_id == chat_id]

    async def inline(self, query: str, offset: str = "", **kw: Any) -> dict[str, Any]:
        before = len(self.api.inline_answers)
        await self.feed(inline_update(query, offset, **kw))
        answers = self.api.inline_answers
        assert len(answers) == before + 1, "the inline query was not answered"
        return answers[-1]
