"""The sender: a background task that empties the outbox under Telegram's limits.

It pulls a bounded window of pending rows into per-chat lanes (:mod:`bot.core.pacing`) and
dispatches ready lanes under a global token bucket, a few requests in flight at a time.
A row is marked sent only once Telegram has confirmed it, and the lane moves on only after
that is committed: after ``kill -9`` only in-flight messages can repeat. One process sends
at a time (the outbox lease), so a CLI broadcast next to a running bot cannot send a row
twice; the other process only enqueues and watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from bot.core.pacing import Bucket, Lane, Lanes, Limits, Pending
from bot.db import edits, outbox
from bot.db.database import Database
from bot.db.outbox import BroadcastReport, Outcome
from bot.delivery import audience
from bot.delivery.observer import NO_OBSERVER, DeliveryObserver
from bot.delivery.transport import Failure, SendError, Transport

log = logging.getLogger(__name__)

ReportCallback = Callable[[BroadcastReport], Awaitable[None]]
TEXT_CACHE = 256  # rendered parts kept in memory: a broadcast uses a handful


def _wall_to_mono(at: float) -> float:
    return time.monotonic() + (at - time.time()) if at else 0.0


class Sender:
    """``start`` / ``stop`` the background task; ``notify`` when rows were queued."""

    def __init__(
        self,
        db: Database,
        transport: Transport,
        limits: Limits,
        *,
        on_report: ReportCallback | None = None,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        observer: DeliveryObserver = NO_OBSERVER,
    ) -> None:
        self.db = db
        self.observer = observer  # counts each outcome (metrics); never raises
        self.transport = transport
        self.limits = limits
        self.on_report = on_report
        self.poll = poll_seconds
        self._lease = outbox.Lease(db, lease_seconds)
        self._window = int(min(20_000, max(200, limits.per_second * 4)))
        self._reporting: set[asyncio.Task[None]] = set()
        self._reset()

    def _reset(self) -> None:
        self._lanes = Lanes(self.limits)
        self._global = Bucket(
            self.limits.per_second, self.limits.burst, self.limits.burst, time.monotonic()
        )
        self._paused_until = 0.0
        self._floods: deque[tuple[float, int]] = deque()
        self._outcomes: list[Outcome] = []
        self._flush_lock = asyncio.Lock()
        self._texts: dict[int, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.limits.in_flight)
        self._wake = asyncio.Event()
        self._stopping = False
        self._runner: asyncio.Task[None] | None = None
        self._leader = False
        self._refill_at = 0.0  # monotonic; 0: now
        self._exhausted = False
        self._refilling: asyncio.Task[None] | None = None  # a refill running beside dispatch
        self._notified = 0  # notify() calls: one during a refill's read voids "exhausted"
        self._checked_open = 0.0
        self._unrecorded = 0  # failed writes of results since the last one that worked
        self._db_trouble = ""  # the database error last logged by the loop

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._runner is not None and not self._runner.done()

    @property
    def leader(self) -> bool:
        """Whether this process holds the lease (else another process sends)."""
        return self._leader

    async def start(self) -> None:
        if self.running:
            return
        self._reset()
        self._runner = asyncio.create_task(self._run(), name="briefbot-delivery")

    async def stop(self, timeout: float = 10.0) -> None:
        """No new sends; in-flight ones finish (or stay pending after ``timeout``);
        confirmations are written; the outbox is left intact."""
        if self._runner is None:
            return
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._runner
        if self._refilling is not None:  # a read: let it end, it must not outlive the run
            _, late = await asyncio.wait({self._refilling}, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            self._refill_done(raise_error=False)
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._flush()
        # The database refused the results (disk full, locked): keep trying until the
        # timeout, or what Telegram confirmed would be sent again at the next start.
        deadline = time.monotonic() + timeout
        while self._outcomes and time.monotonic() < deadline:
            await asyncio.sleep(min(0.2, self.poll))
            await self._flush()
        if self._outcomes:
            log.error(
                "delivery: %d confirmed sends could not be recorded; they go out again at the"
                " next start",
                len(self._outcomes),
            )
        if self._reporting:
            await asyncio.wait(self._reporting, timeout=timeout)
        if self._leader:
            await self._lease.release()
            self._leader = False
        self._runner = None

    def notify(self) -> None:
        """New rows are in the outbox: look now rather than at the next poll."""
        self._refill_at = 0.0
        self._exhausted = False
        self._notified += 1
        self._wake.set()

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        renew_at = 0.0
        while not self._stopping:
            # Cleared before looking at the state: a wake-up from here on is not lost.
            self._wake.clear()
            now = time.monotonic()
            try:
                if now >= renew_at:
                    renew_at = now + self._lease.ttl / 3
                    await self._hold_lease()
                if not self._leader:  # another process sends; a wake-up must not change that
                    await self._sleep(renew_at - now)
                    continue
                await self._step(now)
                if self._db_trouble:
                    log.info("delivery: the database works again")
                    self._db_trouble = ""
            except sqlite3.Error as err:  # disk full, read-only, locked: it passes
                if str(err) != self._db_trouble:
                    log.warning("delivery: database error (%s); retrying every second", err)
                    self._db_trouble = str(err)
                await self._sleep(1.0)
            except Exception:
                log.exception("delivery: unexpected error; retrying in a second")
                await self._sleep(1.0)

    async def _hold_lease(self) -> None:
        was = self._leader
        self._leader = await self._lease.acquire()
        if self._leader and not was:
            log.info("delivery: this process sends (resuming pending messages)")
            if not self._tasks:  # what was in memory may have been sent by the other one
                self._lanes = Lanes(self.limits)
            self.notify()

    async def _step(self, now: float) -> None:
        if self._outcomes or self._unrecorded:
            # Results the database refused: written before anything else is sent, so what
            # is confirmed but not recorded (sent again after a crash) stays a handful.
            # ``_unrecorded`` too: a concurrent ``_flush`` holds the refused results out of
            # ``_outcomes`` while it retries, and an empty list then is not a working disk.
            await self._flush()
            if self._outcomes or self._unrecorded:
                await self._sleep(self.poll)
                return
        if now >= self._checked_open:
            self._checked_open = now + 5 * self.poll
            await self.check_finished(await outbox.adopt_orphans(self.db, time.time() - 600))
        self._refill_done()
        if self._refilling is None and self._wants_refill(now):
            if len(self._lanes) >= self.limits.in_flight:
                # Enough is loaded to keep sending: read the next window beside dispatch
                # (reading ~4,000 rows inline stopped every send for its duration).
                self._refilling = asyncio.create_task(self._prefetch(), name="briefbot-refill")
            else:
                await self._refill()
        wait = max(self._paused_until, self._global.ready_at(now)) - now
        if wait > 0:
            await self._sleep(wait)
            return
        lane = self._lanes.pop_ready(now)
        if lane is None and self._refilling is not None:
            await asyncio.wait({self._refilling})  # one refill at a time
            self._refill_done()
            lane = self._lanes.pop_ready(now)
        if lane is None and not self._exhausted and len(self._lanes) < 10 * self._window:
            # Everything loaded waits on its chat's limit (a group's backlog, say): look
            # further ahead rather than leave the global rate unused.
            await self._refill(more=True)
            lane = self._lanes.pop_ready(now)
        if lane is None:
            wake = self._lanes.next_wake()
            await self._sleep(min(self.poll, wake - now) if wake else self.poll)
            return
        await self._slots.acquire()
        if self._stopping:
            self._slots.release()
            self._lanes.release(lane, time.monotonic())
            return
        self._global.take(time.monotonic())
        task = asyncio.create_task(self._send(lane))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sleep(self, seconds: float) -> None:
        """Until ``seconds`` passed or something changed (a send ended, rows were queued)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, seconds))

    def _wants_refill(self, now: float) -> bool:
        if len(self._lanes) < self._window // 2 and not self._exhausted:
            return True
        return now >= self._refill_at

    async def _prefetch(self) -> None:
        try:
            await self._refill()
        finally:
            self._wake.set()  # the loop may be waiting for rows

    def _refill_done(self, raise_error: bool = True) -> None:
        """Collect a background refill that ended; its error (a database one, say) is the
        loop's, raised here to be logged and retried like an inline one."""
        task = self._refilling
        if task is None or not task.done():
            return
        self._refilling = None
        err = None if task.cancelled() else task.exception()
        if err is not None and raise_error:
            raise err

    async def _refill(self, more: bool = False) -> None:
        """Top the rows in memory up to the window (``more``: one window beyond), never the
        whole outbox, and forget rows that stopped being pending (cancelled by a /stop).

        It may run as a task beside dispatch: sends start and finish during the read, but
        none can record its result (and forget its row) while the read's transaction holds
        the write lock, and the lanes are changed right after the read returns, with no
        await in between, so a row settled after the read is never loaded again."""
        self._refill_at = time.monotonic() + self.poll
        lanes, notified = self._lanes, self._notified
        loaded = len(lanes)
        limit = loaded + (self._window if more else max(1, self._window - loaded))
        # Both reads in one transaction: no send's result can be recorded (and its row
        # forgotten) between them, or that row, still pending in the first read, would be
        # loaded again and sent twice.
        async with self.db.transaction():
            rows = await outbox.pending_window(self.db, limit)
            # Corrections (bot.db.edits) share the lanes and limits; their ids are negative.
            corrections = await edits.pending_window(self.db, self._window)
        # From here to the end: no await (see the docstring).
        if self._lanes is not lanes:
            return  # the lanes were reset meanwhile (the lease changed hands): read again
        exhausted = len(rows) < limit
        horizon = 2**63 if exhausted else rows[-1][0]
        # Rows queued during the read may be missing from it: then it is not exhausted.
        exhausted = exhausted and len(corrections) < self._window
        self._exhausted = exhausted and self._notified == notified
        rows += corrections
        now = time.monotonic()
        lanes.drop_stale({r[0] for r in rows}, horizon, now)
        for rid, chat_id, text_id, attempts, next_at, bid, kind, *extra in rows:
            # Outbox rows carry the chat's /quiet choice and their forum topic; corrections
            # (edits) neither: a message is edited by its id alone.
            pending = Pending(rid, chat_id, text_id, attempts, _wall_to_mono(next_at), bid)
            pending.silent = bool(extra and extra[0])
            pending.thread_id = int(extra[1]) if len(extra) > 1 else 0
            lanes.add(pending, kind, now)
        lanes.prune(now)

    # -- one message -----------------------------------------------------------------------

    async def _send(self, lane: Lane) -> None:
        row = lane.rows[0]
        try:
            try:
                html = await self._text(row.text_id)
                message_id: int | None = None
                if row.id < 0:  # a correction: the message is edited in place
                    edited = await edits.message_id(self.db, -row.id)
                    await self.transport.edit_html(row.chat_id, edited, html)
                else:
                    message_id = await self.transport.send_html(
                        row.chat_id,
                        html,
                        paid=self.limits.paid,
                        silent=row.silent,
                        thread_id=row.thread_id or None,
                    )
            except Exception as err:
                await self._failed(lane, row, err)
            else:
                self._outcomes.append(Outcome("sent", row.id, row.attempts, message_id))
                self.observer.sent(lane.chat_type)
                lane.rows.popleft()
                await self._flush()
        finally:
            now = time.monotonic()
            self._lanes.bucket(lane, now).take(now)  # charged on completion: see Bucket
            self._lanes.release(lane, now)
            self._slots.release()
            self._wake.set()

    async def _text(self, text_id: int) -> str:
        text = self._texts.get(text_id)
        if text is None:
            text = await outbox.text(self.db, text_id)
            if len(self._texts) >= TEXT_CACHE:
                self._texts.pop(next(iter(self._texts)))
            self._texts[text_id] = text
        return text

    def _describe(self, err: BaseException) -> str:
        # A SendError's description already names the transport's own error type.
        text = err.description if isinstance(err, SendError) else f"{type(err).__name__}: {err}"
        return self.transport.redact(text)[:500]

    async def _failed(self, lane: Lane, row: Pending, err: Exception) -> None:
        failure = err.failure if isinstance(err, SendError) else None
        if isinstance(err, SendError) and failure is Failure.FLOOD:
            self._flood(lane, err.retry_after)
        elif isinstance(err, SendError) and failure is Failure.MIGRATED and err.migrate_to:
            await self._migrated(lane, err.migrate_to)
        elif failure is Failure.GONE:
            self.observer.failed(lane.chat_type, "unreachable")
            await self._gone(lane, row, self._describe(err))
        elif failure is Failure.TOPIC_GONE and row.id > 0:
            self.observer.failed(lane.chat_type, "unreachable")
            await self._topic_gone(lane, row, self._describe(err))
        elif failure in (Failure.REJECTED, Failure.TOPIC_GONE):  # an edit names no topic
            row.attempts += 1
            self.observer.failed(lane.chat_type, "rejected")
            await self._settle(
                lane, Outcome("failed", row.id, row.attempts, error=self._describe(err))
            )
        else:
            if failure is None:
                log.error("delivery: unexpected error sending to %s", row.chat_id, exc_info=err)
            await self._retry(lane, row, err)

    def _flood(self, lane: Lane, seconds: float) -> None:
        """A 429: pause the chat; if other chats were refused within the last second too,
        the global limit was hit, so pause everything. The row stays first in its lane."""
        self.observer.flood(seconds)
        now = time.monotonic()
        until = now + seconds
        self._lanes.pause(lane.chat_id, until)
        self._floods.append((now, lane.chat_id))
        while self._floods and self._floods[0][0] < now - 1.0:
            self._floods.popleft()
        if len({chat for _, chat in self._floods}) > 1:
            self._paused_until = max(self._paused_until, until)
        log.info("delivery: 429 for chat %s, waiting %.1f s", lane.chat_id, seconds)

    async def _retry(self, lane: Lane, row: Pending, err: Exception) -> None:
        row.attempts += 1
        error = self._describe(err)
        if row.attempts >= self.limits.attempts:
            self.observer.failed(lane.chat_type, "exhausted")
            await self._settle(lane, Outcome("failed", row.id, row.attempts, error=error))
            return
        base = min(self.limits.backoff_max, self.limits.backoff * 2 ** (row.attempts - 1))
        delay = base * random.uniform(0.5, 1.5)
        row.due = time.monotonic() + delay
        self.observer.retry(lane.chat_type)
        self._outcomes.append(
            Outcome("retry", row.id, row.attempts, error=error, next_at=time.time() + delay)
        )
        await self._flush()

    async def _settle(self, lane: Lane, outcome: Outcome) -> None:
        """A terminal outcome other than sent: the lane moves on to its next row."""
        self._outcomes.append(outcome)
        lane.rows.popleft()
        await self._flush()

    async def _gone(self, lane: Lane, row: Pending, reason: str) -> None:
        async with self.db.transaction():
            changed = await audience.unreachable(self.db, lane.chat_id, reason)
            if changed and row.broadcast_id is not None:
                await outbox.count_newly_inactive(self.db, row.broadcast_id)
        dropped = self._lanes.drop_chat(lane.chat_id)
        await self.check_finished({r.broadcast_id for r in dropped})
        log.info("delivery: chat %s is unreachable (%s)", lane.chat_id, reason)

    async def _topic_gone(self, lane: Lane, row: Pending, reason: str) -> None:
        """The forum topic was closed or deleted: no retry, nothing more to it; the chat's
        other rows (its other topics, its own subscription) stay in the lane."""
        async with self.db.transaction():
            changed = await audience.topic_gone(self.db, lane.chat_id, row.thread_id, reason)
            if changed and row.broadcast_id is not None:
                await outbox.count_newly_inactive(self.db, row.broadcast_id)
        dropped = self._lanes.drop_topic(lane, row.thread_id)
        await self.check_finished({r.broadcast_id for r in dropped})
        log.info(
            "delivery: topic %s of chat %s is closed or deleted (%s)",
            row.thread_id,
            lane.chat_id,
            reason,
        )

    async def _migrated(self, lane: Lane, new_id: int) -> None:
        await audience.migrated(self.db, lane.chat_id, new_id)
        # Its rows now point at the new id in the database; the next refill loads them.
        self._lanes.drop_chat(lane.chat_id)
        self.notify()
        log.info("delivery: chat %s migrated to %s", lane.chat_id, new_id)

    async def _flush(self) -> None:
        """Write what the sends learned, in one transaction for all that is waiting (group
        commit: concurrent sends share a commit instead of queueing one each)."""
        async with self._flush_lock:
            outcomes, self._outcomes = self._outcomes, []
            if not outcomes:
                return
            try:
                async with self.db.transaction():  # sends and edits: one commit
                    await outbox.record(self.db, [o for o in outcomes if o.row_id > 0])
                    await edits.record(self.db, [o for o in outcomes if o.row_id < 0])
            except Exception as err:
                if not self._unrecorded:  # one line per outage, not one per retry
                    log.warning(
                        "delivery: cannot record %d results (%s); sending waits, writing retries",
                        len(outcomes),
                        err,
                        exc_info=not isinstance(err, sqlite3.Error),
                    )
                self._unrecorded += 1
                self._outcomes[:0] = outcomes
                return
            if self._unrecorded:
                log.info(
                    "delivery: results recorded again (%d writes had failed)", self._unrecorded
                )
                self._unrecorded = 0
        settled = {self._lanes.forget(o.row_id) for o in outcomes if o.kind != "retry"}
        await self.check_finished(settled)

    # -- broadcasts finishing --------------------------------------------------------------

    async def check_finished(self, broadcasts: Iterable[int | None]) -> None:
        """Close those broadcasts of which nothing is pending any more (the leader does)."""
        for bid in broadcasts:
            if bid is not None and self._lanes.per_broadcast[bid] <= 0:
                await self._finish(bid)

    async def _finish(self, broadcast_id: int) -> None:
        if not self._leader:
            return  # the sending process reports
        report = await outbox.finish(self.db, broadcast_id)
        if report is not None:
            log.info("delivery: %s", report.summary())
            # Not awaited here: a slow admin message must not hold up a lane.
            task = asyncio.create_task(self._call_report(report))
            self._reporting.add(task)
            task.add_done_callback(self._reporting.discard)

    async def _call_report(self, report: BroadcastReport) -> None:
        if self.on_report is None:
            return
        try:
            await self.on_report(report)
        except Exception:
            log.exception("delivery: the report callback failed")
