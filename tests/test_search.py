"""Search: recall equal to a naive substring scan, hostile input, date filters, paging."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.core.content import read_archive
from bot.core.markdown import visible_text
from bot.core.search import QueryError, fold, matches, parse_query
from bot.db.archive import Archive

from .conftest import BUNDLED

QUERIES = [
    # 1-char CJK, 2-char, 3+ char
    "芯",
    "车",
    "米",
    "的",
    "小米",
    "芯片",
    "英伟",
    "汽车",
    "英伟达",
    "人工智能",
    "小鹏汽车",
    # Latin words, case-insensitive, inside other words
    "deepseek",
    "DeepSeek",
    "openai",
    "ai",
    "AI",
    "o1",
    "arm",
    "IPO",
    "v3",
    # mixtures and punctuation
    "AT&T",
    "Qwen2.5-Max",
    "STM32U0",
    "DeepSeek-V3",
    "2025年",
    "30,350",
    "3万+",
    "“3万+”",
    "《巴黎协定》",
    "（AI）",
    "%",
    "1%",
    "Llama 3",
    # multi-term AND
    "AI 芯片",
    "小米 万亿",
    "DeepSeek OpenAI",
    "开源 百度 6月30日",
    "特朗普 AI",
    # nothing
    "不存在的词",
    "zzzz",
]


def naive(items: list[tuple[dt.date, int, str]], query: str) -> list[tuple[dt.date, int]]:
    q = parse_query(query)
    return [(d, n) for d, n, plain in items if matches(plain, q.terms)]


async def all_hits(store: Archive, query: str) -> list[tuple[dt.date, int]]:
    page = await store.search(query, limit=10_000)
    assert page.total == len(page.hits)
    return [(h.date, h.number) for h in page.hits]


@pytest.mark.parametrize("query", QUERIES)
async def test_recall_equals_naive_scan_on_bundled_archive(store: Archive, query: str) -> None:
    await store.sync(BUNDLED)
    archive = read_archive(BUNDLED)
    items = [
        (issue.date, item.number, visible_text(item.text))
        for issue in reversed(archive.issues.values())
        for item in issue.items
    ]
    expected = naive(items, query)
    assert await all_hits(store, query) == expected


TRICKY = """
## 2025.02.14

t

1. OpenAI 和 Open AI 以及 AI、Ai、aI；AT&T 与 AT & T。
2. a < b > c &amp; "引号" 'single' *星号* -减号 :冒号 (括号) 100% 下划线_x 反斜杠\\\\y
3. 表情 😀🚀 与 RTL\u200f标记 和 零宽\u200b空格 ŞİŁ Straße ΣΑΣ
4. NEAR( AND OR NOT 是 FTS5 的关键字; SELECT * FROM items; -- DROP TABLE
5. 含链接的 [标签文字](https://example.com/唯一路径) 结尾
"""


@pytest.mark.parametrize(
    "query",
    [
        "AI",
        "ai",
        "open",
        "at&t",
        "AT & T",
        "&amp;",
        "<",
        "a < b",
        '"引号"',
        "'single'",
        "*",
        "*星号*",
        "-减号",
        ":冒号",
        "(括号)",
        "100%",
        "%",
        "_x",
        "\\",
        "😀",
        "😀🚀",
        "🚀",
        "straße",
        "ŞİŁ",
        "σας",
        "near(",
        "AND",
        "OR",
        "NOT",
        "select",
        "items;",
        "--",
        "drop",
        "标签文字",
        "example.com",
        "唯一路径",
        "零宽空格",
        "RTL标记",
    ],
)
async def test_recall_on_hostile_content_and_queries(
    store: Archive, content: Path, write: Callable[[str, str], Path], query: str
) -> None:
    write("newsflash-202502.md", TRICKY)
    await store.sync(content)
    (issue,) = read_archive(content).issues.values()
    items = [(issue.date, i.number, visible_text(i.text)) for i in issue.items]
    expected = naive(items, query)
    assert await all_hits(store, query) == expected


async def test_link_urls_are_not_searched_but_labels_are(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    write("newsflash-202502.md", TRICKY)
    await store.sync(content)
    assert (await store.search("标签文字")).total == 1
    assert (await store.search("example.com")).total == 0


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '""',
        "'",
        "*",
        "AND",
        "OR NOT",
        "NEAR(",
        "NEAR(a b",
        "-",
        ":",
        "()",
        ")(",
        "%",
        "_",
        "\\",
        "'; DROP TABLE items; --",
        "\u200b",
        "\x00\x07",
        "😀",
        "a" * 64,
        "u : 82af",
        'b : "x"',
        "小米 2025",
        "AI 2025-02",
        "AI 2024-11..2025-02",
        "2025-02-14",
    ],
)
async def test_hostile_queries_get_results_not_exceptions(store: Archive, query: str) -> None:
    await store.sync(BUNDLED)
    try:
        page = await store.search(query)
    except QueryError as err:
        assert str(err)  # a clear message is fine; an exception of another type is not
    else:
        assert page.total >= len(page.hits)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty"),
        ("   \u200b\u3000", "empty"),
        ("x" * 4000, "too long"),
        ("a" * 65, "too long"),
        ("2025 2024", "at most one date filter"),
        ("小米 2025-13", "bad date filter"),
        ("小米 2025-03..2025-01", "ends before it starts"),
        (" ".join("abcdefghi"), "too many terms"),
    ],
)
def test_bad_queries_explain_themselves(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(query)


async def test_date_filters_and_paging(store: Archive) -> None:
    await store.sync(BUNDLED)
    every = await all_hits(store, "DeepSeek")
    assert every == sorted(every, key=lambda h: (-h[0].toordinal(), h[1]))
    feb14 = await all_hits(store, "DeepSeek 2025-02-14")
    assert feb14 == [h for h in every if h[0] == dt.date(2025, 2, 14)] and feb14
    ranged = await all_hits(store, "DeepSeek 2025-02-07..2025-02-13")
    assert ranged == [h for h in every if h[0] == dt.date(2025, 2, 10)] and ranged
    assert await all_hits(store, "DeepSeek 2024") == []
    quoted = await store.search('"2025-02"')  # quoted: text, not a date filter
    assert quoted.total == 0
    pages = [await store.search("DeepSeek", offset=o, limit=2) for o in range(0, len(every), 2)]
    assert [(h.date, h.number) for p in pages for h in p.hits] == every
    assert all(p.total == len(every) for p in pages)
    only_date = await store.search("2025-02-10")
    assert only_date.total == 10 and only_date.hits[0].number == 1


async def test_hits_mark_every_occurrence(store: Archive) -> None:
    await store.sync(BUNDLED)
    page = await store.search("小米 万亿", limit=1)
    (hit,) = page.hits
    plain = visible_text(hit.text)
    marked = [plain[a:b] for a, b in hit.marks]
    assert marked.count("小米") == plain.count("小米") and marked.count("万亿") == plain.count(
        "万亿"
    )
    assert all(fold(plain[a:b]) in ("小米", "万亿") for a, b in hit.marks)
