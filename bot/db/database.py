"""The one database helper every repository uses: the aiosqlite connection, its migrations,
write transactions, and row fetching.

Repositories (``archive``, ``chats``, ``outbox``) are the only owners of their tables; they
take a :class:`Database` and never reach for a raw connection from outside this package.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.db.schema import MIGRATIONS
from bot.errors import BriefbotError

# Keyset paging starts below every SQLite integer id.
FIRST_ID = -(2**63)


class StoreError(BriefbotError):
    """The database cannot be used (unreadable file, newer schema than this release)."""


def damaged(path: Path, err: BaseException) -> str:
    """The one line for a database SQLite cannot read, and how to recover."""
    return (
        f"the database {path} is damaged or not SQLite ({err}); run `briefbot index --rebuild`"
        " to rebuild it from the archive, keeping subscriptions and the outbox it can read"
    )


async def connect(path: Path) -> aiosqlite.Connection:
    """A configured connection (WAL, foreign keys, a busy timeout); StoreError if the file
    cannot be used. Closed again on failure: its worker thread would keep the process alive."""
    db: aiosqlite.Connection | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA busy_timeout = 10000")
    except Exception as err:  # sqlite3.DatabaseError, OSError: both mean "cannot use it"
        if db is not None:
            await db.close()
        raise StoreError(f"cannot open the database {path}: {err}") from err
    return db


async def apply_migrations(db: aiosqlite.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Apply pending migrations, each atomically; returns the schema version now in force."""
    async with db.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    version = int(row[0]) if row else 0
    if version == 0:
        async with db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'") as cur:
            tables = await cur.fetchone()
        if tables and tables[0]:
            # Another application's database: adding our tables to it would be worse than
            # refusing.
            raise StoreError(
                "it is another application's SQLite database (it has tables but no briefbot"
                " schema); point storage.path at a new file"
            )
    if version > len(migrations):
        raise StoreError(
            f"the database has schema version {version}, newer than this release knows "
            f"({len(migrations)}); upgrade briefbot or rebuild the index"
        )
    for number in range(version + 1, len(migrations) + 1):
        script = migrations[number - 1]
        await db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return len(migrations)


async def fetch(db: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> list[Any]:
    """All rows of a statement on a raw connection (the sync's own writer uses it)."""
    async with db.execute(sql, tuple(params)) as cur:
        return list(await cur.fetchall())


class Database:
    """The shared connection. Reads go straight through; writes go through
    :meth:`transaction`, which nests: a repository function that opens one inside a
    caller's transaction joins it (as a SAVEPOINT), so a caller can make several
    repositories' writes one atomic step."""

    def __init__(self, path: Path, conn: aiosqlite.Connection) -> None:
        self.path = path
        self._conn = conn
        self._write_lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None  # the task inside a transaction
        self._depth = 0  # its savepoints

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], migrations: Sequence[str] | None = None
    ) -> Database:
        conn = await connect(Path(path))
        try:
            await apply_migrations(conn, MIGRATIONS if migrations is None else migrations)
        except StoreError as err:
            await conn.close()
            raise StoreError(f"cannot use the database {path}: {err}") from None
        except sqlite3.DatabaseError as err:
            await conn.close()
            raise StoreError(damaged(Path(path), err)) from None
        except BaseException:
            await conn.close()
            raise
        return cls(Path(path), conn)

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- reading -----------------------------------------------------------------------

    async def rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """All rows of a statement, in one round trip to the database thread: each
        aiosqlite call is a thread hand-off plus an event-loop wake-up, and a cursor's
        execute, fetchall and close would be three (tests/test_reply_roundtrips.py)."""
        return list(await self._conn.execute_fetchall(sql, tuple(params)))

    async def row(self, sql: str, params: Iterable[Any] = ()) -> Any | None:
        rows = await self.rows(sql, params)
        return rows[0] if rows else None

    async def value(self, sql: str, params: Iterable[Any] = ()) -> Any:
        """The first column of the first row (None if there is no row)."""
        row = await self.row(sql, params)
        return row[0] if row else None

    async def pages(
        self, sql: str, params: Sequence[Any] = (), *, page: int = 1000
    ) -> AsyncIterator[list[Any]]:
        """Keyset paging over a table of integer ids: ``sql`` selects the id first and
        contains ``id > ?`` (the cursor, bound after ``params``) and ends with
        ``ORDER BY id LIMIT ?``. Each page is read on its own, so writers interleave."""
        cursor = FIRST_ID
        while True:
            rows = await self.rows(sql, [*params, cursor, page])
            if rows:
                yield rows
            if len(rows) < page:
                return
            cursor = rows[-1][0]

    # -- writing -----------------------------------------------------------------------

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One statement inside a transaction; returns the number of rows it changed."""
        self._require_tx()
        cur = await self._conn.execute(sql, tuple(params))
        return max(cur.rowcount, 0)

    async def insert(self, sql: str, params: Iterable[Any] = ()) -> int:
        """An INSERT inside a transaction; returns the new row id."""
        self._require_tx()
        cur = await self._conn.execute(sql, tuple(params))
        return int(cur.lastrowid or 0)

    async def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> int:
        self._require_tx()
        cur = await self._conn.executemany(sql, params)
        return max(cur.rowcount, 0)

    def _require_tx(self) -> None:
        if not self.in_transaction:
            raise RuntimeError("a write outside Database.transaction()")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        """A write transaction (BEGIN IMMEDIATE). The lock keeps other coroutines'
        transactions from interleaving with this one on the shared connection; inside a
        transaction held by the same task, a nested one is a SAVEPOINT."""
        task = asyncio.current_task()
        if self._owner is not None and self._owner is task:
            self._depth += 1
            name = f"sp{self._depth}"
            await self._conn.execute(f"SAVEPOINT {name}")
            try:
                yield self
            except BaseException:
                await self._conn.execute(f"ROLLBACK TO {name}")
                await self._conn.execute(f"RELEASE {name}")
                raise
            else:
                await self._conn.execute(f"RELEASE {name}")
            finally:
                self._depth -= 1
            return
        async with self._write_lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
            except asyncio.CancelledError:
                # The BEGIN is queued on the database thread and runs anyway (a stopping
                # bot cancels replies): undo it, or every later BEGIN would fail with
                # "cannot start a transaction within a transaction". The ROLLBACK is queued
                # behind it; if the BEGIN itself failed there is nothing to undo.
                with contextlib.suppress(sqlite3.Error):
                    await asyncio.shield(self._conn.execute("ROLLBACK"))
                raise
            self._owner, self._depth = task, 0
            try:
                yield self
            except BaseException:
                self._owner = None
                await self._conn.execute("ROLLBACK")
                raise
            self._owner = None
            await self._conn.execute("COMMIT")

    @property
    def in_transaction(self) -> bool:
        return self._owner is not None and self._owner is asyncio.current_task()
