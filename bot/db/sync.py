"""The only writer of the archive index: brings ``files``, ``issues``, ``items`` and the
gram tables up to date with the Markdown files, incrementally (stat, then hash), in one
transaction on a connection of its own. A file that cannot be read keeps its last good
issues; a missing content folder never wipes the index.

A full build streams: each file is parsed once and the issues of dates the index does not
have yet are written at once, a chunk at a time, while the declarations (small) are kept
for the duplicate-date rule. Once every file is read, a date whose winning copy is not the
one written (a duplicate met later) is rewritten from its winner. Memory stays at a chunk of
rows plus the declarations, whatever the archive's size.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
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
from bot.core.grams import index_columns
from bot.core.markdown import visible_text
from bot.core.model import Issue, ParseResult, Problem, Severity
from bot.db.archive import (
    POSITIONS,
    WRITE_CHUNK,
    id_range,
    issue_digest,
    item_id,
    problem_from_dict,
)
from bot.db.database import connect, fetch

STREAM_ITEMS = 4000  # items per batch of streamed inserts (bounds memory on a full build)
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
    parsed: ParseResult | None = None  # when read in this sync (dropped once streamed)
    read: bool = False  # read in this sync
    broken: list[dt.date] = field(default_factory=list)  # headings whose issue is unreadable
    bad: bool = False  # unreadable now: its last good issues are kept


async def sync_files(db_path: Path, root: Path) -> SyncReport:
    writer = await connect(db_path)
    try:
        return await _Sync(writer, root).run()
    finally:
        await writer.close()


def _decl_json(d: Decl) -> list[Any]:
    return [d.date.isoformat(), d.line, d.right_month]


MAX_FILE_BYTES = 64 * 1024 * 1024  # a month file is ~20 KB; anything this big is a mistake


def _unreadable(state: _FileState, why: str) -> None:
    state.bad = True
    state.problems = [Problem(state.name, 0, Severity.ERROR, why)]


def _read_file(state: _FileState, path: Path) -> None:
    """Read, hash and parse one file (runs in a worker thread). A file that cannot be read
    (permissions, vanished, not a regular file, too big) is a problem, never an exception:
    it keeps its last good version and the rest of the archive is indexed."""
    try:
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return _unreadable(state, "not a regular file; replace it with a Markdown file")
            if st.st_size > MAX_FILE_BYTES:
                return _unreadable(
                    state, f"{st.st_size} bytes, over the {MAX_FILE_BYTES} byte limit for one file"
                )
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        return _unreadable(state, f"cannot read the file: {err.strerror or err}")
    if len(data) > MAX_FILE_BYTES:
        return _unreadable(state, f"over the {MAX_FILE_BYTES} byte limit for one file")
    state.sha256 = hashlib.sha256(data).hexdigest()
    text, problems = decode(state.name, data)
    if text is None:
        state.bad, state.problems = True, problems
        return
    result = parse_text(state.name, text)
    state.parsed, state.read = result, True
    state.problems = result.problems
    state.broken = sorted(result.broken_dates)
    state.decls = declarations(result, file_month(state.name, text))


class _Sync:
    def __init__(self, db: aiosqlite.Connection, root: Path) -> None:
        self.db = db
        self.root = root
        self.report = SyncReport()
        self.db_issues: dict[dt.date, tuple[str, int, str]] = {}
        self.in_tx = False
        self._items_changed = False  # items written or deleted: item_twins is rewritten
        self._bulk = False
        self._stored_rows: dict[str, tuple[Any, ...]] = {}  # `files` rows as read
        # Dates written while streaming: date -> (file, line) of the copy written.
        self.streamed: dict[dt.date, tuple[str, int]] = {}
        self._claimed: set[dt.date] = set()
        self._pending: list[tuple[Issue, str]] = []
        self._pending_items = 0

    async def run(self) -> SyncReport:
        stored = await self._stored_files()
        self.db_issues = {
            dt.date.fromisoformat(d): (f, ln, dg)
            for d, f, ln, dg in await self._all("SELECT date, file, line, digest FROM issues")
        }
        try:
            states, removed_files = await self._scan(stored)
            winners = await self._resolve(states, self.db_issues)
            await self._write(states, removed_files, winners, self.db_issues)
        except BaseException:
            if self.in_tx:
                await self.db.execute("ROLLBACK")
            raise
        self.report.issues, self.report.items = await self._counts()
        self.report.problems.sort(key=lambda p: (p.file, p.line))
        for dates in (self.report.added, self.report.updated, self.report.removed):
            dates.sort()
        return self.report

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return await fetch(self.db, sql, params)

    async def _begin(self, bulk: bool = False) -> None:
        """The sync's one transaction, begun at its first write; ``bulk``: many rows follow
        (a streamed build), so FTS5 gets a big buffer for this transaction."""
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

    async def _commit(self) -> None:
        if self._bulk:
            await self._fts_hash(FTS_HASH_DEFAULT)  # back to the default for small syncs
        await self.db.execute("COMMIT")
        self.in_tx = False

    async def _counts(self) -> tuple[int, int]:
        rows = await self._all("SELECT (SELECT count(*) FROM issues), (SELECT count(*) FROM items)")
        return int(rows[0][0]), int(rows[0][1])

    async def _stored_files(self) -> dict[str, _FileState]:
        out = {}
        for row in await self._all(
            "SELECT path, size, mtime_ns, sha256, decls, problems FROM files"
        ):
            self._stored_rows[row[0]] = tuple(row)
            rel, size, mtime, sha, decls, problems = row
            name = str(self.root / rel)
            state = _FileState(rel, name, size, mtime, sha)
            state.decls = [
                Decl(dt.date.fromisoformat(d), name, ln, rm) for d, ln, rm in json.loads(decls)
            ]
            state.problems = [problem_from_dict(p) for p in json.loads(problems)]
            out[rel] = state
        return out

    async def _scan(self, stored: dict[str, _FileState]) -> tuple[dict[str, _FileState], list[str]]:
        """Stat every file; read only those whose size or mtime changed (then by hash),
        each in a worker thread, streaming the issues of new dates as it goes."""
        states: dict[str, _FileState] = {}
        if not self.root.is_dir():
            self.report.problems.append(
                Problem(str(self.root), 0, Severity.ERROR, "content directory does not exist")
            )
            return dict(stored), []  # keep everything: a missing mount must not wipe the index
        # A date the index has, or that a file not read now declares, goes the careful way
        # (compare digests, resolve duplicates); only a date new to all of them streams.
        self._claimed = set(self.db_issues) | {d.date for s in stored.values() for d in s.decls}
        # One worker-thread call stats every file; each file to read is one more.
        for path, st in await asyncio.to_thread(self._stat_all, stored):
            state = st if st is not None else await asyncio.to_thread(self._read_one, path, stored)
            if state is None:
                continue
            states[state.rel] = state
            if state.parsed is not None and state.read:
                await self._stream(state)
        await self._flush()
        return states, [rel for rel in stored if rel not in states]

    def _stat_all(self, stored: dict[str, _FileState]) -> list[tuple[Path, _FileState | None]]:
        """Every content file with its state when it need not be read (unchanged, or
        unreadable), None when it must be read."""
        out: list[tuple[Path, _FileState | None]] = []
        for path in content_files(self.root):
            rel = path.relative_to(self.root).as_posix()
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # removed since it was listed: the next sync sees it gone
            except OSError as err:
                out.append((path, self._cannot_stat(rel, err, stored)))
                continue
            old = stored.get(rel)
            unchanged = old and (old.size, old.mtime_ns) == (st.st_size, st.st_mtime_ns)
            out.append((path, old if unchanged else None))
        return out

    def _cannot_stat(self, rel: str, err: OSError, stored: dict[str, _FileState]) -> _FileState:
        state = _FileState(rel, str(self.root / rel), 0, 0)
        _unreadable(state, f"cannot read the file: {err.strerror or err}")
        self._keep_old(state, stored.get(rel))
        return state

    def _read_one(self, path: Path, stored: dict[str, _FileState]) -> _FileState | None:
        rel = path.relative_to(self.root).as_posix()
        try:
            st = path.stat()
        except FileNotFoundError:
            return None  # removed since it was stat-ed: the next sync sees it gone
        except OSError as err:
            return self._cannot_stat(rel, err, stored)
        old = stored.get(rel)
        state = _FileState(rel, str(self.root / rel), st.st_size, st.st_mtime_ns)
        _read_file(state, path)
        self.report.files_read += 1
        if old and old.sha256 == state.sha256:
            old.size, old.mtime_ns = state.size, state.mtime_ns
            return old
        if state.bad:
            self._keep_old(state, old)
        return state

    async def _stream(self, state: _FileState) -> None:
        """Queue the issues of this freshly read file whose date nothing else has claimed;
        keep the parsed file only if some issue must wait for the duplicate rule."""
        assert state.parsed is not None
        waiting = False
        for issue in state.parsed.issues:
            if issue.date in self._claimed:
                waiting = True
                continue
            self._claimed.add(issue.date)
            stored = Issue(issue.date, issue.title, issue.items, state.rel, issue.line)
            self._pending.append((stored, issue_digest(stored)))
            self._pending_items += min(len(issue.items), POSITIONS)
            self.streamed[issue.date] = (state.name, issue.line)
        if not waiting:
            state.parsed = None  # streamed: the declarations are all the rest needs
        if self._pending_items >= STREAM_ITEMS:
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        await self._begin(bulk=self._pending_items >= STREAM_ITEMS)
        puts = sorted(self._pending, key=lambda p: p[0].date)
        self._pending, self._pending_items = [], 0
        await self._write_issues(puts)

    @staticmethod
    def _keep_old(state: _FileState, old: _FileState | None) -> None:
        """A file that cannot be read now keeps the last good version of its issues."""
        if old is None:
            return
        state.decls = old.decls
        state.sha256 = state.sha256 or old.sha256  # unread: nothing newer to compare with
        kept = len(old.decls)
        state.problems.append(
            Problem(
                state.name, 1, Severity.WARNING, f"keeping the last good version ({kept} issues)"
            )
        )

    async def _resolve(
        self, states: dict[str, _FileState], db_issues: dict[dt.date, tuple[str, int, str]]
    ) -> dict[dt.date, Issue | None]:
        """Winner per date: an Issue to write, or None to keep what the index has (or what
        this sync already streamed)."""
        self._keep_broken(states, db_issues)
        by_name = {s.name: s for s in states.values()}
        winners, dup_problems = resolve(d for s in states.values() for d in s.decls)
        self.report.problems.extend(dup_problems)
        for state in states.values():
            self.report.problems.extend(state.problems)
        out: dict[dt.date, Issue | None] = {}
        for date, decl in winners.items():
            state = by_name[decl.file]
            streamed = self.streamed.get(date)
            if streamed is not None:
                if streamed == (decl.file, decl.line):
                    self.report.added.append(date)
                    out[date] = None  # written while streaming, and it is the winner
                    continue
                # A later duplicate won over the copy streamed: write the winner instead.
                await self._begin()
                await self._delete_issue(date)
                del self.streamed[date]
            current = db_issues.get(date)
            if not state.read and current and current[0] == state.rel:
                out[date] = None  # unchanged file, same source: nothing to do
                continue
            if state.parsed is None and not state.bad:
                # Not held (never read, or streamed and dropped): read it again.
                await asyncio.to_thread(_read_file, state, self.root / state.rel)
                self.report.files_read += 1
            out[date] = _find(state, decl)
        return out

    def _keep_broken(
        self, states: dict[str, _FileState], db_issues: dict[dt.date, tuple[str, int, str]]
    ) -> None:
        """An issue whose heading is still there but which cannot be read keeps its last
        good version instead of disappearing."""
        for state in states.values():
            if not state.read:
                continue
            for date in state.broken:
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
        batch = _Writes()
        for date in sorted(set(db_issues) - set(winners)):
            batch.delete.append(date)
            self.report.removed.append(date)
        for date, issue in sorted(winners.items()):
            if issue is not None:
                self._plan_issue(batch, issue, db_issues.get(date))
        # Only the `files` rows that changed: a sync that changes nothing writes nothing,
        # so it does not commit, and readers' cached search totals stay valid.
        rows = [r for s in states.values() if (r := _file_row(s)) != self._stored_rows.get(s.rel)]
        if not (self.in_tx or batch.delete or batch.puts or batch.moved or removed_files or rows):
            return
        await self._begin(bulk=len(batch.puts) > WRITE_CHUNK)
        await self._apply(batch)
        if self._items_changed:
            for statement in _TWINS:
                await self.db.execute(statement)
        await self.db.execute(
            f"DELETE FROM files WHERE path IN ({','.join('?' * len(removed_files))})",
            removed_files,
        )
        await self.db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)", rows)
        await self._commit()

    def _plan_issue(
        self, batch: _Writes, issue: Issue, current: tuple[str, int, str] | None
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

    async def _apply(self, batch: _Writes) -> None:
        """The writes the duplicate rule and the digests decided, inside the sync's
        transaction (after what was streamed). Written a chunk of issues at a time, oldest
        first: FTS5 appends fastest when rowids ascend."""
        for date in batch.delete:
            await self._delete_issue(date)
        for start in range(0, len(batch.puts), WRITE_CHUNK):
            await self._write_issues(batch.puts[start : start + WRITE_CHUNK])
        if batch.moved:
            await self.db.executemany(
                "UPDATE issues SET file = ?, line = ? WHERE date = ?", batch.moved
            )

    async def _write_issues(self, puts: Sequence[tuple[Issue, str]]) -> None:
        # Rows are built in a worker thread: the event loop (the bot) stays responsive.
        issues, items, uni, bi = await asyncio.to_thread(_rows, puts)
        await self.db.executemany(
            "INSERT INTO issues(date, title, file, line, digest) VALUES (?, ?, ?, ?, ?)", issues
        )
        self._items_changed = True
        await self.db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", items)
        del items
        await self.db.executemany("INSERT INTO items_uni(rowid, u) VALUES (?, ?)", uni)
        del uni
        await self.db.executemany("INSERT INTO items_bi(rowid, b) VALUES (?, ?)", bi)

    async def _delete_issue(self, date: dt.date) -> None:
        self._items_changed = True
        lo, hi = id_range(date, date)
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
class _Writes:
    """The rows one sync writes, collected before the transaction starts."""

    delete: list[dt.date] = field(default_factory=list)
    puts: list[tuple[Issue, str]] = field(default_factory=list)  # (issue, digest), by date
    moved: list[tuple[str, int, str]] = field(default_factory=list)


Row = tuple[Any, ...]


def _rows(puts: Sequence[tuple[Issue, str]]) -> tuple[list[Row], list[Row], list[Row], list[Row]]:
    """The rows of a batch of issues for ``issues``, ``items`` and the two gram tables.
    Oldest issue first and, within one, the last item first: ids ascend, as FTS5 appends
    fastest (item ids descend within an issue)."""
    issues = [(i.key, i.title, i.file, i.line, digest) for i, digest in puts]
    items: list[Row] = []
    uni: list[Row] = []
    bi: list[Row] = []
    for issue, _ in puts:
        key = issue.key
        base = item_id(issue.date, 0)
        for pos in range(min(len(issue.items), POSITIONS) - 1, -1, -1):
            item = issue.items[pos]
            rid = base - pos
            plain = visible_text(item.text)
            urls = json.dumps(list(item.urls)) if item.urls else "[]"
            items.append(
                (rid, key, pos, item.number, item.text, plain, urls, item.line, _hash(item.text))
            )
            u, b = index_columns(plain)
            uni.append((rid, u))
            bi.append((rid, b))
    return issues, items, uni, bi


def _hash(text: str) -> int:
    """items.text_hash: 64 bits of the text, to find equal texts through an index."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), signed=True)


def _file_row(s: _FileState) -> tuple[Any, ...]:
    return (
        s.rel,
        s.size,
        s.mtime_ns,
        s.sha256,
        json.dumps([_decl_json(d) for d in s.decls]),
        json.dumps([p.as_dict() for p in s.problems], ensure_ascii=False),
    )


def _find(state: _FileState, decl: Decl) -> Issue | None:
    """The declared issue in a freshly read file, stored under its relative path (the copy
    on the declared line when the file has the date twice)."""
    if state.parsed is None:
        return None
    found = [i for i in state.parsed.issues if i.date == decl.date]
    for issue in sorted(found, key=lambda i: i.line != decl.line):
        return Issue(issue.date, issue.title, issue.items, state.rel, issue.line)
    return None  # a kept broken issue: the index already has it
