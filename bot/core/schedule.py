"""When a chat is due for the daily brief, and which issues it gets. Pure: the clock is an
argument, nothing here reads the time, the database or the network.

A *slot* is one scheduled delivery instant: a local time of day (``delivery.times``, or the
chat's own ``/time``) on a local date in ``delivery.timezone``. Each chat remembers the last
slot it was handled at; the slot due now is the latest one at or before now that comes after
it. So a bot that was down at 08:30 catches up once when it starts (the latest missed slot),
not once per missed day, and a slot is never handled twice.
"""

from __future__ import annotations

import datetime as dt
import re
from bisect import bisect_right
from collections.abc import Sequence
from zoneinfo import ZoneInfo

UTC = dt.UTC
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(text: str) -> dt.time:
    """``"8:30"`` or ``"08:30"`` as a time; ValueError names the expected form."""
    m = _HHMM.match(text.strip())
    if not m:
        raise ValueError(f"expected a time HH:MM such as 08:30, got {text!r}")
    return dt.time(int(m[1]), int(m[2]))


def format_hhmm(time: dt.time) -> str:
    return f"{time.hour:02d}:{time.minute:02d}"


def slot_key(slot: dt.datetime) -> str:
    """A slot as stored: ISO UTC to the second, so stored keys compare as instants do."""
    return slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_aware(now: dt.datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")


def _slots_on(day: dt.date, times: Sequence[dt.time], tz: ZoneInfo) -> list[dt.datetime]:
    # A local time that does not exist on a spring-forward day (02:30 in Berlin) resolves
    # with the offset before the switch (03:30 summer time); a repeated one on the autumn
    # day resolves to its first occurrence (fold=0). Either way: once a day.
    return [dt.datetime.combine(day, t, tzinfo=tz).astimezone(UTC) for t in times]


def latest_slot(now: dt.datetime, times: Sequence[dt.time], tz: ZoneInfo) -> dt.datetime:
    """The latest slot at or before ``now`` (UTC). ``times`` must not be empty."""
    _check_aware(now)
    if not times:
        raise ValueError("at least one delivery time is needed")
    today = now.astimezone(tz).date()
    # Two days back covers every time of day even across a DST switch.
    candidates = [
        slot
        for back in range(3)
        for slot in _slots_on(today - dt.timedelta(days=back), times, tz)
        if slot <= now
    ]
    return max(candidates)


def chat_times(default: Sequence[dt.time], own: dt.time | None) -> tuple[dt.time, ...]:
    """A chat's own delivery time replaces the configured ones."""
    return (own,) if own is not None else tuple(default)


def issues_to_send(
    available: Sequence[dt.date], last_issue: dt.date | None, max_backlog: int
) -> list[dt.date]:
    """The issues a chat gets at a slot, oldest first: those newer than ``last_issue``, at
    most the newest ``max_backlog``. A chat that never got one (None) gets only the newest:
    the archive is never dumped on a new subscriber. ``available`` is sorted ascending."""
    if not available or max_backlog < 1:
        return []
    if last_issue is None:
        return [available[-1]]
    newer = available[bisect_right(available, last_issue) :]
    return list(newer[-max_backlog:])
