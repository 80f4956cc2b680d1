"""The SQLite index of the archive (through aiosqlite): incremental sync from the Markdown
files, issue lookups and search. The archive is the source of truth; this can be rebuilt.

Reads go through one connection; a sync writes through a second one inside a single
transaction, so with WAL a reader sees either the old index or the new one, never a mix.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from bot.core.content import (
    Decl,
    content_files,
    declarations,
    decode,
    file_month,
    parse_text,
    resolve,
)
from bot.core.dates import month_day, parse_date
from bot.core.markdown import visible_text
from bot.core.model import Hit, Issue, Item, ParseResult, Problem, SearchPage, Severity
from bot.core.search import Match, Query, fts_match, index_columns, mark_ranges, parse_query
from bot.db.schema import MIGRATIONS

# Item ids are yyyymmdd * POSITIONS + (POSITIONS - 1 - position): descending id order is
# newest issue first and, within an issue, archive order; the order search pages in.
POSITIONS = 10_000
WRITE_CHUNK = 500  # issues per batch of inserts during a sync (bounds memory)


class StoreError(Exception):
    """The database cannot be used (unreadable file, newer schema than this release)."""


def item_id(date: dt.date, position: int) -> int:
    return (date.year * 10_000 + date.month * 100 + date.day) * POSITIONS + POSITIONS - 1 - position


def _id_range(start: dt.date | None, end: dt.date | None) -> tuple[int, int]:
    lo = item_id(start, POSITIONS - 1) if start else 0
    hi = item_id(end, 0) if end else 2**62
    return lo, hi


def _hit_ids(match: Match, lo: int, hi: int) -> tuple[str, list[Any]]:
    """SQL selecting the ids of matching items in [lo, hi], and its parameters. The bigram
    table leads when there is a bigram term (phrases are the selective part)."""
    if match.bi is None and match.uni is None:
        return "SELECT rowid FROM items WHERE rowid BETWEEN ? AND ?", [lo, hi]
    lead, other = ("items_bi", match.bi), ("items_uni", match.uni)
    if match.bi is None:
        lead, other = other, lead
    sql = f"SELECT rowid FROM {lead[0]} WHERE {lead[0]} MATCH ?"
    params: list[Any] = [lead[1]]
    if (lo, hi) != _id_range(None, None):
        sql += " AND rowid BETWEEN ? AND ?"  # a rowid constraint costs even when it is all
        params += [lo, hi]
    if other[1] is not None:
        sql += f" AND rowid IN (SELECT rowid FROM {other[0]} WHERE {other[0]} MATCH ?)"
        params.append(other[1])
    return sql, params


def issue_digest(issue: Issue) -> str:
    payload = [issue.title, [(i.number, i.text, list(i.urls)) for i in issue.items]]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


@dataclass
class SyncReport:
    added: list[dt.date] = field(default_factory=list)
    updated: list[dt.date] = field(default_factory=list)
    removed: list[dt.date] = field(default_factory=list)
    issues: int = 0
    items: int = 0
    files_read: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass
class _FileState:
    """One content file as the sync sees it."""

    rel: str
    name: str  # for problem reports
    size: int
    mtime_ns: int
    sha256: str = ""
    decls: list[Decl] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    parsed: ParseResult | None = None  # set when read in this sync
    bad: bool = False  # unreadable now: its last good issues are kept


async def _connect(path: Path) -> aiosqlite.Connection:
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
            await db.close()  # its worker thread would otherwise keep the process alive
        raise StoreError(f"cannot open the database {path}: {err}") from err
    return db


async def migrate(db: aiosqlite.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Apply pending migrations, each atomically; returns the schema version now in force."""
    async with db.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    version = int(row[0]) if row else 0
    if version > len(migrations):
        raise StoreError(
            f"the database has schema version {version}, newer than this release knows "
            f"({len(migrations)}); upgrade briefbot or rebuild the index"
        )
    for number in range(version + 1, len(migrations) + 1):
        script = migrations[number - 1]
        await db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return len(migrations)


