"""Settling: an issue goes out only once it has no errors, no empty item, and has not
changed for content.settle_seconds; the first fetch is the archive (not broadcast); a
back-fill is indexed, not broadcast; on-arrival chats get an issue as soon as it is ready."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import Bot

from bot.core.model import Issue, Item, Problem, Severity
from bot.db import revisions
from bot.source import settle
from fakebot import FakeBotAPI, fake_bot_api
from fakebot.upstream import Upstream, issue, month

from .sourcekit import World

FEB = "docs/2025/newsflash-202502.md"
MAR = "docs/2025/newsflash-202503.md"
OLD = month(issue("2025.02.27", "甲"), issue("2025.02.28", "乙"))


@pytest.fixture
def api() -> FakeBotAPI:
    with fake_bot_api(rate_limits=False) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    async with api.bot() as b:
        yield b


@pytest.fixture
async def world(tmp_path: Path, bot: Bot) -> AsyncIterator[World]:
    async with World(tmp_path, Upstream(tmp_path / "up.git"), bot) as w:
        yield w


# -- the pure part ------------------------------------------------------------------------


def _issue(*texts: str) -> Issue:
    return Issue(dt.date(2025, 3, 1), "t", tuple(Item(n, t) for n, t in enumerate(texts, 1)))


@pytest.mark.parametrize(
    ("texts", "errors", "reason"),
    [
        (("a", "b"), [], ""),
        (("a", ""), [], "item 2 has no text"),
        (("", "  ", "c"), [], "items 1, 2 have no text"),
        ((), [], "the issue has no items yet"),
        (("a",), [Problem("f", 7, Severity.ERROR, "item 3 repeats")], "line 7: item 3 repeats"),
    ],
)
def test_what_blocks_an_issue(texts: tuple[str, ...], errors: list[Problem], reason: str) -> None:
    assert settle.blocked_reason(_issue(*texts), errors) == reason


def test_errors_belong_to_the_issue_they_are_in() -> None:
    d1, d2 = dt.date(2025, 3, 1), dt.date(2025, 3, 2)
    root = Path("/c")
    problems = [
        Problem("/c/m.md", 12, Severity.ERROR, "in the second"),
        Problem("/c/m.md", 2, Severity.ERROR, "before the first heading"),
        Problem("/c/m.md", 4, Severity.WARNING, "a warning blocks nothing"),
        Problem("/c/n.md", 0, Severity.ERROR, "the whole file"),
    ]
    by_file = settle.error_files(problems, root)
    lines = {"m.md": [(3, d1), (10, d2)], "n.md": [(1, d1)]}
    found = settle.errors_by_date(by_file, lines)
    assert [p.message for p in found[d2]] == ["in the second"]
    assert [p.message for p in found[d1]] == ["the whole file"]


# -- through the follower and the planner -------------------------------------------------


async def test_a_stub_waits_and_the_finished_issue_goes_out_once_after_settling(
    world: World, api: FakeBotAPI
) -> None:
    await world.push({FEB: OLD})  # the archive
    await world.seed((1, "private", "2025-02-28"), (-1001, "channel", "2025-02-28"))
    await world.push({MAR: month(issue("2025.03.01", "第一条", ""))})  # being written
    assert await world.tick("2025-03-02 00:31") is None  # settled, but item 2 is empty
    rev = await revisions.get(world.db, dt.date(2025, 3, 1))
    assert rev is not None and rev.blocked == "item 2 has no text"

    world.at("2025-03-03 00:25")  # finished five minutes before the next slot
    await world.push({MAR: month(issue("2025.03.01", "第一条", "第二条"))})
    assert await world.tick("2025-03-03 00:31") is None  # changed 6 minutes ago: not yet
    assert await world.tick("2025-03-04 00:31") is not None
    assert sorted(await world.queued()) == [(-1001, "2025-03-01"), (1, "2025-03-01")]
    assert await world.tick("2025-03-05 00:31") is None  # once
    await world.deliver()
    for chat in (1, -1001):
        (message,) = api.messages_to(chat)
        assert "第二条" in message.text


async def test_the_first_fetch_is_the_archive_and_is_not_broadcast(world: World) -> None:
    await world.seed((1, "private", "2025-02-20"), (2, "private", None))
    await world.push({FEB: OLD})
    await world.tick("2025-03-02 00:31")
    # Chat 1 had a cursor: the archive is not news to it. Chat 2 never got an issue: the
    # existing rule gives it the newest.
    assert await world.queued() == [(2, "2025-02-28")]
    assert world.notes == []


async def test_a_back_fill_is_searchable_but_not_broadcast(world: World) -> None:
    await world.push({FEB: OLD})
    await world.seed((1, "private", "2025-02-28"))
    await world.push({MAR: month(issue("2025.03.01", "三月一日"))})
    await world.tick("2025-03-02 00:31")
    assert await world.queued() == [(1, "2025-03-01")]
    result = await world.push({FEB: month(issue("2025.02.15", "补录的一期"), OLD)})
    assert result.report and result.report.added == [dt.date(2025, 2, 15)]
    assert result.notes == [
        "📥 back-fill 2025-02-15 indexed and searchable, not broadcast "
        "(newest delivered: 2025-03-01)"
    ]
    assert (await world.archive.search("补录")).total == 1
    await world.seed((2, "private", "2025-02-10"))  # even a chat that lags behind
    await world.tick("2025-03-03 00:31")
    assert await world.queued() == [(1, "2025-03-01"), (2, "2025-03-01")]


async def test_on_arrival_chats_get_an_issue_once_it_settles(tmp_path: Path, bot: Bot) -> None:
    async with World(tmp_path, Upstream(tmp_path / "up.git"), bot, on_arrival=True) as world:
        await world.push({FEB: OLD})
        await world.seed((1, "private", "2025-02-28"))
        world.at("2025-03-01 03:00")
        await world.push({MAR: month(issue("2025.03.01", "午间一期"))})
        assert await world.tick("2025-03-01 03:09") is None  # 9 minutes: not settled
        assert await world.tick("2025-03-01 03:10") is not None  # 08:30 is long past
        assert await world.tick("2025-03-01 03:30") is None
        world.at("2025-03-01 05:00")
        await world.push(
            {MAR: month(issue("2025.03.01", "午间一期"), issue("2025.03.02", "又一期"))}
        )
        assert await world.tick("2025-03-01 05:11") is not None
        assert await world.queued() == [(1, "2025-03-01"), (1, "2025-03-02")]


async def test_time_now_gets_each_issue_once_it_settles(world: World) -> None:
    from bot import replies
    from bot.db import chats
    from bot.db.chats import ChatInfo
    from bot.replies import Ctx

    await world.push({FEB: OLD})
    await world.seed((1, "private", "2025-02-28"), (2, "private", "2025-02-28"))
    c = Ctx(
        world.archive,
        "en",
        dt.date(2025, 3, 1),
        "briefbot",
        chat=ChatInfo(1, "private"),
        user_id=1,
        delivery=world.config.delivery,
    )  # type: ignore[arg-type]
    assert "as soon as it is final" in (await replies.delivery_time(c, "now")).messages[0]
    assert "as soon as it is final" in (await replies.delivery_time(c, "")).messages[0]
    assert await chats.is_on_arrival(world.db, 1) and not await chats.is_on_arrival(world.db, 2)
    record = await chats.get(world.db, 1)
    assert record is not None and record.delivery_time is None  # reads fine
    world.at("2025-03-01 03:00")
    await world.push({MAR: month(issue("2025.03.01", "午间一期"))})
    assert await world.tick("2025-03-01 03:10") is not None
    assert await world.queued() == [(1, "2025-03-01")]  # chat 2 waits for 08:30
    assert await world.tick("2025-03-01 03:20") is None
    await world.tick("2025-03-02 00:31")
    assert await world.queued() == [(1, "2025-03-01"), (2, "2025-03-01")]
    assert "08:30" in (await replies.delivery_time(c, "default")).messages[0]


async def test_watches_hear_of_an_issue_once_it_is_ready(world: World) -> None:
    await world.push({FEB: OLD})
    assert await world.follower.newly_ready() == []  # the first call takes stock
    await world.push({MAR: month(issue("2025.03.01", "小米手机", ""))})
    world.now += dt.timedelta(hours=1)
    assert await world.follower.newly_ready() == []  # a stub is never ready
    await world.push({MAR: month(issue("2025.03.01", "小米手机", "华为"))})
    world.now += dt.timedelta(seconds=599)
    assert await world.follower.newly_ready() == []
    world.now += dt.timedelta(seconds=2)
    assert await world.follower.newly_ready() == [dt.date(2025, 3, 1)]
    assert await world.follower.newly_ready() == []  # once
