"""The writing half of the sync (:mod:`bot.db.sync` decides, this writes): the sync's one
transaction, prepared issues inserted a batch at a time, issues deleted with their gram
rows, and ``item_twins`` rewritten. Everything here runs on the sync's own connection."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import aiosqlite

from bot.core.grams import index_columns
from bot.db.archive import id_range
from bot.db.database import fetch
from bot.db.prepare import Prepared, Row

# FTS5 buffers this much token data before writing a segment (default 1 MB): fewer, bigger
# segments make a full build ~40% cheaper in CPU. Set for the sync's transaction only.
FTS_HASH_BYTES = 64 * 1024 * 1024
FTS_HASH_DEFAULT = 1024 * 1024
_FTS_TABLES = ("items_uni", "items_bi")
# item_twins, rewritten whole after a sync that changed items: the items whose text another
# item has (found through the text_hash index, compared by text), each with the newest item
# of its text and the next newer one. A few rows: search hides an item whose newer twin is
# also a hit, and shows the twins' dates on the one it keeps.
_TWINS = (
    "DELETE FROM item_twins",
    "INSERT INTO item_twins(id, first, newer)"
    " SELECT id, first_value(id) OVER w, lag(id) OVER w FROM items"
    " WHERE text_hash IN (SELECT text_hash FROM items GROUP BY text_hash HAVING count(*) > 1)"
    " WINDOW w AS (PARTITION BY text ORDER BY id DESC)",
)


class Writer:
    """The sync's transaction on its connection: begun at the first write, committed once."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db
        self.in_tx = False
        self.items_changed = False  # items written or deleted: item_twins is rewritten
        self._bulk = False

    async def begin(self, bulk: bool = False) -> None:
        """``bulk``: many rows follow (a streamed build), so FTS5 gets a big buffer for
        this transaction."""
        if not self.in_tx:
            await self.db.execute("BEGIN IMMEDIATE")
            self.in_tx = True
        if bulk and not self._bulk:
            self._bulk = True
            await self._fts_hash(FTS_HASH_BYTES)

    async def _fts_hash(self, size: int) -> None:
        for table in _FTS_TABLES:
            await self.db.execute(
                f"INSERT INTO {table}({table}, rank) VALUES ('hashsize', ?)", [size]
            )

    async def commit(self) -> None:
        if self.items_changed:
            for statement in _TWINS:
                await self.db.execute(statement)
        if self._bulk:
            await self._fts_hash(FTS_HASH_DEFAULT)  # back to the default for small syncs
        await self.db.execute("COMMIT")
        self.in_tx = False

    async def rollback(self) -> None:
        if self.in_tx:
            self.in_tx = False
            await self.db.execute("ROLLBACK")

    async def write(self, puts: Sequence[Prepared]) -> None:
        """Insert prepared issues, oldest first (their rows ascend by id)."""
        puts = sorted(puts, key=lambda p: p.date)
        self.items_changed = True
        await self.db.executemany(
            "INSERT INTO issues(date, title, file, line, digest) VALUES (?, ?, ?, ?, ?)",
            [p.issue for p in puts],
        )
        for sql, rows in (
            ("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [p.items for p in puts]),
            ("INSERT INTO items_uni(rowid, u) VALUES (?, ?)", [p.uni for p in puts]),
            ("INSERT INTO items_bi(rowid, b) VALUES (?, ?)", [p.bi for p in puts]),
        ):
            await self.db.executemany(sql, _chain(rows))

    async def delete(self, date: dt.date) -> None:
        self.items_changed = True
        lo, hi = id_range(date, date)
        rows = await fetch(
            self.db, "SELECT id, plain FROM items WHERE id BETWEEN ? AND ?", [lo, hi]
        )
        # A contentless FTS5 table forgets a row only when given the values it indexed.
        columns = [(rid, *index_columns(plain)) for rid, plain in rows]
        await self.db.executemany(
            "INSERT INTO items_uni(items_uni, rowid, u) VALUES('delete', ?, ?)",
            [(r, u) for r, u, _ in columns],
        )
        await self.db.executemany(
            "INSERT INTO items_bi(items_bi, rowid, b) VALUES('delete', ?, ?)",
            [(r, b) for r, _, b in columns],
        )
        await self.db.execute("DELETE FROM items WHERE id BETWEEN ? AND ?", [lo, hi])
        await self.db.execute("DELETE FROM issues WHERE date = ?", [date.isoformat()])

    async def moved(self, rows: list[tuple[str, int, str]]) -> None:
        """Issues whose content is unchanged but which now come from another place."""
        await self.db.executemany("UPDATE issues SET file = ?, line = ? WHERE date = ?", rows)

    async def files(self, removed: list[str], rows: list[tuple[Any, ...]]) -> None:
        await self.db.execute(
            f"DELETE FROM files WHERE path IN ({','.join('?' * len(removed))})", removed
        )
        await self.db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", rows)


def _chain(groups: list[list[Row]]) -> list[Row]:
    return [row for group in groups for row in group]
