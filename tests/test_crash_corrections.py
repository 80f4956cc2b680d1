"""Corrections survive `kill -9`, with the real program: `briefbot run` follows a git
upstream, delivers an issue to many chats, the upstream corrects it, and the bot is killed
with SIGKILL while it edits the messages in place; started again, it finishes. At the end
every message sent for the issue was edited exactly once (no message changed twice, none
left showing the old text); an edit in flight at the kill may be asked again, and the fake
answers it "message is not modified" like Telegram does, which changes nothing."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.db.archive import Archive
from fakebot import FakeBotAPI, fake_bot_api
from fakebot.upstream import Upstream, issue, month

from .test_run import TOKEN, start, stop, wait_for

# Timed child processes: one xdist worker runs these one at a time (pyproject addopts).
pytestmark = pytest.mark.xdist_group("timing")

# Enough chats that the kill lands mid-correction with a second to spare at 100 edits/s
# (40 done, 110 to go), few enough that the whole run takes a few seconds.
CHATS = range(1, 151)
FEB = "docs/2025/newsflash-202502.md"
MAR = "docs/2025/newsflash-202503.md"
MARK = "✏️ 已更正"


@pytest.fixture
def api() -> Iterator[FakeBotAPI]:
    with fake_bot_api(token=TOKEN, rate_limits=False) as server:
        yield server


async def seed(db: Path) -> None:
    store = await Archive.open(db)
    async with store.db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO chats (id, type, status, last_issue, last_slot)"
            " VALUES (?, 'private', 'active', '2025-02-28', '2025-03-01T00:30:00Z')",
            [(cid,) for cid in CHATS],
        )
    await store.close()


def issue_messages(api: FakeBotAPI) -> dict[tuple[int, int], str]:
    """(chat, message id) of every message of the 2025-03-01 issue -> what it shows now."""
    out = {}
    for m in api.calls("sendMessage"):
        chat = int(m.params["chat_id"])
        if m.ok and chat in CHATS and "三月第一条" in str(m.params.get("text")):
            key = (chat, int(m.result["message_id"]))
            out[key] = (api.message(*key) or {}).get("text", "")
    return out


def revisions(db: Path) -> int:
    with sqlite3.connect(db) as raw:
        return int(raw.execute("SELECT count(*) FROM revisions").fetchone()[0])


def edited(api: FakeBotAPI) -> Counter[tuple[int, int]]:
    """How many times each message was changed (the edits the fake accepted)."""
    return Counter(
        (int(c.params["chat_id"]), int(c.params["message_id"]))
        for c in api.calls("editMessageText")
        if c.ok
    )


def test_kill_9_mid_correction_then_restart_edits_every_message_once(
    tmp_path: Path, api: FakeBotAPI
) -> None:
    up = Upstream(tmp_path / "up.git")
    up.push({FEB: month(issue("2025.02.28", "二月最后一期"))})
    db = tmp_path / "data" / "bot.sqlite3"
    db.parent.mkdir()
    asyncio.run(seed(db))
    config = tmp_path / "config.yaml"
    config.write_text(
        f"content:\n  dir: {tmp_path}\n  settle_seconds: 0.5\n"
        f"  source:\n    git: file://{up.path}\n    path: docs\n    poll_seconds: 1\n"
        f"storage:\n  path: {db}\n"
        f"telegram:\n  api_base_url: {api.url}\n"
        "delivery:\n  on_arrival: true\n  paid_broadcast: true\n"
        "  max_messages_per_second: 100\n",
        encoding="utf-8",
    )
    first = start(config)
    try:
        wait_for(lambda: revisions(db) == 1, 30)  # the first fetch: the archive
        up.push({MAR: month(issue("2025.03.01", "三月第一条", "三月第二条"))})
        wait_for(lambda: len(issue_messages(api)) == len(CHATS), 30)
        up.push({MAR: month(issue("2025.03.01", "三月第一条", "三月第二条（更正）"))})
        wait_for(lambda: len(edited(api)) >= 40, 30)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    before = edited(api)
    assert len(before) < len(CHATS), "the correction finished before the kill; nothing tested"
    with sqlite3.connect(db) as raw:
        done = raw.execute("SELECT count(*) FROM edits WHERE status = 'done'").fetchone()[0]
    assert 0 < done <= len(before)

    second = start(config)
    try:
        wait_for(lambda: all(t.endswith(MARK) for t in issue_messages(api).values()), 30)
    finally:
        code, output = stop(second)
    assert code == 0, output[-2000:]
    shown = issue_messages(api)
    assert len(shown) == len(CHATS)  # one message per chat, never re-sent
    assert all("三月第二条（更正）" in t and t.endswith(MARK) for t in shown.values())
    changes = edited(api)
    assert set(changes) == set(shown)  # none left stale
    assert set(changes.values()) == {1}  # none changed twice
    asked = Counter(
        (int(c.params["chat_id"]), int(c.params["message_id"]))
        for c in api.calls("editMessageText")
    )
    repeats = sum(asked.values()) - len(asked)
    assert 0 <= repeats <= 16  # at most the in-flight window at the kill, answered not modified
    assert all(
        c.ok or "message is not modified" in str((c.response or {}).get("description"))
        for c in api.calls("editMessageText")
    )
    with sqlite3.connect(db) as raw:
        statuses = dict(raw.execute("SELECT status, count(*) FROM edits GROUP BY status"))
    assert statuses == {"done": len(CHATS)}
