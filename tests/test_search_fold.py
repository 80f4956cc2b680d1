"""Search that finds what the reader means: the re-indexing migration, one result per text
in several issues, and both end to end through the fake Bot API."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

import bot.db.archive as archive_module
from bot.core.content import read_archive
from bot.core.markdown import visible_text
from bot.core.search import parse_query, unigrams
from bot.db.archive import Archive, item_id
from bot.db.database import apply_migrations, connect
from bot.db.schema import MIGRATIONS
from fakebot import FakeBotAPI

from .botkit import BotUnderTest, make_config
from .test_search import naive


async def test_an_old_database_reindexes_on_upgrade_and_finds_traditional(
    tmp_path: Path, content: Path, write: Callable[[str, str], Path]
) -> None:
    """A database of the previous schema, indexed by the old fold (lower case only), with a
    subscriber and a sent message: the upgrade empties the index, keeps delivery, and the
    next sync finds 台积电 when asked for 台積電."""
    write("newsflash-202502.md", "## 2025.02.14\n\nt\n\n1. 台积电 发布 2nm 工艺。\n")
    path = tmp_path / "old.sqlite3"
    conn = await connect(path)
    # The version before the folding migration (later migrations follow it).
    await apply_migrations(
        conn, MIGRATIONS[: next(i for i, m in enumerate(MIGRATIONS) if "item_twins" in m)]
    )
    plain = "台积电 发布 2nm 工艺。"
    rid = item_id(dt.date(2025, 2, 14), 0)
    await conn.executescript(
        "INSERT INTO files VALUES ('newsflash-202502.md', 1, 1, 'x', '[]', '[]');"
        "INSERT INTO issues(date, title, file, line, digest)"
        " VALUES ('2025-02-14', 't', 'newsflash-202502.md', 1, 'd');"
        f"INSERT INTO items VALUES ({rid}, '2025-02-14', 0, 1, '{plain}', '{plain}', '[]', 5);"
        f"INSERT INTO items_uni(rowid, u) VALUES ({rid}, '{unigrams(plain.lower())}');"
        "INSERT INTO chats(id, type, status) VALUES (7, 'private', 'active');"
        "INSERT INTO texts(id, sha256, html) VALUES (1, 'h', 'x');"
    )
    await conn.commit()
    await conn.close()

    async with await Archive.open(path) as store:
        assert await store.db.value("PRAGMA user_version") == len(MIGRATIONS)
        assert await store.counts() == (0, 0)
        assert await store.db.value("SELECT count(*) FROM files") == 0
        assert await store.db.value("SELECT count(*) FROM items_uni WHERE items_uni MATCH 'a'") == 0
        assert await store.db.value("SELECT count(*) FROM chats WHERE status = 'active'") == 1
        assert await store.db.value("SELECT count(*) FROM texts") == 1
        report = await store.sync(content)
        assert report.added == [dt.date(2025, 2, 14)]
        page = await store.search("台積電")
        assert page.total == 1
        (hit,) = page.hits
        assert [visible_text(hit.text)[a:b] for a, b in hit.marks] == ["台积电"]


TWINS = """
## 2024.05.15

t

1. 同一条：台积电 宣布 扩产。
2. 只在 15 日：台积电 财报。
3. 另一条重复：机器人 大会。

## 2024.05.14

t

1. 只在 14 日：台积电 股价。
2. 同一条：台积电 宣布 扩产。
3. 另一条重复：机器人 大会。

## 2024.05.10

t

