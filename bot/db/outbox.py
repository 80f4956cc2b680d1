"""The only owner of the ``outbox``, ``texts``, ``broadcasts`` and ``delivery_lease``
tables: the messages to send, their rendered texts (stored once: 100,000 chats of one issue
share a few parts), the batches they were enqueued in, and which process may send.

One row per (kind, issue, chat, forum topic, part); the unique key makes enqueueing idempotent, so a
crash between two chunks, or a second tick, never doubles a message. A row is marked sent
only with the message id Telegram confirmed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bot.db.database import FIRST_ID, Database

Trigger = Literal["schedule", "admin", "cli", "watch"]
Kind = Literal["issue", "watch"]
CHUNK = 2000  # chats per enqueue transaction: short enough to let handlers write between


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


# -- texts --------------------------------------------------------------------------------


async def text_id(db: Database, html: str) -> int:
    """The id of this text, stored once (call inside a transaction)."""
    digest = hashlib.sha256(html.encode()).hexdigest()
    await db.execute("INSERT OR IGNORE INTO texts (sha256, html) VALUES (?, ?)", [digest, html])
    return int(await db.value("SELECT id FROM texts WHERE sha256 = ?", [digest]))


async def text(db: Database, text_id: int) -> str:
    return str(await db.value("SELECT html FROM texts WHERE id = ?", [text_id]))


# -- enqueueing ---------------------------------------------------------------------------

_INSERT = {
    "issue": (
        "INSERT INTO outbox"
        " (kind, issue, chat_id, thread_id, part, text_id, broadcast_id, created_at)"
        " VALUES ('issue', ?, ?, ?, ?, ?, ?, ?)"
        # Enqueueing again never doubles: a row already pending or sent stays as it is; one
        # that failed or was cancelled (the chat was blocked then) is queued again.
        " ON CONFLICT (kind, issue, chat_id, thread_id, part) DO UPDATE SET status = 'pending',"
        " attempts = 0, next_at = 0, last_error = NULL, text_id = excluded.text_id,"
        " broadcast_id = excluded.broadcast_id WHERE outbox.status IN ('failed', 'cancelled')"
    ),
    "watch": (
        "INSERT OR IGNORE INTO outbox"
        " (kind, issue, chat_id, thread_id, part, text_id, broadcast_id, created_at)"
        " VALUES ('watch', ?, ?, ?, ?, ?, ?, ?)"
    ),
}


class Broadcast:
    """The rows enqueued together under one broadcast id, created on first use."""

    def __init__(self, db: Database, trigger: Trigger, issue: dt.date | None) -> None:
        self.db = db
        self.trigger = trigger
        self.issue = issue
        self.id: int | None = None
        self.rows = 0

    async def insert(self, kind: Kind, rows: Sequence[tuple[str, int, int, int, int]]) -> None:
        """(issue, chat, thread, part, text id) rows, inside the caller's transaction; the
        thread is the forum topic the message goes to (0: none)."""
        if not rows:
            return
        if self.id is None:
            self.id = await self.db.insert(
                "INSERT INTO broadcasts (trigger, issue, started_at) VALUES (?, ?, ?)",
                [self.trigger, self.issue.isoformat() if self.issue else None, time.time()],
            )
        now = time.time()
        self.rows += await self.db.executemany(_INSERT[kind], [(*r, self.id, now) for r in rows])

    async def close(self) -> int | None:
        """Mark it fully enqueued; a broadcast that queued nothing new is not kept."""
        if self.id is None:
            return None
        async with self.db.transaction():
            if self.rows == 0:
                await self.db.execute("DELETE FROM broadcasts WHERE id = ?", [self.id])
                return None
            await self.db.execute(
                "UPDATE broadcasts SET enqueued_at = ? WHERE id = ?", [time.time(), self.id]
            )
        return self.id


_LACKING = (
    "c.status = 'active' AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'issue'"
    " AND o.issue = ? AND o.chat_id = c.id AND o.thread_id = 0"
    " AND o.status IN ('pending', 'sent'))"
)
# Active forum topics (bot/db/topics) of chats the bot may still write to, likewise.
_TOPICS_LACKING = (
    "t.status = 'active' AND c.status IN ('active', 'stopped') AND NOT EXISTS (SELECT 1"
    " FROM outbox o WHERE o.kind = 'issue' AND o.issue = ? AND o.chat_id = t.chat_id"
    " AND o.thread_id = t.thread_id AND o.status IN ('pending', 'sent'))"
)


async def count_lacking(db: Database, issue: dt.date) -> int:
    """Active chats and forum topics that have not received (and are not about to
    receive) the issue."""
    iso = issue.isoformat()
    chats = await db.value(f"SELECT count(*) FROM chats c WHERE {_LACKING}", [iso])
    topics = await db.value(
        f"SELECT count(*) FROM topics t JOIN chats c ON c.id = t.chat_id WHERE {_TOPICS_LACKING}",
        [iso],
    )
    return int(chats) + int(topics)


async def lacking_page(db: Database, issue: dt.date, after: int, limit: int) -> list[Any]:
    """(chat id, language) of those chats: the first ``limit`` with ids above ``after``
    (read it in the transaction that enqueues for them)."""
    return await db.rows(
        f"SELECT id, language FROM chats c WHERE {_LACKING} AND id > ? ORDER BY id LIMIT ?",
        [issue.isoformat(), after, limit],
    )


async def lacking_topics_page(
    db: Database, issue: dt.date, after: tuple[int, int], limit: int
) -> list[Any]:
    """(chat id, thread id, language) of those topics: the first ``limit`` after the
    (chat, thread) ``after``."""
    return await db.rows(
        "SELECT t.chat_id, t.thread_id, c.language FROM topics t JOIN chats c"
        f" ON c.id = t.chat_id WHERE {_TOPICS_LACKING} AND (t.chat_id, t.thread_id) > (?, ?)"
        " ORDER BY t.chat_id, t.thread_id LIMIT ?",
        [issue.isoformat(), *after, limit],
    )


_WATCHERS = (
    "SELECT w.chat_id, w.thread_id, c.language, group_concat(w.terms, char(31))"
    " FROM watches w JOIN chats c ON c.id = w.chat_id WHERE c.status IN ('active', 'stopped')"
    " AND w.chat_id BETWEEN ? AND ?"
    " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'watch' AND o.issue = ?"
    " AND o.chat_id = w.chat_id AND o.thread_id = w.thread_id)"
    # A topic Telegram said is closed or deleted gets nothing until it is open again.
    " AND NOT EXISTS (SELECT 1 FROM topics t WHERE t.chat_id = w.chat_id"
    " AND t.thread_id = w.thread_id AND t.status = 'gone')"
    " GROUP BY w.chat_id, w.thread_id ORDER BY w.chat_id, w.thread_id"
)


async def pages_of_watchers(db: Database, issue: dt.date) -> AsyncIterator[list[Any]]:
    """(chat id, thread id, language, terms joined by U+001F) per chat and forum topic with
    watches, in a reachable chat, that has no watch message for the issue yet. A page is
    up to CHUNK chats, each with all its topics."""
    cursor = FIRST_ID
    while True:
        ids = await db.rows(
            # Chat 0 is the offline console's own chat (bot.console), never a Telegram chat.
            "SELECT DISTINCT chat_id FROM watches WHERE chat_id > ? AND chat_id != 0"
            " ORDER BY chat_id LIMIT ?",
            [cursor, CHUNK],
        )
        if not ids:
            return
        rows = await db.rows(_WATCHERS, [ids[0][0], ids[-1][0], issue.isoformat()])
        if rows:
            yield [r for r in rows if r[0] != 0]
        if len(ids) < CHUNK:
            return
        cursor = ids[-1][0]


# -- chats going away ---------------------------------------------------------------------


async def cancel_pending(
    db: Database, chat_id: int, why: str, kind: Kind | None = None, thread_id: int | None = None
) -> int:
    """Cancel the chat's pending rows (of one kind; of one forum topic, 0 for the chat's
    own subscription; by default every topic's)."""
    sql = (
        "UPDATE outbox SET status = 'cancelled', last_error = ?"
        " WHERE chat_id = ? AND status = 'pending'"
    )
    params: list[Any] = [why, chat_id]
    if kind:
        sql += " AND kind = ?"
        params.append(kind)
    if thread_id is not None:
        sql += " AND thread_id = ?"
        params.append(thread_id)
    return await db.execute(sql, params)


