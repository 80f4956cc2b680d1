"""delivery.quiet_hours: a daily window, in the delivery time zone, when scheduled
deliveries wait. A window may cross midnight (["23:00", "07:00"]); its start is inside,
its end is not (at 07:00 the held slots go out)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def inside(local: dt.time, window: tuple[dt.time, dt.time]) -> bool:
    start, end = window
    if start < end:
        return start <= local < end
    return local >= start or local < end  # across midnight


def holds(now: dt.datetime, window: tuple[dt.time, dt.time] | None, tz: ZoneInfo) -> bool:
    """Whether deliveries falling due at ``now`` (aware) wait for the window's end."""
    if window is None:
        return False
    return inside(now.astimezone(tz).time().replace(tzinfo=None), window)
