"""The only owner of the ``revisions`` table: per issue date, when the bot first saw it,
when it last changed, why it is not ready yet, and which revision corrections were last
planned for. The archive index is rebuilt on every change, so this lives apart from it.

An issue is *ready* when nothing blocks it (no check error inside it, no empty item) and
it has not changed for ``settle_seconds``. A date without a row is ready (content read
from ``content.dir``, which has no settling). A *quiet* issue is delivered only to chats
that never received one: the archive found by the first fetch, a back-fill older than
what was already delivered, an issue whose heading date moved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.db.database import Database

_COLUMNS = (
    "date, digest, items_digest, revision, first_seen, changed_at, blocked, quiet,"
    " moved_from, corrected, gone_at"
)


@dataclass(frozen=True)
class Revision:
    date: dt.date
    digest: str  # of title and items: any change
    items_digest: str  # of the items only: the same items under another date is a move
    revision: int  # 1, then +1 on every change
    first_seen: float  # unix seconds
    changed_at: float
    blocked: str = ""  # why it may not go out ('' = once settled)
    quiet: bool = False  # only for chats that never received an issue
    moved_from: dt.date | None = None  # its messages were sent under this date
    corrected: int = 0  # the revision corrections were last planned for
    gone_at: float | None = None  # removed upstream

    def ready(self, now: float, settle: float) -> bool:
        return not self.blocked and self.gone_at is None and self.changed_at + settle <= now

    def changed(self, **values: Any) -> Revision:
        return replace(self, **values)


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _revision(row: Sequence[Any]) -> Revision:
    date, digest, items, rev, first, changed, blocked, quiet, moved, corrected, gone = row
    return Revision(
        dt.date.fromisoformat(date),
        digest,
        items,
        rev,
        first,
        changed,
        blocked,
        bool(quiet),
        _date(moved),
        corrected,
        gone,
    )


async def load(db: Database) -> dict[dt.date, Revision]:
    rows = await db.rows(f"SELECT {_COLUMNS} FROM revisions")
    return {r.date: r for r in map(_revision, rows)}


async def get(db: Database, date: dt.date) -> Revision | None:
    row = await db.row(f"SELECT {_COLUMNS} FROM revisions WHERE date = ?", [date.isoformat()])
    return _revision(row) if row else None


async def is_empty(db: Database) -> bool:
    return await db.row("SELECT 1 FROM revisions LIMIT 1") is None


async def save(db: Database, revisions: Iterable[Revision]) -> None:
    rows = [
        (
            r.date.isoformat(),
            r.digest,
            r.items_digest,
            r.revision,
            r.first_seen,
            r.changed_at,
            r.blocked,
            int(r.quiet),
            r.moved_from.isoformat() if r.moved_from else None,
            r.corrected,
            r.gone_at,
        )
        for r in revisions
    ]
    if rows:
        async with db.transaction():
            await db.executemany(
                f"INSERT OR REPLACE INTO revisions ({_COLUMNS}) VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )


async def mark_corrected(db: Database, date: dt.date, revision: int) -> None:
    """Call inside the transaction that planned the corrections."""
    await db.execute(
        "UPDATE revisions SET corrected = max(corrected, ?) WHERE date = ?",
        [revision, date.isoformat()],
    )


async def to_correct(db: Database) -> list[Revision]:
    """Issues changed since corrections were last planned for them."""
    rows = await db.rows(
        f"SELECT {_COLUMNS} FROM revisions WHERE revision > corrected AND gone_at IS NULL"
        " ORDER BY date"
    )
    return [_revision(r) for r in rows]


@dataclass(frozen=True)
class Readiness:
    """What the planner may deliver now."""

    ready: list[dt.date]  # ascending
    quiet: frozenset[dt.date]  # of those, the ones only chats without a cursor get
    ready_at: float | None  # when the newest non-quiet ready issue became ready


async def deliverable(
    db: Database, dates: Sequence[dt.date], now: float, settle: float
) -> Readiness:
    """Filter the available issue dates by readiness."""
    known = await load(db)
    ready: list[dt.date] = []
    quiet: set[dt.date] = set()
    ready_at: float | None = None
    for date in dates:
        rev = known.get(date)
        if rev is None:
            ready.append(date)
            continue
        if not rev.ready(now, settle):
            continue
        ready.append(date)
        if rev.quiet:
            quiet.add(date)
        else:
            ready_at = max(ready_at or 0.0, rev.changed_at + settle)
    return Readiness(ready, frozenset(quiet), ready_at)


async def issue_lines(db: Database, files: Iterable[str]) -> dict[str, list[tuple[int, dt.date]]]:
    """(heading line, date) of the indexed issues of each file, in line order: which issue
    a ``FILE:LINE`` problem falls in."""
    wanted = sorted(set(files))
    out: dict[str, list[tuple[int, dt.date]]] = {f: [] for f in wanted}
    if not wanted:
        return out
    rows = await db.rows(
        f"SELECT file, line, date FROM issues WHERE file IN ({','.join('?' * len(wanted))})"
        " ORDER BY file, line",
        wanted,
    )
    for file, line, date in rows:
        out[file].append((line, dt.date.fromisoformat(date)))
    return out


async def newest_delivered(db: Database) -> dt.date | None:
    """The newest issue any chat got (or is about to get) as a scheduled issue."""
    value = await db.value(
        "SELECT max(issue) FROM outbox WHERE kind = 'issue' AND status IN ('pending', 'sent')"
    )
    return _date(value)


async def messages_sent(db: Database, dates: Iterable[dt.date]) -> int:
    isos = [d.isoformat() for d in dates]
    return int(
        await db.value(
            "SELECT count(*) FROM outbox WHERE kind = 'issue' AND status = 'sent'"
            f" AND message_id IS NOT NULL AND issue IN ({','.join('?' * len(isos))})",
            isos,
        )
    )
