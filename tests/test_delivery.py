"""The broadcast engine through the fake Bot API server (real HTTP): limits kept, faults
handled, nothing lost, nothing doubled, crash and restart, the schedule, watches."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot

from bot.config import Delivery
from bot.core.pacing import Lanes, Limits, Pending
from bot.core.render import issue_messages
from bot.db import channels, chats
from bot.db.archive import Archive
from bot.db.chats import ChatInfo, Status
from bot.delivery import audience
from bot.delivery.engine import BroadcastReport, DeliveryEngine, DeliveryError
from bot.delivery.transport import Transport
from bot.telegram.fastsend import FastTransport
from bot.telegram.transport import PtbTransport
from fakebot import FakeBotAPI, fake_bot_api

from .conftest import REPO

D = dt.date
D10, D11, D12, D13, D14 = (D(2025, 2, d) for d in range(10, 15))
SCALE = 8.0  # the fake's limits run 8x faster; the engine's limits follow
FAST = Limits(
    per_second=28 * SCALE,
    burst=5,
    private_per_second=1 * SCALE,
    private_burst=3,
    group_per_minute=20 * SCALE,
    group_burst=3,
    in_flight=16,
    attempts=6,
    backoff=0.05,
    backoff_max=0.5,
)
CONFIG = Delivery(times=(dt.time(8, 30),), timezone="Asia/Shanghai", max_backlog=3)


def _item(n: int, day: int, long: bool) -> str:
    topic = "小米发布新款芯片" if n % 3 == 0 else "英伟达财报超预期"
    text = f"第{n}条（{day}日）：{topic}，业内人士认为影响深远。" * (14 if long else 1)
    return f"{n}. {text}\n   https://example.com/{day}/{n}\n"


def _archive() -> str:
    parts = ["# 2025年2月\n"]
    for day, items, long in [
        (10, 2, False),
        (11, 2, False),
        (12, 3, False),
        (13, 14, True),
        (14, 24, True),
    ]:
        parts.append(f"## 2025.02.{day:02d}\n\n2025年02月{day:02d}日 💡行业快讯\n")
        parts += [_item(n, day, long) for n in range(1, items + 1)]
    return "\n".join(parts)


@pytest.fixture
async def archive(store: Archive, content: Path) -> Archive:
    (content / "2025").mkdir()
    (content / "2025" / "newsflash-202502.md").write_text(_archive(), encoding="utf-8")
    report = await store.sync(content)
    assert report.issues == 5 and not [p for p in report.problems if p.severity == "error"]
    return store


@pytest.fixture
def fake() -> Any:
    with fake_bot_api(rate_scale=SCALE) as server:
        yield server


@pytest.fixture
async def bot(fake: FakeBotAPI) -> AsyncIterator[Bot]:
    async with fake.bot() as b:
        yield b


class Reports(list[BroadcastReport]):
    async def __call__(self, report: BroadcastReport) -> None:
        self.append(report)


# Which transport the engine sends through: the lean aiohttp one (what the bot and the CLI
# use) unless a test is parametrized with send_path="ptb" (the PTB Bot path, kept working).
SEND_PATHS = ["fast", "ptb"]
_opened: list[FastTransport] = []
_path = ["fast"]


@pytest.fixture
def send_path() -> str:
    return "fast"


@pytest.fixture(autouse=True)
async def _transports(send_path: str) -> AsyncIterator[None]:
    _path[0] = send_path
    yield
    while _opened:
        await _opened.pop().close()


def transport_for(bot: Bot) -> Transport:
    if _path[0] == "ptb":
        return PtbTransport(bot)
    fast = FastTransport(bot.token, base_url=bot.base_url.removesuffix(bot.token), pool=24)
    _opened.append(fast)
    return fast


def engine(store: Archive, bot: Bot, limits: Limits = FAST, **kw: Any) -> DeliveryEngine:
    kw.setdefault("poll_seconds", 0.1)
    return DeliveryEngine(store, transport_for(bot), CONFIG, limits=limits, **kw)


async def seed(store: Archive, chat_ids: Sequence[tuple[int, str]]) -> None:
    async with store.db.transaction() as db:
        await db.executemany(
            "INSERT INTO chats (id, type, status, last_slot) VALUES (?, ?, 'active', ?)",
            [(cid, kind, "2025-02-14T01:00:00Z") for cid, kind in chat_ids],
        )


async def parts(store: Archive, date: dt.date) -> list[str]:
    issue = await store.issue(date)
    assert issue is not None
    return issue_messages(issue)


def texts_to(fake: FakeBotAPI, chat_id: int) -> list[str]:
    return [m.params["text"] for m in fake.messages_to(chat_id)]


def calls_to(fake: FakeBotAPI, chat_id: int) -> list[Any]:
    return [c for c in fake.calls("sendMessage") if int(c.params["chat_id"]) == chat_id]


async def column(store: Archive, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    return [r[0] if len(r) == 1 else tuple(r) for r in await store.db.rows(sql, params)]


async def finish(
    eng: DeliveryEngine, broadcast_id: int | None, timeout: float = 30
) -> BroadcastReport:
    report = await asyncio.wait_for(eng.wait(broadcast_id, poll=0.05), timeout)
    assert report is not None
    return report


# -- the big one --------------------------------------------------------------------------


@pytest.mark.parametrize("send_path", SEND_PATHS)
@pytest.mark.xdist_group("timing")  # a send rate, a kill mid-run: see pyproject
async def test_broadcast_to_1000_chats_with_faults(
    archive: Archive, fake: FakeBotAPI, bot: Bot, send_path: str
) -> None:
    store = archive
    # 1,000 chats through the lean transport (what the bot and the CLI send with); the PTB
    # path meets the same faults with 500 (each fault is per message: more chats would only
    # repeat them), in half the time.
    n_private, n_groups = (900, 80) if send_path == "fast" else (420, 60)
    private = [(i, "private") for i in range(1, n_private + 1)]
    groups = [(-i, "group") for i in range(1, n_groups + 1)]
    supergroups = [(-1_000_000_000_000 - i, "supergroup") for i in range(1, 11)]
    channels = [(-1_000_000_000_100 - i, "channel") for i in range(1, 11)]
    for cid, kind in channels:
        fake.add_chat(cid, kind, title=f"channel {cid}")
    everyone = private + groups + supergroups + channels
    await seed(store, everyone)
    blocked = list(range(10, 210, 10))  # 20 users blocked the bot
    for cid in blocked:
        fake.block(cid)
    for cid in range(301, 306):
        fake.deactivate(cid)
    for cid in range(401, 406):
        fake.missing(cid)
    kicked = [-3, -6, -9]
    for cid in kicked:
        fake.block(cid)
    old_group, new_group = -50, -1_000_000_000_050
    fake.migrate(old_group, new_group)
    gone = {*blocked, *range(301, 306), *range(401, 406), *kicked}
    fake.error_rate_5xx, fake.drop_rate = 0.02, 0.02
    fake.fail_next(
        "sendMessage", 429, "Too Many Requests: retry after 1", {"retry_after": 1}, times=3
    )

    reports = Reports()
    eng = engine(store, bot, on_report=reports)
    await eng.start()
    started = time.monotonic()
    # Two issues back to back: each chat must get the first, then the second, once each.
    plans = [await eng.broadcast_now(D11), await eng.broadcast_now(D12)]
    done = [await finish(eng, plan.broadcast_id, timeout=60) for plan in plans]
    elapsed = time.monotonic() - started
    await eng.stop()

    expected = [*await parts(store, D11), *await parts(store, D12)]
    assert len(expected) == 2
    for cid, _ in everyone:
        if cid in gone or cid == old_group:
            continue
        assert texts_to(fake, cid) == expected, cid  # every message, once, in order
    assert texts_to(fake, old_group) == []
    assert texts_to(fake, new_group) == expected
    for cid in gone:  # refused once, never tried again
        refused = [c for c in calls_to(fake, cid) if c.status in (400, 403)]
        assert len(refused) == 1 and calls_to(fake, cid)[-1] is refused[0]
        chat = await chats.get(store.db, cid)
        assert chat is not None and chat.status is Status.BLOCKED
    migrated = await chats.get(store.db, old_group)
    assert migrated is not None and migrated.migrated_to == new_group
    served = len(everyone) - len(gone)
    assert [(r.sent, r.failed, r.pending) for r in done] == [(served, 0, 0)] * 2
    assert sum(r.newly_inactive for r in done) == len(gone)
    assert sum(r.cancelled for r in done) == 2 * len(gone)
    assert sorted(reports, key=lambda r: r.id) == done
    assert fake.count_429 == 0  # only the three injected ones were answered 429
    assert await column(store, "SELECT count(*) FROM outbox WHERE status = 'pending'") == [0]
    sent = sum(r.sent for r in done)
    print(f"\n{len(everyone):,} chats, {sent} messages with faults: {elapsed:.1f} s")


# -- idempotence, crash, restart ----------------------------------------------------------


async def test_enqueue_twice_never_doubles(archive: Archive, bot: Bot) -> None:
    await seed(archive, [(i, "private") for i in range(1, 21)])
    eng = engine(archive, bot)
    first = await eng.broadcast_now(D14)
    assert (first.chats, first.messages) == (20, 60)
    again = await eng.broadcast_now(D14)
    assert (again.broadcast_id, again.chats) == (None, 0)
    assert await eng.tick(dt.datetime(2025, 2, 15, 1, 0, tzinfo=dt.UTC)) is None  # has D14
    assert await column(archive, "SELECT count(*) FROM outbox") == [60]
    # 20 chats share one copy of each part.
    assert await column(archive, "SELECT count(*) FROM texts") == [3]


async def test_resume_after_crash_sends_only_the_rest(
    archive: Archive, fake: FakeBotAPI, bot: Bot
) -> None:
    await seed(archive, [(i, "private") for i in range(1, 21)])
    eng = engine(archive, bot)
    plan = await eng.broadcast_now(D13)
    # The crash: parts 0 of chats 1-10 and parts 1 of chats 1-5 were confirmed.
    async with archive.db.transaction() as db:
        await db.execute(
            "UPDATE outbox SET status = 'sent', message_id = 1 WHERE (chat_id <= 10 AND part = 0)"
            " OR (chat_id <= 5 AND part = 1)"
        )
    await eng.start()
    report = await finish(eng, plan.broadcast_id)
    await eng.stop()
    expected = await parts(archive, D13)
    for cid in range(1, 21):
        want = [] if cid <= 5 else expected[1:] if cid <= 10 else expected
        assert texts_to(fake, cid) == want, cid
    assert report.sent == 40 and len(fake.sent) == 25


async def test_stop_mid_broadcast_leaves_the_outbox_intact(
    archive: Archive, fake: FakeBotAPI, bot: Bot
) -> None:
    await seed(archive, [(i, "private") for i in range(1, 61)])
    slow = Limits(per_second=40, burst=1, private_per_second=SCALE, in_flight=4)
    eng = engine(archive, bot, slow)
    await eng.start()
    plan = await eng.broadcast_now(D13)
    await fake.wait_sent_async(20, timeout=10)
    await eng.stop()
    sent = await column(archive, "SELECT count(*) FROM outbox WHERE status = 'sent'")
    pending = await column(archive, "SELECT count(*) FROM outbox WHERE status = 'pending'")
    assert sent == [len(fake.sent)]  # in-flight sends finished and were recorded
    assert sent[0] + pending[0] == 120 and pending[0] > 0
    eng = engine(archive, bot)
    await eng.start()
    await finish(eng, plan.broadcast_id)
    await eng.stop()
    expected = await parts(archive, D13)
    assert all(texts_to(fake, cid) == expected for cid in range(1, 61))


_RUNNER = """
import asyncio, sys
from telegram import Bot
from bot.config import Delivery
from bot.core.pacing import Limits
from bot.delivery.engine import DeliveryEngine
from bot.db.archive import Archive
from bot.telegram.fastsend import FastTransport
from bot.telegram.transport import PtbTransport