class Store:
    def __init__(self, path: Path, db: aiosqlite.Connection) -> None:
        self.path = path
        self.db = db
        self._sync_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Store:
        db = await _connect(Path(path))
        try:
            await migrate(db)
        except Exception:
            await db.close()
            raise
        return cls(Path(path), db)

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction on the shared connection. The lock keeps other coroutines'
        transactions from interleaving with this one (they share one SQLite connection)."""
        async with self._write_lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")

    # -- reading -------------------------------------------------------------------------

    async def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with self.db.execute(sql, tuple(params)) as cur:
            return list(await cur.fetchall())

    async def counts(self) -> tuple[int, int]:
        rows = await self._rows(
            "SELECT (SELECT count(*) FROM issues), (SELECT count(*) FROM items)"
        )
        return int(rows[0][0]), int(rows[0][1])

    async def issue(self, date: dt.date) -> Issue | None:
        rows = await self._rows(
            "SELECT title, file, line FROM issues WHERE date = ?", [date.isoformat()]
        )
        if not rows:
            return None
        title, file, line = rows[0]
        items = await self._rows(
            "SELECT number, text, urls, line FROM items WHERE id BETWEEN ? AND ? ORDER BY id DESC",
            _id_range(date, date),
        )
        return Issue(
            date,
            title,
            tuple(Item(n, text, tuple(json.loads(urls)), ln) for n, text, urls, ln in items),
            file,
            line,
        )

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
        return (
            dt.date.fromisoformat(before) if before else None,
            dt.date.fromisoformat(after) if after else None,
        )

    async def dates_on(self, month: int, day: int) -> list[dt.date]:
        """Issue dates with this month and day, any year (for ``2月14日``)."""
        rows = await self._rows(
            "SELECT date FROM issues WHERE substr(date, 6) = ? ORDER BY date",
            [f"{month:02d}-{day:02d}"],
        )
        return [dt.date.fromisoformat(r[0]) for r in rows]

    async def resolve_date(self, text: str, today: dt.date) -> dt.date | str:
        """A typed date (see bot.dates) or ``LATEST``; a year-less date means the most recent
        issue on that day. Raises DateError. Reads issue dates only when it must."""
        md = month_day(text)
        known = await self.dates_on(*md) if md and 1 <= md[0] <= 12 else []
        return parse_date(text, today, known)

    async def issue_dates(
        self, start: dt.date | None = None, end: dt.date | None = None
    ) -> list[dt.date]:
        rows = await self._rows(
            "SELECT date FROM issues WHERE date BETWEEN ? AND ? ORDER BY date",
            [(start or dt.date.min).isoformat(), (end or dt.date.max).isoformat()],
        )
        return [dt.date.fromisoformat(r[0]) for r in rows]

    async def search(self, query: str | Query, offset: int = 0, limit: int = 10) -> SearchPage:
        """Items containing every term, newest first. Raises QueryError for a bad query."""
        q = parse_query(query) if isinstance(query, str) else query
        lo, hi = _id_range(q.period.start, q.period.end) if q.period else _id_range(None, None)
        offset, limit = max(0, offset), max(0, limit)
        ids, params = _hit_ids(fts_match(q.terms), lo, hi)
        # One round trip for the page and the total: the uncorrelated count is computed once.
        rows = await self._rows(
            f"SELECT ({ids.replace('SELECT rowid', 'SELECT count(*)', 1)}),"
            f" id, date, number, text, plain, urls FROM items WHERE id IN ({ids}"
            " ORDER BY 1 DESC LIMIT ? OFFSET ?) ORDER BY id DESC",
            [*params, *params, limit, offset],
        )
        if rows:
            total = int(rows[0][0])
        elif offset == 0 or limit == 0:
            total = 0 if limit else await self._count(ids, params)
        else:
            total = await self._count(ids, params)
        hits = tuple(
            Hit(
                dt.date.fromisoformat(date),
                number,
                text,
                tuple(json.loads(urls)),
                mark_ranges(plain, q.terms),
            )
            for _, _, date, number, text, plain, urls in rows
        )
        return SearchPage(q.terms, total, offset, limit, hits)

    async def _count(self, ids: str, params: list[Any]) -> int:
        rows = await self._rows(ids.replace("SELECT rowid", "SELECT count(*)", 1), params)
        return int(rows[0][0])

    async def stored_problems(self) -> list[Problem]:
        """Problems recorded at the last sync (per file), without reading any file."""
        rows = await self._rows("SELECT problems FROM files ORDER BY path")
        return [_problem(p) for (blob,) in rows for p in json.loads(blob)]

    # -- syncing -------------------------------------------------------------------------

    async def sync(self, root: Path) -> SyncReport:
        """Bring the index up to date with the files under ``root``; one transaction."""
        async with self._sync_lock:
            writer = await _connect(self.path)
            try:
                return await _Sync(writer, root).run()
            finally:
                await writer.close()


def _problem(d: dict[str, Any]) -> Problem:
    return Problem(d["file"], d["line"], Severity(d["severity"]), d["message"])


def _decl_json(d: Decl) -> list[Any]:
    return [d.date.isoformat(), d.line, d.right_month]


def _read_file(state: _FileState, path: Path) -> None:
    """Read, hash and parse one file (runs in a worker thread)."""
    data = path.read_bytes()
    state.sha256 = hashlib.sha256(data).hexdigest()
    text, problems = decode(state.name, data)
    if text is None:
        state.bad, state.problems = True, problems
        return
    result = parse_text(state.name, text)
    state.parsed = result
    state.problems = result.problems
    state.decls = declarations(result, file_month(state.name, text))


class _Sync:
    def __init__(self, db: aiosqlite.Connection, root: Path) -> None:
        self.db = db
        self.root = root
        self.report = SyncReport()

    async def run(self) -> SyncReport:
        stored = await self._stored_files()
        states, removed_files = await asyncio.to_thread(self._scan, stored)
        db_issues = {
            dt.date.fromisoformat(d): (f, ln, dg)
            for d, f, ln, dg in await self._all("SELECT date, file, line, digest FROM issues")
        }
        winners = await self._resolve(states, db_issues)
        await self._write(states, removed_files, winners, db_issues)
        self.report.issues, self.report.items = await self._counts()
        self.report.problems.sort(key=lambda p: (p.file, p.line))
        return self.report

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with self.db.execute(sql, tuple(params)) as cur:
            return list(await cur.fetchall())

    async def _counts(self) -> tuple[int, int]:
        rows = await self._all("SELECT (SELECT count(*) FROM issues), (SELECT count(*) FROM items)")
        return int(rows[0][0]), int(rows[0][1])

    async def _stored_files(self) -> dict[str, _FileState]:
        out = {}
        for rel, size, mtime, sha, decls, problems in await self._all(
            "SELECT path, size, mtime_ns, sha256, decls, problems FROM files"
        ):
            name = str(self.root / rel)
            state = _FileState(rel, name, size, mtime, sha)
            state.decls = [
                Decl(dt.date.fromisoformat(d), name, ln, rm) for d, ln, rm in json.loads(decls)
            ]
            state.problems = [_problem(p) for p in json.loads(problems)]
            out[rel] = state
        return out

    def _scan(self, stored: dict[str, _FileState]) -> tuple[dict[str, _FileState], list[str]]:
        """Stat every file; read only those whose size or mtime changed (then by hash)."""
        states: dict[str, _FileState] = {}
        if not self.root.is_dir():
            self.report.problems.append(
                Problem(str(self.root), 0, Severity.ERROR, "content directory does not exist")
            )
            return dict(stored), []  # keep everything: a missing mount must not wipe the index
        for path in content_files(self.root):
            rel = path.relative_to(self.root).as_posix()
            st = path.stat()
            old = stored.get(rel)
            if old and (old.size, old.mtime_ns) == (st.st_size, st.st_mtime_ns):
                states[rel] = old
                continue
            state = _FileState(rel, str(self.root / rel), st.st_size, st.st_mtime_ns)
            _read_file(state, path)
            self.report.files_read += 1
            if old and old.sha256 == state.sha256:
                old.size, old.mtime_ns = state.size, state.mtime_ns
                states[rel] = old
                continue
            if state.bad and old:
                state.decls = old.decls  # keep the last good version of its issues
                kept = len(old.decls)
                state.problems.append(
                    Problem(
                        state.name,
                        1,
                        Severity.WARNING,
                        f"keeping the last good version ({kept} issues)",
                    )
                )
            states[rel] = state
        return states, [rel for rel in stored if rel not in states]

    async def _resolve(
        self, states: dict[str, _FileState], db_issues: dict[dt.date, tuple[str, int, str]]
    ) -> dict[dt.date, Issue | None]:
        """Winner per date: an Issue to write, or None to keep what the index has."""
        self._keep_broken(states, db_issues)
        by_name = {s.name: s for s in states.values()}
        winners, dup_problems = resolve(d for s in states.values() for d in s.decls)
        self.report.problems.extend(dup_problems)
        for state in states.values():
            self.report.problems.extend(state.problems)
        out: dict[dt.date, Issue | None] = {}
        for date, decl in winners.items():
            state = by_name[decl.file]
            current = db_issues.get(date)
            if state.parsed is None and current and current[0] == state.rel:
                out[date] = None  # unchanged file, same source: nothing to do
                continue
            if state.parsed is None and not state.bad:
                # The winner moved to a file we did not read (its rival went away): read it.
                await asyncio.to_thread(_read_file, state, self.root / state.rel)
                self.report.files_read += 1
            out[date] = _find(state, date)
        return out

    def _keep_broken(
        self, states: dict[str, _FileState], db_issues: dict[dt.date, tuple[str, int, str]]
    ) -> None:
        """An issue whose heading is still there but which cannot be read keeps its last
        good version instead of disappearing."""
        for state in states.values():
            if state.parsed is None:
                continue
            for date in sorted(state.parsed.broken_dates):
                current = db_issues.get(date)
                if current and current[0] == state.rel:
                    state.decls.append(Decl(date, state.name, current[1], True))
                    msg = f"keeping the last good version of issue {date:%Y.%m.%d}"
                    state.problems.append(Problem(state.name, current[1], Severity.WARNING, msg))

    async def _write(
        self,
        states: dict[str, _FileState],
        removed_files: list[str],
        winners: dict[dt.date, Issue | None],
        db_issues: dict[dt.date, tuple[str, int, str]],
    ) -> None:
        batch = _Batch()
        for date in sorted(set(db_issues) - set(winners)):
            batch.delete.append(date)
            self.report.removed.append(date)
        for date, issue in sorted(winners.items()):
            if issue is not None:
                self._plan_issue(batch, issue, db_issues.get(date))
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            await self._apply(batch)
            await self.db.execute(
                f"DELETE FROM files WHERE path IN ({','.join('?' * len(removed_files))})",
                removed_files,
            )
            await self.db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                [_file_row(s) for s in states.values()],
            )
            await self.db.execute("COMMIT")
        except BaseException:
            await self.db.execute("ROLLBACK")
            raise

    def _plan_issue(
        self, batch: _Batch, issue: Issue, current: tuple[str, int, str] | None
    ) -> None:
        digest = issue_digest(issue)
        if current and current[2] == digest:
            if current[:2] != (issue.file, issue.line):
                batch.moved.append((issue.file, issue.line, issue.key))
            return
        if current:
            batch.delete.append(issue.date)
            self.report.updated.append(issue.date)
        else:
            self.report.added.append(issue.date)
        batch.puts.append((issue, digest))

    async def _apply(self, batch: _Batch) -> None:
        """All writes of a sync, inside its transaction. Rows are built and written a chunk
        of issues at a time, oldest first: memory stays bounded on a full build, and FTS5
        still sees ascending rowids."""
        for date in batch.delete:
            await self._delete_issue(date)
        for start in range(0, len(batch.puts), WRITE_CHUNK):
            await self._write_issues(batch.puts[start : start + WRITE_CHUNK])
        if batch.moved:
            await self.db.executemany(
                "UPDATE issues SET file = ?, line = ? WHERE date = ?", batch.moved
            )

    async def _write_issues(self, puts: Sequence[tuple[Issue, str]]) -> None:
        await self.db.executemany(
            "INSERT INTO issues(date, title, file, line, digest) VALUES (?, ?, ?, ?, ?)",
            [(i.key, i.title, i.file, i.line, digest) for i, digest in puts],
        )
        items = [
            (
                item_id(issue.date, pos),
                issue.key,
                pos,
                item.number,
                item.text,
                visible_text(item.text),
                json.dumps(list(item.urls)),
                item.line,
            )
            for issue, _ in puts
            for pos, item in enumerate(issue.items[:POSITIONS])
        ]
        await self.db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?)", items)
        # FTS5 appends fastest when rowids ascend; item ids descend within an issue.
        columns = [(row[0], *index_columns(row[5])) for row in sorted(items)]
        del items
        await self.db.executemany(
            "INSERT INTO items_uni(rowid, u) VALUES (?, ?)", [(r, u) for r, u, _ in columns]
        )
        await self.db.executemany(
            "INSERT INTO items_bi(rowid, b) VALUES (?, ?)", [(r, b) for r, _, b in columns]
        )

    async def _delete_issue(self, date: dt.date) -> None:
        lo, hi = _id_range(date, date)
        rows = await self._all("SELECT id, plain FROM items WHERE id BETWEEN ? AND ?", [lo, hi])
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


@dataclass
class _Batch:
    """The rows one sync writes, collected before the transaction starts."""

    delete: list[dt.date] = field(default_factory=list)
    puts: list[tuple[Issue, str]] = field(default_factory=list)  # (issue, digest), by date
    moved: list[tuple[str, int, str]] = field(default_factory=list)


def _file_row(s: _FileState) -> tuple[Any, ...]:
    return (
        s.rel,
        s.size,
        s.mtime_ns,
        s.sha256,
        json.dumps([_decl_json(d) for d in s.decls]),
        json.dumps([p.as_dict() for p in s.problems], ensure_ascii=False),
    )


def _find(state: _FileState, date: dt.date) -> Issue | None:
    """The issue for ``date`` in a freshly read file, stored under its relative path."""
    if state.parsed is None:
        return None
    for issue in state.parsed.issues:
        if issue.date == date:
            return Issue(issue.date, issue.title, issue.items, state.rel, issue.line)
    return None  # a kept broken issue: the index already has it
