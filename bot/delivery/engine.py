"""The delivery engine: the planner and the sender behind one object, which is what the
bot, the CLI and the tests hold. See :mod:`bot.delivery.planner` (what to send, when) and
:mod:`bot.delivery.sender` (sending under Telegram's limits, exactly once)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bot.config import Delivery
from bot.core.pacing import Limits
from bot.db import chats, edits, outbox, topics
from bot.db.archive import Archive
from bot.db.database import Database
from bot.db.outbox import BroadcastReport, Trigger
from bot.delivery import corrections
from bot.delivery.observer import NO_OBSERVER, DeliveryObserver
from bot.delivery.planner import DeliveryError, Plan, Planner
from bot.delivery.sender import ReportCallback, Sender
from bot.delivery.transport import Transport

__all__ = ["BroadcastReport", "DeliveryEngine", "DeliveryError", "Limits", "Plan", "Stats"]

ProgressCallback = Callable[[int, int], None]


def limits_for(config: Delivery) -> Limits:
    return Limits.for_rate(config.max_messages_per_second, config.paid_broadcast)


def _now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Stats:
    chats: dict[tuple[str, str], int]  # (type, status) -> chats
    deliveries: dict[str, int]  # outbox status -> messages
    runs: list[BroadcastReport]  # newest first
    edits: dict[str, int] = field(default_factory=dict)  # corrections by status
    topics: dict[str, int] = field(default_factory=dict)  # forum topics by status


class DeliveryEngine:
    """Enqueues (``tick``, ``broadcast_now``, ``on_new_issues``) and sends in the background
    (``start`` / ``stop``). ``on_report`` is awaited with each finished broadcast."""

    def __init__(
        self,
        archive: Archive,
        transport: Transport,
        config: Delivery,
        *,
        limits: Limits | None = None,
        on_report: ReportCallback | None = None,
        clock: Callable[[], dt.datetime] = _now_utc,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        observer: DeliveryObserver = NO_OBSERVER,
        settle_seconds: float | None = None,
    ) -> None:
        self.archive = archive
        self.db = archive.db
        self.config = config
        self.limits = limits or limits_for(config)
        self.sender = Sender(
            self.db,
            transport,
            self.limits,
            on_report=on_report,
            lease_seconds=lease_seconds,
            poll_seconds=poll_seconds,
            observer=observer,
        )
        self.planner = Planner(
            archive,
            config,
            notify=self.sender.notify,
            closed=lambda bid: self.sender.check_finished([bid]),
            clock=clock,
            settle_seconds=settle_seconds,
        )

    # -- sending ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.sender.running

    @property
    def sending(self) -> bool:
        """Whether this process holds the lease (else another process sends)."""
        return self.sender.leader

    async def start(self) -> None:
        """Start the sender in the background; pending rows are resumed."""
        await self.sender.start()

    async def stop(self, timeout: float = 10.0) -> None:
        await self.sender.stop(timeout)

    def notify(self) -> None:
        self.sender.notify()

    # -- planning --------------------------------------------------------------------------

    async def tick(self, now: dt.datetime | None = None) -> int | None:
        bid = await self.planner.tick(now)
        settle = self.planner.settle_seconds
        if settle is not None:  # following a git source: settled corrections go out too
            when = (now or self.planner.clock()).timestamp()
            if await corrections.plan(self.archive, when, settle):
                self.sender.notify()
        return bid

    async def broadcast_now(
        self, date: dt.date | None = None, trigger: Trigger = "admin", *, dry_run: bool = False
    ) -> Plan:
        return await self.planner.broadcast_now(date, trigger, dry_run=dry_run)

    async def on_new_issues(self, dates: Iterable[dt.date]) -> int:
        return await self.planner.on_new_issues(dates)

    # -- reading ---------------------------------------------------------------------------

    async def report(self, broadcast_id: int) -> BroadcastReport | None:
        return await outbox.report(self.db, broadcast_id)

    async def wait(
        self,
        broadcast_id: int | None,
        progress: ProgressCallback | None = None,
        *,
        poll: float = 0.5,
    ) -> BroadcastReport | None:
        """Until the broadcast finished (sent here or by the process holding the lease),
        calling ``progress(done, total)`` on the way: the CLI's progress bar."""
        if broadcast_id is None:
            return None
        while True:
            report = await self.report(broadcast_id)
            if report is None:
                return None
            if progress is not None:
                progress(report.done, report.total)
            if report.finished:
                return report
            await asyncio.sleep(poll)

    async def stats(self, runs: int = 5) -> Stats:
        return await stats(self.db, runs)


async def stats(db: Database, runs: int = 5) -> Stats:
    """For /stats: chats by type and status, deliveries by status, the last runs."""
    ids = await outbox.recent_broadcasts(db, runs)
    reports = [r for bid in ids if (r := await outbox.report(db, bid)) is not None]
    return Stats(
        await chats.counts(db),
        await outbox.status_counts(db),
        reports,
        await edits.status_counts(db),
        await topics.counts(db),
    )
