"""What the process learned that the database does not know: when Telegram last answered,
when this process last delivered a message, how the content source fares.

Other code reports here through the hooks: :meth:`OpsState.telegram_ok` (any successful Bot
API answer), :meth:`OpsState.source_ok` / :meth:`OpsState.source_failed` (the git content
source after each fetch). The clock is injected so that tests need no sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]  # unix seconds


@dataclass
class SourceHealth:
    last_ok: float | None = None  # unix seconds of the last successful fetch
    failures: int = 0  # consecutive failed fetches since
    last_error: str = ""


class OpsState:
    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self.started = clock()
        self.telegram_last_ok: float | None = None
        self.last_sent: float | None = None  # a message of the outbox confirmed, here
        self.source = SourceHealth()

    def telegram_ok(self) -> None:
        """Telegram answered a Bot API request successfully."""
        self.telegram_last_ok = self.clock()

    def delivered(self) -> None:
        """The sender got a message confirmed (which is also a Telegram answer)."""
        self.last_sent = self.telegram_last_ok = self.clock()

    def source_ok(self) -> None:
        """Hook for the content source: a fetch succeeded (changed or not)."""
        self.source = SourceHealth(self.clock())

    def source_failed(self, error: str) -> None:
        """Hook for the content source: a fetch failed; ``error`` is one line, redacted."""
        s = self.source
        self.source = SourceHealth(s.last_ok, s.failures + 1, error[:300])
