"""A bot's delivery side following a git upstream, on an injected clock: the follower
(fetch, index, revisions), the engine (planner + sender through PtbTransport to the fake
Bot API server) and the admins' notes."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from telegram import Bot

from bot.config import Config, parse_config
from bot.core.pacing import Limits
from bot.db.archive import Archive
from bot.delivery.engine import DeliveryEngine
from bot.source.follow import Follower, PollResult
from bot.telegram.transport import PtbTransport
from fakebot.upstream import Upstream

FAST = Limits(
    per_second=200,
    burst=20,
    private_per_second=50,
    private_burst=10,
    group_per_minute=600,
    group_burst=10,
    in_flight=8,
    attempts=3,
    backoff=0.05,
    backoff_max=0.2,
)
SETTLE = 600.0


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


class Notes(list[str]):
    async def __call__(self, text: str) -> None:
        self.append(text)


class World:
    def __init__(self, tmp: Path, upstream: Upstream, bot: Bot, **delivery: Any) -> None:
        raw: dict[str, Any] = {
            "content": {
                "source": {"git": upstream.url, "path": "docs"},
                "settle_seconds": SETTLE,
            },
            "storage": {"path": str(tmp / "data" / "bot.sqlite3")},
            "telegram": {"admins": [42]},
            "delivery": {"times": ["08:30"], "timezone": "Asia/Shanghai", **delivery},
        }
        self.config: Config = parse_config(raw, tmp)
        self.upstream = upstream
        self.bot = bot
        self.now = utc("2025-03-01 01:00")  # 09:00 in Shanghai, after the 08:30 slot
        self.notes = Notes()

    async def __aenter__(self) -> World:
        self.archive = await Archive.open(self.config.storage_path)
        self.follower = Follower(
            self.config, self.archive, notify=self.notes, clock=lambda: self.now.timestamp()
        )
        self.engine = DeliveryEngine(
            self.archive,
            PtbTransport(self.bot),
            self.config.delivery,
            limits=FAST,
            clock=lambda: self.now,
            settle_seconds=SETTLE,
            poll_seconds=0.05,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.stop()
        await self.archive.close()

    @property
    def db(self) -> Any:
        return self.archive.db

    def at(self, text: str) -> World:
        self.now = utc(text)
        return self

    async def push(self, files: dict[str, str | None], *, force: bool = False) -> PollResult:
        """Commit upstream, then poll as the bot's job would."""
        self.upstream.push(files, force=force)
        result = await self.follower.poll()
        assert result.ok, result.error
        return result

    async def seed(self, *chats: tuple[int, str, str | None]) -> None:
        """Active chats (id, type, last issue) handled up to today's 08:30 slot."""
        async with self.db.transaction() as db:
            await db.executemany(
                "INSERT INTO chats (id, type, status, last_issue, last_slot)"
                " VALUES (?, ?, 'active', ?, '2025-03-01T00:30:00Z')",
                chats,
            )

    async def tick(self, text: str | None = None) -> int | None:
        if text:
            self.at(text)
        return await self.engine.tick(self.now)

    async def queued(self) -> list[tuple[int, str]]:
        rows = await self.db.rows("SELECT chat_id, issue FROM outbox WHERE part = 0 ORDER BY id")
        return [(c, i) for c, i in rows]

    async def deliver(self, timeout: float = 20) -> None:
        """Run the sender until nothing is pending (sends and edits)."""
        await self.engine.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            pending = await self.db.value(
                "SELECT (SELECT count(*) FROM outbox WHERE status = 'pending')"
                " + (SELECT count(*) FROM edits WHERE status = 'pending')"
            )
            if not pending:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("delivery did not finish")
        await self.engine.stop()
