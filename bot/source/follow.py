"""Following the git source: fetch (in a thread), index the working copy, and record what
changed per issue (``revisions``) so that delivery waits for issues to settle.

``Follower.poll()`` is what the bot's reload job and ``briefbot pull`` call. A failed
fetch keeps the last good content (the index is not touched) and only updates
``Follower.health``; the admins hear of it through ``notify`` once it is really failing
(see :mod:`bot.source.health`), and once more when it recovers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Config
from bot.db import revisions
from bot.db.archive import Archive, issue_digest
from bot.db.revisions import Revision
from bot.db.sync import SyncReport
from bot.logs import redact
from bot.source import git, settle
from bot.source.health import SourceHealth

log = logging.getLogger(__name__)

Notify = Callable[[str], Awaitable[None]]
Fetcher = Callable[[str, str, str, Path], git.Checkout]


def content_root(config: Config) -> Path:
    """The folder the bot indexes: the git working copy when a source is configured."""
    if config.content_source is not None:
        return git.tree_dir(config.storage_path)
    return config.content_dir


@dataclass
class PollResult:
    ok: bool
    error: str = ""
    checkout: git.Checkout | None = None
    report: SyncReport | None = None
    notes: list[str] = field(default_factory=list)  # what the admins were told


async def _quiet(_text: str) -> None:
    return None


class Follower:
    def __init__(
        self,
        config: Config,
        archive: Archive,
        *,
        notify: Notify = _quiet,
        clock: Callable[[], float] = time.time,
        fetcher: Fetcher = git.fetch,
        on_fetch: Callable[[str | None], None] | None = None,
    ) -> None:
        if config.content_source is None:
            raise ValueError("no content.source configured")
        self.config = config
        self.source = config.content_source
        self.archive = archive
        self.db = archive.db
        self.notify = notify
        self.clock = clock
        self.fetcher = fetcher
        self.on_fetch = on_fetch  # after each fetch: None if it worked, else the error line
        self.health = SourceHealth()
        self.root = content_root(config)
        self._lock = asyncio.Lock()
        self._ready: set[dt.date] | None = None  # for newly_ready

    async def poll(self) -> PollResult:
        """Fetch once, index, record revisions. Never raises for a failed fetch."""
        async with self._lock:
            return await self._poll()

    async def _poll(self) -> PollResult:
        s = self.source
        try:
            checkout = await asyncio.to_thread(
                self.fetcher, s.url, s.branch, s.path, self.config.storage_path
            )
        except git.SourceError as err:
            error = redact(str(err))
            first = self.health.consecutive_failures == 0
            event = self.health.failure(self.clock(), error)
            (log.warning if first else log.info)(
                "source: %s (keeping the last good content)", error
            )
            result = PollResult(False, error)
            self._fetched(error)
            if event == "failing":
                await self._tell(
                    result,
                    f"⚠️ content source: fetching has failed "
                    f"{self.health.consecutive_failures} times since "
                    f"{_when(self.health.failing_since)}; serving the last good "
                    f"content. Last error: {error}",
                )
            return result
        result = PollResult(True, checkout=checkout)
        self._fetched(None)
        if self.health.success(self.clock(), checkout.commit) == "recovered":
            await self._tell(
                result, f"✅ content source: fetching works again (commit {checkout.commit[:10]})"
            )
        result.report = await self._index(result)
        return result

    async def index(self) -> SyncReport:
        """Index the working copy as it is (no fetch) and record revisions: at start, and
        for the CLI commands that read the archive."""
        async with self._lock:
            return await self._index(PollResult(True))

    async def _index(self, result: PollResult) -> SyncReport:
        report = await self.archive.sync(self.root)
        for note in await self.observe(report):
            await self._tell(result, note)
        return report

    async def newly_ready(self) -> list[dt.date]:
        """Issues that became ready since the last call (none on the first call, which only
        takes stock): what keyword watches are told about."""
        dates = await self.archive.issue_dates()
        now = self.clock()
        ready = set(
            (await revisions.deliverable(self.db, dates, now, self.config.settle_seconds)).ready
        )
        before, self._ready = self._ready, ready
        return [] if before is None else sorted(ready - before)

    def _fetched(self, error: str | None) -> None:
        if self.on_fetch is not None:
            try:
                self.on_fetch(error)
            except Exception:  # a hook must not stop following the source
                log.exception("source: the fetch hook failed")

    async def _tell(self, result: PollResult, text: str) -> None:
        result.notes.append(text)
        try:
            await self.notify(text)
        except Exception:  # an unreachable admin must not stop following the source
            log.warning("source: could not tell the admins: %s", text)

    async def observe(self, report: SyncReport) -> list[str]:
        """Record per issue when it was first seen and last changed; returns notes for
        the admins (back-fills, moved headings, issues gone after delivery)."""
        now = self.clock()
        settle_s = self.config.settle_seconds
        known = await revisions.load(self.db)
        importing = not known  # the first fetch into an empty database: the archive
        errors = settle.errors_by_date(
            by_file := settle.error_files(report.problems, self.root),
            await revisions.issue_lines(self.db, by_file),
        )
        if importing:
            look = set(await self.archive.issue_dates())
        else:
            look = set(report.added) | set(report.updated) | set(errors)
            look |= {d for d, r in known.items() if r.blocked and r.gone_at is None}
        removed = [d for d in report.removed if d in known and known[d].gone_at is None]
        newest = await revisions.newest_delivered(self.db)
        notes: list[str] = []
        changes: list[Revision] = []
        moved_to: set[dt.date] = set()
        for date in sorted(look):
            issue = await self.archive.issue(date)
            if issue is None:
                continue
            digest, items = issue_digest(issue), settle.items_digest(issue)
            blocked = settle.blocked_reason(issue, errors.get(date, ()))
            old = known.get(date)
            if importing:
                # Settled already unless something blocks it (a stub being written now).
                changes.append(
                    Revision(
                        date,
                        digest,
                        items,
                        1,
                        now,
                        now - settle_s if not blocked else now,
                        blocked,
                        quiet=not blocked,
                        corrected=1,
                    )
                )
            elif old is None or old.gone_at is not None:
                rev = Revision(
                    date,
                    digest,
                    items,
                    (old.revision + 1) if old else 1,
                    now,
                    now,
                    blocked,
                    corrected=old.corrected if old else 0,
                )
                source = next((r for r in removed if known[r].items_digest == items), None)
                if source is not None:
                    moved_to.add(source)
                    rev = rev.changed(quiet=True, moved_from=known[source].moved_from or source)
                    notes.append(
                        f"✏️ issue {source.isoformat()} moved to {date.isoformat()}: "
                        "its messages will be edited, it is not delivered again"
                    )
                elif newest is not None and date < newest:
                    rev = rev.changed(quiet=True)
                    notes.append(
                        f"📥 back-fill {date.isoformat()} indexed and searchable, "
                        f"not broadcast (newest delivered: {newest.isoformat()})"
                    )
                changes.append(rev)
            elif old.digest != digest:
                changes.append(
                    old.changed(
                        digest=digest,
                        items_digest=items,
                        revision=old.revision + 1,
                        changed_at=now,
                        blocked=blocked,
                    )
                )
            elif old.blocked != blocked:
                # Unblocked without a change (an error fixed elsewhere in the file): ready
                # from now on, and "now" is when it arrived for on-arrival chats.
                at = old.changed_at if blocked else max(old.changed_at, now - settle_s)
                changes.append(old.changed(blocked=blocked, changed_at=at))
        for date in removed:
            changes.append(known[date].changed(gone_at=now))
            sent = await revisions.messages_sent(
                self.db, [date, *filter(None, [known[date].moved_from])]
            )
            if date not in moved_to and sent:
                notes.append(
                    f"🗑 issue {date.isoformat()} was removed upstream after delivery: "
                    f"dropped from the index, its {sent} messages are left as they are"
                )
        await revisions.save(self.db, changes)
        return notes


def _when(ts: float | None) -> str:
    if ts is None:
        return "?"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
