"""The archive index: the ``files``, ``issues`` and ``items`` tables and the two FTS5
gram tables. This module owns them: issue lookups, dates and search read here, and
:mod:`bot.db.sync` is the only writer. The archive files are the source of truth; all of
this can be rebuilt from them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.core.dates import month_day, parse_date
from bot.core.model import MAX_ITEMS_PER_ISSUE, Hit, Issue, Item, Problem, SearchPage, Severity
from bot.core.search import Match, Query, fts_match, mark_ranges, parse_query
from bot.core.trend import CountRow
from bot.db.database import Database

if TYPE_CHECKING:
    from bot.db.sync import SyncReport

# Item ids are yyyymmdd * POSITIONS + (POSITIONS - 1 - position): descending id order is
# newest issue first and, within an issue, archive order; the order search pages in.
POSITIONS = 10_000
# The parser reports and leaves out items past MAX_ITEMS_PER_ISSUE, so every item it keeps
# has a position, and check and index count the same items.
assert MAX_ITEMS_PER_ISSUE <= POSITIONS
WRITE_CHUNK = 500  # issues per batch of inserts during a sync (bounds memory)

# An exact total is the costly part of a search (FTS5 checks the positions of every bigram
# of a phrase in every candidate: ~1.5 ms for 5,000 hits at 73k items), so totals are kept
# per index version. The version is SQLite's data_version, read in the same statement as
# the page: it changes whenever another connection commits, and the index is written only
# by the sync's own connection, so a total is reused only while the index is unchanged.
_VERSION = "(SELECT data_version FROM pragma_data_version)"
TOTALS_CACHED = 512


def item_id(date: dt.date, position: int) -> int:
    return (date.year * 10_000 + date.month * 100 + date.day) * POSITIONS + POSITIONS - 1 - position


def id_range(start: dt.date | None, end: dt.date | None) -> tuple[int, int]:
    lo = item_id(start, POSITIONS - 1) if start else 0
    hi = item_id(end, 0) if end else 2**62
    return lo, hi


# An item whose text a newer item in [lo, hi] also has: with the same text it matches the
# same terms, so that newer twin is a hit too and stands for both (item_twins is tiny).
_TWIN_HIDDEN = " AND rowid NOT IN (SELECT id FROM item_twins WHERE newer <= ?)"
# The other items of a hit's text in [lo, hi], as "id number,id number" (collapsed search).
_TWINS_OF = (
    "(SELECT group_concat(o.id || ' ' || o.number) FROM item_twins t"
    " JOIN item_twins x ON x.first = t.first AND x.id != t.id JOIN items o ON o.id = x.id"
    " WHERE t.id = items.id AND x.id BETWEEN ? AND ?)"
)


def _hit_ids(match: Match, lo: int, hi: int, collapse: bool = False) -> tuple[str, list[Any]]:
    """SQL selecting the ids of matching items in [lo, hi], and its parameters. The bigram
    table leads when there is a bigram term (phrases are the selective part). ``collapse``:
    of items with the same text, only the newest in [lo, hi]."""
    hide, hidden = (_TWIN_HIDDEN, [hi]) if collapse else ("", [])
    if match.bi is None and match.uni is None:
        return "SELECT rowid FROM items WHERE rowid BETWEEN ? AND ?" + hide, [lo, hi, *hidden]
    lead, other = ("items_bi", match.bi), ("items_uni", match.uni)
    if match.bi is None:
        lead, other = other, lead
    sql = f"SELECT rowid FROM {lead[0]} WHERE {lead[0]} MATCH ?"
    params: list[Any] = [lead[1]]
    if (lo, hi) != id_range(None, None):
        sql += " AND rowid BETWEEN ? AND ?"  # a rowid constraint costs even when it is all
        params += [lo, hi]
    if other[1] is not None:
        sql += f" AND rowid IN (SELECT rowid FROM {other[0]} WHERE {other[0]} MATCH ?)"
        params.append(other[1])
    return sql + hide, params + hidden


# A collapsed total is the plain total less the hidden twins that match, checked in Python
# on their text (~1 us each, read once per index version) while there are at most this many
# twin rows. Counting ``NOT IN item_twins`` in SQL costs ~100 ns a hit (+2 ms for the 20,000
# hits of `芯`); with many twins (a footer repeated every day) it is the cheaper way again.
FEW_TWINS = 64

_Twins = tuple[tuple[int, int, str], ...]  # (id, newer, plain) of each twin with a newer one


def _count_sql(ids: str) -> str:
    return f"({ids.replace('SELECT rowid', 'SELECT count(*)', 1)})"


def _hidden(twins: _Twins, terms: tuple[str, ...], lo: int, hi: int) -> int:
    """How many of the hits in [lo, hi] a newer twin in it stands for (see ``_TWIN_HIDDEN``):
    twins have the same text, so a hidden one matches exactly when its text does."""
    return sum(
        lo <= rid <= hi and newer <= hi and all(mark_ranges(plain, (t,)) for t in terms)
        for rid, newer, plain in twins
    )


_TotalKey = tuple[tuple[str, ...], int, int, bool]  # terms, id range, collapsed


def _day(yyyymmdd: int) -> dt.date:
    return dt.date(yyyymmdd // 10_000, yyyymmdd // 100 % 100, yyyymmdd % 100)


def issue_digest(issue: Issue) -> str:
    payload = [issue.title, [(i.number, i.text, list(i.urls)) for i in issue.items]]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class IssueView:
    """What an issue reply shows: the issue of a date (None when there is none) and the
    nearest issue dates before and after it."""

    date: dt.date | None  # the date asked, or the newest issue's; None: the archive is empty
    issue: Issue | None
    before: dt.date | None
    after: dt.date | None


def _date_or_none(iso: str | None) -> dt.date | None:
    return dt.date.fromisoformat(iso) if iso else None


# An issue's row, its items (as one JSON array) and, in _VIEW_NEIGHBORS, the nearest dates
# around it, in one statement: each statement is a round trip to the database thread. The
# date is the parameter or, when it is NULL, the newest issue's (max(date), unbounded, as
# latest_date). The items' id range is the date's, computed in SQL (see item_id) so that it
# holds for the newest date too; rows are sorted in Python on their id (an aggregate's
# input order is not guaranteed).
_VIEW_FROM = (
    " FROM (SELECT coalesce(?1, (SELECT max(date) FROM issues)) AS day) d"
    " LEFT JOIN issues i ON i.date = d.day"
)
_VIEW_ITEMS = (
    "(SELECT json_group_array(json_array(id, number, text, json(urls), line)) FROM items"
    f" WHERE id BETWEEN CAST(replace(d.day, '-', '') AS INTEGER) * {POSITIONS}"
    f" AND CAST(replace(d.day, '-', '') AS INTEGER) * {POSITIONS} + {POSITIONS - 1})"
)
_VIEW = f"SELECT d.day, i.title, i.file, i.line, NULL, NULL, {_VIEW_ITEMS}" + _VIEW_FROM
_VIEW_NEIGHBORS = (
    "SELECT d.day, i.title, i.file, i.line,"
    " (SELECT max(date) FROM issues WHERE date < d.day),"
    f" (SELECT min(date) FROM issues WHERE date > d.day), {_VIEW_ITEMS}" + _VIEW_FROM
)


class Archive:
    """Reads of the archive index, and the sync that rebuilds it from the files."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._sync_lock = asyncio.Lock()
        self._owns_db = False
        # Called with each search's duration in seconds (the ops metrics set it).
        self.on_search: Callable[[float], None] | None = None
        # Search totals by (terms, id range): (index version, total), least recent first.
        self._totals: OrderedDict[_TotalKey, tuple[int, int]] = OrderedDict()
        # (index version, the twin rows then, or None when there were too many to list).
        self._twins: tuple[int, _Twins | None] | None = None

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Archive:
        """An archive on a database of its own (the CLI, benchmarks): closed with it."""
        archive = cls(await Database.open(path))
        archive._owns_db = True
        return archive

    async def close(self) -> None:
        if self._owns_db:
            await self.db.close()

    async def __aenter__(self) -> Archive:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- reading -------------------------------------------------------------------------

    async def _rows(self, sql: str, params: Any = ()) -> list[Any]:
        return await self.db.rows(sql, params)

    async def counts(self) -> tuple[int, int]:
        rows = await self._rows(
            "SELECT (SELECT count(*) FROM issues), (SELECT count(*) FROM items)"
        )
        return int(rows[0][0]), int(rows[0][1])

    async def issue(self, date: dt.date) -> Issue | None:
        return (await self._view(date, neighbors=False)).issue

    async def view(self, date: dt.date | None) -> IssueView:
        """The issue of ``date`` (None: the newest issue, as ``latest_date`` finds it) and
        its neighbours, read in one statement: one round trip per issue reply (issue 12)."""
        return await self._view(date, neighbors=True)

    async def _view(self, date: dt.date | None, neighbors: bool) -> IssueView:
        iso = date.isoformat() if date else None
        rows = await self._rows(_VIEW_NEIGHBORS if neighbors else _VIEW, [iso])
        day, title, file, line, before, after, items = rows[0]
        if day is None:  # the archive is empty and the newest issue was asked for
            return IssueView(None, None, None, None)
        when = dt.date.fromisoformat(day)
        issue = None
        if title is not None:  # the row exists (title is NOT NULL)
            listed = sorted(json.loads(items), reverse=True)  # id order: archive order
            issue = Issue(
                when,
                title,
                tuple(Item(n, text, tuple(urls), ln) for _, n, text, urls, ln in listed),
                file,
                line,
            )
        return IssueView(when, issue, _date_or_none(before), _date_or_none(after))

    async def latest_date(self) -> dt.date | None:
        rows = await self._rows("SELECT max(date) FROM issues")
        return dt.date.fromisoformat(rows[0][0]) if rows and rows[0][0] else None

    async def neighbors(self, date: dt.date) -> tuple[dt.date | None, dt.date | None]:
        """The nearest issue dates strictly before and after ``date``."""
        iso = date.isoformat()
        rows = await self._rows(
            "SELECT (SELECT max(date) FROM issues WHERE date < ?),"
            " (SELECT min(date) FROM issues WHERE date > ?)",
            [iso, iso],
        )
        before, after = rows[0]
        return _date_or_none(before), _date_or_none(after)

    async def dates_on(self, month: int, day: int) -> list[dt.date]:
        """Issue dates with this month and day, any year (for ``2月14日``)."""
        rows = await self._rows(
            "SELECT date FROM issues WHERE substr(date, 6) = ? ORDER BY date",
            [f"{month:02d}-{day:02d}"],
        )
        return [dt.date.fromisoformat(r[0]) for r in rows]

    async def resolve_date(self, text: str, today: dt.date) -> dt.date | None:
        """A typed date (see bot.core.dates); ``latest`` is the newest issue's date (None
        while the archive is empty), and a year-less date the most recent issue on that
        day. Raises DateError. Reads issue dates only when it must."""
        md = month_day(text)
        known = await self.dates_on(*md) if md and 1 <= md[0] <= 12 else []
        when = parse_date(text, today, known)
        if isinstance(when, dt.date):
            return when
        return await self.latest_date()  # LATEST

    async def issue_dates(
        self, start: dt.date | None = None, end: dt.date | None = None
    ) -> list[dt.date]:
        rows = await self._rows(
            "SELECT date FROM issues WHERE date BETWEEN ? AND ? ORDER BY date",
            [(start or dt.date.min).isoformat(), (end or dt.date.max).isoformat()],
        )
        return [dt.date.fromisoformat(r[0]) for r in rows]

    async def search(
        self, query: str | Query, offset: int = 0, limit: int = 10, collapse: bool = False
    ) -> SearchPage:
        """Items containing every term, newest first. Raises QueryError for a bad query.

        ``collapse`` (what readers see): items with the same text are one hit, the newest in
        the date filter, with the others' dates in ``Hit.also``; total and paging count such
        hits. Without it (scripts, watches) every item is a hit of its own."""
        started = time.perf_counter()
        try:
            return await self._search(query, offset, limit, collapse)
        finally:
            if self.on_search is not None:
                self.on_search(time.perf_counter() - started)

    async def _search(
        self, query: str | Query, offset: int, limit: int, collapse: bool
    ) -> SearchPage:
        q = parse_query(query) if isinstance(query, str) else query
        lo, hi = id_range(q.period.start, q.period.end) if q.period else id_range(None, None)
        offset, limit = max(0, offset), max(0, limit)
        match = fts_match(q.terms)
        ids, params = _hit_ids(match, lo, hi, collapse)
        every, every_params = _hit_ids(match, lo, hi) if collapse else (ids, params)
        key = (q.terms, lo, hi, collapse)
        cached = self._totals.get(key)
        # One round trip for the page, the index version and (unless cached for this
        # version) the plain total: the uncorrelated count is computed once.
        count = "NULL" if cached else _count_sql(every)
        twins = _TWINS_OF if collapse else "NULL"
        rows = await self._rows(
            f"SELECT {_VERSION}, {count}, id, date, number, text, plain, urls, {twins} FROM items"
            f" WHERE id IN ({ids} ORDER BY 1 DESC LIMIT ? OFFSET ?) ORDER BY id DESC",
            [
                *([] if cached else every_params),
                *([lo, hi] if collapse else []),
                *params,
                limit,
                offset,
            ],
        )
        if rows and not cached:
            version, total = int(rows[0][0]), int(rows[0][1])
            if collapse:
                hidden = await self._twins_at(version)
                if hidden is not None:
                    total -= _hidden(hidden, q.terms, lo, hi)
                else:  # many twins, or the index changed since the page: count in SQL
                    version, total = await self._count(ids, params)
        elif not rows and offset == 0 and limit:
            version, total = None, 0  # not one hit
        else:
            version = int(rows[0][0]) if rows else await self.db.value(f"SELECT {_VERSION}")
            if cached and cached[0] == version:
                total = cached[1]
            else:
                version, total = await self._count(ids, params)
        if version is not None:
            self._remember(key, version, total)
        hits = tuple(
            Hit(
                dt.date.fromisoformat(date),
                number,
                text,
                tuple(json.loads(urls)),
                mark_ranges(plain, q.terms),
                _twins(also),
            )
            for _, _, _, date, number, text, plain, urls, also in rows
        )
        return SearchPage(q.terms, total, offset, limit, hits)

    async def _count(self, ids: str, params: list[Any]) -> tuple[int, int]:
        """(index version, total), read together."""
        rows = await self._rows(f"SELECT {_VERSION}, {_count_sql(ids)}", params)
        return int(rows[0][0]), int(rows[0][1])

    async def _twins_at(self, version: int) -> _Twins | None:
        """The twin rows that have a newer twin, with their item's text, as of index
        ``version``; None if there are more than FEW_TWINS or the index is no longer at that
        version. Read once a version."""
        if self._twins is None or self._twins[0] != version:
            rows = await self._rows(
                f"SELECT {_VERSION}, (SELECT json_group_array(json_array(t.id, t.newer, i.plain))"
                " FROM (SELECT id, newer FROM item_twins WHERE newer IS NOT NULL"
                f" LIMIT {FEW_TWINS + 1}) t"
                " JOIN items i ON i.id = t.id)"
            )
            listed = [(int(a), int(b), str(c)) for a, b, c in json.loads(rows[0][1])]
            self._twins = (int(rows[0][0]), tuple(listed) if len(listed) <= FEW_TWINS else None)
        return self._twins[1] if self._twins[0] == version else None

    def _remember(self, key: _TotalKey, version: int, total: int) -> None:
        self._totals[key] = (version, total)
        self._totals.move_to_end(key)
        while len(self._totals) > TOTALS_CACHED:
            self._totals.popitem(last=False)

    async def match_counts(
        self,
        terms: tuple[str, ...],
        start: dt.date | None = None,
        end: dt.date | None = None,
        by_day: bool = False,
    ) -> list[CountRow]:
        """Items containing every (folded) term, counted per month (``2025-02``) or per
        day, in SQL with the same FTS match as :meth:`search`; empty groups are absent.

        Grouped on the FTS rowids alone: an item id is yyyymmdd * POSITIONS + ..., so the
        day and the month are integer divisions and the ``items`` table is never read
        (reading each hit's date there was ~4x slower at 13k hits)."""
        ids, params = _hit_ids(fts_match(terms), *id_range(start, end))
        ids = ids.replace("SELECT rowid", "SELECT rowid AS hit", 1)
        div = POSITIONS if by_day else POSITIONS * 100
        rows = await self._rows(
            f"SELECT hit / {div}, count(*), min(hit) / {POSITIONS}, max(hit) / {POSITIONS}"
            f" FROM ({ids}) GROUP BY 1 ORDER BY 1",
            params,
        )
        return [
            CountRow(
                _day(k).isoformat() if by_day else f"{k // 100:04d}-{k % 100:02d}",
                int(n),
                _day(a),
                _day(b),
            )
            for k, n, a, b in rows
        ]

    async def date_span(self) -> tuple[dt.date, dt.date] | None:
        """The first and the last issue date; None while the archive is empty."""
        rows = await self._rows("SELECT min(date), max(date) FROM issues")
        if not rows or rows[0][0] is None:
            return None
        return dt.date.fromisoformat(rows[0][0]), dt.date.fromisoformat(rows[0][1])

    async def stored_problems(self) -> list[Problem]:
        """Problems recorded at the last sync (per file), without reading any file."""
        rows = await self._rows("SELECT problems FROM files ORDER BY path")
        return [problem_from_dict(p) for (blob,) in rows for p in json.loads(blob)]

    # -- syncing -------------------------------------------------------------------------

    async def sync(self, root: Path) -> SyncReport:
        """Bring the index up to date with the files under ``root``; one transaction on a
        connection of its own, so with WAL a reader sees either the old index or the new
        one, never a mix."""
        from bot.db.sync import sync_files

        async with self._sync_lock:
            return await sync_files(self.db.path, root)


def _twins(listed: str | None) -> tuple[tuple[dt.date, int], ...]:
    """(date, number) of each twin in a ``_TWINS_OF`` list, newest first."""
    if not listed:
        return ()
    pairs = sorted((tuple(map(int, p.split())) for p in listed.split(",")), reverse=True)
    return tuple((_day(rid // POSITIONS), number) for rid, number in pairs)


def problem_from_dict(d: dict[str, Any]) -> Problem:
    return Problem(d["file"], d["line"], Severity(d["severity"]), d["message"])
