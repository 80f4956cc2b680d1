"""The sender reads its next window beside dispatch (issue 12): sends go on while a slow
read runs, and a row sent and settled around a read is never loaded (and sent) again."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest

from bot.core.pacing import Limits
from bot.db import outbox
from bot.db.archive import Archive
from bot.delivery.sender import Sender

CHATS, PARTS = 150, 3
LIMITS = Limits(per_second=2000.0, burst=30.0, in_flight=20, backoff=0.05, backoff_max=0.1)


class Recorder:
    """A Transport that counts each (chat, text) it was asked to send."""

    def __init__(self) -> None:
        self.sent: Counter[tuple[int, str]] = Counter()
        self.reading = False  # a refill's read is under way
        self.during_read = 0
        self.reads = 0

    async def send_html(
        self,
        chat_id: int,
        html: str,
        *,
        paid: bool = False,
        silent: bool = False,
        thread_id: int | None = None,
    ) -> int:
        self.sent[(chat_id, html)] += 1
        self.during_read += self.reading
        await asyncio.sleep(0.001)
        return sum(self.sent.values())

    async def edit_html(self, chat_id: int, message_id: int, html: str) -> None:
        raise AssertionError("no corrections in this test")

    def redact(self, text: str) -> str:
        return text


async def _queue(store: Archive) -> None:
    db = store.db
    async with db.transaction():
        await db.executemany(
            "INSERT INTO chats (id, type, status) VALUES (?, 'private', 'active')",
            [(chat,) for chat in range(1, CHATS + 1)],
        )
        rows = []
        for part in range(PARTS):
            for chat in range(1, CHATS + 1):
                tid = await outbox.text_id(db, f"chat {chat} part {part}")
                rows.append(("issue", "2025-02-14", chat, part, tid, time.time()))
        await db.executemany(
            "INSERT INTO outbox (kind, issue, chat_id, part, text_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )


async def test_a_row_settled_around_a_slow_refill_is_never_sent_twice(
    store: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _queue(store)
    transport = Recorder()
    real = outbox.pending_window

    async def slow_window(db: Any, limit: int) -> list[Any]:
        # Sends started before the read finish during it; their results queue on the write
        # lock and are recorded (their rows forgotten) the moment the read's transaction
        # ends. Were the lanes changed only after a later await, those rows, pending in this
        # read, would be added again and sent twice.
        transport.reads += 1
        transport.reading = True
        try:
            await asyncio.sleep(0.03)
            return await real(db, limit)
        finally:
            transport.reading = False

    monkeypatch.setattr(outbox, "pending_window", slow_window)
    sender = Sender(store.db, transport, LIMITS, poll_seconds=0.05)
    sender._window = 60  # many refills, most of them beside dispatch
    await sender.start()
    try:
        deadline = time.monotonic() + 30
        while await store.db.value("SELECT count(*) FROM outbox WHERE status = 'pending'"):
            assert time.monotonic() < deadline, "the outbox did not empty"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # anything sent twice would go out now
    finally:
        await sender.stop()

    twice = {key: n for key, n in transport.sent.items() if n > 1}
    assert not twice, f"sent more than once: {sorted(twice)[:5]}"
    assert len(transport.sent) == CHATS * PARTS
    rows = await store.db.rows("SELECT status, attempts, count(*) FROM outbox GROUP BY 1, 2")
    assert [tuple(r) for r in rows] == [("sent", 1, CHATS * PARTS)]
    # The point of the change: sends went on while windows were read.
    assert transport.reads > 5 and transport.during_read > 0