async def repoint_pending(db: Database, old_id: int, new_id: int) -> None:
    """A group became a supergroup: its pending messages go to the new id."""
    await db.execute(
        "UPDATE OR IGNORE outbox SET chat_id = ? WHERE chat_id = ? AND status = 'pending'",
        [new_id, old_id],
    )
    # Left behind only where the new chat already has that very message queued or sent.
    await cancel_pending(db, old_id, f"migrated to {new_id}")


async def count_newly_inactive(db: Database, broadcast_id: int) -> None:
    await db.execute(
        "UPDATE broadcasts SET newly_inactive = newly_inactive + 1 WHERE id = ?", [broadcast_id]
    )


# -- the sender's side --------------------------------------------------------------------


async def pending_window(db: Database, limit: int) -> list[Any]:
    """The first ``limit`` pending rows in send order: (id, chat, text id, attempts,
    next_at, broadcast, chat type, quiet, forum topic or 0). Read in a transaction: a
    consistent view of committed rows."""
    async with db.transaction():
        return await db.rows(
            "SELECT o.id, o.chat_id, o.text_id, o.attempts, o.next_at, o.broadcast_id,"
            " coalesce(c.type, 'private'), coalesce(c.quiet, 0), o.thread_id"
            " FROM outbox o LEFT JOIN chats c ON c.id = o.chat_id"
            " WHERE o.status = 'pending' ORDER BY o.id LIMIT ?",
            [limit],
        )


