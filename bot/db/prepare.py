"""Reading content files into rows ready to insert: read, hash, decode, parse, and for every
issue its ``issues``, ``items`` and gram rows. No database here: the sync decides what is
written. This is the CPU-heavy half of a full build, so a build with many files runs it in a
worker *process* (:class:`Reader`) while the sync's process writes: a thread would not
overlap, as ``executemany`` takes the GIL back for every row.

Files are prepared a batch at a time because the gram columns are computed for a batch of
items at once (:func:`bot.core.grams.index_columns_many`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import gc
import hashlib
import json
import os
import pickle
import re
import stat
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.content import Decl, declarations, decode, file_month, parse_text
from bot.core.grams import index_columns_many
from bot.core.markdown import visible_text
from bot.core.model import Issue, Item, Problem, Severity
from bot.db.archive import POSITIONS, issue_digest, item_id
from bot.db.database import StoreError

MAX_FILE_BYTES = 64 * 1024 * 1024  # a month file is ~20 KB; anything this big is a mistake
# A build reading at least this many files reads them in a worker process (its start-up,
# ~0.2 s, is paid once); fewer are read in a thread of this process.
PROCESS_FILES = 48
BATCH_FILES = 8  # files per task: ~2,500 items, enough for the batched gram columns
IN_FLIGHT = 3  # tasks queued ahead of the writer (bounds memory)

Row = tuple[Any, ...]


@dataclass(slots=True)
class Prepared:
    """One issue as rows, ready to insert: ``items`` and the gram rows in ascending id
    order (last item first), as FTS5 appends fastest."""

    date: dt.date
    file: str  # relative to the content directory
    line: int
    digest: str
    issue: Row  # the ``issues`` row
    items: list[Row]
    uni: list[Row]
    bi: list[Row]

    @property
    def key(self) -> str:
        return self.date.isoformat()

    @property
    def item_count(self) -> int:
        return len(self.items)


@dataclass(slots=True)
class FileRead:
    """What reading one file gave: its hash, declarations, problems and prepared issues
    (None when it could not be read: ``bad``)."""

    rel: str
    name: str
    size: int
    mtime_ns: int
    sha256: str = ""
    bad: bool = False
    problems: list[Problem] = field(default_factory=list)
    decls: list[Decl] = field(default_factory=list)
    broken: list[dt.date] = field(default_factory=list)  # headings whose issue is unreadable
    issues: list[Prepared] | None = None


Job = tuple[str, str, str]  # (path, relative path, name for problems)


def _unreadable(read: FileRead, why: str) -> FileRead:
    read.bad = True
    read.problems = [Problem(read.name, 0, Severity.ERROR, why)]
    return read


def _read_one(job: Job) -> tuple[FileRead | None, list[Issue]]:
    """Stat, read, hash and parse one file. A file that cannot be read (permissions,
    vanished, not a regular file, too big) is a problem, never an exception; None when it
    is gone since it was listed (the next sync sees it gone)."""
    path, rel, name = job
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            read = FileRead(rel, name, st.st_size, st.st_mtime_ns)
            if not stat.S_ISREG(st.st_mode):
                return _unreadable(read, "not a regular file; replace it with a Markdown file"), []
            if st.st_size > MAX_FILE_BYTES:
                why = f"{st.st_size} bytes, over the {MAX_FILE_BYTES} byte limit for one file"
                return _unreadable(read, why), []
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None, []
    except OSError as err:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None, []
        except OSError:
            st = None
        read = FileRead(rel, name, st.st_size if st else 0, st.st_mtime_ns if st else 0)
        return _unreadable(read, f"cannot read the file: {err.strerror or err}"), []
    if len(data) > MAX_FILE_BYTES:
        return _unreadable(read, f"over the {MAX_FILE_BYTES} byte limit for one file"), []
    read.sha256 = hashlib.sha256(data).hexdigest()
    text, problems = decode(name, data)
    if text is None:
        read.bad, read.problems = True, problems
        return read, []
    result = parse_text(name, text)
    read.problems = result.problems
    read.broken = sorted(result.broken_dates)
    read.decls = declarations(result, file_month(name, text))
    return read, result.issues


def read_files(jobs: Sequence[Job]) -> list[FileRead | None]:
    """Read and prepare a batch of files (in a worker process or thread)."""
    reads = [_read_one(job) for job in jobs]
    issues = [(r, i) for r, parsed in reads if r is not None for i in parsed]
    prepared = prepare([i for _, i in issues], [r.rel for r, _ in issues])
    for read, _ in reads:
        if read is not None and not read.bad:
            read.issues = []
    for (read, _), p in zip(issues, prepared, strict=True):
        assert read.issues is not None
        read.issues.append(p)
    return [r for r, _ in reads]


def prepare(issues: Sequence[Issue], files: Sequence[str]) -> list[Prepared]:
    """The rows of each issue, stored under the relative path of its file. Within one,
    the last item first: ids ascend (item ids descend within an issue)."""
    plains = [visible_text(item.text) for issue in issues for item in _newest_first(issue)]
    columns = index_columns_many(plains)
    positions = [pos for issue in issues for pos in range(min(len(issue.items), POSITIONS))[::-1]]
    out: list[Prepared] = []
    k = 0
    for issue, rel in zip(issues, files, strict=True):
        key = issue.key
        base = item_id(issue.date, 0)
        digest = issue_digest(issue)
        items: list[Row] = []
        uni: list[Row] = []
        bi: list[Row] = []
        for item in _newest_first(issue):
            pos, plain, (u, b) = positions[k], plains[k], columns[k]
            k += 1
            rid = base - pos
            row = (rid, key, pos, item.number, item.text, plain, _urls_json(item.urls), item.line)
            items.append((*row, text_hash(item.text)))
            uni.append((rid, u))
            bi.append((rid, b))
        head = (key, issue.title, rel, issue.line, digest)
        out.append(Prepared(issue.date, rel, issue.line, digest, head, items, uni, bi))
    return out


# Characters json.dumps writes as they are (printable ASCII but quote and backslash): a list
# of such URLs is its JSON by joining, without the encoder's machinery (~8 us an item).
_JSON_AS_IS = re.compile(r"[ !#-\[\]-\x7f]*")


def _urls_json(urls: tuple[str, ...]) -> str:
    """``json.dumps(list(urls))``, the same text."""
    if not urls:
        return "[]"
    if all(_JSON_AS_IS.fullmatch(u) for u in urls):
        return '["' + '", "'.join(urls) + '"]'
    return json.dumps(list(urls))


def _newest_first(issue: Issue) -> list[Item]:
    return list(issue.items[:POSITIONS][::-1])


def text_hash(text: str) -> int:
    """items.text_hash: 64 bits of the text, to find equal texts through an index."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), signed=True)


