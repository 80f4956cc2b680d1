"""The only owner of ``ops_state``, and the read-only figures health and metrics need.

``ops_state`` holds what must survive a restart: when the bot started watching a git source
(the stale-content alert counts from there) and a heartbeat the readiness probe rewrites to
prove the database takes writes. The other queries only read tables owned elsewhere, with
the cheap forms the indexes answer (the pending outbox rows have a partial index).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from bot.db.database import Database

HEARTBEAT = "heartbeat"
WATCH_STARTED = "source_watch_started"


async def heartbeat(db: Database, now: float) -> None:
    """A tiny write in a transaction; raises whatever SQLite raises when it cannot write
    (disk full, read-only file, a lock held past the busy timeout)."""
    async with db.transaction():
        await db.execute(
            "INSERT INTO ops_state(key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [HEARTBEAT, now],
        )


async def watch_started(db: Database, now: float) -> float:
    """When the bot started watching a git source: set once, kept across restarts."""
    async with db.transaction():
        await db.execute(
            "INSERT OR IGNORE INTO ops_state(key, value) VALUES (?, ?)", [WATCH_STARTED, now]
        )
    value = await db.value("SELECT value FROM ops_state WHERE key = ?", [WATCH_STARTED])
    return float(value if value is not None else now)


async def forget_watch(db: Database) -> None:
    """The git source is no longer configured: a later one counts from its own start."""
    async with db.transaction():
        await db.execute("DELETE FROM ops_state WHERE key = ?", [WATCH_STARTED])


@dataclass(frozen=True)
class Snapshot:
    """What a scrape or a check reads from the database, in one go."""

    pending: int = 0  # outbox rows not yet sent
    due: int = 0  # of those, due now (not waiting on a retry backoff)
    oldest_due: float | None = None  # unix seconds: created_at of the oldest due row
    chats: dict[tuple[str, str], int] = field(default_factory=dict)  # (type, status) -> n
    issues: int = 0
    items: int = 0
    last_change: float | None = None  # unix seconds: newest issue added or changed


def _unix(iso: str | None) -> float | None:
    if not iso:
        return None
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def snapshot(db: Database, now: float) -> Snapshot:
    pending, due, oldest = await db.row(
        "SELECT count(*), coalesce(sum(next_at <= ?), 0), min(CASE WHEN next_at <= ?"
        " THEN created_at END) FROM outbox WHERE status = 'pending'",
        [now, now],
    ) or (0, 0, None)
    chats = {
        (kind, status): n
        for kind, status, n in await db.rows(
            "SELECT type, status, count(*) FROM chats GROUP BY type, status"
        )
    }
    issues, items, last = await db.row(
        "SELECT (SELECT count(*) FROM issues), (SELECT count(*) FROM items),"
        " (SELECT max(indexed_at) FROM issues)"
    ) or (0, 0, None)
    return Snapshot(
        int(pending),
        int(due),
        float(oldest) if oldest is not None else None,
        chats,
        int(issues),
        int(items),
        _unix(last),
    )
