"""The only writer of the archive index: brings ``files``, ``issues``, ``items`` and the
gram tables up to date with the Markdown files, incrementally (stat, then hash), in one
transaction on a connection of its own. A file that cannot be read keeps its last good
issues; a missing content folder never wipes the index.
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
from bot.core.markdown import visible_text
from bot.core.model import Issue, ParseResult, Problem, Severity
from bot.core.search import index_columns
from bot.db.archive import (
    POSITIONS,
    WRITE_CHUNK,
    id_range,
    issue_digest,
    item_id,
    problem_from_dict,
)
from bot.db.database import connect, fetch


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
        return await fetch(self.db, sql, params)

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
            state.problems = [problem_from_dict(p) for p in json.loads(problems)]
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
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # removed since it was listed: the next sync sees it gone
            except OSError as err:
                st = None
                error = f"cannot read the file: {err.strerror or err}"
            if st is None:
                state = _FileState(rel, str(self.root / rel), 0, 0)
                _unreadable(state, error)
                self._keep_old(state, stored.get(rel))
                states[rel] = state
                continue
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
            if state.bad:
                self._keep_old(state, old)
            states[rel] = state
        return states, [rel for rel in stored if rel not in states]

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
        batch = _Writes()
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
