"""Prometheus metrics in a registry of their own (not the global one: two bots in one test
process, or two tests, never share counters). Every name is documented in
docs/operations.md.

:class:`Metrics` is also the sender's :class:`~bot.delivery.observer.DeliveryObserver`.
Figures that live in the database (pending rows, subscribers, the archive) are read at
scrape time: :meth:`Metrics.refresh` stores a snapshot, the collector reports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.db.ops import Snapshot
from bot.db.outbox import BroadcastReport
from bot.delivery.observer import FailReason, Op
from bot.ops.state import OpsState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LAG_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600, 86400)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc)
    if value is not None:
        g.add_metric([], value)
    return g


class _Live(Collector):
    """Gauges computed when scraped: from the last database snapshot and the live state."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def describe(self) -> Iterable[Metric]:
        return []  # names are fixed; nothing to check for duplicates at registration

    def collect(self) -> Iterable[Metric]:
        snap, state = self.m.snapshot, self.m.state
        now = state.clock()
        if snap is not None:
            yield _gauge("briefbot_outbox_pending", "Outbox rows not yet sent.", snap.pending)
            yield _gauge(
                "briefbot_outbox_due", "Pending rows due now (not waiting on a retry).", snap.due
            )
            yield _gauge(
                "briefbot_outbox_oldest_due_age_seconds",
                "Age of the oldest due pending row (0: none).",
                now - snap.oldest_due if snap.oldest_due else 0.0,
            )
            subs = GaugeMetricFamily(
                "briefbot_subscribers", "Known chats by type and status.", labels=["type", "status"]
            )
            for (kind, status), n in sorted(snap.chats.items()):
                subs.add_metric([kind, status], n)
            yield subs
            yield _gauge("briefbot_archive_issues", "Issues in the archive index.", snap.issues)
            yield _gauge("briefbot_archive_items", "Items in the archive index.", snap.items)
            yield _gauge(
                "briefbot_content_last_change_timestamp_seconds",
                "When an issue was last added or changed (unix time).",
                snap.last_change,
            )
        yield _gauge(
            "briefbot_telegram_last_ok_timestamp_seconds",
            "Last successful Bot API answer (unix time).",
            state.telegram_last_ok,
        )
        yield _gauge(
            "briefbot_delivery_last_sent_timestamp_seconds",
            "Last outbox message Telegram confirmed in this process (unix time).",
            state.last_sent,
        )
        yield _gauge(
            "briefbot_source_last_ok_timestamp_seconds",
            "Last successful fetch of the content source (unix time).",
            state.source.last_ok,
        )
        yield _gauge(
            "briefbot_source_consecutive_failures",
            "Failed content source fetches since the last success.",
            state.source.failures,
        )
        active = GaugeMetricFamily(
            "briefbot_alert_active", "1 while an alert condition holds.", labels=["condition"]
        )
        for name in self.m.alert_names():
            active.add_metric([name], 1)
        yield active


class Metrics:
    def __init__(self, state: OpsState, alert_names: Callable[[], Iterable[str]] = tuple) -> None:
        self.state = state
        self.alert_names = alert_names
        self.snapshot: Snapshot | None = None
        r = self.registry = CollectorRegistry(auto_describe=False)
        self.messages = Counter(
            "briefbot_messages",
            "Outbox messages by operation, chat type and result.",
            ["op", "chat_type", "result"],
            registry=r,
        )
        self.retries = Counter(
            "briefbot_delivery_retries",
            "Transient send failures retried.",
            ["chat_type"],
            registry=r,
        )
        self.floods = Counter("briefbot_telegram_429", "429 answers to the sender.", registry=r)
        self.flood_seconds = Counter(
            "briefbot_telegram_retry_after_seconds",
            "Sum of retry_after asked for by 429 answers.",
            registry=r,
        )
        self.broadcasts = Counter(
            "briefbot_broadcasts", "Finished broadcasts by trigger.", ["trigger"], registry=r
        )
        self.lag = Histogram(
            "briefbot_delivery_lag_seconds",
            "From a broadcast starting (its rows enqueued) to its last delivery.",
            ["trigger"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.reply = Histogram(
            "briefbot_reply_seconds",
            "Time to handle an update, by type.",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.search = Histogram(
            "briefbot_search_seconds", "Archive search time.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.updates = Counter(
            "briefbot_updates", "Updates received, by type.", ["type"], registry=r
        )
        r.register(_Live(self))

    # -- the DeliveryObserver protocol -----------------------------------------------------

    def sent(self, chat_type: str, op: Op = "send") -> None:
        self.messages.labels(op, chat_type, "sent").inc()
        self.state.delivered()

    def failed(self, chat_type: str, reason: FailReason, op: Op = "send") -> None:
        self.messages.labels(op, chat_type, reason).inc()

    def flood(self, seconds: float) -> None:
        self.floods.inc()
        self.flood_seconds.inc(max(0.0, seconds))

    def retry(self, chat_type: str) -> None:
        self.retries.labels(chat_type).inc()

    # -- other events ----------------------------------------------------------------------

    def broadcast_finished(self, report: BroadcastReport) -> None:
        self.broadcasts.labels(report.trigger).inc()
        if report.finished is not None:
            self.lag.labels(report.trigger).observe(report.duration)

    def searched(self, seconds: float) -> None:
        self.search.observe(seconds)

    def update(self, kind: str, seconds: float | None = None) -> None:
        """An update of this type arrived (``seconds``: and was handled in that time)."""
        if seconds is None:
            self.updates.labels(kind).inc()
        else:
            self.reply.labels(kind).observe(seconds)

    def exposition(self, snapshot: Snapshot | None) -> bytes:
        """The text format; ``snapshot`` was just read from the database (None: unreadable,
        then the database gauges are left out rather than reported stale)."""
        self.snapshot = snapshot
        return generate_latest(self.registry)
