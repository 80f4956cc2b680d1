"""The ops service: one object the bot holds for health, readiness, metrics and alerts.

Readiness (``GET /readyz``) and the alert checks judge the same probe: a heartbeat write to
the database, the free space on its disk, a snapshot of the outbox and the archive, and
what :class:`~bot.ops.state.OpsState` learned (Telegram's last answer, the last delivery,
the content source). See docs/operations.md for each condition.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bot.config import Config
from bot.db import ops as dbops
from bot.db.database import Database
from bot.db.outbox import BroadcastReport
from bot.logs import redact
from bot.ops.alerts import Alerts, Finding
from bot.ops.metrics import CONTENT_TYPE, Metrics
from bot.ops.server import OpsServer, Response, split_listen
from bot.ops.state import Clock, OpsState

log = logging.getLogger(__name__)

TELEGRAM_MAX_AGE = 60.0  # readiness: the last successful Bot API answer at most this old
STUCK_SECONDS = 300.0  # due rows, Telegram answering, and nothing sent for this long
SOURCE_POLLS = 3  # the content source must have succeeded within this many poll intervals
FAILED_SHARE = 0.05  # a finished broadcast with more failed than this is an alert
CHECK_SECONDS = 30.0  # how often the bot runs check()

AlertSender = Callable[[str], Awaitable[None]]
FreeSpace = Callable[[Path], int]  # bytes free on the disk holding that folder


def disk_free(folder: Path) -> int:
    return shutil.disk_usage(folder).free


@dataclass(frozen=True)
class Probe:
    now: float
    write_error: str | None  # None: the heartbeat write went through
    free_bytes: int | None  # None: could not be measured
    snapshot: dbops.Snapshot | None  # None: the database could not be read


class Ops:
    def __init__(
        self,
        config: Config,
        db: Database,
        *,
        clock: Clock | None = None,
        free_space: FreeSpace = disk_free,
        send_alert: AlertSender | None = None,
        sending: Callable[[], bool] = lambda: True,
    ) -> None:
        self.config = config
        self.db = db
        self.state = OpsState(clock) if clock else OpsState()
        self.alerts = Alerts()
        self.metrics = Metrics(self.state, lambda: sorted(self.alerts.active))
        self.free_space = free_space
        self.send_alert = send_alert
        self.sending = sending  # does this process hold the outbox lease (else another sends)
        self.watch_since: float | None = None
        self.last_broadcast: BroadcastReport | None = None
        self.server: OpsServer | None = None

    @property
    def clock(self) -> Clock:
        return self.state.clock

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Note when a git source started being watched; listen on ops.listen (a taken
        address is logged, not fatal: the bot itself matters more than its metrics)."""
        if self.config.content_source is not None:
            self.watch_since = await dbops.watch_started(self.db, self.clock())
        else:
            await dbops.forget_watch(self.db)
        listen = self.config.ops.listen
        if not listen:
            return
        host, port = split_listen(listen)
        server = OpsServer(
            host, port, {"/healthz": self.healthz, "/readyz": self.readyz, "/metrics": self.scrape}
        )
        try:
            await server.start()
        except OSError as err:
            log.error("ops: cannot listen on %s: %s; no health or metrics endpoint", listen, err)
            return
        self.server = server
        log.info("ops: health and metrics on http://%s:%d/", host, server.port)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    # -- hooks ----------------------------------------------------------------------------

    def broadcast_finished(self, report: BroadcastReport) -> None:
        """Hook for the engine's on_report: every finished broadcast."""
        self.metrics.broadcast_finished(report)
        self.last_broadcast = report

    # -- judging --------------------------------------------------------------------------

    async def probe(self) -> Probe:
        now = self.clock()
        write_error: str | None = None
        try:
            await dbops.heartbeat(self.db, now)
        except Exception as err:  # sqlite3 errors, OSError: all mean "cannot write"
            write_error = redact(f"{type(err).__name__}: {err}")[:200]
        try:
            free: int | None = self.free_space(self.db.path.parent)
        except OSError:
            free = None
        try:
            snap: dbops.Snapshot | None = await dbops.snapshot(self.db, now)
        except Exception:
            log.warning("ops: cannot read the database", exc_info=True)
            snap = None
        return Probe(now, write_error, free, snap)

    def telegram_problem(self, now: float) -> str | None:
        last = self.state.telegram_last_ok
        if last is None:
            return "no successful Bot API answer yet"
        if now - last > TELEGRAM_MAX_AGE:
            return f"no successful Bot API answer for {now - last:.0f} s"
        return None

    def stuck_problem(self, p: Probe) -> str | None:
        """Rows are due, Telegram answers, this process sends, and nothing went out for
        STUCK_SECONDS (since start if nothing went out yet)."""
        if p.snapshot is None or not p.snapshot.due or not self.sending():
            return None
        if self.telegram_problem(p.now) is not None:
            return None  # Telegram is down: that is its own condition, not the sender's
        last = self.state.last_sent or self.state.started
        oldest = p.snapshot.oldest_due or p.now
        idle = p.now - max(last, oldest)
        if idle < STUCK_SECONDS:
            return None
        return f"the sender is stuck: {p.snapshot.due} messages due, none sent for {idle:.0f} s"

    def source_problem(self, now: float) -> str | None:
        source = self.config.content_source
        if source is None:
            return None
        s = self.state.source
        since = s.last_ok if s.last_ok is not None else self.state.started
        if now - since <= SOURCE_POLLS * source.poll_seconds:
            return None
        what = f" ({s.failures} failed fetches; last: {s.last_error})" if s.failures else ""
        when = "never fetched" if s.last_ok is None else f"last fetched {now - since:.0f} s ago"
        return f"the content source is failing: {when}{what}"

    def storage_problem(self, p: Probe) -> str | None:
        if p.write_error:
            return f"the database does not take writes: {p.write_error}"
        limit = self.config.ops.min_free_mb
        if p.free_bytes is not None and p.free_bytes < limit * 1024 * 1024:
            mb = p.free_bytes / 1024 / 1024
            return (
                f"the database's disk is nearly full: {mb:.0f} MB free (ops.min_free_mb: {limit})"
            )
        return None

    def stale_problem(self, p: Probe) -> str | None:
        """Only while a git source is watched (a static archive is never stale)."""
        if self.config.content_source is None or self.watch_since is None or p.snapshot is None:
            return None
        last = max(self.watch_since, p.snapshot.last_change or 0.0)
        days = (p.now - last) / 86400
        if days <= self.config.ops.stale_days:
            return None
        return f"no new issue for {days:.1f} days (ops.stale_days: {self.config.ops.stale_days})"

    def broadcast_problem(self) -> str | None:
        r = self.last_broadcast
        if r is None or not r.total or r.failed / r.total <= FAILED_SHARE:
            return None
        return (
            f"broadcast #{r.id} ({r.trigger}) ended with {r.failed} of {r.total} messages failed"
            f" ({100 * r.failed / r.total:.0f}%)"
        )

    async def failing(self) -> dict[str, str]:
        """The readiness conditions that fail now, by name (empty: ready)."""
        p = await self.probe()
        found = {
            "database": f"not writable: {p.write_error}" if p.write_error else None,
            "telegram": self.telegram_problem(p.now),
            "sender": self.stuck_problem(p),
            "source": self.source_problem(p.now),
        }
        return {name: text for name, text in found.items() if text is not None}

    async def findings(self) -> list[Finding]:
        p = await self.probe()
        return [
            Finding("sender_stuck", self.stuck_problem(p)),
            Finding("broadcast_failures", self.broadcast_problem(), repeat=False),
            # A failing content source is told by the source itself (bot.source.health:
            # after 3 failures and 15 minutes, and on recovery); here it only fails readiness.
            Finding("stale_content", self.stale_problem(p)),
            Finding("storage", self.storage_problem(p)),
        ]

    async def check(self) -> list[str]:
        """The periodic job: decide, then send each alert (a failed send is logged)."""
        messages = self.alerts.decide(await self.findings(), self.clock())
        for text in messages:
            log.warning("ops alert: %s", text)
            if self.send_alert is not None:
                try:
                    await self.send_alert(text)
                except Exception:
                    log.warning("ops: could not send an alert", exc_info=True)
        return messages

    # -- the endpoints --------------------------------------------------------------------

    async def healthz(self) -> Response:
        return 200, "text/plain; charset=utf-8", b"ok\n"

    async def readyz(self) -> Response:
        failing = await self.failing()
        body = json.dumps({"ready": not failing, "failing": failing}, ensure_ascii=False)
        return (503 if failing else 200), "application/json", body.encode() + b"\n"

    async def scrape(self) -> Response:
        try:
            snap: dbops.Snapshot | None = await dbops.snapshot(self.db, self.clock())
        except Exception:
            log.warning("ops: cannot read the database for /metrics", exc_info=True)
            snap = None
        return 200, CONTENT_TYPE, self.metrics.exposition(snap)
