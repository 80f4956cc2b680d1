"""The only writer of the archive index: brings ``files``, ``issues``, ``items`` and the
gram tables up to date with the Markdown files, incrementally (stat, then hash), in one
transaction on a connection of its own. A file that cannot be read keeps its last good
issues; a missing content folder never wipes the index.

A full build streams: each file is parsed once and the issues of dates the index does not
have yet are written at once, a chunk at a time, while the declarations (small) are kept
for the duplicate-date rule. Once every file is read, a date whose winning copy is not the
one written (a duplicate met later) is rewritten from its winner. Memory stays at a chunk of
rows plus the declarations, whatever the archive's size.

This module decides; :mod:`bot.db.prepare` reads files into rows (in a worker process for
a build that reads many, so parsing overlaps the writing) and :mod:`bot.db.writer` writes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from bot.core.content import Decl, content_files, resolve
from bot.core.model import Problem, Severity
from bot.db.archive import POSITIONS, WRITE_CHUNK, problem_from_dict
from bot.db.database import connect, fetch
from bot.db.prepare import FileRead, Job, Prepared, Reader, read_now
from bot.db.writer import Writer

STREAM_ITEMS = 4000  # items per batch of streamed inserts (bounds memory on a full build)


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
    # Its issues as rows, when read in this sync (dropped once streamed).
    prepared: list[Prepared] | None = None
    read: bool = False  # read in this sync
    broken: list[dt.date] = field(default_factory=list)  # headings whose issue is unreadable
    bad: bool = False  # unreadable now: its last good issues are kept

    @classmethod
    def of(cls, read: FileRead) -> _FileState:
        return cls(
            read.rel,
            read.name,
            read.size,
            read.mtime_ns,
            read.sha256,
            read.decls,
            read.problems,
            read.issues,
            read.issues is not None,
            read.broken,
            read.bad,
        )


async def sync_files(db_path: Path, root: Path) -> SyncReport:
    writer = await connect(db_path)
    try:
        return await _Sync(writer, root).run()
    finally:
        await writer.close()


def _decl_json(d: Decl) -> list[Any]:
    return [d.date.isoformat(), d.line, d.right_month]


class _Sync:
    def __init__(self, db: aiosqlite.Connection, root: Path) -> None:
        self.db = db
        self.root = root
        self.report = SyncReport()
        self.db_issues: dict[dt.date, tuple[str, int, str]] = {}
        self.writer = Writer(db)
        self._stored_rows: dict[str, tuple[Any, ...]] = {}  # `files` rows as read
        # Dates written while streaming: date -> (file, line) of the copy written.
        self.streamed: dict[dt.date, tuple[str, int]] = {}
        self._claimed: set[dt.date] = set()
        self._pending: list[Prepared] = []
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
            await self.writer.rollback()
            raise
        self.report.issues, self.report.items = await self._counts()
        self.report.problems.sort(key=lambda p: (p.file, p.line))
        for dates in (self.report.added, self.report.updated, self.report.removed):
            dates.sort()
        return self.report

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return await fetch(self.db, sql, params)

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
        in a worker process when there are many, streaming the issues of new dates."""
        states: dict[str, _FileState] = {}
        if not self.root.is_dir():
            self.report.problems.append(
                Problem(str(self.root), 0, Severity.ERROR, "content directory does not exist")
            )
            return dict(stored), []  # keep everything: a missing mount must not wipe the index
        # A date the index has, or that a file not read now declares, goes the careful way
        # (compare digests, resolve duplicates); only a date new to all of them streams.
        self._claimed = set(self.db_issues) | {d.date for s in stored.values() for d in s.decls}
        listed = await asyncio.to_thread(self._stat_all, stored)
        to_read: list[Job] = [self._job(path) for path, st in listed if st is None]
        reader = Reader(len(to_read))
        reads = reader.read(to_read)
        try:
            for _, st in listed:
                # Files come back in the order listed, so each read is the next one of these.
                state = st if st is not None else self._read_state(await anext(reads), stored)
                if state is None:
                    continue
                states[state.rel] = state
                if state.prepared is not None and state.read:
                    await self._stream(state)
        finally:
            await reads.aclose()
            await reader.close()
        await self._flush()
        return states, [rel for rel in stored if rel not in states]

    def _job(self, path: Path) -> Job:
        rel = path.relative_to(self.root).as_posix()
        return (str(path), rel, str(self.root / rel))

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
        state = _FileState(rel, str(self.root / rel), 0, 0, bad=True)
        state.problems = [
            Problem(state.name, 0, Severity.ERROR, f"cannot read the file: {err.strerror or err}")
        ]
        self._keep_old(state, stored.get(rel))
        return state

    def _read_state(
        self, read: FileRead | None, stored: dict[str, _FileState]
    ) -> _FileState | None:
        """A file just read: its previous state when its content is the same, else the new
        one (keeping its last good issues when it cannot be read now)."""
        if read is None:
            return None  # removed since it was listed: the next sync sees it gone
        self.report.files_read += 1
        old = stored.get(read.rel)
        if old and old.sha256 == read.sha256:
            old.size, old.mtime_ns = read.size, read.mtime_ns
            return old
        state = _FileState.of(read)
        if state.bad:
            self._keep_old(state, old)
        return state

    async def _stream(self, state: _FileState) -> None:
        """Queue the issues of this freshly read file whose date nothing else has claimed;
        keep the prepared file only if some issue must wait for the duplicate rule."""
        assert state.prepared is not None
        waiting = False
        for issue in state.prepared:
            if issue.date in self._claimed:
                waiting = True
                continue
            self._claimed.add(issue.date)
            self._pending.append(issue)
            self._pending_items += min(issue.item_count, POSITIONS)
            self.streamed[issue.date] = (state.name, issue.line)
        if not waiting:
            state.prepared = None  # streamed: the declarations are all the rest needs
        if self._pending_items >= STREAM_ITEMS:
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending:
            return
        await self.writer.begin(bulk=self._pending_items >= STREAM_ITEMS)
        puts, self._pending, self._pending_items = self._pending, [], 0
        await self.writer.write(puts)

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
    ) -> dict[dt.date, Prepared | None]:
        """Winner per date: the issue to write, or None to keep what the index has (or what
        this sync already streamed)."""
        self._keep_broken(states, db_issues)
        by_name = {s.name: s for s in states.values()}
        winners, dup_problems = resolve(d for s in states.values() for d in s.decls)
        self.report.problems.extend(dup_problems)
        for state in states.values():
            self.report.problems.extend(state.problems)
        out: dict[dt.date, Prepared | None] = {}
        for date, decl in winners.items():
            state = by_name[decl.file]
            streamed = self.streamed.get(date)
            if streamed is not None:
                if streamed == (decl.file, decl.line):
                    self.report.added.append(date)
                    out[date] = None  # written while streaming, and it is the winner
                    continue
                # A later duplicate won over the copy streamed: write the winner instead.
                await self.writer.begin()
                await self.writer.delete(date)
                del self.streamed[date]
            current = db_issues.get(date)
            if not state.read and current and current[0] == state.rel:
                out[date] = None  # unchanged file, same source: nothing to do
                continue
            if state.prepared is None and not state.bad:
                # Not held (never read, or streamed and dropped): read it again.
                again = await asyncio.to_thread(read_now, self._job(self.root / state.rel))
                self.report.files_read += 1
                state.prepared = again.issues if again is not None else None
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
        winners: dict[dt.date, Prepared | None],
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
        writer = self.writer
        if not (writer.in_tx or batch.delete or batch.puts or batch.moved or removed_files or rows):
            return
        await writer.begin(bulk=len(batch.puts) > WRITE_CHUNK)
        await self._apply(batch)
        await writer.files(removed_files, rows)
        await writer.commit()

    def _plan_issue(
        self, batch: _Writes, issue: Prepared, current: tuple[str, int, str] | None
    ) -> None:
        if current and current[2] == issue.digest:
            if current[:2] != (issue.file, issue.line):
                batch.moved.append((issue.file, issue.line, issue.key))
            return
        if current:
            batch.delete.append(issue.date)
            self.report.updated.append(issue.date)
        else:
            self.report.added.append(issue.date)
        batch.puts.append(issue)

    async def _apply(self, batch: _Writes) -> None:
        """The writes the duplicate rule and the digests decided, inside the sync's
        transaction (after what was streamed). Written a chunk of issues at a time, oldest
        first: FTS5 appends fastest when rowids ascend."""
        for date in batch.delete:
            await self.writer.delete(date)
        for start in range(0, len(batch.puts), WRITE_CHUNK):
            await self.writer.write(batch.puts[start : start + WRITE_CHUNK])
        if batch.moved:
            await self.writer.moved(batch.moved)


@dataclass
class _Writes:
    """The rows one sync writes, collected before the transaction starts."""

    delete: list[dt.date] = field(default_factory=list)
    puts: list[Prepared] = field(default_factory=list)  # by date
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


def _find(state: _FileState, decl: Decl) -> Prepared | None:
    """The declared issue in a freshly read file (the copy on the declared line when the
    file has the date twice)."""
    if state.prepared is None:
        return None
    found = [i for i in state.prepared if i.date == decl.date]
    for issue in sorted(found, key=lambda i: i.line != decl.line):
        return issue
    return None  # a kept broken issue: the index already has it
