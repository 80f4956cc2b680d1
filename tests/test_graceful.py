"""`briefbot run` under trouble, as a process: polling errors are one WARNING and one
"recovered" line, and SIGTERM twice in a burst of updates still exits within 10 s."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.db.archive import Archive
from fakebot import FakeBotAPI, fake_bot_api

from .test_run import TOKEN, api, start, stop, wait_for, write_config

__all__ = ["api"]  # the fixture, shared with test_run

# Timed child processes: one xdist worker runs these one at a time (pyproject addopts).
pytestmark = pytest.mark.xdist_group("timing")

BURST = 1000


@pytest.fixture
def short_polls() -> Iterator[FakeBotAPI]:
    """The fake answers a long poll after 1 s instead of the bot's 10 s (a server may end a
    poll early): the failures injected below start a second after the first poll, not ten."""
    with fake_bot_api(token=TOKEN, rate_limits=False, max_poll_timeout=1.0) as server:
        yield server


def polling(api: FakeBotAPI) -> bool:
    """The bot is up and polling: PTB deletes the webhook right before its first getUpdates
    (which the fake records only once it returns, up to a long poll later)."""
    return bool(api.calls("deleteWebhook"))


def test_polling_trouble_is_one_warning_and_one_recovery_line(
    tmp_path: Path, bundled: Path, short_polls: FakeBotAPI
) -> None:
    api = short_polls
    config = write_config(tmp_path, bundled, api.url)
    proc = start(config)
    try:
        wait_for(lambda: len(api.calls("getUpdates")) >= 1)
        api.fail_next("getUpdates", 502, "Bad Gateway", times=3)
        # The poll in progress ends without updates; the next three fail; then one arrives.
        wait_for(lambda: sum(c.status == 502 for c in api.calls("getUpdates")) == 3, timeout=30)
        api.push_message(6001, "/help")
        wait_for(lambda: bool(api.messages_to(6001)), timeout=30)
    finally:
        code, output = stop(proc)
    assert code == 0, output[-2000:]
    lines = output.splitlines()
    warnings = [x for x in lines if " WARNING " in x and "Bad Gateway" in x]
    assert len(warnings) == 1, lines  # three failed polls, one line
    recovered = [x for x in lines if "telegram: connection recovered" in x]
    assert len(recovered) == 1 and " INFO " in recovered[0] and "3 failed requests" in recovered[0]
    assert lines.index(warnings[0]) < lines.index(recovered[0])
    assert "Traceback" not in output and TOKEN not in output


async def _queue_broadcast(db: Path, content: Path, chats: int) -> int:
    """A broadcast of the newest issue queued for ``chats`` chats, not sent yet."""
    from bot.config import Delivery
    from bot.delivery.engine import DeliveryEngine

    archive = await Archive.open(db)
    try:
        await archive.sync(content)
        async with archive.db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO chats (id, type, status, last_slot) VALUES (?, 'private', 'active', ?)",
                [(cid, "2025-02-14T01:00:00Z") for cid in range(1, chats + 1)],
            )
        plan = await DeliveryEngine(archive, _Unused(), Delivery()).broadcast_now(None, "cli")
        return plan.messages
    finally:
        await archive.close()


class _Unused:
    """The engine only enqueues here; the bot sends."""

    async def send_html(self, *args: object, **kwargs: object) -> int:
        raise AssertionError("not used")

    def redact(self, text: str) -> str:
        return text


@pytest.mark.parametrize("signals", [1, 2])
def test_sigterm_in_a_burst_exits_within_10_s_with_the_outbox_intact(
    tmp_path: Path, bundled: Path, api: FakeBotAPI, signals: int
) -> None:
    db = tmp_path / "db.sqlite3"
    queued = asyncio.run(_queue_broadcast(db, bundled, 300))
    config = write_config(tmp_path, bundled, api.url)
    proc = start(config)
    try:
        wait_for(lambda: polling(api))
        burst = set(range(10_001, 10_001 + BURST))
        for user in sorted(burst):
            api.push_message(user, "/start")
        # It fetched the burst and answers it while the broadcast goes out; then it is
        # stopped the way a supervisor in a hurry does: SIGTERM, and SIGTERM again.
        wait_for(lambda: len({m.chat_id for m in api.sent} & burst) >= 20, timeout=30)
        started = time.monotonic()
        for _ in range(signals):
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.005)
        _, output = proc.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert elapsed < 10, f"took {elapsed:.1f} s; {output[-3000:]}"
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output and TOKEN not in output, output[-3000:]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        status = dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY status"))
        active = conn.execute("SELECT count(*) FROM chats WHERE status = 'active'").fetchone()[0]
    finally:
        conn.close()
    # The outbox is intact: every row sent or still pending, every one marked sent was
    # received, and only what was in flight may have been received without being marked.
    assert set(status) <= {"sent", "pending"} and sum(status.values()) == queued
    got = sum(1 for m in api.sent if 1 <= m.chat_id <= 300)
    assert status.get("sent", 0) <= got <= status.get("sent", 0) + 30
    # Every /start that was answered was recorded first.
    answered = {m.chat_id for m in api.sent} & set(range(10_001, 10_001 + BURST))
    assert active - 300 >= len(answered) > 0
    print(
        f"\n{BURST} /start + {queued} queued, SIGTERM x{signals}: exit in {elapsed:.2f} s,"
        f" {len(answered)} /start answered, {status.get('sent', 0)} of the broadcast sent"
    )
