"""The database refusing writes (disk full, read-only, locked) in the middle of a broadcast:
no confirmed delivery is lost, no unsent message is marked sent, the sender retries, and
once the database takes writes again every message has been delivered exactly once."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.db import outbox
from bot.db.archive import Archive
from bot.db.database import Database
from fakebot import FakeBotAPI, fake_bot_api

from .test_delivery import D13, SCALE, Limits, _archive, _opened, engine, finish, parts, seed

FULL = "database or disk is full"


@pytest.fixture(autouse=True)
async def _close_transports() -> AsyncIterator[None]:
    """engine() opens an aiohttp transport that only test_delivery's own fixture closes:
    left open here, each was an "Unclosed client session" at the end of the test run."""
    yield
    while _opened:
        await _opened.pop().close()


@pytest.fixture
async def archive(store: Archive, content: Path) -> Archive:
    (content / "2025").mkdir()
    (content / "2025" / "newsflash-202502.md").write_text(_archive(), encoding="utf-8")
    await store.sync(content)
    return store


@pytest.fixture
def fake() -> Iterator[FakeBotAPI]:
    with fake_bot_api(rate_scale=SCALE) as server:
        yield server


class Outage:
    """Makes a database function raise sqlite3.OperationalError while ``on``."""

    def __init__(self, message: str = FULL) -> None:
        self.on = False
        self.refused = 0
        self.message = message

    def check(self) -> None:
        if self.on:
            self.refused += 1
            raise sqlite3.OperationalError(self.message)


async def sent_rows(store: Archive) -> set[tuple[int, int]]:
    rows = await store.db.rows("SELECT chat_id, part FROM outbox WHERE status = 'sent'")
    return {(r[0], r[1]) for r in rows}


def received(fake: FakeBotAPI, expected: list[str]) -> Counter[tuple[int, int]]:
    return Counter((m.chat_id, expected.index(m.params["text"])) for m in fake.sent)


async def _broadcast_through(
    archive: Archive, fake: FakeBotAPI, outage: Outage, limits: Limits
) -> tuple[Counter[tuple[int, int]], list[str]]:
    await seed(archive, [(i, "private") for i in range(1, 41)])
    async with fake.bot() as bot:
        eng = engine(archive, bot, limits)
        await eng.start()
        plan = await eng.broadcast_now(D13)
        await fake.wait_sent_async(10, timeout=10)
        outage.on = True
        await asyncio.sleep(0.5)
        # Nothing is marked sent that Telegram did not confirm, even while writes fail;
        # and sending waits for the database: what is confirmed but not recorded (what
        # would go again after a crash now) stays within the in-flight window.
        expected = await parts(archive, D13)
        marked = await sent_rows(archive)
        during = len(fake.sent)
        assert marked <= set(received(fake, expected)) and during < 80
        assert during - len(marked) <= limits.in_flight
        await asyncio.sleep(0.3)
        assert len(fake.sent) == during
        outage.on = False
        report = await finish(eng, plan.broadcast_id, timeout=30)
        await eng.stop()
    assert outage.refused > 0
    assert report.sent == 80 and report.failed == 0 and report.pending == 0
    return received(fake, expected), expected


async def test_failed_result_writes_are_retried_and_nothing_is_sent_twice(
    archive: Archive, fake: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    outage = Outage()
    real = outbox.record

    async def record(db: Database, outcomes: Any) -> None:
        outage.check()
        await real(db, outcomes)

    monkeypatch.setattr(outbox, "record", record)
    slow = Limits(per_second=60, burst=2, private_per_second=SCALE, in_flight=4, backoff=0.05)
    got, expected = await _broadcast_through(archive, fake, outage, slow)
    assert got == Counter({(c, p): 1 for c in range(1, 41) for p in range(len(expected))})


async def test_every_write_failing_for_a_while_loses_nothing(
    archive: Archive, fake: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Disk full: every write transaction fails (the lease, the window, the results).
    outage = Outage()
    real = Database.transaction

    @asynccontextmanager
    async def transaction(self: Database) -> AsyncIterator[Database]:
        if not self.in_transaction:
            outage.check()
        async with real(self) as db:
            yield db

    monkeypatch.setattr(Database, "transaction", transaction)
    slow = Limits(per_second=60, burst=2, private_per_second=SCALE, in_flight=4, backoff=0.05)
    got, expected = await _broadcast_through(archive, fake, outage, slow)
    assert got == Counter({(c, p): 1 for c in range(1, 41) for p in range(len(expected))})


async def test_results_waiting_for_the_database_are_written_once_it_is_back(
    archive: Archive, fake: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The results cannot be written and no further send comes to flush them: the sender
    # still writes them once the database is back (without a stop), then sends the rest.
    outage = Outage()
    real = outbox.record

    async def record(db: Database, outcomes: Any) -> None:
        outage.check()
        await real(db, outcomes)

    monkeypatch.setattr(outbox, "record", record)
    await seed(archive, [(1, "private"), (2, "private")])
    async with fake.bot() as bot:
        eng = engine(archive, bot)
        outage.on = True
        await eng.start()
        plan = await eng.broadcast_now(D13)
        await fake.wait_sent_async(2, timeout=10)
        await asyncio.sleep(0.3)
        assert await sent_rows(archive) == set() and len(fake.sent) < 4  # sending waits
        outage.on = False
        started = time.monotonic()
        report = await finish(eng, plan.broadcast_id, timeout=10)
        await eng.stop()
    assert report.sent == 4 and len(fake.sent) == 4
    assert time.monotonic() - started < 5


async def test_a_transaction_cancelled_at_begin_leaves_the_connection_usable(
    store: Archive,
) -> None:
    # A stopping bot cancels the replies still waiting; one may be at its BEGIN, which the
    # database thread runs anyway. Every later transaction must still work.
    entered = False

    async def write() -> None:
        nonlocal entered
        async with store.db.transaction() as db:
            entered = True
            await db.execute("INSERT INTO chats (id, type) VALUES (1, 'private')")

    task = asyncio.create_task(write())
    await asyncio.sleep(0)  # it holds the lock and waits for its BEGIN
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not entered
    async with store.db.transaction() as db:
        await db.execute("INSERT INTO chats (id, type) VALUES (2, 'private')")
    assert await store.db.rows("SELECT id FROM chats") == [(2,)]