@dataclass(slots=True)
class Outcome:
    """What one send attempt learned, to be written with others in one commit."""

    kind: Literal["sent", "retry", "failed"]
    row_id: int
    attempts: int
    message_id: int | None = None
    error: str | None = None
    next_at: float = 0.0  # unix seconds


_RECORD = {
    "sent": "UPDATE outbox SET status = 'sent', message_id = ?, sent_at = ?,"
    " attempts = attempts + 1, last_error = NULL WHERE id = ?",
    "retry": "UPDATE outbox SET attempts = ?, next_at = ?, last_error = ?"
    " WHERE id = ? AND status = 'pending'",
    "failed": "UPDATE outbox SET status = 'failed', attempts = ?, last_error = ?"
    " WHERE id = ? AND status = 'pending'",
}


def _params(o: Outcome, now: float) -> tuple[Any, ...]:
    if o.kind == "sent":
        return (o.message_id, now, o.row_id)
    if o.kind == "retry":
        return (o.attempts, o.next_at, o.error, o.row_id)
    return (o.attempts, o.error, o.row_id)


async def record(db: Database, outcomes: Sequence[Outcome]) -> None:
    """Write the outcomes in one transaction (group commit)."""
    now = time.time()
    async with db.transaction():
        for kind, sql in _RECORD.items():
            params = [_params(o, now) for o in outcomes if o.kind == kind]
            if params:  # each statement is a round trip to the database thread
                await db.executemany(sql, params)


# -- broadcasts ---------------------------------------------------------------------------


