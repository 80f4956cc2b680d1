"""The planner: what to send, to whom, and when. It writes outbox rows and moves each
chat's delivery cursor in the same transaction; the sender does the sending.

- ``tick``: at each schedule slot, every active chat, and every active forum topic, gets
  the issues newer than its last one (at most ``max_backlog``); new subscribers only the
  newest. A topic has its own cursors and follows its chat's /time.
- ``broadcast_now``: an admin or the CLI posts one issue to every active chat lacking it.
- ``on_new_issues``: keyword watches get the matching items of each new issue, once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.config import Delivery
from bot.core import quiethours, schedule
from bot.core.dates import DateRange
from bot.core.model import Issue
from bot.core.render import issue_messages
from bot.core.search import Query, QueryError, parse_query
from bot.db import chats, outbox, revisions, topics
from bot.db.archive import Archive
from bot.db.database import FIRST_ID, Database
from bot.db.outbox import CHUNK, Broadcast, Trigger
from bot.errors import BriefbotError


class DeliveryError(BriefbotError):
    """A broadcast that cannot be started; the message says why."""


@dataclass(frozen=True)
class Plan:
    """What ``broadcast_now`` posts (or, for a dry run, would post)."""

    broadcast_id: int | None
    issue: dt.date
    chats: int
    messages: int
    dry_run: bool = False


# (slot, issue, chat, thread) cursors moved, for the chats' own subscriptions or for topics.
_Cursor = tuple[str | None, str | None, int, int]
_Advance = Callable[[Database, Sequence[_Cursor]], Awaitable[None]]


async def _advance_chats(db: Database, cursors: Sequence[_Cursor]) -> None:
    """:func:`bot.db.chats.advance` for cursors of thread 0 (a chat's own subscription)."""
    await chats.advance(db, [(slot, issue, chat) for slot, issue, chat, _ in cursors])


class _Parts:
    """Rendered issue parts as text ids, per enqueue run (an issue may change between runs)."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self._issues: dict[dt.date, Issue | None] = {}
        self._ids: dict[tuple[dt.date, str], list[int]] = {}

    async def issue(self, date: dt.date) -> Issue | None:
        if date not in self._issues:
            self._issues[date] = await self.archive.issue(date)
        return self._issues[date]

    async def text_ids(self, date: dt.date, lang: str) -> list[int]:
        key = (date, lang)
        if key not in self._ids:
            issue = await self.issue(date)
            html = issue_messages(issue, lang) if issue else []
            self._ids[key] = [await outbox.text_id(self.archive.db, h) for h in html]
        return self._ids[key]


def horizon(now: dt.datetime, tz: dt.tzinfo) -> dt.date:
    """The newest issue date that may be delivered at ``now``: today where the brief is
    written, plus one day of slack (an issue dated tomorrow in UTC+14 is not a typo). A
    later date is a typo such as ``## 2052.02.15``: indexed and searchable, never sent, so
    it can never push a chat's cursor past today."""
    return now.astimezone(tz).date() + dt.timedelta(days=1)


class Planner:
    def __init__(
        self,
        archive: Archive,
        config: Delivery,
        *,
        notify: Callable[[], None],
        closed: Callable[[int], object],
        clock: Callable[[], dt.datetime],
        settle_seconds: float | None = None,
    ) -> None:
        self.archive = archive
        # Set when following a git source: only settled issues go out (bot/db/revisions).
        self.settle_seconds = settle_seconds
        self.db = archive.db
        self.config = config
        self._notify = notify  # rows were queued: the sender should look now
        self._closed_hook = closed  # a broadcast is fully enqueued (awaitable result)
        self.clock = clock
        self._tick_lock = asyncio.Lock()
        self._watch_lock = asyncio.Lock()

    async def _close(self, batch: Broadcast) -> int | None:
        bid = await batch.close()
        if bid is not None:
            self._notify()
            result = self._closed_hook(bid)
            if asyncio.iscoroutine(result):
                await result  # every row may already have settled
        return bid

    # -- the schedule ----------------------------------------------------------------------

    async def tick(self, now: dt.datetime | None = None) -> int | None:
        """Enqueue what is due at ``now``: for every active chat (config channels included)
        whose slot came, the issues newer than its last one. Returns the broadcast id, or
        None if nothing new was due. Call it every ~30 s and once at start (catch-up)."""
        if self._tick_lock.locked():
            return None
        async with self._tick_lock:
            now = now or self.clock()
            if quiethours.holds(now, self.config.quiet_hours, self.config.tz):
                # Quiet hours: nothing is enqueued, so the latest slot is still unhandled
                # when they end, and the first tick after the end sends it.
                return None
            limit = horizon(now, self.config.tz)
            available = await self.archive.issue_dates(end=limit)
            quiet: frozenset[dt.date] = frozenset()
            arrival: str | None = None  # the on-arrival slot: when the newest became ready
            if self.settle_seconds is not None:
                ready = await revisions.deliverable(
                    self.db, available, now.timestamp(), self.settle_seconds
                )
                available, quiet = ready.ready, ready.quiet
                if ready.ready_at is not None:
                    arrival = schedule.slot_key(dt.datetime.fromtimestamp(ready.ready_at, dt.UTC))
            # Archive, back-fill and moved issues: only for chats that never got one.
            loud = [d for d in available if d not in quiet] if quiet else available
            await chats.repair_cursors(self.db, limit)
            await topics.repair_cursors(self.db, limit)
            batch = Broadcast(self.db, "schedule", None)
            parts = _Parts(self.archive)
            owns = set(await chats.delivery_times(self.db))
            owns.update(await topics.delivery_times(self.db))
            for own in sorted(owns, key=lambda o: o or ""):
                hhmm = own if own != chats.ON_ARRIVAL else None  # /time now
                times = schedule.chat_times(
                    self.config.times, schedule.parse_hhmm(hhmm) if hhmm else None
                )
                slot = schedule.slot_key(schedule.latest_slot(now, times, self.config.tz))
                on_arrival = own == chats.ON_ARRIVAL or (own is None and self.config.on_arrival)
                if on_arrival and arrival:
                    slot = arrival  # handled once per newly ready issue
                await self._enqueue_due(batch, parts, own, slot, available, loud)
            return await self._close(batch)

    async def _enqueue_due(
        self,
        batch: Broadcast,
        parts: _Parts,
        own: str | None,
        slot: str,
        available: list[dt.date],
        loud: list[dt.date],
    ) -> None:
        async def chat_page(after: tuple[int, int]) -> list[Any]:
            page = await chats.due_page(self.db, own, slot, after[0], CHUNK)
            return [(chat_id, topics.NO_TOPIC, lang, last) for chat_id, lang, last in page]

        async def topic_page(after: tuple[int, int]) -> list[Any]:
            return await topics.due_page(self.db, own, slot, after, CHUNK)

        for read, advance in ((chat_page, _advance_chats), (topic_page, topics.advance)):
            await self._enqueue_pages(batch, parts, slot, available, loud, read, advance)

    async def _enqueue_pages(
        self,
        batch: Broadcast,
        parts: _Parts,
        slot: str,
        available: list[dt.date],
        loud: list[dt.date],
        read: Callable[[tuple[int, int]], Awaitable[list[Any]]],
        advance: _Advance,
    ) -> None:
        """Page through due (chat, thread, language, last issue) rows: each gets what it
        lacks, and its cursors move, in the same transaction."""
        cursor = (FIRST_ID, FIRST_ID)
        while True:
            async with self.db.transaction():
                page = await read(cursor)
                if not page:
                    return
                rows, cursors = [], []
                for chat_id, thread_id, lang, last in page:
                    last_issue = dt.date.fromisoformat(last) if last else None
                    dates = schedule.issues_to_send(
                        loud if last_issue else available, last_issue, self.config.max_backlog
                    )
                    for date in dates:
                        for part, tid in enumerate(await parts.text_ids(date, lang or "zh")):
                            rows.append((date.isoformat(), chat_id, thread_id, part, tid))
                    last_date = dates[-1].isoformat() if dates else None
                    cursors.append((slot, last_date, chat_id, thread_id))
                await batch.insert("issue", rows)
                await advance(self.db, cursors)
            cursor = (page[-1][0], page[-1][1])
            self._notify()  # the first chunk goes out while the next ones are written

    # -- one issue now ---------------------------------------------------------------------

    async def broadcast_now(
        self, date: dt.date | None = None, trigger: Trigger = "admin", *, dry_run: bool = False
    ) -> Plan:
        """Post the issue of ``date`` (default: the newest) now to every active chat and
        forum topic that has not received it. A dry run only counts. DeliveryError if there
        is no such issue."""
        limit = horizon(self.clock(), self.config.tz)
        if date is None:
            dates = await self.archive.issue_dates(end=limit)
            date = dates[-1] if dates else None
        elif date > limit:
            raise DeliveryError(
                f"the issue {date.isoformat()} is dated in the future; fix its heading"
            )
        issue = await self.archive.issue(date) if date else None
        if date is None or issue is None:
            raise DeliveryError(f"no issue on {date}" if date else "the archive has no issue yet")
        count = await outbox.count_lacking(self.db, date)
        n_parts = len(issue_messages(issue))
        if dry_run or not count:
            return Plan(None, date, count, count * n_parts, dry_run)
        day, iso = date, date.isoformat()
        batch = Broadcast(self.db, trigger, date)
        parts = _Parts(self.archive)

        async def chat_page(after: tuple[int, int]) -> list[Any]:
            page = await outbox.lacking_page(self.db, day, after[0], CHUNK)
            return [(chat_id, topics.NO_TOPIC, lang) for chat_id, lang in page]

        async def topic_page(after: tuple[int, int]) -> list[Any]:
            return await outbox.lacking_topics_page(self.db, day, after, CHUNK)

        # The chats' own subscriptions, then the forum topics: (chat, thread, language) rows.
        for read, advance in ((chat_page, _advance_chats), (topic_page, topics.advance)):
            cursor = (FIRST_ID, FIRST_ID)
            while True:
                async with self.db.transaction():
                    page = await read(cursor)
                    if not page:
                        break
                    rows = [
                        (iso, chat_id, thread_id, part, tid)
                        for chat_id, thread_id, lang in page
                        for part, tid in enumerate(await parts.text_ids(day, lang or "zh"))
                    ]
                    await batch.insert("issue", rows)
                    await advance(self.db, [(None, iso, c, t) for c, t, _ in page])
                cursor = (page[-1][0], page[-1][1])
                self._notify()
        return Plan(await self._close(batch), date, count, count * n_parts)

    # -- keyword watches -------------------------------------------------------------------

    async def on_new_issues(self, dates: Iterable[dt.date]) -> int:
        """Keyword watches: for each newly indexed issue (at most the newest ``max_backlog``,
        so a rebuilt index is no flood), each chat whose watches match items of it gets
        those items, once per (issue, chat), in the forum topic the watches were set in
        (each topic its own). Returns the number of chats and topics served."""
        served = 0
        limit = horizon(self.clock(), self.config.tz)
        async with self._watch_lock:
            due = sorted(d for d in set(dates) if d <= limit)
            for date in due[-self.config.max_backlog :]:
                served += await self._watch_issue(date)
        return served

    async def _watch_issue(self, date: dt.date) -> int:
        issue = await self.archive.issue(date)
        if issue is None:
            return 0
        batch = Broadcast(self.db, "watch", date)
        hits: dict[str, set[int]] = {}
        served = 0
        async for page in outbox.pages_of_watchers(self.db, date):
            messages: list[tuple[int, int, list[str]]] = []
            for chat_id, thread_id, lang, joined in page:
                terms = joined.split("\x1f")
                for t in terms:
                    if t not in hits:
                        hits[t] = await self._matches(t, date)
                numbers = set().union(*(hits[t] for t in terms))
                if numbers:
                    items = tuple(i for i in issue.items if i.number in numbers)
                    found = Issue(date, "🔔 " + " · ".join(terms), items)
                    messages.append((chat_id, thread_id, issue_messages(found, lang or "zh")))
            async with self.db.transaction():
                rows = [
                    (date.isoformat(), chat_id, thread, part, await outbox.text_id(self.db, html))
                    for chat_id, thread, parts in messages
                    for part, html in enumerate(parts)
                ]
                await batch.insert("watch", rows)
            served += len(messages)
        await self._close(batch)
        return served

    async def _matches(self, terms: str, date: dt.date) -> set[int]:
        """Item numbers of that issue matching the terms, exactly as /find matches them."""
        try:
            query = parse_query(terms)
        except QueryError:
            return set()
        if query.period and not query.period.start <= date <= query.period.end:
            return set()
        page = await self.archive.search(Query(query.terms, DateRange(date, date)), limit=1000)
        return {hit.number for hit in page.hits}
