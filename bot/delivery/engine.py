"""The broadcast engine: the outbox in SQLite, and a background sender that empties it.

Enqueueing writes one outbox row per (kind, issue, chat, part), each pointing at its rendered
text (stored once per distinct text: 100,000 chats of one issue share a few parts), and bumps
the chat's last issue and slot in the same transaction. The unique key makes enqueueing
idempotent, so a crash between two chunks, or a second tick, never doubles a message.

The sender pulls a bounded window of pending rows, keeps one lane per chat (its rows in id
order, one request in flight at a time, so parts arrive in order and a part that failed is
retried before the next one), and dispatches ready lanes under token buckets that keep
Telegram's limits: a global rate, about 1/s per private chat with a short burst, and 20/min
per group or channel. A row is marked sent only once Telegram has confirmed it, and the
lane moves on only after that is committed: after ``kill -9`` only in-flight messages can
repeat. One process sends at a time (a lease row), so a CLI broadcast next to a running bot
cannot send a row twice; the other one only enqueues and watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import heapq
import logging
import os
import random
import socket
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiosqlite
from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.config import Delivery
from bot.core import schedule
from bot.core.dates import DateRange
from bot.core.model import Issue
from bot.core.render import issue_messages
from bot.core.search import Query, QueryError, parse_query
from bot.db import chats
from bot.db.store import Store

log = logging.getLogger(__name__)

Trigger = Literal["schedule", "admin", "cli", "watch"]
ReportCallback = Callable[["BroadcastReport"], Awaitable[None]]
ProgressCallback = Callable[[int, int], None]

CHUNK = 2000  # chats per enqueue transaction: short enough to let handlers write between
# BadRequest texts that mean the chat is gone for good (like a 403), not a bad message.
_GONE = (
    "chat not found",
    "user not found",
    "peer_id_invalid",
    "chat_write_forbidden",
    "have no rights to send",
    "not enough rights to send",
    "need administrator rights",
    "group chat was deactivated",
    "bot was kicked",
    "bot is not a member",
)


class DeliveryError(Exception):
    """A broadcast that cannot be started; the message says why."""


# -- configuration and results ------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What the sender keeps to. Defaults follow Telegram's documented limits."""

    # Token buckets: at most burst + rate x T messages in any T seconds.
    per_second: float = 25.0  # all chats together: never more than 30 in a second
    burst: float = 5.0
    private_per_second: float = 1.0
    private_burst: float = 3.0  # the parts of one issue may go out back to back
    group_per_minute: float = 17.0  # groups, supergroups, channels: at most 20 in a minute
    group_burst: float = 3.0
    in_flight: int = 16  # concurrent requests: throughput must not wait on round trips
    attempts: int = 5  # tries for timeouts, 5xx and connection errors
    backoff: float = 2.0  # first retry after about this many seconds, then doubling
    backoff_max: float = 300.0
    paid: bool = False  # allow_paid_broadcast

    @classmethod
    def from_config(cls, delivery: Delivery) -> Limits:
        rate = delivery.max_messages_per_second
        return cls(
            per_second=rate,
            burst=max(1.0, min(rate / 5, 30.0)),
            in_flight=max(16, min(200, int(rate / 4))),
            paid=delivery.paid_broadcast,
        )

    def chat_rate(self, chat_type: str) -> tuple[float, float]:
        if chat_type == "private":
            return self.private_per_second, self.private_burst
        return self.group_per_minute / 60.0, self.group_burst


@dataclass(frozen=True)
class BroadcastReport:
    """One batch enqueued together (a schedule run, an admin/CLI broadcast, watch hits)."""

    id: int
    trigger: str
    issue: dt.date | None
    started: dt.datetime
    finished: dt.datetime | None
    total: int  # messages
    sent: int
    failed: int
    cancelled: int  # the chat became unreachable or unsubscribed meanwhile
    pending: int
    newly_inactive: int  # chats found blocked/kicked/deactivated by this broadcast

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.cancelled

    @property
    def duration(self) -> float:
        end = self.finished or dt.datetime.now(dt.UTC)
        return max(0.0, (end - self.started).total_seconds())

    def summary(self) -> str:
        """One line for the admins."""
        what = f" {self.issue.isoformat()}" if self.issue else ""
        state = f"{self.duration:.1f} s" if self.finished else f"{self.pending} pending"
        return (
            f"Broadcast #{self.id} ({self.trigger}{what}): {self.sent} sent, "
            f"{self.failed} failed, {self.newly_inactive} newly inactive, {state}"
        )


@dataclass(frozen=True)
class Plan:
    """What ``broadcast_now`` posts (or, for a dry run, would post)."""

    broadcast_id: int | None
    issue: dt.date
    chats: int
    messages: int
    dry_run: bool = False


@dataclass(frozen=True)
class Stats:
    chats: dict[tuple[str, str], int]  # (type, status) -> chats
    deliveries: dict[str, int]  # outbox status -> messages
    runs: list[BroadcastReport]  # newest first


# -- the in-memory side of the sender: lanes and token buckets (no I/O) --------------------


