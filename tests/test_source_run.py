"""`briefbot run` following a git upstream, as a process against the fake Bot API server,
replaying commits: the archive (not broadcast), a stub (nothing goes out), the finished issue (delivered once, on arrival, after it settles), a correction
(edited in place, not re-sent). No credentials in any log line."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakebot import FakeBotAPI, fake_bot_api
from fakebot.upstream import Upstream, issue, month

from .test_run import TOKEN, start, stop, wait_for

# Timed child processes: one xdist worker runs these one at a time (pyproject addopts).
pytestmark = pytest.mark.xdist_group("timing")

USER = 7001
FEB = "docs/2025/newsflash-202502.md"
MAR = "docs/2025/newsflash-202503.md"


@pytest.fixture
def api() -> Iterator[FakeBotAPI]:
    with fake_bot_api(token=TOKEN, rate_limits=False) as server:
        yield server


def issue_messages_to(api: FakeBotAPI, chat: int) -> list[int]:
    return [
        m.message_id
        for m in api.messages_to(chat)
        if m.method == "sendMessage" and m.message_id and "💡" in m.text
    ]


def watched(api: FakeBotAPI) -> list[str]:
    return [m.text for m in api.messages_to(USER) if "🔔" in m.text]


def blocked(db: Path, date: str) -> str | None:
    """Why the bot holds the issue back (None: it has not seen the issue yet)."""
    if not db.exists():
        return None
    with sqlite3.connect(db) as raw:
        row = raw.execute("SELECT blocked FROM revisions WHERE date = ?", (date,)).fetchone()
    return None if row is None else str(row[0])


# Settling is half a poll: an issue seen at one poll is settled at the next (1 s later).
SETTLE = 0.5


def test_run_follows_the_upstream_settles_and_corrects(tmp_path: Path, api: FakeBotAPI) -> None:
    up = Upstream(tmp_path / "up.git")
    up.push({FEB: month(issue("2025.02.27", "二月二十七"), issue("2025.02.28", "二月最后一期"))})
    db = tmp_path / "data" / "bot.sqlite3"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"content:\n  dir: {tmp_path}\n  settle_seconds: {SETTLE}\n"
        f"  source:\n    git: file://{up.path}\n    path: docs\n    poll_seconds: 1\n"
        f"storage:\n  path: {db}\n"
        f"telegram:\n  api_base_url: {api.url}\n"
        "delivery:\n  on_arrival: true\n",
        encoding="utf-8",
    )
    proc = start(config)
    try:
        api.push_message(USER, "/start")
        wait_for(lambda: bool(api.messages_to(USER)))  # the welcome
        api.push_message(USER, "/watch 三月")
        wait_for(lambda: len(api.messages_to(USER)) == 2)
        up.push({MAR: month(issue("2025.03.01", "三月第一条", ""))})  # being written
        wait_for(lambda: bool(blocked(db, "2025-03-01")))  # fetched: item 2 has no text
        time.sleep(SETTLE + 1.0)  # settled, and polled again: still nothing goes out
        # (and the archive is not news: a new chat waits for its first issue)
        assert issue_messages_to(api, USER) == [] and watched(api) == []

        up.push({MAR: month(issue("2025.03.01", "三月第一条", "三月第二条"))})
        wait_for(lambda: len(issue_messages_to(api, USER)) == 1)
        first = issue_messages_to(api, USER)[-1]
        assert "三月第二条" in (api.message(USER, first) or {})["text"]

        up.push({MAR: month(issue("2025.03.01", "三月第一条", "三月第二条（更正）"))})
        wait_for(lambda: "更正" in (api.message(USER, first) or {}).get("text", ""))
        assert (api.message(USER, first) or {})["text"].endswith("✏️ 已更正")
        time.sleep(1.0)
        assert len(issue_messages_to(api, USER)) == 1  # edited in place, never re-sent
        # The watch heard of the issue once it was final: once, with the finished items.
        (hit,) = watched(api)
        assert "三月第二条" in hit
    finally:
        code, output = stop(proc)
    assert code == 0, output[-2000:]
    assert TOKEN not in output and "Traceback" not in output
