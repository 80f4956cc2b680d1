"""The promise of the outbox, with the real program: `briefbot run` is killed with SIGKILL
in the middle of a broadcast and started again. Nothing is lost; nothing Telegram had
confirmed is sent again; only messages in flight at the kill may repeat."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import pytest

from bot.db import chats
from bot.db.archive import Archive

from .test_run import TOKEN, api, start, stop, wait_for, write_config  # noqa: F401 - fixture

# Timed child processes: one xdist worker runs these one at a time (pyproject addopts).
pytestmark = pytest.mark.xdist_group("timing")

# Enough chats that the kill lands mid-broadcast with seconds to spare at the default
# 25 messages/s (40 sent, 80 to go), few enough that the whole run takes a few seconds.
CHATS = range(1, 121)
ADMIN = 9001


async def seed(config_db: Path, content: Path) -> None:
    store = await Archive.open(config_db)
    await store.sync(content)
    for cid in CHATS:
        await chats.subscribe(store.db, chats.ChatInfo(cid, "private", f"user {cid}"))
    await store.close()


def delivered(fake: object) -> list[tuple[int, str]]:
    return [(m.chat_id, m.text) for m in fake.sent if m.chat_id in CHATS]  # type: ignore[attr-defined]


def test_kill_9_mid_broadcast_then_restart(tmp_path: Path, bundled: Path, api) -> None:  # noqa: F811
    config = write_config(
        tmp_path,
        bundled,
        api.url,
        f"  admins: [{ADMIN}]\ndelivery:\n  max_messages_per_second: 25\n",
    )
    db = tmp_path / "db.sqlite3"
    asyncio.run(seed(db, bundled))

    first = start(config)
    try:
        wait_for(lambda: any(c.method == "setMyCommands" for c in api.calls()), 30)
        api.push_message(ADMIN, "/broadcast")
        wait_for(lambda: len(delivered(api)) >= 40, 30)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    before = delivered(api)
    assert len(before) < len(CHATS), "the broadcast finished before the kill; nothing tested"
    with sqlite3.connect(db) as raw:
        confirmed = {
            cid for (cid,) in raw.execute("SELECT chat_id FROM outbox WHERE status = 'sent'")
        }
    assert confirmed and confirmed <= {cid for cid, _ in before}

    second = start(config)
    try:
        wait_for(lambda: {cid for cid, _ in delivered(api)} >= set(CHATS), 60)
        wait_for(lambda: any("Broadcast #" in m.text for m in api.messages_to(ADMIN)), 30)
    finally:
        code, output = stop(second)
    assert code == 0, output[-2000:]
    after = delivered(api)[len(before) :]
    assert not {cid for cid, _ in after} & confirmed  # nothing confirmed was sent again
    duplicates = len(delivered(api)) - len(CHATS)
    assert 0 <= duplicates <= 16  # at most the in-flight window at the kill
    texts = {text for _, text in delivered(api)}
    assert len(texts) == 1 and next(iter(texts)).startswith("2025-02-14 · ")
    with sqlite3.connect(db) as raw:
        statuses = dict(
            raw.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall()
        )
    assert statuses == {"sent": len(CHATS)}
