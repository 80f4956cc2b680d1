"""Pacing for the sender: token buckets, per-chat lanes and Telegram's limits. Pure (no
I/O, the clock is passed in), so it is tested on its own with plain numbers.

A lane holds one chat's pending messages in id order, with at most one in flight, so the
parts of an issue arrive in order and a part that failed is retried before the next one.
Among lanes whose chat bucket has a token and whose head is due, the oldest goes first.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from dataclasses import dataclass, field


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
    def for_rate(cls, rate: float, paid: bool = False) -> Limits:
        """The limits for a configured global rate (25/s free, up to 1000/s paid)."""
        return cls(
            per_second=rate,
            burst=max(1.0, min(rate / 5, 30.0)),
            in_flight=max(16, min(200, int(rate / 4))),
            paid=paid,
        )

    def chat_rate(self, chat_type: str) -> tuple[float, float]:
        if chat_type == "private":
            return self.private_per_second, self.private_burst
        return self.group_per_minute / 60.0, self.group_burst


@dataclass
class Bucket:
    """At most ``capacity + rate x T`` takes in any T seconds."""

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
class Pending:
    """One outbox row in memory."""

    id: int
    chat_id: int
    text_id: int
    attempts: int
    due: float  # monotonic
    broadcast_id: int | None
    silent: bool = False  # the chat chose /quiet: send with disable_notification
    thread_id: int = 0  # the forum topic it goes to (message_thread_id); 0: none


@dataclass(slots=True)
class Lane:
    chat_id: int
    chat_type: str
    seq: int  # arrival order: among ready lanes, the oldest goes first
    rows: deque[Pending] = field(default_factory=deque)
    busy: bool = False
    token: int = 0  # invalidates heap entries pushed before the last reschedule


class Lanes:
    """Per-chat queues and who may send next. A lane whose chat bucket has a token and whose
    head row is due is *ready*; among ready lanes the oldest goes first, so an issue's parts
    follow each other within the chat's burst, then other chats get their turn."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.lanes: dict[int, Lane] = {}
        self.loaded: dict[int, int | None] = {}  # row id -> broadcast id (in memory or unflushed)
        self.per_broadcast: Counter[int | None] = Counter()
        self._ready: list[tuple[int, int, int]] = []  # (seq, token, chat)
        self._waiting: list[tuple[float, int, int, int]] = []  # (at, seq, token, chat)
        self._buckets: dict[int, Bucket] = {}
        self._paused: dict[int, float] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self.loaded)

    def add(self, row: Pending, chat_type: str, now: float) -> None:
        if row.id in self.loaded:
            return
        self.loaded[row.id] = row.broadcast_id
        self.per_broadcast[row.broadcast_id] += 1
        lane = self.lanes.get(row.chat_id)
        if lane is None:
            self._seq += 1
            lane = self.lanes[row.chat_id] = Lane(row.chat_id, chat_type, self._seq)
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

    def bucket(self, lane: Lane, now: float) -> Bucket:
        bucket = self._buckets.get(lane.chat_id)
        if bucket is None:
            rate, burst = self.limits.chat_rate(lane.chat_type)
            bucket = self._buckets[lane.chat_id] = Bucket(rate, burst, burst, now)
        return bucket

    def _schedule(self, lane: Lane, now: float) -> None:
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

    def _valid(self, chat_id: int, token: int) -> Lane | None:
        lane = self.lanes.get(chat_id)
        return lane if lane and lane.token == token and not lane.busy and lane.rows else None

    def pop_ready(self, now: float) -> Lane | None:
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

    def release(self, lane: Lane, now: float) -> None:
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

    def drop_chat(self, chat_id: int) -> list[Pending]:
        """Forget every row of the chat (its pending rows were settled in the database)."""
        lane = self.lanes.pop(chat_id, None)
        rows = list(lane.rows) if lane else []
        for row in rows:
            self.forget(row.id)
        return rows

    def drop_topic(self, lane: Lane, thread_id: int) -> list[Pending]:
        """Forget the lane's outbox rows to one forum topic (closed or deleted); its other
        rows (other topics, the chat's own, edits: negative ids, no topic) stay."""
        dropped = [r for r in lane.rows if r.id > 0 and r.thread_id == thread_id]
        for row in dropped:
            self.forget(row.id)
        lane.rows = deque(r for r in lane.rows if not (r.id > 0 and r.thread_id == thread_id))
        return dropped

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