1. 同一条：台积电 宣布 扩产。
"""

MAY15, MAY14, MAY10 = dt.date(2024, 5, 15), dt.date(2024, 5, 14), dt.date(2024, 5, 10)


@pytest.fixture
async def twins(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> AsyncIterator[Archive]:
    write("newsflash-202405.md", TWINS)
    await store.sync(content)
    yield store


@pytest.mark.parametrize("few_twins", [archive_module.FEW_TWINS, 0])
@pytest.mark.parametrize(
    "query",
    ["台積電", "台积电 扩产", "機器人", "同一条", "只在", "不存在", "2024-05", "2024-05-14"],
)
async def test_collapsed_hits_are_the_naive_scan_one_per_text(
    twins: Archive, content: Path, query: str, few_twins: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Collapsed: the naive scan, keeping the newest item of each text, with the older
    items' dates on it; total and paging count texts. Not collapsed: every item. Both ways
    of counting texts: the plain total less the matching hidden twins (few twins), and the
    hits that are not hidden twins (``few_twins=0``: too many twins)."""
    monkeypatch.setattr(archive_module, "FEW_TWINS", few_twins)
    archive = read_archive(content)
    items = [
        (issue.date, i.number, visible_text(i.text), i.text)
        for issue in reversed(archive.issues.values())
        for i in issue.items
    ]
    q = parse_query(query)
    lo, hi = (q.period.start, q.period.end) if q.period else (dt.date.min, dt.date.max)
    every = [
        (d, n, text)
        for d, n, plain, text in items
        if lo <= d <= hi and (d, n) in naive([(d, n, plain)], query)
    ]
    seen: dict[str, list[tuple[dt.date, int]]] = {}
    for d, n, text in every:
        seen.setdefault(text, []).append((d, n))
    expected = [(dates[0], tuple(dates[1:])) for dates in seen.values()]

    page = await twins.search(query, limit=100, collapse=True)
    assert [((h.date, h.number), h.also) for h in page.hits] == expected
    assert page.total == len(expected)
    pages = [await twins.search(query, offset=o, limit=1, collapse=True) for o in range(4)]
    assert [(h.date, h.number) for p in pages for h in p.hits] == [e[0] for e in expected]
    assert all(p.total == len(expected) for p in pages)

    flat = await twins.search(query, limit=100)
    assert [(h.date, h.number) for h in flat.hits] == [(d, n) for d, n, _ in every]
    assert flat.total == len(every) and all(h.also == () for h in flat.hits)


async def test_a_date_filter_keeps_the_newest_copy_inside_it(twins: Archive) -> None:
    page = await twins.search("同一条 2024-05-10..2024-05-14", collapse=True)
    assert [(h.date, h.number, h.also) for h in page.hits] == [(MAY14, 2, ((MAY10, 1),))]


async def test_twins_follow_the_archive(
    twins: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    """An edited copy is a text of its own at the next sync; a removed issue takes its
    copies with it."""
    write("newsflash-202405.md", TWINS.replace("2. 同一条：台积电 宣布 扩产。", "2. 改过的一条。"))
    await twins.sync(content)
    page = await twins.search("同一条", collapse=True)
    assert [(h.date, h.also) for h in page.hits] == [(MAY15, ((MAY10, 1),))]
    write("newsflash-202405.md", TWINS.split("## 2024.05.14")[0])
    await twins.sync(content)
    page = await twins.search("同一条", collapse=True)
    assert [(h.date, h.also) for h in page.hits] == [(MAY15, ())]
    assert await twins.db.value("SELECT count(*) FROM item_twins") == 0


async def test_find_and_inline_show_a_repeated_item_once_with_both_dates(
    tmp_path: Path, content: Path, write: Callable[[str, str], Path], open_api: FakeBotAPI
) -> None:
    """Through the fake Bot API: /find in Traditional and in full-width finds the Simplified
    and ASCII text, marked where it stands; a text in two issues is one result that names
    both dates, and the count says how many texts."""
    write("newsflash-202405.md", TWINS + "2. ＡＩ 与 AI 与 ⼈⼯智能。\n")
    async with BotUnderTest(open_api, make_config(tmp_path, content, open_api)) as bot:
        (reply,) = await bot.say(5001, "/find 機器人")
        assert "共 1 条结果" in reply.text
        assert "2024-05-15 #3 · 2024-05-14 #3" in reply.text
        assert reply.entities_of("bold").count("机器人") == 1

        (reply,) = await bot.say(5001, "/find 臺積電 擴產")
        assert "共 1 条结果" in reply.text
        assert "2024-05-15 #1 · 2024-05-14 #2 · 2024-05-10 #1" in reply.text

        (reply,) = await bot.say(5001, "/find ａｉ 人工智能")
        assert "共 1 条结果" in reply.text
        marked = reply.entities_of("bold")
        assert {"ＡＩ", "AI", "⼈⼯智能"} <= set(marked)

        answer = await bot.inline("台積電")
        titles = [r["title"] for r in answer["results"]]
        assert titles == [
            "2024-05-15 #1 · 2024-05-14 #2 · 2024-05-10 #1",
            "2024-05-15 #2",
            "2024-05-14 #1",
        ]
