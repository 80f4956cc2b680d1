"""A consistent copy of the database while the bot runs, through SQLite's online backup API.

The copy is taken in one step (``sqlite3.Connection.backup`` with every page at once), so
it is one committed state of the database: every delivery confirmed before that moment is
in it as sent, nothing after it. It is written next to the target under a temporary name,
checked (``PRAGMA integrity_check``), switched out of WAL mode (one self-contained file)
and only then renamed into place, so a half-written backup never carries the target's name.

The sending lease is cleared in the copy: a backup is restored with the bot stopped, and
the process that held the lease when the copy was taken is gone by then (otherwise a
restored bot on another host would wait for the lease to expire before sending).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import BriefbotError


class BackupError(BriefbotError):
    """The backup cannot be made (missing database, existing target, unwritable folder)."""


@dataclass(frozen=True)
class Summary:
    """What a database holds: for the backup's report and for ``briefbot doctor``."""

    path: Path
    size: int  # bytes
    schema: int  # PRAGMA user_version
    issues: int
    items: int
    chats: int
    outbox: dict[str, int] = field(default_factory=dict)  # status -> rows

    def line(self) -> str:
        by_status = ", ".join(f"{n} {s}" for s, n in sorted(self.outbox.items())) or "empty"
        return (
            f"{self.path}: {self.size / 1024 / 1024:.1f} MB ({self.size} bytes), schema "
            f"{self.schema}: {self.issues} issues, {self.items} items, {self.chats} chats, "
            f"outbox {by_status}"
        )


def _count(conn: sqlite3.Connection, sql: str) -> int:
    try:
        row = conn.execute(sql).fetchone()
    except sqlite3.OperationalError:  # no such table: an older or foreign file
        return 0
    return int(row[0]) if row else 0


def summarize(conn: sqlite3.Connection, path: Path) -> Summary:
    try:
        by_status = dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY status"))
    except sqlite3.OperationalError:
        by_status = {}
    return Summary(
        path,
        path.stat().st_size,
        _count(conn, "PRAGMA user_version"),
        _count(conn, "SELECT count(*) FROM issues"),
        _count(conn, "SELECT count(*) FROM items"),
        _count(conn, "SELECT count(*) FROM chats"),
        {str(k): int(v) for k, v in by_status.items()},
    )


def integrity(conn: sqlite3.Connection) -> str:
    """``ok``, or the first problem ``PRAGMA integrity_check`` found."""
    row = conn.execute("PRAGMA integrity_check").fetchone()
    return str(row[0]) if row else "no answer"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def backup_sync(source: Path, target: Path, *, force: bool = False) -> Summary:
    """Copy ``source`` to ``target`` (see the module docstring); BackupError on any problem."""
    if not source.is_file():
        raise BackupError(f"no database at {source}: nothing to back up (check storage.path)")
    if _same_file(source, target):
        raise BackupError(f"{target} is the database itself; name another file")
    if target.is_dir():
        raise BackupError(
            f"{target} is a folder; name the backup file, e.g. {target}/briefbot.sqlite3"
        )
    if target.exists() and not force:
        raise BackupError(f"{target} exists; choose another name or add --force to replace it")
    folder = target.parent
    if not folder.is_dir():
        raise BackupError(f"{folder}: no such folder for the backup")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise BackupError(f"{folder}: cannot write the backup: {err.strerror or err}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)  # pages=-1: one step, one consistent snapshot
                dst.execute("PRAGMA journal_mode = DELETE")
                if _has_lease(dst):
                    dst.execute("DELETE FROM delivery_lease")
                dst.commit()
                problem = integrity(dst)
                if problem != "ok":
                    raise BackupError(f"the copy failed its integrity check: {problem}")
            finally:
                dst.close()
        finally:
            src.close()
        os.replace(tmp, target)
    except sqlite3.DatabaseError as err:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"cannot back up {source}: {err}") from None
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"cannot write {target}: {err.strerror or err}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    conn = sqlite3.connect(f"{target.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return summarize(conn, target)
    finally:
        conn.close()


def _has_lease(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'delivery_lease'"
    ).fetchone()
    return row is not None


async def backup(source: Path, target: Path, *, force: bool = False) -> Summary:
    """:func:`backup_sync` in a thread: the bot's event loop keeps running meanwhile."""
    return await asyncio.to_thread(backup_sync, source, target, force=force)
