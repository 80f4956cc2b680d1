"""Stopping on SIGTERM / SIGINT within a bounded time, however many updates are queued.

python-telegram-bot's own handling answers every update already fetched before it stops
(``Application.stop`` joins the update queue), which under a burst of 1,000 /start takes
the reply rate limit's 30 per second: half a minute. And its handler raises SystemExit on
the *second* signal in the middle of that shutdown, which skips closing the database; the
database's worker thread then keeps the process alive for good. So the bot installs its
own handlers (``stop_signals=None`` for PTB):

- first signal: stop fetching; what was fetched is answered for ``drain`` seconds; after
  that the remaining updates are skipped (one WARNING says how many) and replies still
  waiting are cancelled; then the delivery engine stops (in-flight sends finish and are
  recorded, the outbox is left intact) and the database closes, last;
- a second signal skips the rest of the drain at once: it can only make the stop faster;
- a watchdog ends the process ``deadline`` seconds after the first signal, whatever is
  still hanging (a stuck network call). Nothing is lost then either: a delivery is marked
  sent only once Telegram confirmed it and that was committed, so at worst a message in
  flight is sent again at the next start, as after ``kill -9``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationHandlerStop, TypeHandler

log = logging.getLogger(__name__)

DRAIN_SECONDS = 3.0  # answer what was fetched for this long after the signal
DEADLINE_SECONDS = 9.0  # whatever happens, the process has exited by then
EXIT_WATCHDOG = 1


class GracefulStop:
    """Bounded shutdown for one Application (see the module docstring)."""

    def __init__(
        self,
        app: Application[Any, Any, Any, Any, Any, Any],
        *,
        drain: float = DRAIN_SECONDS,
        deadline: float = DEADLINE_SECONDS,
    ) -> None:
        self.app = app
        self.drain = drain
        self.deadline = deadline
        self.requested: float | None = None  # monotonic time of the first signal
        self.skipping = False
        self.skipped = 0
        self._answering: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_stopped = False
        # Before every other handler (the ops counter is group -2, throttle_gate -1).
        app.add_handler(TypeHandler(Update, self._gate), group=-3)

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Handle SIGTERM and SIGINT on ``loop`` (the one run_polling / run_webhook uses)."""
        self._loop = loop
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.signal, sig)

    # -- signals -----------------------------------------------------------------------

    def signal(self, sig: int = signal.SIGTERM) -> None:
        name = signal.Signals(sig).name
        if self.requested is not None:
            log.info("%s again: skipping the updates not answered yet", name)
            self._skip()
            return
        self.requested = time.monotonic()
        log.info(
            "%s: stopping (answering fetched updates for up to %.0f s; the outbox is kept)",
            name,
            self.drain,
        )
        watchdog = threading.Timer(self.deadline, self._expired)
        watchdog.daemon = True
        watchdog.start()
        loop = self._loop or asyncio.get_event_loop()
        loop.call_later(self.drain, self._skip)
        self._stop_running(loop)

    def _stop_running(self, loop: asyncio.AbstractEventLoop) -> None:
        # Application.stop_running stops the loop once the application runs (and must then
        # be called once only: a second loop.stop() would break PTB's own shutdown steps);
        # during start-up it only sets a marker that PTB checks after post_init, so it is
        # asked again until the application runs: a signal during start-up is never lost.
        if self._loop_stopped:
            return
        if self.app.running:
            self._loop_stopped = True
        else:
            loop.call_later(0.2, self._stop_running, loop)
        self.app.stop_running()

    def _skip(self) -> None:
        if self.skipping:
            return
        self.skipping = True
        late = [t for t in self._answering if not t.done()]
        for task in late:
            task.cancel()
        if late:
            log.warning("stopping: %d replies not sent (the users may send again)", len(late))

    def _expired(self) -> None:
        """The watchdog thread: the shutdown hangs somewhere; end the process now."""
        log.error(
            "stopping took longer than %.0f s; exiting now (pending deliveries stay in the "
            "outbox and are sent at the next start)",
            self.deadline,
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(EXIT_WATCHDOG)

    # -- updates -------------------------------------------------------------------------

    async def _gate(self, update: Update, context: object) -> None:
        """Runs before every handler: once the drain is over, an update is skipped."""
        if self.skipping:
            self.skipped += 1
            if self.skipped == 1:
                log.warning("stopping: skipping updates fetched but not answered yet")
            raise ApplicationHandlerStop
        task = asyncio.current_task()
        if task is not None:
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)