class Reader:
    """Reads files in order, a batch at a time, a few batches ahead: in a worker process
    (``python -m bot.db.prepare``: a fresh interpreter that inherits nothing of this
    process, its threads or its SQLite connection, and never re-runs its main module as
    multiprocessing's ``spawn`` would) when there are many, else in a thread."""

    def __init__(self, files: int) -> None:
        self._use_process = files >= PROCESS_FILES
        self._proc: asyncio.subprocess.Process | None = None

    async def _start(self) -> asyncio.subprocess.Process:
        here = str(Path(__file__).resolve().parents[2])  # the folder holding ``bot``
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.db.prepare", stdin=PIPE, stdout=PIPE, env=env
        )

    async def read(self, jobs: Sequence[Job]) -> AsyncGenerator[FileRead | None, None]:
        batches = [jobs[i : i + BATCH_FILES] for i in range(0, len(jobs), BATCH_FILES)]
        if not self._use_process:
            for batch in batches:
                for read in await asyncio.to_thread(read_files, batch):
                    yield read
            return
        proc = self._proc = await self._start()
        assert proc.stdin is not None and proc.stdout is not None
        sent = 0
        for done in range(len(batches)):
            try:
                while sent < len(batches) and sent < done + IN_FLIGHT:
                    proc.stdin.write(_frame(batches[sent]))
                    sent += 1
                await proc.stdin.drain()
                size = int.from_bytes(await proc.stdout.readexactly(8), "little")
                result = _loads(await proc.stdout.readexactly(size))
            except (asyncio.IncompleteReadError, ConnectionError):  # it died: EOF, broken pipe
                raise StoreError("the file reader process stopped; see its error above") from None
            if isinstance(result, str):
                raise StoreError(f"reading the content files failed: {result}")
            for read in result:
                yield read

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.kill()  # idle once its last answer is read; mid-batch when the sync failed
        await proc.wait()


def _loads(data: bytes) -> Any:
    # Unpickling ~2,500 items makes ~100,000 objects, none in a cycle: the collector would
    # only walk them again and again (measured: a third of the time).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return pickle.loads(data)
    finally:
        if enabled:
            gc.enable()


def _frame(value: object) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(8, "little") + data


def serve() -> None:
    """The worker process: batches of jobs in on stdin, their reads out on stdout, one
    length-prefixed pickle each; ends when stdin closes."""
    src, out = sys.stdin.buffer, sys.stdout.buffer
    # A 1 MB pipe (Linux; 64 KB by default): the sync's process reads a batch's ~6 MB in
    # 256 KB reads instead of 64 KB ones, a quarter of the wake-ups.
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(out.fileno(), fcntl.F_SETPIPE_SZ, 1024 * 1024)
    # A batch's objects are let go when it is answered, and none forms a cycle: the
    # collector would only walk the live ones again and again.
    gc.disable()
    while head := src.read(8):
        jobs = pickle.loads(src.read(int.from_bytes(head, "little")))
        try:
            answer: object = read_files(jobs)
        except Exception as err:  # told to the sync, which rolls back and reports it
            answer = f"{type(err).__name__}: {err}"
        out.write(_frame(answer))
        out.flush()


def read_now(job: Job) -> FileRead | None:
    """One file, read and prepared here (a file read again to find a duplicate's winner)."""
    return read_files([job])[0]


def path_of(root: Path, rel: str) -> Job:
    return (str(root / rel), rel, str(root / rel))


if __name__ == "__main__":
    # Through the module's own name, so that what is pickled is bot.db.prepare.FileRead, not
    # __main__.FileRead (which the sync's process could not load).
    import importlib

    importlib.import_module("bot.db.prepare").serve()
