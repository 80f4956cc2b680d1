"""The streamed full build: each file parsed once, new dates written as they are read, and
a duplicate met later still decided by the rule of bot.core.content.resolve."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.core.content import read_archive
from bot.db import sync as sync_module
from bot.db.archive import Archive

D = dt.date


def issue(day: str, *items: str) -> str:
    lines = [f"## {day}\n\n{day} 行业快讯\n"]
    lines += [f"{n}. {text}\n   https://example.com/{n}\n" for n, text in enumerate(items, 1)]
    return "\n".join(lines) + "\n"


async def index_matches_read_archive(store: Archive, root: Path) -> None:
    """The index holds exactly the issues `briefbot check` picks, item for item."""
    want = read_archive(root).issues
    assert await store.issue_dates() == sorted(want)
    for date, expected in want.items():
        got = await store.issue(date)
        assert got is not None
        assert (got.title, got.items) == (expected.title, expected.items), date


async def test_a_later_right_month_copy_replaces_the_streamed_one(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    # The January file (read first) carries a stray copy of 02.01; February's own wins.
    write("newsflash-202501.md", issue("2025.01.31", "一月") + issue("2025.02.01", "副本"))
    write("newsflash-202502.md", issue("2025.02.01", "原文") + issue("2025.02.02", "二"))
    report = await store.sync(content)
    assert report.added == [D(2025, 1, 31), D(2025, 2, 1), D(2025, 2, 2)]
    assert any("also appears" in p.message for p in report.problems)
    await index_matches_read_archive(store, content)
    assert (await store.search("副本")).total == 0  # its FTS rows went with it
    assert (await store.search("原文")).total == 1
    assert await store.counts() == (3, 3)


async def test_a_date_twice_in_one_file_keeps_the_later_copy(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    write(
        "newsflash-202502.md",
        issue("2025.02.01", "初稿") + issue("2025.02.02", "二") + issue("2025.02.01", "更正"),
    )
    await store.sync(content)
    await index_matches_read_archive(store, content)
    assert [h.text for h in (await store.search("更正")).hits] == ["更正"]
    assert (await store.search("初稿")).total == 0


async def test_streamed_in_chunks_and_parsed_files_not_held(
    store: Archive,
    content: Path,
    write: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sync_module, "STREAM_ITEMS", 3)
    for m in range(1, 7):
        days = "".join(issue(f"2025.{m:02d}.{d:02d}", f"第{m}月{d}日", "芯片") for d in (1, 2))
        write(f"newsflash-2025{m:02d}.md", days)
    held: list[int] = []
    original = sync_module._Sync._resolve

    async def spy(self: sync_module._Sync, states: dict, db_issues: dict) -> dict:  # type: ignore[type-arg]
        held.append(sum(s.parsed is not None for s in states.values()))
        return await original(self, states, db_issues)

    monkeypatch.setattr(sync_module._Sync, "_resolve", spy)
    report = await store.sync(content)
    assert held == [0]  # every file was streamed and let go
    assert (report.issues, report.items, report.files_read) == (12, 24, 6)
    assert (await store.search("芯片")).total == 12
    await index_matches_read_archive(store, content)
    # Nothing changed: nothing is read or written again.
    again = await store.sync(content)
    assert (again.files_read, again.changed) == (0, False)
