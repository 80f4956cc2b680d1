"""The streamed full build: each file parsed once, new dates written as they are read, and
a duplicate met later still decided by the rule of bot.core.content.resolve; files read in
a worker process give the same index as files read in a thread."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.core.content import read_archive
from bot.db import prepare
from bot.db import sync as sync_module
from bot.db.archive import Archive
from bot.db.database import StoreError

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
        held.append(sum(s.prepared is not None for s in states.values()))
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


def _month_files(write: Callable[[str, str], Path]) -> None:
    # A stray copy of 2025.02.01 in January's file (read first) and its own in February's:
    # the duplicate rule has to see both, whichever process read them.
    write(
        "newsflash-202501.md",
        issue("2025.01.31", "一月", "[台積電](https://x.y/1) 芯片") + issue("2025.02.01", "副本"),
    )
    for m in range(2, 7):
        days = "".join(
            issue(f"2025.{m:02d}.{d:02d}", f"第{m}月{d}日", "**芯片** ﬁle") for d in (1, 2)
        )
        write(f"newsflash-2025{m:02d}.md", days)


async def _snapshot(store: Archive) -> tuple[object, ...]:
    rows = await store.db.rows("SELECT * FROM items ORDER BY id")
    issues = await store.db.rows("SELECT date, title, file, line, digest FROM issues ORDER BY date")
    totals = [(await store.search(q)).total for q in ("芯片", "台积电", "fi", "副本", "原", "芯")]
    return tuple(map(tuple, rows)), tuple(map(tuple, issues)), tuple(totals)


async def test_a_build_read_in_the_worker_process_is_the_same_as_in_a_thread(
    tmp_path: Path,
    content: Path,
    write: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _month_files(write)
    async with await Archive.open(tmp_path / "thread.sqlite3") as store:
        await store.sync(content)
        in_thread = await _snapshot(store)
    started: list[int] = []
    original = prepare.Reader._start

    async def spy(self: prepare.Reader) -> object:
        started.append(1)
        return await original(self)

    monkeypatch.setattr(prepare, "PROCESS_FILES", 1)
    monkeypatch.setattr(prepare, "BATCH_FILES", 2)  # several batches in flight
    monkeypatch.setattr(prepare.Reader, "_start", spy)
    async with await Archive.open(tmp_path / "process.sqlite3") as store:
        report = await store.sync(content)
        assert started == [1]
        assert (report.issues, report.files_read) == (11, 6)
        assert any("also appears" in p.message for p in report.problems)
        assert await _snapshot(store) == in_thread
        await index_matches_read_archive(store, content)


@pytest.mark.parametrize("last_words", ["import sys; sys.stdin.buffer.read(1)", "pass"])
async def test_a_reader_process_that_dies_leaves_the_index_as_it_was(
    store: Archive,
    content: Path,
    write: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
    last_words: str,
) -> None:
    # Dying after its first byte of input (the answer never comes) or at once (the batches
    # meet a closed pipe): either way the sync says so and writes nothing.
    write("newsflash-202412.md", issue("2024.12.31", "旧"))
    await store.sync(content)
    _month_files(write)

    async def dies(self: prepare.Reader) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            last_words,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )

    monkeypatch.setattr(prepare, "PROCESS_FILES", 1)
    monkeypatch.setattr(prepare.Reader, "_start", dies)
    with pytest.raises(StoreError, match="file reader process stopped"):
        await store.sync(content)
    assert await store.issue_dates() == [D(2024, 12, 31)]  # rolled back whole
    monkeypatch.undo()
    await store.sync(content)  # and the next sync builds it
    await index_matches_read_archive(store, content)


async def test_a_cancelled_sync_kills_and_reaps_its_reader_process(
    store: Archive,
    content: Path,
    write: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A worker that takes its batches and never answers: the sync is cancelled mid-read
    # (the bot shutting down); the process must not outlive it, nor be left unreaped.
    write("newsflash-202412.md", issue("2024.12.31", "旧"))
    await store.sync(content)
    _month_files(write)
    started: list[asyncio.subprocess.Process] = []

    async def stalls(self: prepare.Reader) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys, time; sys.stdin.buffer.read(1); time.sleep(60)",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        started.append(proc)
        return proc

    monkeypatch.setattr(prepare, "PROCESS_FILES", 1)
    monkeypatch.setattr(prepare.Reader, "_start", stalls)
    task = asyncio.create_task(store.sync(content))
    for _ in range(500):
        if started:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # its batches written, the sync waiting for an answer
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(started) == 1 and started[0].returncode is not None  # killed and waited for
    assert await store.issue_dates() == [D(2024, 12, 31)]  # rolled back whole


@pytest.mark.parametrize(
    "urls",
    [
        (),
        ("https://a.b/c",),
        ("https://a.b/c", 'http://x.y/"q'),
        ("https://例子.com",),
        ("a\\b",),
        ("x\x7f", "y\x1f"),
        ("https://a/b?c=1&d=[2]",),
    ],
)
def test_urls_json_is_json_dumps(urls: tuple[str, ...]) -> None:
    assert prepare._urls_json(urls) == json.dumps(list(urls))
