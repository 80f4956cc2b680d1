"""Alerts to the admins: pure decisions, no I/O.

Each check produces :class:`Finding` s (a condition and what is wrong, or ``None`` when it is
fine); :meth:`Alerts.decide` turns them into the messages to send now:

- a condition that starts: one message;
- while it lasts: the same again at most every ``repeat_seconds`` (an hour), unless the
  condition is an event (``repeat=False``, e.g. one broadcast that failed): that is told
  once, and again only when it is a different event (its text changes);
- when it ends: one recovery message.

A condition absent from a round of findings (its check could not run) keeps its state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

REPEAT_SECONDS = 3600.0

TITLES = {
    "sender_stuck": "the sender is stuck",
    "broadcast_failures": "a broadcast had many failures",
    "stale_content": "no new issue",
    "storage": "the database or its disk",
}


@dataclass(frozen=True)
class Finding:
    name: str  # a key of TITLES
    problem: str | None  # one line for the admins; None: fine
    repeat: bool = True  # False: an event, told once (see the module docstring)


@dataclass
class _Active:
    since: float
    told: float  # when the last message about it went out
    problem: str


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Alerts:
    def __init__(self, repeat_seconds: float = REPEAT_SECONDS) -> None:
        self.repeat_seconds = repeat_seconds
        self.active: dict[str, _Active] = {}

    def decide(self, findings: Iterable[Finding], now: float) -> list[str]:
        messages: list[str] = []
        for f in findings:
            title = TITLES.get(f.name, f.name)
            current = self.active.get(f.name)
            if f.problem is None:
                if current is not None:
                    del self.active[f.name]
                    messages.append(
                        f"✅ briefbot recovered: {title} (after {_ago(now - current.since)})"
                    )
                continue
            if current is None:
                self.active[f.name] = _Active(now, now, f.problem)
                messages.append(f"🚨 briefbot: {f.problem}")
            elif not f.repeat:
                if f.problem != current.problem:  # another event of the same kind
                    current.told, current.problem = now, f.problem
                    messages.append(f"🚨 briefbot: {f.problem}")
            elif now - current.told >= self.repeat_seconds:
                current.told, current.problem = now, f.problem
                since = _ago(now - current.since)
                messages.append(f"🚨 briefbot (for {since} now): {f.problem}")
            else:
                current.problem = f.problem
        return messages
