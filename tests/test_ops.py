"""bot/ops: health and readiness over real HTTP, metrics that agree with what the fake Bot
API accepted, and the alert rules (de-duplication, hourly repeats, recovery) on an
injected clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import Config, parse_config
from bot.db import ops as dbops
from bot.db.database import Database
from bot.db.outbox import BroadcastReport
from bot.ops.alerts import Alerts, Finding
from bot.ops.server import OpsServer
from bot.ops.service import STUCK_SECONDS, Ops, Probe
from fakebot import FakeBotAPI

from .botkit import BotUnderTest, make_config

MB = 1024 * 1024


class Clock:
    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def http(
    port: int, path: str, method: str = "GET", raw: bytes | None = None
) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw or f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode()


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def config_for(tmp_path: Path, **ops: Any) -> Config:
    raw: dict[str, Any] = {"storage": {"path": str(tmp_path / "db.sqlite3")}, "ops": ops}
    if "source" in ops:
        raw["content"] = {"source": ops.pop("source")}
    return parse_config(raw, tmp_path)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "db.sqlite3")
    yield database
    await database.close()


# -- alerts: pure rules -------------------------------------------------------------------


def test_an_alert_is_told_once_repeated_hourly_and_its_recovery_once() -> None:
    alerts, stuck = Alerts(), "the sender is stuck: 5 messages due"
    told = [alerts.decide([Finding("sender_stuck", stuck)], t) for t in (0, 30, 1800, 3599)]
    assert told == [[f"🚨 briefbot: {stuck}"], [], [], []]
    (again,) = alerts.decide([Finding("sender_stuck", stuck)], 3600)
    assert "for 60 min now" in again and stuck in again
    assert alerts.decide([Finding("sender_stuck", stuck)], 5000) == []
    (recovered,) = alerts.decide([Finding("sender_stuck", None)], 5400)
    assert recovered.startswith("✅") and "sender is stuck" in recovered and "90 min" in recovered
    assert alerts.decide([Finding("sender_stuck", None)], 9000) == []


def test_an_event_is_told_once_and_a_new_event_again() -> None:
    alerts = Alerts()
    first = Finding("broadcast_failures", "broadcast #3 failed", repeat=False)
    assert len(alerts.decide([first], 0)) == 1
    assert alerts.decide([first], 7200) == []  # an event is not repeated hourly
    assert (
        len(alerts.decide([Finding("broadcast_failures", "broadcast #4 failed", False)], 7300)) == 1
    )


def test_conditions_are_independent_and_a_missing_check_keeps_its_state() -> None:
    alerts = Alerts()
    out = alerts.decide([Finding("storage", "disk"), Finding("stale_content", "stale")], 0)
    assert len(out) == 2
    assert alerts.decide([Finding("stale_content", None)], 10) == [
        "✅ briefbot recovered: no new issue (after 10 s)"
    ]
    assert alerts.decide([], 20) == []  # storage's check did not run: still active, silent
    assert set(alerts.active) == {"storage"}


# -- conditions, judged on an injected clock and free space ---------------------------------


async def test_disk_nearly_full_is_an_alert_until_space_is_freed(
    tmp_path: Path, db: Database
) -> None:
    free = {"bytes": 50 * MB}
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    clock = Clock()
    ops = Ops(
        config_for(tmp_path, min_free_mb=100),
        db,
        clock=clock,
        free_space=lambda _: free["bytes"],
        send_alert=send,
    )
    await ops.check()
    assert sent == [
        "🚨 briefbot: the database's disk is nearly full: 50 MB free (ops.min_free_mb: 100)"
    ]
    clock.advance(30)
    await ops.check()
    assert len(sent) == 1  # de-duplicated
    free["bytes"] = 500 * MB
    clock.advance(30)
    await ops.check()
    assert sent[1] == "✅ briefbot recovered: the database or its disk (after 60 s)"


async def test_a_database_that_refuses_writes_fails_readiness_and_alerts(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = Ops(config_for(tmp_path), db, clock=Clock(), free_space=lambda _: 10**12)
    ops.state.telegram_ok()
    assert await ops.failing() == {}

    async def full(db: Database, now: float) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(dbops, "heartbeat", full)
    assert await ops.failing() == {
        "database": "not writable: OperationalError: database or disk is full"
    }
    (alert,) = await ops.check()
    assert "does not take writes" in alert


async def test_the_heartbeat_is_a_real_write(db: Database) -> None:
    await dbops.heartbeat(db, 123.0)
    await dbops.heartbeat(db, 456.0)
    assert await db.rows("SELECT key, value FROM ops_state") == [("heartbeat", 456.0)]


def _probe(now: float, due: int, oldest: float | None) -> Probe:
    return Probe(now, None, 10**12, dbops.Snapshot(pending=due, due=due, oldest_due=oldest))


async def test_the_sender_is_stuck_only_when_telegram_answers_and_nothing_went_out(
    tmp_path: Path, db: Database
) -> None:
    clock = Clock()
    ops = Ops(config_for(tmp_path), db, clock=clock)
    start = clock.now
    clock.advance(STUCK_SECONDS + 10)
    ops.state.telegram_ok()
    assert ops.stuck_problem(_probe(clock.now, 0, None)) is None  # nothing due
    assert ops.stuck_problem(_probe(clock.now, 3, clock.now - 5)) is None  # just queued
    problem = ops.stuck_problem(_probe(clock.now, 3, start))
    assert problem is not None and "3 messages due" in problem
    ops.state.delivered()
    assert ops.stuck_problem(_probe(clock.now, 3, start)) is None  # it sends: slow, not stuck
    clock.advance(STUCK_SECONDS + 1)
    ops.state.telegram_ok()
    assert ops.stuck_problem(_probe(clock.now, 3, start)) is not None
    clock.advance(61)  # Telegram silent: that is the telegram condition, not the sender's
    assert ops.stuck_problem(_probe(clock.now, 3, start)) is None
    ops.sending = lambda: False
    ops.state.telegram_ok()
    assert ops.stuck_problem(_probe(clock.now, 3, start)) is None  # another process sends


async def test_stale_content_counts_from_when_the_git_source_is_watched(
    tmp_path: Path, db: Database
) -> None:
    clock = Clock()
    source = {"git": "https://example.com/brief.git", "poll_seconds": 60}
    ops = Ops(config_for(tmp_path, stale_days=3, source=source), db, clock=clock)
    await ops.start()
    assert ops.watch_since == clock.now
    clock.advance(3 * 86400 - 60)
    assert ops.stale_problem(await ops.probe()) is None
    clock.advance(120)
    problem = ops.stale_problem(await ops.probe())
    assert problem is not None and problem.startswith("no new issue for 3.0 days")
    later = Ops(config_for(tmp_path, stale_days=3, source=source), db, clock=clock)
    await later.start()  # a restart keeps counting from the first watch
    assert later.watch_since == ops.watch_since
    static = Ops(config_for(tmp_path, stale_days=3), db, clock=clock)
    await static.start()
    assert static.stale_problem(await static.probe()) is None  # a static archive is never stale


async def test_the_content_source_hook_drives_readiness(tmp_path: Path, db: Database) -> None:
    clock = Clock()
    source = {"git": "https://example.com/brief.git", "poll_seconds": 60}
    ops = Ops(config_for(tmp_path, source=source), db, clock=clock, free_space=lambda _: 10**12)
    ops.state.telegram_ok()
    assert "source" not in await ops.failing()  # within 3 polls of the start
    clock.advance(181)
    ops.state.telegram_ok()
    ops.state.source_failed("git fetch: could not resolve host")
    failing = await ops.failing()
    assert set(failing) == {"source"} and "could not resolve host" in failing["source"]
    ops.state.source_ok()
    assert await ops.failing() == {}


def _report(bid: int, sent: int, failed: int) -> BroadcastReport:
    at = dt.datetime(2025, 2, 10, 8, 30, tzinfo=dt.UTC)
    return BroadcastReport(
        bid,
        "schedule",
        None,
        at,
        at + dt.timedelta(seconds=90),
        sent + failed,
        sent,
        failed,
        0,
        0,
        0,
    )


@pytest.mark.parametrize(
    ("sent", "failed", "alert"), [(95, 5, False), (94, 6, True), (0, 1, True), (10, 0, False)]
)
async def test_a_broadcast_with_more_than_5_percent_failed_is_an_alert(
    tmp_path: Path, db: Database, sent: int, failed: int, alert: bool
) -> None:
    ops = Ops(config_for(tmp_path), db, clock=Clock(), free_space=lambda _: 10**12)
    ops.broadcast_finished(_report(7, sent, failed))
    messages = await ops.check()
    assert bool(messages) is alert
    if alert:
        assert f"broadcast #7 (schedule) ended with {failed} of {sent + failed}" in messages[0]


# -- the endpoint over real HTTP --------------------------------------------------------------


async def test_healthz_readyz_and_metrics_over_http(tmp_path: Path, db: Database) -> None:
    clock = Clock()
    port = free_port()
    ops = Ops(config_for(tmp_path, listen=f"127.0.0.1:{port}"), db, clock=clock)
    await ops.start()
    try:
        assert ops.server is not None and ops.server.port == port
        assert await http(port, "/healthz") == (200, "ok\n")
        status, body = await http(port, "/readyz")
        assert status == 503 and json.loads(body)["failing"] == {
            "telegram": "no successful Bot API answer yet"
        }
        ops.state.telegram_ok()
        status, body = await http(port, "/readyz")
        assert (status, json.loads(body)) == (200, {"ready": True, "failing": {}})
        clock.advance(61)
        status, body = await http(port, "/readyz")
        assert status == 503 and json.loads(body)["failing"] == {
            "telegram": "no successful Bot API answer for 61 s"
        }
        ops.state.telegram_ok()
        assert (await http(port, "/readyz"))[0] == 200
        status, text = await http(port, "/metrics")
        assert status == 200
        assert samples(text, "briefbot_outbox_pending") == [({}, 0.0)]
        assert samples(text, "briefbot_telegram_last_ok_timestamp_seconds") == [({}, clock.now)]
        assert (await http(port, "/metrics", "HEAD"))[1] == ""
        assert (await http(port, "/nope"))[0] == 404
        assert (await http(port, "/healthz", "POST"))[0] == 405
        assert (await http(port, "", raw=b"garbage\r\n\r\n"))[0] == 400
        assert (await http(port, "", raw=b"GET /" + b"x" * 10000 + b" HTTP/1.1\r\n\r\n"))[0] == 400
    finally:
        await ops.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_a_taken_port_is_logged_and_the_bot_goes_on(
    tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = OpsServer("127.0.0.1", 0, {})
    await blocker.start()
    try:
        ops = Ops(config_for(tmp_path, listen=f"127.0.0.1:{blocker.port}"), db)
        await ops.start()
        assert ops.server is None
        assert "ops: cannot listen on" in caplog.text
    finally:
        await blocker.stop()


# -- end to end: the bot, the fake Bot API, the metrics ---------------------------------------

ADMIN, USERS, BLOCKED = 42, (7101, 7102, 7103), 7199


async def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_metrics_agree_with_what_the_fake_bot_api_accepted(
    tmp_path: Path, bundled: Path, open_api: FakeBotAPI
) -> None:
    port = free_port()
    config = make_config(
        tmp_path,
        bundled,
        open_api,
        ops={"listen": f"127.0.0.1:{port}"},
        telegram={"throttle": {"messages": 1000}},
    )
    async with BotUnderTest(open_api, config) as bot:
        for chat in (*USERS, BLOCKED):
            await bot.say(chat, "/start")
        await bot.say(USERS[0], "/find 芯片")
        open_api.block(BLOCKED)
        before = len(open_api.sent)
        engine = bot.app.bot_data.services.engine
        assert engine is not None
        plan = await engine.broadcast_now(dt.date(2025, 2, 10), "admin")
        report = await engine.wait(plan.broadcast_id, poll=0.05)
        assert report is not None and report.finished
        await eventually(lambda: any("Broadcast #" in m.text for m in open_api.messages_to(ADMIN)))
        accepted = [m for m in open_api.sent[before:] if m.chat_id in USERS]
        assert len(accepted) == report.sent > 0

        status, text = await http(port, "/metrics")
        assert status == 200
        sent = samples(text, "briefbot_messages_total")
        assert sum(v for labels, v in sent if labels["result"] == "sent") == len(accepted)
        assert [(labels, v) for labels, v in sent if labels["result"] != "sent"] == [
            ({"op": "send", "chat_type": "private", "result": "unreachable"}, 1.0)
        ]
        assert samples(text, "briefbot_broadcasts_total") == [({"trigger": "admin"}, 1.0)]
        assert samples(text, "briefbot_delivery_lag_seconds_count") == [({"trigger": "admin"}, 1.0)]
        assert samples(text, "briefbot_updates_total") == [({"type": "command"}, 5.0)]
        assert samples(text, "briefbot_reply_seconds_count") == [({"type": "command"}, 5.0)]
        assert samples(text, "briefbot_search_seconds_count") == [({}, 1.0)]
        subscribers = dict(
            ((labels["type"], labels["status"]), v)
            for labels, v in samples(text, "briefbot_subscribers")
        )
        assert subscribers == {("private", "active"): 3.0, ("private", "blocked"): 1.0}
        assert samples(text, "briefbot_outbox_pending") == [({}, 0.0)]
        issues = samples(text, "briefbot_archive_issues")[0][1]
        assert issues > 0 and samples(text, "briefbot_archive_items")[0][1] > issues
        assert (await http(port, "/readyz"))[0] == 200
    with pytest.raises(OSError):  # post_shutdown stopped the endpoint
        await asyncio.open_connection("127.0.0.1", port)
