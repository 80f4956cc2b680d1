"""The index: incremental sync, keeping the last good version, atomic swaps, migrations."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.db import database
from bot.db import sync as store_module
from bot.db.archive import Archive
from bot.db.database import StoreError
from bot.db.schema import MIGRATIONS

from .conftest import BUNDLED

D = dt.date


def month(days: dict[int, list[str]], m: int = 2) -> str:
    parts = [f"# 2025年{m}月\n"]
    for day, items in days.items():
        parts.append(f"## 2025.{m:02d}.{day:02d}\n\n2025年{m:02d}月{day:02d}日 💡行业快讯\n")
        parts += [
            f"{n}. {text}\n   https://example.com/{day}/{n}\n" for n, text in enumerate(items, 1)
        ]
    return "\n".join(parts)


async def test_full_build_then_nothing_to_read(store: Archive) -> None:
    first = await store.sync(BUNDLED)
    assert (first.issues, first.items, len(first.added), first.files_read) == (3, 31, 3, 1)
    again = await store.sync(BUNDLED)
    assert (again.added, again.updated, again.removed, again.files_read) == ([], [], [], 0)


async def test_added_updated_removed(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    write("a/newsflash-202502.md", month({1: ["一"], 2: ["二"]}))
    write("a/newsflash-202503.md", month({1: ["三月"]}, m=3))
    await store.sync(content)
    write("a/newsflash-202502.md", month({1: ["一"], 2: ["二改"], 3: ["新"]}))
    os.remove(content / "a/newsflash-202503.md")
    report = await store.sync(content)
    assert report.added == [D(2025, 2, 3)]
    assert report.updated == [D(2025, 2, 2)]
    assert report.removed == [D(2025, 3, 1)]
    assert report.files_read == 1
    assert (report.issues, report.items) == (3, 3)
    issue = await store.issue(D(2025, 2, 2))
    assert issue is not None and issue.items[0].text == "二改"
    assert (await store.search("三月")).total == 0  # the FTS rows went with the issue
    assert (await store.search("二改")).total == 1


async def test_touched_but_unchanged_file_is_hashed_not_reindexed(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    path = write("newsflash-202502.md", month({1: ["一"]}))
    await store.sync(content)
    os.utime(path, ns=(1, 1))
    report = await store.sync(content)
    assert report.files_read == 1 and not report.changed


async def test_invalid_utf8_keeps_the_last_good_version(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    path = write("newsflash-202502.md", month({1: ["好消息"]}))
    await store.sync(content)
    path.write_bytes(path.read_bytes() + b"\n5. \xff\xfe broken\n")
    report = await store.sync(content)
    assert not report.changed and report.issues == 1
    assert any("UTF-8" in p.message for p in report.problems)
    assert any("keeping the last good version" in p.message for p in report.problems)
    assert (await store.search("好消息")).total == 1


async def test_emptied_file_keeps_the_last_good_version(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    path = write("newsflash-202502.md", month({1: ["好消息"]}))
    await store.sync(content)
    path.write_text("")
    report = await store.sync(content)
    assert report.issues == 1 and any("empty" in p.message for p in report.problems)


async def test_issue_that_breaks_keeps_its_last_good_version(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    write("newsflash-202502.md", month({1: ["一"], 2: ["二"]}))
    await store.sync(content)
    write("newsflash-202502.md", month({1: ["一改"]}) + "\n## 2025.02.02\n\n只剩标题\n")
    report = await store.sync(content)
    assert report.updated == [D(2025, 2, 1)] and report.removed == []
    kept = await store.issue(D(2025, 2, 2))
    assert kept is not None and kept.items[0].text == "二"
    assert any("no items" in p.message for p in report.problems)


async def test_duplicate_winner_moves_when_the_winning_copy_goes(
    store: Archive, content: Path, write: Callable[[str, str], Path]
) -> None:
    write("newsflash-202502.md", month({1: ["原文"]}))
    write("newsflash-202503.md", month({1: ["三月"]}, m=3) + "\n## 2025.02.01\n\nt\n\n1. 副本\n")
    first = await store.sync(content)
    assert any("also appears" in p.message for p in first.problems)
    issue = await store.issue(D(2025, 2, 1))
    assert issue is not None and issue.items[0].text == "原文"
    os.remove(content / "newsflash-202502.md")
    second = await store.sync(content)
    assert second.updated == [D(2025, 2, 1)] and not second.removed
    issue = await store.issue(D(2025, 2, 1))
    assert issue is not None and issue.items[0].text == "副本"


async def test_missing_content_dir_does_not_wipe_the_index(store: Archive, tmp_path: Path) -> None:
    await store.sync(BUNDLED)
    report = await store.sync(tmp_path / "nowhere")
    assert report.issues == 3 and any("does not exist" in p.message for p in report.problems)


async def test_failed_sync_rolls_back_and_readers_see_the_old_index(
    store: Archive,
    content: Path,
    write: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write("newsflash-202502.md", month({1: ["一"], 2: ["二"]}))
    await store.sync(content)
    write("newsflash-202502.md", month({1: ["一改"], 2: ["二改"], 3: ["三"]}))
    original = store_module._Sync._apply

    async def write_then_fail(self: store_module._Sync, batch: store_module._Writes) -> None:
        await original(self, batch)
        # Every write of the sync is done but not committed: readers see the old index.
        assert (await store.search("一改")).total == 0
        assert (await store.search("二")).total == 1
        raise RuntimeError("disk full")

    monkeypatch.setattr(store_module._Sync, "_apply", write_then_fail)
    with pytest.raises(RuntimeError):
        await store.sync(content)
    assert await store.counts() == (2, 2)
    assert (await store.search("一改")).total == 0
    monkeypatch.undo()
    report = await store.sync(content)  # the failed sync left nothing behind: retry works
    assert report.updated == [D(2025, 2, 1), D(2025, 2, 2)] and report.added == [D(2025, 2, 3)]


async def test_schema_version_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    s = await Archive.open(path)
    await s.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_migration_upgrades_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.sqlite3"
    s = await Archive.open(path)
    await s.sync(BUNDLED)
    await s.close()
    extra = "CREATE TABLE later_feature (id INTEGER PRIMARY KEY);"
    db = await database.connect(path)
    assert await database.apply_migrations(db, [*MIGRATIONS, extra]) == len(MIGRATIONS) + 1
    await db.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM issues").fetchone()[0] == 3
        assert raw.execute("SELECT count(*) FROM later_feature").fetchone()[0] == 0


async def test_newer_schema_or_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as raw:
        raw.execute("PRAGMA user_version = 999")
    with pytest.raises(StoreError, match="newer than this release"):
        await Archive.open(newer)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"cannot open|not a database"):
        await Archive.open(garbage)


async def _reference(store: Archive, date: dt.date) -> tuple[object, ...]:
    """An issue and its neighbours read the way they were before Archive.view (issue 12):
    a statement each for the row, the items and the neighbours."""
    iso = date.isoformat()
    row = await store.db.row("SELECT title, file, line FROM issues WHERE date = ?", [iso])
    items = await store.db.rows(
        "SELECT number, text, urls, line FROM items WHERE date = ? ORDER BY position", [iso]
    )
    before, after = await store.neighbors(date)
    return row, [(n, x, tuple(json.loads(u)), ln) for n, x, u, ln in items], before, after


@pytest.mark.parametrize(
    "asked",
    [
        None,
        D(2025, 2, 1),
        D(2025, 2, 2),
        D(2025, 2, 9),
        D(2025, 1, 31),
        D(2025, 3, 1),
        D(2025, 3, 9),
        D(2025, 4, 1),
    ],
)
async def test_view_is_the_issue_its_neighbours_and_latest_in_one_statement(
    store: Archive, content: Path, write: Callable[[str, str], Path], asked: dt.date | None
) -> None:
    write("a/newsflash-202502.md", month({1: ["一", "二", "三"], 2: ["四"], 9: ["五", "六"]}))
    write("a/newsflash-202503.md", month({1: ["三月"]}, m=3))
    await store.sync(content)
    view = await store.view(asked)
    date = asked or await store.latest_date()
    assert date is not None and view.date == date
    row, items, before, after = await _reference(store, date)
    assert (view.before, view.after) == (before, after)
    if row is None:
        assert view.issue is None and await store.issue(date) is None
        return
    assert view.issue is not None and view.issue == await store.issue(date)
    assert (view.issue.title, view.issue.file, view.issue.line) == tuple(row)
    got = [(i.number, i.text, i.urls, i.line) for i in view.issue.items]
    assert got == items


async def test_view_of_the_latest_issue_in_an_empty_archive(store: Archive) -> None:
    view = await store.view(None)
    assert (view.date, view.issue, view.before, view.after) == (None, None, None, None)
    empty = await store.view(D(2025, 2, 14))
    assert (empty.date, empty.issue, empty.before, empty.after) == (
        D(2025, 2, 14),
        None,
        None,
        None,
    )