def _utc(ts: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(ts, dt.UTC) if ts else None


async def report(db: Database, broadcast_id: int) -> BroadcastReport | None:
    row = await db.row(
        "SELECT id, trigger, issue, started_at, finished_at, total, sent, failed, cancelled,"
        " newly_inactive FROM broadcasts WHERE id = ?",
        [broadcast_id],
    )
    if row is None:
        return None
    bid, trigger, issue, started, finished, total, sent, failed, cancelled, inactive = row
    pending = 0
    if finished is None:  # live counts
        by = dict(
            await db.rows(
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
        _utc(started) or dt.datetime.now(dt.UTC),
        _utc(finished),
        total,
        sent,
        failed,
        cancelled,
        pending,
        inactive,
    )


async def adopt_orphans(db: Database, older_than: float) -> list[int]:
    """Broadcasts whose enqueuer died before closing them are taken as fully enqueued;
    returns the ids of every open, fully enqueued broadcast."""
    async with db.transaction():
        await db.execute(
            "UPDATE broadcasts SET enqueued_at = ? WHERE enqueued_at IS NULL"
            " AND finished_at IS NULL AND started_at < ?",
            [time.time(), older_than],
        )
    rows = await db.rows(
        "SELECT id FROM broadcasts WHERE finished_at IS NULL AND enqueued_at IS NOT NULL"
    )
    return [r[0] for r in rows]


async def finish(db: Database, broadcast_id: int) -> BroadcastReport | None:
    """Close the broadcast if it is fully enqueued and nothing of it is pending; the final
    report, or None if it is not done (or was closed already)."""
    async with db.transaction():
        done = await db.row(
            "SELECT 1 FROM broadcasts WHERE id = ? AND enqueued_at IS NOT NULL"
            " AND finished_at IS NULL AND NOT EXISTS (SELECT 1 FROM outbox"
            " WHERE broadcast_id = ? AND status = 'pending')",
            [broadcast_id, broadcast_id],
        )
        live = await report(db, broadcast_id) if done else None
        if live is None:
            return None
        await db.execute(
            "UPDATE broadcasts SET finished_at = ?, total = ?, sent = ?, failed = ?,"
            " cancelled = ? WHERE id = ?",
            [time.time(), live.total, live.sent, live.failed, live.cancelled, broadcast_id],
        )
        return await report(db, broadcast_id)


async def open_broadcasts(db: Database, issue: dt.date) -> list[tuple[int, int]]:
    """(broadcast id, pending messages) of unfinished broadcasts with pending rows of the
    issue: what an earlier run queued and did not send."""
    return [
        (bid, n)
        for bid, n in await db.rows(
            "SELECT broadcast_id, count(*) FROM outbox WHERE status = 'pending' AND kind = 'issue'"
            " AND issue = ? AND broadcast_id IS NOT NULL GROUP BY broadcast_id ORDER BY 1",
            [issue.isoformat()],
        )
    ]


async def status_counts(db: Database) -> dict[str, int]:
    return dict(await db.rows("SELECT status, count(*) FROM outbox GROUP BY status"))


async def recent_broadcasts(db: Database, limit: int) -> list[int]:
    rows = await db.rows("SELECT id FROM broadcasts ORDER BY id DESC LIMIT ?", [limit])
    return [r[0] for r in rows]


# -- the lease ----------------------------------------------------------------------------


class Lease:
    """The right to send, held by one process at a time and renewed while it runs. A holder
    on this host whose process is gone (``kill -9``) is taken over at once."""

    def __init__(self, db: Database, ttl: float) -> None:
        self.db = db
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
        async with self.db.transaction():
            row = await self.db.row("SELECT owner, expires FROM delivery_lease WHERE id = 1")
            if row:
                owner, expires = row
                if owner != self.owner and expires > time.time() and not self._dead(owner):
                    return False
            await self.db.execute(
                "INSERT OR REPLACE INTO delivery_lease (id, owner, expires) VALUES (1, ?, ?)",
                [self.owner, time.time() + self.ttl],
            )
            return True

    async def release(self) -> None:
        async with self.db.transaction():
            await self.db.execute("DELETE FROM delivery_lease WHERE owner = ?", [self.owner])
