from __future__ import annotations

import shutil
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bot.db.archive import Archive
from fakebot import FakeBotAPI, fake_bot_api

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "content"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A test that fails before it closes its database leaves aiosqlite's worker thread
    running, and that thread is not a daemon: the interpreter waits for it at exit, so
    pytest would hang after its summary (CI until its time limit). Stop such threads; the
    failure that left them is reported already."""
    import gc
    import sys

    import aiosqlite

    gc.collect()
    left = [
        c
        for c in gc.get_objects()
        if isinstance(c, aiosqlite.Connection) and c._running and c._thread.is_alive()
    ]
    for conn in left:
        conn.stop()
    if left:
        print(f"\n{len(left)} aiosqlite connection(s) left open by the tests", file=sys.stderr)


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """An empty content folder."""
    root = tmp_path / "content"
    root.mkdir()
    return root


@pytest.fixture
def bundled(tmp_path: Path) -> Path:
    """A copy of the bundled archive that a test may change."""
    root = tmp_path / "bundled"
    shutil.copytree(BUNDLED, root)
    return root


@pytest.fixture
def write(content: Path) -> Callable[[str, str], Path]:
    """Write a content file from dedented text: write("2025/newsflash-202502.md", text)."""

    def _write(rel: str, text: str) -> Path:
        path = content / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Archive]:
    s = await Archive.open(tmp_path / "db" / "test.sqlite3")
    yield s
    await s.close()


@pytest.fixture
def fake_api() -> Iterator[FakeBotAPI]:
    """A local fake Bot API server that python-telegram-bot talks to over HTTP."""
    with fake_bot_api() as server:
        yield server


@pytest.fixture
def open_api() -> Iterator[FakeBotAPI]:
    """The fake server without flood limits, for tests that fire replies faster than a human."""
    with fake_bot_api(rate_limits=False) as server:
        yield server
