"""How many round trips to the database thread a reply costs (issue 12).

Every aiosqlite call is a hand-off to its worker thread plus an event-loop wake-up, a
visible share of the bot's CPU per reply. These tests count them (each call of
``aiosqlite.Connection._execute`` is one) end to end, through the fake Bot API, and pin the
numbers: a per-reply write, a transaction or a cursor's execute/fetchall/close trio coming
back makes them fail. Counting, not timing: the figures are in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot.db.database import Database
from fakebot import FakeBotAPI

from .botkit import BotUnderTest, make_config


class RoundTrips:
    """Every call handed to an aiosqlite worker thread, with its SQL when it has one."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __len__(self) -> int:
        return len(self.calls)

    def writes(self) -> list[str]:
        verbs = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "INSERT", "UPDATE", "DELETE")
        return [c for c in self.calls if c.lstrip().upper().startswith(verbs)]


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[RoundTrips]:
    seen = RoundTrips()
    real = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kw: Any) -> Any:
        sql = args[0] if args and isinstance(args[0], str) else ""
        seen.calls.append(sql or getattr(fn, "__name__", repr(fn)))
        return await real(self, fn, *args, **kw)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    yield seen


@pytest.fixture
async def bot(tmp_path: Path, bundled: Path, open_api: FakeBotAPI) -> AsyncIterator[BotUnderTest]:
    async with BotUnderTest(open_api, make_config(tmp_path, bundled, open_api)) as b:
        yield b


_chats = count(7001)  # a chat of its own for each request, as in bench/bench_bot.py


async def reply_trips(bot: BotUnderTest, trips: RoundTrips, text: str) -> RoundTrips:
    """The round trips of one reply to ``text`` from a new private chat."""
    chat = next(_chats)
    trips.calls.clear()
    answer = await bot.say(chat, text)
    assert answer, f"no reply to {text}"
    return trips


# What each reply reads, one statement (one round trip) each:
#   the chat's row (its /lang language)                                   1
#   /find: the page with its total (one statement), the hits' channel posts  2
#   an issue: its row, items and neighbours (one statement), its channel posts  2
#   /latest: the same, the newest date found inside that statement            0
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/find 小米", 3),
        ("/find 芯片 2025", 3),
        ("/date 2025-02-14", 3),
        ("/latest", 3),
        ("/help", 1),
    ],
)
async def test_read_only_reply_round_trips(
    bot: BotUnderTest, trips: RoundTrips, text: str, expected: int
) -> None:
    await reply_trips(bot, trips, "/find 小米")  # warm: the per-index-version caches filled
    seen = await reply_trips(bot, trips, text)
    assert seen.writes() == [], "a read-only reply wrote (or opened a transaction)"
    assert len(seen) == expected, "\n".join(seen.calls)


async def test_a_repeated_find_costs_the_same(bot: BotUnderTest, trips: RoundTrips) -> None:
    """Replies from many chats cost the same: nothing accumulates per chat or per reply."""
    await reply_trips(bot, trips, "/find 小米")
    costs = [len(await reply_trips(bot, trips, "/find 小米")) for _ in range(5)]
    assert costs == [3] * 5


async def test_rows_is_one_round_trip(tmp_path: Path, trips: RoundTrips) -> None:
    """The helper every read goes through: one hand-off, not execute + fetchall + close."""
    async with await Database.open(tmp_path / "t.sqlite3") as db:
        trips.calls.clear()
        assert await db.rows("SELECT 1 UNION ALL SELECT 2") == [(1,), (2,)]
        assert await db.value("SELECT 3") == 3
        assert await db.row("SELECT 1 WHERE 0") is None
        assert len(trips) == 3, trips.calls


async def test_an_issue_posted_to_a_public_channel_is_not_read_again(
    bot: BotUnderTest, trips: RoundTrips
) -> None:
    """The channel link needs the issue's items (which part holds which): the reply passes
    the issue it has, so a posted issue costs the same round trips as any other."""
    from .test_post_links import add_channel, deliver, links

    await add_channel(bot, -1001111, "techchan")
    latest = await bot.app.bot_data.services.archive.latest_date()
    assert latest is not None
    await deliver(bot, latest)
    await reply_trips(bot, trips, "/find 小米")
    seen = await reply_trips(bot, trips, "/latest")
    assert len(seen) == 3, "\n".join(seen.calls)
    answer = await bot.say(next(_chats), "/latest")
    assert links(answer[-1]) and links(answer[-1])[0][0] == "techchan"