@dataclass
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    last: float

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.last) * self.rate)
        self.last = max(self.last, now)

    def ready_at(self, now: float) -> float:
        self._refill(now)
        return now if self.tokens >= 1.0 else now + (1.0 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1.0

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.capacity


@dataclass(slots=True)
class _Row:
    id: int
    chat_id: int
    text_id: int
    attempts: int
    due: float  # monotonic
    broadcast_id: int | None


@dataclass(slots=True)
class _Lane:
    chat_id: int
    chat_type: str
    seq: int  # arrival order: among ready lanes, the oldest goes first
    rows: deque[_Row] = field(default_factory=deque)
    busy: bool = False
    token: int = 0  # invalidates heap entries pushed before the last reschedule


class _Lanes:
    """Per-chat queues and who may send next. A lane whose chat bucket has a token and whose
    head row is due is *ready*; among ready lanes the oldest goes first, so an issue's parts
    follow each other within the chat's burst, then other chats get their turn."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.lanes: dict[int, _Lane] = {}
        self.loaded: dict[int, int | None] = {}  # row id -> broadcast id (in memory or unflushed)
        self.per_broadcast: Counter[int | None] = Counter()
        self._ready: list[tuple[int, int, int]] = []  # (seq, token, chat)
        self._waiting: list[tuple[float, int, int, int]] = []  # (at, seq, token, chat)
        self._buckets: dict[int, _Bucket] = {}
        self._paused: dict[int, float] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self.loaded)

    def add(self, row: _Row, chat_type: str, now: float) -> None:
        if row.id in self.loaded:
            return
        self.loaded[row.id] = row.broadcast_id
        self.per_broadcast[row.broadcast_id] += 1
        lane = self.lanes.get(row.chat_id)
        if lane is None:
            self._seq += 1
            lane = self.lanes[row.chat_id] = _Lane(row.chat_id, chat_type, self._seq)
        lane.rows.append(row)
        if len(lane.rows) == 1 and not lane.busy:
            self._schedule(lane, now)

    def forget(self, row_id: int) -> int | None:
        """The row is settled in the database; returns its broadcast."""
        if row_id not in self.loaded:
            return None
        broadcast = self.loaded.pop(row_id)
        self.per_broadcast[broadcast] -= 1
        return broadcast

    def bucket(self, lane: _Lane, now: float) -> _Bucket:
        bucket = self._buckets.get(lane.chat_id)
        if bucket is None:
            rate, burst = self.limits.chat_rate(lane.chat_type)
            bucket = self._buckets[lane.chat_id] = _Bucket(rate, burst, burst, now)
        return bucket

    def _schedule(self, lane: _Lane, now: float) -> None:
        at = max(
            lane.rows[0].due,
            self.bucket(lane, now).ready_at(now),
            self._paused.get(lane.chat_id, 0.0),
        )
        lane.token += 1
        if at <= now:
            heapq.heappush(self._ready, (lane.seq, lane.token, lane.chat_id))
        else:
            heapq.heappush(self._waiting, (at, lane.seq, lane.token, lane.chat_id))

    def _valid(self, chat_id: int, token: int) -> _Lane | None:
        lane = self.lanes.get(chat_id)
        return lane if lane and lane.token == token and not lane.busy and lane.rows else None

    def pop_ready(self, now: float) -> _Lane | None:
        while self._waiting and self._waiting[0][0] <= now:
            _, seq, token, chat_id = heapq.heappop(self._waiting)
            if self._valid(chat_id, token):
                heapq.heappush(self._ready, (seq, token, chat_id))
        while self._ready:
            _, token, chat_id = heapq.heappop(self._ready)
            lane = self._valid(chat_id, token)
            if lane:
                lane.busy = True
                return lane
        return None

    def next_wake(self) -> float | None:
        while self._waiting and not self._valid(self._waiting[0][3], self._waiting[0][2]):
            heapq.heappop(self._waiting)
        return self._waiting[0][0] if self._waiting else None

    def release(self, lane: _Lane, now: float) -> None:
        """The lane's request is over (and recorded): schedule its next row."""
        lane.busy = False
        if self.lanes.get(lane.chat_id) is not lane:
            return  # dropped meanwhile
        if lane.rows:
            self._schedule(lane, now)
        else:
            del self.lanes[lane.chat_id]

    def pause(self, chat_id: int, until: float) -> None:
        self._paused[chat_id] = max(until, self._paused.get(chat_id, 0.0))

    def drop_chat(self, chat_id: int) -> list[_Row]:
        """Forget every row of the chat (its pending rows were settled in the database)."""
        lane = self.lanes.pop(chat_id, None)
        rows = list(lane.rows) if lane else []
        for row in rows:
            self.forget(row.id)
        return rows

    def drop_stale(self, pending: set[int], horizon: int, now: float) -> None:
        """Forget rows up to ``horizon`` that are no longer pending in the database (a /stop
        cancelled them, say), except a row in flight."""
        for lane in list(self.lanes.values()):
            head = lane.rows[0].id if lane.busy and lane.rows else None
            stale = {r.id for r in lane.rows if r.id <= horizon and r.id not in pending} - {head}
            if not stale:
                continue
            for row_id in stale:
                self.forget(row_id)
            lane.rows = deque(r for r in lane.rows if r.id not in stale)
            if not lane.busy:
                self.release(lane, now)

    def prune(self, now: float) -> None:
        """Drop state that no longer limits anything, so memory does not grow per chat."""
        for chat_id in [c for c, b in self._buckets.items() if c not in self.lanes and b.full(now)]:
            del self._buckets[chat_id]
        for chat_id in [c for c, until in self._paused.items() if until <= now]:
            del self._paused[chat_id]
        if not self.lanes:
            self._ready.clear()
            self._waiting.clear()


# -- the database side --------------------------------------------------------------------


async def _rows(db: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> list[Any]:
    async with db.execute(sql, tuple(params)) as cur:
        return list(await cur.fetchall())


async def _text_id(db: aiosqlite.Connection, html: str) -> int:
    digest = hashlib.sha256(html.encode()).hexdigest()
    await db.execute("INSERT OR IGNORE INTO texts (sha256, html) VALUES (?, ?)", [digest, html])
    rows = await _rows(db, "SELECT id FROM texts WHERE sha256 = ?", [digest])
    return int(rows[0][0])


_INSERT_ISSUE = (
    "INSERT INTO outbox (kind, issue, chat_id, part, text_id, broadcast_id, created_at)"
    " VALUES ('issue', ?, ?, ?, ?, ?, ?)"
    # Enqueueing again never doubles: a row already pending or sent stays as it is; one that
    # failed or was cancelled (the chat was blocked then) is queued again.
    " ON CONFLICT (kind, issue, chat_id, part) DO UPDATE SET status = 'pending', attempts = 0,"
    " next_at = 0, last_error = NULL, text_id = excluded.text_id,"
    " broadcast_id = excluded.broadcast_id WHERE outbox.status IN ('failed', 'cancelled')"
)
_INSERT_WATCH = (
    "INSERT OR IGNORE INTO outbox (kind, issue, chat_id, part, text_id, broadcast_id, created_at)"
    " VALUES ('watch', ?, ?, ?, ?, ?, ?)"
)
_BUMP = (
    "UPDATE chats SET last_slot = coalesce(?, last_slot),"
    " last_issue = nullif(max(coalesce(last_issue, ''), coalesce(?, '')), '') WHERE id = ?"
)


class _Batch:
    """The rows enqueued together under one broadcast id, which is created on first use."""

    def __init__(self, store: Store, trigger: Trigger, issue: dt.date | None) -> None:
        self.store = store
        self.trigger = trigger
        self.issue = issue
        self.id: int | None = None
        self.rows = 0

    async def insert(
        self, db: aiosqlite.Connection, sql: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        if self.id is None:
            cur = await db.execute(
                "INSERT INTO broadcasts (trigger, issue, started_at) VALUES (?, ?, ?)",
                [self.trigger, self.issue.isoformat() if self.issue else None, time.time()],
            )
            self.id = cur.lastrowid
        now = time.time()
        cur = await db.executemany(sql, [(*r, self.id, now) for r in rows])
        self.rows += max(cur.rowcount, 0)

    async def close(self) -> int | None:
        """Mark it fully enqueued; a batch that queued nothing new is not kept."""
        if self.id is None:
            return None
        async with self.store.transaction() as db:
            if self.rows == 0:
                await db.execute("DELETE FROM broadcasts WHERE id = ?", [self.id])
                return None
            await db.execute(
                "UPDATE broadcasts SET enqueued_at = ? WHERE id = ?", [time.time(), self.id]
            )
        return self.id


class _Texts:
    """Rendered issue parts as text ids, per enqueue run (an issue may change between runs)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._issues: dict[dt.date, Issue | None] = {}
        self._ids: dict[tuple[dt.date, str], list[int]] = {}

    async def issue(self, date: dt.date) -> Issue | None:
        if date not in self._issues:
            self._issues[date] = await self.store.issue(date)
        return self._issues[date]

    async def parts(self, db: aiosqlite.Connection, date: dt.date, lang: str) -> list[int]:
        key = (date, lang)
        if key not in self._ids:
            issue = await self.issue(date)
            html = issue_messages(issue, lang) if issue else []
            self._ids[key] = [await _text_id(db, h) for h in html]
        return self._ids[key]


def _wall_to_mono(at: float) -> float:
    return time.monotonic() + (at - time.time()) if at else 0.0


def _dt(ts: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(ts, dt.UTC) if ts else None


async def _report(db: aiosqlite.Connection, broadcast_id: int) -> BroadcastReport | None:
    rows = await _rows(
        db,
        "SELECT id, trigger, issue, started_at, finished_at, total, sent, failed, cancelled,"
        " newly_inactive FROM broadcasts WHERE id = ?",
        [broadcast_id],
    )
    if not rows:
        return None
    bid, trigger, issue, started, finished, total, sent, failed, cancelled, inactive = rows[0]
    pending = 0
    if finished is None:  # live counts
        by = dict(
            await _rows(
                db,
                "SELECT status, count(*) FROM outbox WHERE broadcast_id = ? GROUP BY status",
                [bid],
            )
        )
        sent, failed, cancelled, pending = (
            by.get(s, 0) for s in ("sent", "failed", "cancelled", "pending")
        )
        total = sent + failed + cancelled + pending
    return BroadcastReport(
        bid,
        trigger,
        dt.date.fromisoformat(issue) if issue else None,
        _dt(started) or dt.datetime.now(dt.UTC),
        _dt(finished),
        total,
        sent,
        failed,
        cancelled,
        pending,
        inactive,
    )


class _Lease:
    """The right to send, held by one process at a time and renewed while it runs. A holder
    on this host whose process is gone (``kill -9``) is taken over at once."""

    def __init__(self, store: Store, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def _dead(self, owner: str) -> bool:
        host, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        if host != self.host or not pid.isdigit() or int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False

    async def acquire(self) -> bool:
        async with self.store.transaction() as db:
            rows = await _rows(db, "SELECT owner, expires FROM delivery_lease WHERE id = 1")
            if rows:
                owner, expires = rows[0]
                if owner != self.owner and expires > time.time() and not self._dead(owner):
                    return False
            await db.execute(
                "INSERT OR REPLACE INTO delivery_lease (id, owner, expires) VALUES (1, ?, ?)",
                [self.owner, time.time() + self.ttl],
            )
            return True

    async def release(self) -> None:
        async with self.store.transaction() as db:
            await db.execute("DELETE FROM delivery_lease WHERE owner = ?", [self.owner])


@dataclass(slots=True)
class _Op:
    kind: Literal["sent", "retry", "failed"]
    row: _Row
    message_id: int | None = None
    error: str | None = None
    next_at: float = 0.0


_APPLY = {
    "sent": "UPDATE outbox SET status = 'sent', message_id = ?, sent_at = ?,"
    " attempts = attempts + 1, last_error = NULL WHERE id = ?",
    "retry": "UPDATE outbox SET attempts = ?, next_at = ?, last_error = ?"
    " WHERE id = ? AND status = 'pending'",
    "failed": "UPDATE outbox SET status = 'failed', attempts = ?, last_error = ?"
    " WHERE id = ? AND status = 'pending'",
}


def _op_params(op: _Op, now: float) -> tuple[Any, ...]:
    if op.kind == "sent":
        return (op.message_id, now, op.row.id)
    if op.kind == "retry":
        return (op.row.attempts, op.next_at, op.error, op.row.id)
    return (op.row.attempts, op.error, op.row.id)


async def _apply(db: aiosqlite.Connection, ops: Sequence[_Op]) -> None:
    now = time.time()
    for kind, sql in _APPLY.items():
        params = [_op_params(op, now) for op in ops if op.kind == kind]
        if params:  # each statement is a round trip to the database thread
            await db.executemany(sql, params)


def _gone(err: TelegramError) -> bool:
    """Whether Telegram says the chat is unreachable for good."""
    if isinstance(err, Forbidden):
        return True
    text = err.message.lower()
    return isinstance(err, BadRequest) and any(g in text for g in _GONE)


def _retry_after(err: RetryAfter) -> float:
    value: Any = err.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def _now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- the engine ---------------------------------------------------------------------------


class DeliveryEngine:
    """Enqueues (``tick``, ``broadcast_now``, ``on_new_issues``) and sends in the background
    (``start`` / ``stop``). ``on_report`` is awaited with each finished broadcast."""

    def __init__(
        self,
        store: Store,
        bot: Bot,
        config: Delivery,
        *,
        limits: Limits | None = None,
        on_report: ReportCallback | None = None,
        clock: Callable[[], dt.datetime] = _now_utc,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.bot = bot
        self.config = config
        self.limits = limits or Limits.from_config(config)
        self.on_report = on_report
        self.clock = clock
        self.poll = poll_seconds
        self._lease = _Lease(store, lease_seconds)
        self._window = int(min(20_000, max(200, self.limits.per_second * 4)))
        self._tick_lock = asyncio.Lock()
        self._watch_lock = asyncio.Lock()
        self._reporting: set[asyncio.Task[None]] = set()
        self._reset()

    def _reset(self) -> None:
        self._lanes = _Lanes(self.limits)
        self._global = _Bucket(
            self.limits.per_second, self.limits.burst, self.limits.burst, time.monotonic()
        )
        self._paused_until = 0.0
        self._floods: deque[tuple[float, int]] = deque()
        self._ops: list[_Op] = []
        self._flush_lock = asyncio.Lock()
        self._texts: dict[int, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.limits.in_flight)
        self._wake = asyncio.Event()
        self._stopping = False
        self._runner: asyncio.Task[None] | None = None
        self._leader = False
        self._refill_at = 0.0  # monotonic; 0: now
        self._exhausted = False
        self._checked_open = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._runner is not None and not self._runner.done()

    @property
    def sending(self) -> bool:
        """Whether this process holds the lease (else another process sends)."""
        return self._leader

    async def start(self) -> None:
        """Start the sender in the background; pending rows are resumed."""
        if self.running:
            return
        self._reset()
        self._runner = asyncio.create_task(self._run(), name="briefbot-delivery")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly: no new sends; in-flight ones finish (or stay pending after
        ``timeout``); confirmations are written; the outbox is left intact."""
        if self._runner is None:
            return
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._runner
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._flush()
        if self._reporting:
            await asyncio.wait(self._reporting, timeout=timeout)
        if self._leader:
            await self._lease.release()
            self._leader = False
        self._runner = None

    def notify(self) -> None:
        """New rows are in the outbox: look now rather than at the next poll."""
        self._refill_at = 0.0
        self._exhausted = False
        self._wake.set()

    # -- the sender loop -------------------------------------------------------------------

    async def _run(self) -> None:
        renew_at = 0.0
        while not self._stopping:
            # Cleared before looking at the state: a wake-up from here on is not lost.
            self._wake.clear()
            now = time.monotonic()
            try:
                if now >= renew_at:
                    renew_at = now + self._lease.ttl / 3
                    await self._hold_lease()
                if not self._leader:  # another process sends; a wake-up must not change that
                    await self._sleep(renew_at - now)
                    continue
                await self._step(now)
            except Exception:
                log.exception("delivery: unexpected error; retrying in a second")
                await self._sleep(1.0)

    async def _hold_lease(self) -> None:
        was = self._leader
        self._leader = await self._lease.acquire()
        if self._leader and not was:
            log.info("delivery: this process sends (resuming pending messages)")
            if not self._tasks:  # what was in memory may have been sent by the other one
                self._lanes = _Lanes(self.limits)
            self.notify()

    async def _step(self, now: float) -> None:
        if now >= self._checked_open:
            self._checked_open = now + 5 * self.poll
            await self._finish_open()
        if self._wants_refill(now):
            await self._refill()
        wait = max(self._paused_until, self._global.ready_at(now)) - now
        if wait > 0:
            await self._sleep(wait)
            return
        lane = self._lanes.pop_ready(now)
        if lane is None and not self._exhausted and len(self._lanes) < 10 * self._window:
            # Everything loaded waits on its chat's limit (a group's backlog, say): look
            # further ahead rather than leave the global rate unused.
            await self._refill(more=True)
            lane = self._lanes.pop_ready(now)
        if lane is None:
            wake = self._lanes.next_wake()
            await self._sleep(min(self.poll, wake - now) if wake else self.poll)
            return
        await self._slots.acquire()
        if self._stopping:
            self._slots.release()
            self._lanes.release(lane, time.monotonic())
            return
        self._global.take(time.monotonic())
        task = asyncio.create_task(self._send(lane))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sleep(self, seconds: float) -> None:
        """Until ``seconds`` passed or something changed (a send ended, rows were queued)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, seconds))

    def _wants_refill(self, now: float) -> bool:
        if len(self._lanes) < self._window // 2 and not self._exhausted:
            return True
        return now >= self._refill_at

    async def _refill(self, more: bool = False) -> None:
        """Top the rows in memory up to the window (``more``: one window beyond), never the
        whole outbox, and forget rows that stopped being pending (cancelled by a /stop)."""
        self._refill_at = time.monotonic() + self.poll
        loaded = len(self._lanes)
        limit = loaded + (self._window if more else max(1, self._window - loaded))
        async with self.store.transaction() as db:  # a consistent read of committed rows
            rows = await _rows(
                db,
                "SELECT o.id, o.chat_id, o.text_id, o.attempts, o.next_at, o.broadcast_id,"
                " coalesce(c.type, 'private') FROM outbox o LEFT JOIN chats c ON c.id = o.chat_id"
                " WHERE o.status = 'pending' ORDER BY o.id LIMIT ?",
                [limit],
            )
        self._exhausted = len(rows) < limit
        horizon = 2**63 if self._exhausted else rows[-1][0]
        now = time.monotonic()
        self._lanes.drop_stale({r[0] for r in rows}, horizon, now)
        for rid, chat_id, text_id, attempts, next_at, bid, kind in rows:
            self._lanes.add(
                _Row(rid, chat_id, text_id, attempts, _wall_to_mono(next_at), bid), kind, now
            )
        self._lanes.prune(now)

    # -- one message -----------------------------------------------------------------------

    async def _send(self, lane: _Lane) -> None:
        row = lane.rows[0]
        try:
            try:
                message_id = await self._post(row)
            except Exception as err:
                await self._failed(lane, row, err)
            else:
                self._ops.append(_Op("sent", row, message_id))
                lane.rows.popleft()
                await self._flush()
        finally:
            now = time.monotonic()
            self._lanes.bucket(lane, now).take(now)  # charged on completion: see _Bucket
            self._lanes.release(lane, now)
            self._slots.release()
            self._wake.set()

    async def _post(self, row: _Row) -> int:
        text = await self._text(row.text_id)
        message = await self.bot.send_message(
            chat_id=row.chat_id,
            text=text,
            parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
            allow_paid_broadcast=True if self.limits.paid else None,
        )
        return message.message_id

    async def _text(self, text_id: int) -> str:
        text = self._texts.get(text_id)
        if text is None:
            rows = await _rows(self.store.db, "SELECT html FROM texts WHERE id = ?", [text_id])
            text = str(rows[0][0])
            if len(self._texts) >= 256:
                self._texts.pop(next(iter(self._texts)))
            self._texts[text_id] = text
        return text

    def _redact(self, err: BaseException) -> str:
        text = f"{type(err).__name__}: {err}"
        return text.replace(self.bot.token, "<token>")[:500]

    async def _failed(self, lane: _Lane, row: _Row, err: Exception) -> None:
        if isinstance(err, RetryAfter):
            self._flood(lane, _retry_after(err))
        elif isinstance(err, ChatMigrated):
            await self._migrated(lane, int(err.new_chat_id))
        elif isinstance(err, TelegramError) and _gone(err):
            await self._gone(lane, row, self._redact(err))
        elif isinstance(err, BadRequest):
            row.attempts += 1
            await self._settle(lane, _Op("failed", row, error=self._redact(err)))
        else:
            await self._retry(lane, row, err)

    def _flood(self, lane: _Lane, seconds: float) -> None:
        """A 429: pause the chat; if other chats were refused within the last second too,
        the global limit was hit, so pause everything. The row stays first in its lane."""
        now = time.monotonic()
        until = now + seconds
        self._lanes.pause(lane.chat_id, until)
        self._floods.append((now, lane.chat_id))
        while self._floods and self._floods[0][0] < now - 1.0:
            self._floods.popleft()
        if len({chat for _, chat in self._floods}) > 1:
            self._paused_until = max(self._paused_until, until)
        log.info("delivery: 429 for chat %s, waiting %.1f s", lane.chat_id, seconds)

    async def _retry(self, lane: _Lane, row: _Row, err: Exception) -> None:
        if not isinstance(err, NetworkError | TelegramError):
            log.error("delivery: unexpected error sending to %s", row.chat_id, exc_info=err)
        row.attempts += 1
        error = self._redact(err)
        if row.attempts >= self.limits.attempts:
            await self._settle(lane, _Op("failed", row, error=error))
            return
        base = min(self.limits.backoff_max, self.limits.backoff * 2 ** (row.attempts - 1))
        delay = base * random.uniform(0.5, 1.5)
        row.due = time.monotonic() + delay
        self._ops.append(_Op("retry", row, error=error, next_at=time.time() + delay))
        await self._flush()

    async def _settle(self, lane: _Lane, op: _Op) -> None:
        """A terminal outcome other than sent: the lane moves on to its next row."""
        self._ops.append(op)
        lane.rows.popleft()
        await self._flush()

    async def _gone(self, lane: _Lane, row: _Row, reason: str) -> None:
        changed = await chats.mark_inactive(self.store, lane.chat_id, reason)
        if changed and row.broadcast_id is not None:
            async with self.store.transaction() as db:
                await db.execute(
                    "UPDATE broadcasts SET newly_inactive = newly_inactive + 1 WHERE id = ?",
                    [row.broadcast_id],
                )
        dropped = self._lanes.drop_chat(lane.chat_id)
        await self._check_finished({r.broadcast_id for r in dropped})
        log.info("delivery: chat %s is unreachable (%s)", lane.chat_id, reason)

    async def _migrated(self, lane: _Lane, new_id: int) -> None:
        await chats.migrate(self.store, lane.chat_id, new_id)
        # Its rows now point at the new id in the database; the next refill loads them.
        self._lanes.drop_chat(lane.chat_id)
        self.notify()
        log.info("delivery: chat %s migrated to %s", lane.chat_id, new_id)

    async def _flush(self) -> None:
        """Write what the sends learned, in one transaction for all that is waiting (group
        commit: concurrent sends share a commit instead of queueing one each)."""
        async with self._flush_lock:
            ops, self._ops = self._ops, []
            if not ops:
                return
            try:
                async with self.store.transaction() as db:
                    await _apply(db, ops)
            except Exception:
                log.exception("delivery: cannot record %d results; will retry", len(ops))
                self._ops[:0] = ops
                return
        settled = {self._lanes.forget(op.row.id) for op in ops if op.kind != "retry"}
        await self._check_finished(settled)

    # -- broadcasts finishing --------------------------------------------------------------

    async def _check_finished(self, broadcasts: Iterable[int | None]) -> None:
        for bid in broadcasts:
            if bid is not None and self._lanes.per_broadcast[bid] <= 0:
                await self._finish(bid)

    async def _finish_open(self) -> None:
        """Finish broadcasts whose rows all settled; adopt ones whose enqueuer died."""
        stale = time.time() - 600
        async with self.store.transaction() as db:
            await db.execute(
                "UPDATE broadcasts SET enqueued_at = ? WHERE enqueued_at IS NULL"
                " AND finished_at IS NULL AND started_at < ?",
                [time.time(), stale],
            )
        rows = await _rows(
            self.store.db,
            "SELECT id FROM broadcasts WHERE finished_at IS NULL AND enqueued_at IS NOT NULL",
        )
        await self._check_finished(r[0] for r in rows)

    async def _finish(self, broadcast_id: int) -> None:
        """Close the broadcast if it is fully enqueued and nothing of it is pending."""
        if not self._leader:
            return  # the sending process reports
        async with self.store.transaction() as db:
            done = await _rows(
                db,
                "SELECT 1 FROM broadcasts WHERE id = ? AND enqueued_at IS NOT NULL"
                " AND finished_at IS NULL AND NOT EXISTS (SELECT 1 FROM outbox"
                " WHERE broadcast_id = ? AND status = 'pending')",
                [broadcast_id, broadcast_id],
            )
            live = await _report(db, broadcast_id) if done else None
            if live is None:
                return
            await db.execute(
                "UPDATE broadcasts SET finished_at = ?, total = ?, sent = ?, failed = ?,"
                " cancelled = ? WHERE id = ?",
                [time.time(), live.total, live.sent, live.failed, live.cancelled, broadcast_id],
            )
            report = await _report(db, broadcast_id)
        if report is not None:
            log.info("delivery: %s", report.summary())
            # Not awaited here: a slow admin message must not hold up a lane.
            task = asyncio.create_task(self._call_report(report))
            self._reporting.add(task)
            task.add_done_callback(self._reporting.discard)

    async def _call_report(self, report: BroadcastReport) -> None:
        if self.on_report is None:
            return
        try:
            await self.on_report(report)
        except Exception:
            log.exception("delivery: the report callback failed")

    # -- enqueueing ------------------------------------------------------------------------

    async def tick(self, now: dt.datetime | None = None) -> int | None:
        """Enqueue what is due at ``now``: for every active chat (config channels included)
        whose slot came, the issues newer than its last one. Returns the broadcast id, or
        None if nothing new was due. Call it every ~30 s and once at start (catch-up)."""
        if self._tick_lock.locked():
            return None
        async with self._tick_lock:
            now = now or self.clock()
            available = await self.store.issue_dates()
            batch = _Batch(self.store, "schedule", None)
            texts = _Texts(self.store)
            rows = await _rows(
                self.store.db, "SELECT DISTINCT delivery_time FROM chats WHERE status = 'active'"
            )
            for (own,) in rows:
                times = schedule.chat_times(
                    self.config.times, schedule.parse_hhmm(own) if own else None
                )
                slot = schedule.slot_key(schedule.latest_slot(now, times, self.config.tz))
                await self._enqueue_due(batch, texts, own, slot, available)
            return await self._closed(batch)

    async def _closed(self, batch: _Batch) -> int | None:
        bid = await batch.close()
        if bid is not None:
            self.notify()
            await self._check_finished([bid])  # every row may already have settled
        return bid

    async def _enqueue_due(
        self, batch: _Batch, texts: _Texts, own: str | None, slot: str, available: list[dt.date]
    ) -> None:
        cursor = -(2**63)
        while True:
            async with self.store.transaction() as db:
                chunk = await _rows(
                    db,
                    "SELECT id, language, last_issue FROM chats WHERE status = 'active'"
                    " AND delivery_time IS ? AND (last_slot IS NULL OR last_slot < ?) AND id > ?"
                    " ORDER BY id LIMIT ?",
                    [own, slot, cursor, CHUNK],
                )
                if not chunk:
                    return
                rows, bumps = [], []
                for chat_id, lang, last in chunk:
                    last_issue = dt.date.fromisoformat(last) if last else None
                    dates = schedule.issues_to_send(available, last_issue, self.config.max_backlog)
                    for date in dates:
                        for part, tid in enumerate(await texts.parts(db, date, lang or "zh")):
                            rows.append((date.isoformat(), chat_id, part, tid))
                    bumps.append((slot, dates[-1].isoformat() if dates else None, chat_id))
                await batch.insert(db, _INSERT_ISSUE, rows)
                await db.executemany(_BUMP, bumps)
            cursor = chunk[-1][0]
            self.notify()  # the first chunk goes out while the next ones are written

    async def broadcast_now(
        self, date: dt.date | None = None, trigger: Trigger = "admin", *, dry_run: bool = False
    ) -> Plan:
        """Post the issue of ``date`` (default: the newest) now to every active chat that has
        not received it. A dry run only counts. DeliveryError if there is no such issue."""
        date = date or await self.store.latest_date()
        issue = await self.store.issue(date) if date else None
        if date is None or issue is None:
            raise DeliveryError(f"no issue on {date}" if date else "the archive has no issue yet")
        iso = date.isoformat()
        missing = (
            "status = 'active' AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'issue'"
            " AND o.issue = ? AND o.chat_id = c.id AND o.status IN ('pending', 'sent'))"
        )
        count = (
            await _rows(self.store.db, f"SELECT count(*) FROM chats c WHERE {missing}", [iso])
        )[0][0]
        parts = len(issue_messages(issue))
        if dry_run or not count:
            return Plan(None, date, count, count * parts, dry_run)
        batch = _Batch(self.store, trigger, date)
        texts = _Texts(self.store)
        cursor = -(2**63)
        while True:
            async with self.store.transaction() as db:
                chunk = await _rows(
                    db,
                    f"SELECT id, language FROM chats c WHERE {missing} AND id > ? ORDER BY id LIMIT ?",
                    [iso, cursor, CHUNK],
                )
                if not chunk:
                    break
                rows = [
                    (iso, chat_id, part, tid)
                    for chat_id, lang in chunk
                    for part, tid in enumerate(await texts.parts(db, date, lang or "zh"))
                ]
                await batch.insert(db, _INSERT_ISSUE, rows)
                await db.executemany(_BUMP, [(None, iso, chat_id) for chat_id, _ in chunk])
            cursor = chunk[-1][0]
            self.notify()
        return Plan(await self._closed(batch), date, count, count * parts)

    async def on_new_issues(self, dates: Iterable[dt.date]) -> int:
        """Keyword watches: for each newly indexed issue (at most the newest ``max_backlog``,
        so a rebuilt index is no flood), each chat whose watches match items of it gets
        those items, once per (issue, chat). Returns the number of chats served."""
        served = 0
        async with self._watch_lock:
            for date in sorted(set(dates))[-self.config.max_backlog :]:
                served += await self._watch_issue(date)
        return served

    async def _watch_issue(self, date: dt.date) -> int:
        issue = await self.store.issue(date)
        if issue is None:
            return 0
        batch = _Batch(self.store, "watch", date)
        hits: dict[str, set[int]] = {}
        served, cursor = 0, -(2**63)
        while True:
            chunk = await _rows(
                self.store.db,
                "SELECT w.chat_id, c.language, group_concat(w.terms, char(31)) FROM watches w"
                " JOIN chats c ON c.id = w.chat_id WHERE c.status IN ('active', 'stopped')"
                " AND w.chat_id > ? AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'watch'"
                " AND o.issue = ? AND o.chat_id = w.chat_id) GROUP BY w.chat_id"
                " ORDER BY w.chat_id LIMIT ?",
                [cursor, date.isoformat(), CHUNK],
            )
            if not chunk:
                break
            messages: list[tuple[int, list[str]]] = []
            for chat_id, lang, joined in chunk:
                terms = joined.split("\x1f")
                for t in terms:
                    if t not in hits:
                        hits[t] = await self._matches(t, date)
                numbers = set().union(*(hits[t] for t in terms))
                if numbers:
                    items = tuple(i for i in issue.items if i.number in numbers)
                    found = Issue(date, "🔔 " + " · ".join(terms), items)
                    messages.append((chat_id, issue_messages(found, lang or "zh")))
            async with self.store.transaction() as db:
                rows = [
                    (date.isoformat(), chat_id, part, await _text_id(db, html))
                    for chat_id, parts in messages
                    for part, html in enumerate(parts)
                ]
                await batch.insert(db, _INSERT_WATCH, rows)
            served += len(messages)
            cursor = chunk[-1][0]
        await self._closed(batch)
        return served

    async def _matches(self, terms: str, date: dt.date) -> set[int]:
        """Item numbers of that issue matching the terms, exactly as /find matches them."""
        try:
            query = parse_query(terms)
        except QueryError:
            return set()
        if query.period and not query.period.start <= date <= query.period.end:
            return set()
        page = await self.store.search(Query(query.terms, DateRange(date, date)), limit=1000)
        return {hit.number for hit in page.hits}

    # -- reading ---------------------------------------------------------------------------

    async def report(self, broadcast_id: int) -> BroadcastReport | None:
        return await _report(self.store.db, broadcast_id)

    async def wait(
        self,
        broadcast_id: int | None,
        progress: ProgressCallback | None = None,
        *,
        poll: float = 0.5,
    ) -> BroadcastReport | None:
        """Until the broadcast finished (sent here or by the process holding the lease),
        calling ``progress(done, total)`` on the way: the CLI's progress bar."""
        if broadcast_id is None:
            return None
        while True:
            report = await self.report(broadcast_id)
            if report is None:
                return None
            if progress is not None:
                progress(report.done, report.total)
            if report.finished:
                return report
            await asyncio.sleep(poll)

    async def stats(self, runs: int = 5) -> Stats:
        """For /stats: chats by type and status, deliveries by status, the last runs."""
        deliveries = dict(
            await _rows(self.store.db, "SELECT status, count(*) FROM outbox GROUP BY status")
        )
        ids = await _rows(
            self.store.db, "SELECT id FROM broadcasts ORDER BY id DESC LIMIT ?", [runs]
        )
        reports = [r for (bid,) in ids if (r := await self.report(bid)) is not None]
        return Stats(await chats.counts(self.store), deliveries, reports)

    # -- config channels -------------------------------------------------------------------

    async def sync_channels(self) -> list[str]:
        """Resolve ``delivery.channels`` with getChat and subscribe them (call at start).
        Returns the problems (also logged); a channel that failed keeps its old state."""
        resolved = await chats.resolve_channels(self.bot, self.config.channels)
        await chats.sync_config_channels(self.store, resolved.found, self.config.channels)
        return resolved.problems
