"""Search totals are kept per index version: a repeated search skips the count, and any
change to the index (a sync here or in another process) makes the next total fresh."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.core.search import matches
from bot.db.archive import TOTALS_CACHED, Archive


def month(*texts: str) -> str:
    items = "\n".join(f"{n}. {t}\n   https://example.com/{n}\n" for n, t in enumerate(texts, 1))
    return f"# 2025年2月\n\n## 2025.02.14\n\n2025年02月14日 行业快讯\n\n{items}"


async def traced(store: Archive) -> list[str]:
    statements: list[str] = []
    await store.db._conn.set_trace_callback(statements.append)
    return statements


async def test_a_repeated_search_reuses_its_total(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    write("newsflash-202502.md", month("人工智能芯片", "人工智能汽车", "芯片"))
    await store.sync(content)
    statements = await traced(store)
    first = await store.search("人工智能")
    assert any("count(*)" in s for s in statements)
    statements.clear()
    again = await store.search("人工智能")
    assert again == first and again.total == 2
    assert not any("count(*)" in s for s in statements), statements
    # Past the last page: the total still comes from the cache, and is exact.
    statements.clear()
    assert (await store.search("人工智能", offset=10)).total == 2
    assert not any("count(*)" in s for s in statements), statements


async def test_a_sync_makes_the_next_total_fresh(
    store: Archive, content: Path, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("newsflash-202502.md", month("人工智能芯片"))
    await store.sync(content)
    assert (await store.search("人工智能")).total == 1
    write("newsflash-202502.md", month("人工智能芯片", "人工智能汽车"))
    await store.sync(content)
    page = await store.search("人工智能")
    assert page.total == 2 and len(page.hits) == 2
    # Another process (another connection) syncs: this one sees the new total at once.
    write("newsflash-202502.md", month("人工智能芯片", "人工智能汽车", "人工智能手机"))
    async with await Archive.open(store.db.path) as other:
        await other.sync(content)
    assert (await store.search("人工智能")).total == 3
    assert (await store.search("人工智能", offset=5)).total == 3
    write("newsflash-202502.md", month("芯片"))
    async with await Archive.open(store.db.path) as other:
        await other.sync(content)
    assert (await store.search("人工智能", offset=5)).total == 0
    assert (await store.search("人工智能")).total == 0


async def test_cached_totals_equal_the_naive_scan(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    texts = [
        "小米汽车 SU7",
        "小米手机",
        "AI 芯片",
        "OpenAI 发布 GPT",
        "芯片 AI 小米",
        "RISC-V 芯片",
    ]
    write("newsflash-202502.md", month(*texts))
    await store.sync(content)
    for _ in range(2):  # the second round answers from the cache
        for query in ("小米", "芯片", "ai", "小米 芯片", "risc-v", "米", "openai 2025-02"):
            page = await store.search(query)
            want = sum(matches(t, page.terms) for t in texts)
            assert page.total == want == len(page.hits), query


async def test_the_cache_is_bounded(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    write("newsflash-202502.md", month("芯片"))
    await store.sync(content)
    for n in range(TOTALS_CACHED + 50):
        await store.search(f"芯片 2000-01..{2025 + n}-12")  # a hit each: cached
    assert len(store._totals) == TOTALS_CACHED


async def test_a_sync_that_changes_nothing_keeps_the_totals(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    write("newsflash-202502.md", month("人工智能芯片"))
    await store.sync(content)
    assert (await store.search("人工智能")).total == 1
    report = await store.sync(content)  # nothing changed: nothing written, no commit
    assert not report.changed
    statements = await traced(store)
    assert (await store.search("人工智能")).total == 1
    assert not any("count(*)" in s for s in statements), statements


async def test_collapsed_totals_follow_the_twins_across_syncs(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    """/find counts texts: the twins subtracted from a total are those of the index version
    the total was counted at, never the twins of an earlier sync."""
    day = "## 2025.02.{d}\n\n2025年02月{d}日 行业快讯\n\n1. {t}\n   https://example.com/{d}\n"
    one = day.format(d=14, t="人工智能芯片")
    write("newsflash-202502.md", f"# 2025年2月\n\n{one}")
    await store.sync(content)
    assert (await store.search("人工智能", collapse=True)).total == 1
    twice = day.format(d=15, t="人工智能芯片") + "\n" + one
    write("newsflash-202502.md", f"# 2025年2月\n\n{twice}")
    await store.sync(content)
    for _ in range(2):  # counted, then from the cache
        assert (await store.search("人工智能", collapse=True)).total == 1
        assert (await store.search("人工智能")).total == 2
        assert (await store.search("芯片 2025-02-14", collapse=True)).total == 1
    other = day.format(d=16, t="人工智能汽车") + "\n" + twice
    write("newsflash-202502.md", f"# 2025年2月\n\n{other}")
    await store.sync(content)
    assert (await store.search("人工智能", collapse=True)).total == 2
    assert (await store.search("人工智能")).total == 3
