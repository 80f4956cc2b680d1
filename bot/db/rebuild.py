"""``briefbot index --rebuild``: a new database file built from the archive, with every row
of the delivery tables that the old file can still give. For a damaged file ("database
disk image is malformed") or an index one wants fresh. Run it with the bot stopped.

The index tables are never copied (the archive is their source of truth); chats, channel
managers, watches, texts, broadcasts and the outbox are copied table by table, and a table
that cannot be read whole is copied in rowid ranges, skipping the ranges that fail. The
old file is kept beside the new one as ``<name>.damaged``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from bot.db.archive import Archive
from bot.db.database import Database
from bot.db.sync import SyncReport

# Owned elsewhere but kept: what users chose and what was sent. Parents before children.
KEPT = ("chats", "topics", "channel_managers", "watches", "texts", "broadcasts", "outbox")
RANGE = 1000


@dataclass
class Rebuilt:
    report: SyncReport
    kept: dict[str, int] = field(default_factory=dict)  # table -> rows copied
    lost: dict[str, str] = field(default_factory=dict)  # table -> what could not be read
    old: Path | None = None  # where the previous file was moved


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA {schema}.table_info({table})")]


def _copy(conn: sqlite3.Connection, table: str, out: Rebuilt) -> None:
    try:
        cols = [c for c in _columns(conn, "main", table) if c in _columns(conn, "old", table)]
    except sqlite3.DatabaseError as err:
        out.lost[table] = str(err)
        return
    if not cols:
        return
    names = ", ".join(cols)
    sql = f"INSERT OR IGNORE INTO main.{table} ({names}) SELECT {names} FROM old.{table}"
    try:
        out.kept[table] = conn.execute(sql).rowcount
        return
    except sqlite3.DatabaseError as err:
        out.lost[table] = f"some rows unreadable ({err})"
    # Whole-table copy failed: take what can be read, a rowid range at a time.
    copied, start = 0, 0
    try:
        top = conn.execute(f"SELECT max(rowid) FROM old.{table}").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        top = 10**7
    while start <= top:
        with contextlib.suppress(sqlite3.DatabaseError):
            copied += conn.execute(
                f"{sql} WHERE rowid >= ? AND rowid < ?", [start, start + RANGE]
            ).rowcount
        start += RANGE
    out.kept[table] = copied


def _copy_delivery(new: Path, old: Path, out: Rebuilt) -> None:
    conn = sqlite3.connect(new, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")  # rows come in table by table
        conn.execute("ATTACH DATABASE ? AS old", [str(old)])
        conn.execute("BEGIN")
        for table in KEPT:
            _copy(conn, table, out)
        conn.execute("COMMIT")
    finally:
        conn.close()


async def rebuild(path: Path, content: Path) -> Rebuilt:
    new = path.with_name(path.name + ".rebuild")
    for leftover in (new, new.with_name(new.name + "-wal"), new.with_name(new.name + "-shm")):
        leftover.unlink(missing_ok=True)
    db = await Database.open(new)
    await db.close()
    out = Rebuilt(SyncReport())
    if path.exists():
        await asyncio.to_thread(_copy_delivery, new, path, out)
    async with await Archive.open(new) as archive:
        out.report = await archive.sync(content)
    if path.exists():
        out.old = path.with_name(path.name + ".damaged")
        path.replace(out.old)
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    new.replace(path)
    return out
