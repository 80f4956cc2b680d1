"""Whether the content source is failing, and when to tell the admins. Pure: the caller
passes the time in.

A single failed fetch is normal (a network blip, GitHub having a bad minute), so nothing
is said at first: the bot keeps serving the last good content. The admins are told once
the fetches have failed ``ALERT_FAILURES`` times in a row *and* for at least
``ALERT_SECONDS`` (whichever comes later: a 5-minute poll alerts after 15 minutes, a
1-second poll after 15 minutes too, a 1-hour poll after the third failure), and once more
when a fetch succeeds again. Never on every poll.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ALERT_FAILURES = 3
ALERT_SECONDS = 15 * 60

Event = Literal["failing", "recovered"]


@dataclass
class SourceHealth:
    """The fetch record an operator (the ops endpoint, /stats) reads. Times are unix
    seconds; ``failing`` is True from the alert until the next success."""

    last_success: float | None = None
    last_attempt: float | None = None
    last_commit: str = ""
    last_error: str = ""  # redacted, one line
    consecutive_failures: int = 0
    failing_since: float | None = None  # the first failure of the current run of them
    failing: bool = False  # the admins were told, and no fetch has succeeded since

    def success(self, now: float, commit: str = "") -> Event | None:
        """A fetch worked; "recovered" if the admins had been told it was failing."""
        was = self.failing
        self.last_success = self.last_attempt = now
        self.last_commit = commit or self.last_commit
        self.last_error = ""
        self.consecutive_failures = 0
        self.failing_since = None
        self.failing = False
        return "recovered" if was else None

    def failure(self, now: float, error: str) -> Event | None:
        """A fetch failed; "failing" exactly once per run of failures, when it crosses both
        thresholds."""
        self.last_attempt = now
        self.last_error = error
        self.consecutive_failures += 1
        if self.failing_since is None:
            self.failing_since = now
        if self.failing:
            return None
        if (
            self.consecutive_failures >= ALERT_FAILURES
            and now - self.failing_since >= ALERT_SECONDS
        ):
            self.failing = True
            return "failing"
        return None