async def main(path, base_url, token, path_kind):
    store = await Archive.open(path)
    limits = Limits(per_second={rate}, burst=5, private_per_second={scale}, in_flight=8)
    async with Bot(token, base_url=base_url) as bot:
        if path_kind == "ptb":
            transport = PtbTransport(bot)
        else:
            transport = FastTransport(token, base_url=base_url, pool=8)
        engine = DeliveryEngine(store, transport, Delivery(), limits=limits, poll_seconds=0.1)
        await engine.start()
        await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:]))
"""


def _runner(db: Path, fake: FakeBotAPI) -> subprocess.Popen[bytes]:
    code = _RUNNER.format(rate=28 * SCALE, scale=SCALE)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", code, str(db), fake.base_url, fake.token, _path[0]]
    return subprocess.Popen(args, cwd=REPO, env=env, stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("send_path", SEND_PATHS)
@pytest.mark.xdist_group("timing")  # a send rate, a kill mid-run: see pyproject
async def test_kill_9_mid_broadcast_loses_nothing_and_resends_nothing_confirmed(
    archive: Archive, fake: FakeBotAPI, bot: Bot
) -> None:
    await seed(archive, [(i, "private") for i in range(1, 301)])
    plan = await engine(archive, bot).broadcast_now(D13)
    first = _runner(archive.db.path, fake)
    try:
        await fake.wait_sent_async(200, timeout=20)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    confirmed = await column(archive, "SELECT chat_id, part FROM outbox WHERE status = 'sent'")
    before = len(fake.sent)
    assert 200 <= before < 600
    second = _runner(archive.db.path, fake)
    try:
        deadline = time.monotonic() + 30
        while await column(archive, "SELECT count(*) FROM outbox WHERE status = 'pending'") != [0]:
            assert time.monotonic() < deadline, "the restarted process did not finish"
            await asyncio.sleep(0.1)
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait()
    expected = await parts(archive, D13)
    after = fake.sent[before:]
    resent = {(m.chat_id, expected.index(m.params["text"])) for m in after}
    assert not resent & set(confirmed)  # nothing confirmed was sent again
    duplicates = len(fake.sent) - 600
    assert 0 <= duplicates <= 8  # only what was in flight (in_flight=8) may repeat
    for cid in range(1, 301):
        got = texts_to(fake, cid)
        assert [t for i, t in enumerate(got) if i == 0 or got[i - 1] != t] == expected, cid
    report = await engine(archive, bot).report(plan.broadcast_id or 0)
    assert report is not None and report.sent == 600


# -- errors -------------------------------------------------------------------------------


async def test_a_part_failing_in_the_middle_resumes_in_order(
    archive: Archive, fake: FakeBotAPI, bot: Bot
) -> None:
    await seed(archive, [(7, "private")])
    one_by_one = Limits(private_per_second=4, private_burst=1, backoff=0.05)
    eng = engine(archive, bot, one_by_one)
    await eng.start()
    plan = await eng.broadcast_now(D14)
    await fake.wait_sent_async(1, timeout=5)
    fake.fail_next("sendMessage", 502, "Bad Gateway", times=2)
    fake.drop_next("sendMessage")
    await finish(eng, plan.broadcast_id)
    await eng.stop()
    assert texts_to(fake, 7) == await parts(archive, D14)
    attempts = await column(archive, "SELECT attempts FROM outbox ORDER BY part")
    assert attempts == [1, 4, 1]


async def test_retries_run_out_and_bad_requests_fail_at_once(
    archive: Archive, fake: FakeBotAPI, bot: Bot
) -> None:
    await seed(archive, [(1, "private"), (2, "private"), (3, "private")])
    fake.set_chat_fault(1, 500, "Internal Server Error")
    fake.set_chat_fault(2, 400, "Bad Request: message is too long")
    reports = Reports()
    limits = Limits(attempts=3, backoff=0.01, private_per_second=SCALE)
    eng = engine(archive, bot, limits, on_report=reports)
    await eng.start()
    plan = await eng.broadcast_now(D13)
    report = await finish(eng, plan.broadcast_id)
    await eng.stop()
    assert len(calls_to(fake, 1)) == 2 * 3  # each part tried three times
    assert len(calls_to(fake, 2)) == 2  # never retried
    assert len(texts_to(fake, 3)) == 2
    assert (report.sent, report.failed, report.newly_inactive) == (2, 4, 0)
    errors = await column(archive, "SELECT DISTINCT last_error FROM outbox WHERE status = 'failed'")
    assert sorted(errors) == [
        "BadRequest: Message is too long",
        "NetworkError: Internal Server Error",
    ]
    # Failing messages do not make the chat inactive.
    assert {(await chats.get(archive.db, c)).status for c in (1, 2)} == {Status.ACTIVE}  # type: ignore[union-attr]
    assert reports == [report]


async def test_retry_after_pauses_and_retries_the_same_message(
    archive: Archive, fake: FakeBotAPI, bot: Bot
) -> None:
    await seed(archive, [(1, "private"), (2, "private")])
    eng = engine(archive, bot)
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", {"retry_after": 1})
    await eng.start()
    started = time.monotonic()
    plan = await eng.broadcast_now(D12)
    await finish(eng, plan.broadcast_id)
    await eng.stop()
    expected = await parts(archive, D12)
    assert texts_to(fake, 1) == expected and texts_to(fake, 2) == expected
    refused = next(c for c in fake.calls("sendMessage") if c.status == 429)
    retried = [c for c in calls_to(fake, int(refused.params["chat_id"])) if c.ok]
    assert retried[0].time - refused.time >= 0.99
    assert time.monotonic() - started >= 1


# -- throughput ---------------------------------------------------------------------------


@pytest.mark.xdist_group("timing")  # a send rate, a kill mid-run: see pyproject
async def test_throughput_approaches_the_cap_with_no_429(archive: Archive, bot: Bot) -> None:
    # A fake whose global limit is the only one that binds: 90/s, the engine set to it.
    with fake_bot_api(rate_scale=3.0) as fake:
        async with fake.bot() as fast_bot:
            await seed(archive, [(i, "private") for i in range(1, 301)])
            cap = 30 * 3.0
            limits = Limits(per_second=cap, burst=5, private_per_second=3.0, in_flight=16)
            eng = engine(archive, fast_bot, limits)
            await eng.start()
            plan = await eng.broadcast_now(D12)
            await finish(eng, plan.broadcast_id)
            await eng.stop()
    times = [c.time for c in fake.calls("sendMessage")]
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert len(fake.sent) == 300 and fake.count_429 == 0
    assert rate / cap >= 0.9, rate
    print(f"\nthroughput: {rate:.1f}/s of {cap:.0f}/s allowed = {rate / cap:.3f}")


# -- fairness (the lanes alone, on a simulated clock) ------------------------------------


def _drain(lanes: Lanes, now: float) -> list[tuple[int, float]]:
    """Dispatch until empty, each send ending at once: (chat, time) in send order."""
    sent: list[tuple[int, float]] = []
    while True:
        lane = lanes.pop_ready(now)
        if lane is None:
            wake = lanes.next_wake()
            if wake is None:
                return sent
            now = wake
            continue
        sent.append((lane.chat_id, now))
        lanes.forget(lane.rows.popleft().id)
        lanes.bucket(lane, now).take(now)
        lanes.release(lane, now)


def test_lanes_send_a_burst_then_let_others_in() -> None:
    lanes = Lanes(Limits(private_per_second=1, private_burst=3, group_per_minute=20))
    chats_in_order = [1] * 6 + [2, 3, -4, -4, -4, -4]
    for row_id, chat in enumerate(chats_in_order, 1):
        lanes.add(Pending(row_id, chat, 0, 0, 0.0, None), "private" if chat > 0 else "group", 0.0)
    sent = _drain(lanes, 0.0)
    assert [c for c, _ in sent] == [1, 1, 1, 2, 3, -4, -4, -4, 1, 1, 1, -4]
    # After its burst a private chat gets 1/s and a group 1 per 3 s.
    assert [t for c, t in sent if c == 1] == pytest.approx([0, 0, 0, 1, 2, 3])
    assert [t for c, t in sent if c == -4] == pytest.approx([0, 0, 0, 3])
    assert len(lanes) == 0 and not lanes.lanes


# -- the schedule -------------------------------------------------------------------------


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


async def queued(store: Archive) -> list[tuple[int, str]]:
    """(chat, issue) per queued issue, in queue order."""
    rows = await column(store, "SELECT chat_id, issue FROM outbox WHERE part = 0 ORDER BY id")
    return [tuple(r) for r in rows]


async def test_tick_enqueues_each_chat_at_its_slot(
    archive: Archive, content: Path, fake: FakeBotAPI, bot: Bot
) -> None:
    store = archive
    subscribed = utc("2025-02-14 01:00")  # 09:00 in Shanghai: after today's 08:30
    await chats.subscribe(store.db, ChatInfo(1, "private"), now=subscribed)
    await chats.subscribe(store.db, ChatInfo(2, "private"), now=subscribed)
    await chats.set_delivery_time(store.db, ChatInfo(2, "private"), dt.time(12, 0))
    channel = ChatInfo(-1001, "channel", "News", "newsroom")
    await channels.sync_config_channels(store.db, [channel], ["@newsroom"], now=subscribed)
    eng = engine(store, bot)

    assert await eng.tick(utc("2025-02-14 02:00")) is None  # nobody is due yet
    assert await eng.tick(utc("2025-02-14 04:00")) is not None  # chat 2's 12:00
    assert await queued(store) == [(2, "2025-02-14")]  # a new subscriber: only the newest
    assert await eng.tick(utc("2025-02-14 04:05")) is None
    assert await eng.tick(utc("2025-02-15 00:30")) is not None  # 08:30 the next day
    assert await queued(store) == [(2, "2025-02-14"), (-1001, "2025-02-14"), (1, "2025-02-14")]
    assert await eng.tick(utc("2025-02-15 00:31")) is None

    # A new issue is indexed; the next slots bring it, once.
    with (content / "2025" / "newsflash-202502.md").open("a", encoding="utf-8") as file:
        file.write("\n## 2025.02.15\n\n2025年02月15日 💡行业快讯\n\n1. 新的一天。\n")
    await store.sync(content)
    assert await eng.tick(utc("2025-02-15 03:00")) is None  # indexed after today's slot
    await eng.tick(utc("2025-02-15 04:00"))
    await eng.tick(utc("2025-02-16 00:30"))
    assert (await queued(store))[3:] == [
        (2, "2025-02-15"),
        (-1001, "2025-02-15"),
        (1, "2025-02-15"),
    ]
    assert fake.sent == []  # enqueueing sends nothing by itself


async def test_missed_runs_are_caught_up_once_with_the_backlog(archive: Archive, bot: Bot) -> None:
    async with archive.db.transaction() as db:
        await db.executemany(
            "INSERT INTO chats (id, type, status, last_issue, last_slot) VALUES (?, 'private', 'active', ?, ?)",
            [
                (1, "2025-02-10", "2025-02-10T00:30:00Z"),  # four issues behind
                (2, None, None),  # never handled: only the newest
                (3, "2025-02-14", "2025-02-10T00:30:00Z"),  # up to date
            ],
        )
    eng = engine(archive, bot)
    # The bot was down from the 11th to the 15th, 10:00 Shanghai.
    assert await eng.tick(utc("2025-02-15 02:00")) is not None
    assert await eng.tick(utc("2025-02-15 02:00")) is None
    assert await queued(archive) == [
        (1, "2025-02-12"),
        (1, "2025-02-13"),
        (1, "2025-02-14"),
        (2, "2025-02-14"),
    ]
    slots = await column(archive, "SELECT DISTINCT last_slot FROM chats")
    assert slots == ["2025-02-15T00:30:00Z"]
    assert await column(archive, "SELECT last_issue FROM chats ORDER BY id") == ["2025-02-14"] * 3


# -- watches ------------------------------------------------------------------------------


async def test_watches_deliver_matching_items_once_per_issue(
    archive: Archive, fake: FakeBotAPI, bot: Bot
) -> None:
    store = archive
    await chats.add_watch(store.db, ChatInfo(1, "private"), "小米")  # not subscribed
    await chats.add_watch(store.db, ChatInfo(2, "private"), "小米")
    await chats.add_watch(store.db, ChatInfo(2, "private"), "芯片 小米")  # overlaps: items once
    await chats.add_watch(store.db, ChatInfo(3, "private"), "特斯拉")  # no match
    await chats.add_watch(store.db, ChatInfo(4, "private"), "小米")
    await audience.unreachable(store.db, 4, "blocked")  # unreachable: not served
    eng = engine(store, bot)
    await eng.start()
    assert await eng.on_new_issues([D12]) == 2
    assert await eng.on_new_issues([D12]) == 0
    await fake.wait_sent_async(2, timeout=5)
    await eng.stop()
    [to_one], [to_two] = texts_to(fake, 1), texts_to(fake, 2)
    assert "🔔 小米" in to_one and "🔔 小米 · 芯片 小米" in to_two
    assert "3. 第3条" in to_one and "1. 第1条" not in to_one  # item 3 mentions 小米
    assert texts_to(fake, 3) == texts_to(fake, 4) == []
    assert await column(store, "SELECT kind, count(*) FROM outbox GROUP BY kind") == [("watch", 2)]


# -- admin views ----------------------------------------------------------------------------


async def test_dry_run_counts_without_enqueueing_and_stats(
    archive: Archive, fake: FakeBotAPI, bot: Bot
) -> None:
    await seed(archive, [(1, "private"), (2, "private"), (-5, "group")])
    eng = engine(archive, bot)
    dry = await eng.broadcast_now(None, "cli", dry_run=True)
    assert (dry.issue, dry.chats, dry.messages, dry.broadcast_id) == (D14, 3, 9, None)
    assert await column(archive, "SELECT count(*) FROM outbox") == [0]
    with pytest.raises(DeliveryError, match="no issue on 2025-02-01"):
        await eng.broadcast_now(D(2025, 2, 1))
    await eng.start()
    plan = await eng.broadcast_now(None, "cli")
    progress: list[tuple[int, int]] = []

    def bar(done: int, total: int) -> None:
        progress.append((done, total))

    report = await asyncio.wait_for(eng.wait(plan.broadcast_id, bar, poll=0.05), 10)
    await eng.stop()
    assert report is not None and progress[-1] == (9, 9)
    stats = await eng.stats()
    assert stats.chats == {("private", "active"): 2, ("group", "active"): 1}
    assert stats.deliveries == {"sent": 9}
    assert [r.trigger for r in stats.runs] == ["cli"]
    assert "9 sent, 0 failed, 0 newly inactive" in stats.runs[0].summary()


async def test_only_one_process_sends(archive: Archive, fake: FakeBotAPI, bot: Bot) -> None:
    await seed(archive, [(i, "private") for i in range(1, 11)])
    other = await Archive.open(archive.db.path)  # a CLI next to the running bot
    try:
        bot_engine, cli_engine = engine(archive, bot), engine(other, bot)
        await bot_engine.start()
        await asyncio.sleep(0.2)
        await cli_engine.start()
        plan = await cli_engine.broadcast_now(D12, "cli")
        report = await finish(cli_engine, plan.broadcast_id)
        assert bot_engine.sending and not cli_engine.sending
        await cli_engine.stop()
        await bot_engine.stop()
    finally:
        await other.close()
    assert report.sent == 10 and len(fake.sent) == 10
