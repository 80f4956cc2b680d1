"""The schedule, pure: which slot is due, and which issues a chat gets. No waiting."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.core.schedule import chat_times, issues_to_send, latest_slot, parse_hhmm, slot_key

UTC = dt.UTC
SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
T = dt.time
D = dt.date


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def due_slot(
    now: dt.datetime,
    times: list[dt.time],
    tz: ZoneInfo,
    own: dt.time | None,
    last: dt.datetime | None,
) -> dt.datetime | None:
    """The planner's rule (its SQL: ``last_slot IS NULL OR last_slot < ?``): the latest slot
    at or before now is due unless the chat's last handled slot key is not before it."""
    slot = latest_slot(now, chat_times(times, own), tz)
    return slot if last is None or slot_key(last) < slot_key(slot) else None


@pytest.mark.parametrize(
    ("now", "times", "tz", "expected"),
    [
        # 08:30 Shanghai is 00:30 UTC.
        ("2025-02-14 00:29", [T(8, 30)], SHANGHAI, "2025-02-13 00:30"),
        ("2025-02-14 00:30", [T(8, 30)], SHANGHAI, "2025-02-14 00:30"),
        ("2025-02-14 15:59", [T(8, 30)], SHANGHAI, "2025-02-14 00:30"),
        # The same instant, in UTC: a different day's slot.
        ("2025-02-14 00:29", [T(8, 30)], ZoneInfo("UTC"), "2025-02-13 08:30"),
        ("2025-02-14 08:30", [T(8, 30)], ZoneInfo("UTC"), "2025-02-14 08:30"),
        # Midnight: local 00:00 is 16:00 UTC the day before.
        ("2025-02-14 15:59", [T(0, 0)], SHANGHAI, "2025-02-13 16:00"),
        ("2025-02-14 16:00", [T(0, 0)], SHANGHAI, "2025-02-14 16:00"),
        # Several times a day.
        ("2025-02-14 03:59", [T(8, 30), T(12, 0), T(20, 0)], SHANGHAI, "2025-02-14 00:30"),
        ("2025-02-14 04:00", [T(8, 30), T(12, 0), T(20, 0)], SHANGHAI, "2025-02-14 04:00"),
        ("2025-02-14 00:10", [T(8, 30), T(12, 0), T(20, 0)], SHANGHAI, "2025-02-13 12:00"),
        # Berlin, spring forward on 2025-03-30: 08:30 is 07:30 UTC before, 06:30 after.
        ("2025-03-29 07:30", [T(8, 30)], BERLIN, "2025-03-29 07:30"),
        ("2025-03-30 06:29", [T(8, 30)], BERLIN, "2025-03-29 07:30"),
        ("2025-03-30 06:30", [T(8, 30)], BERLIN, "2025-03-30 06:30"),
        # 02:30 does not exist that day: it happens once, at 03:30 summer time.
        ("2025-03-30 01:29", [T(2, 30)], BERLIN, "2025-03-29 01:30"),
        ("2025-03-30 01:30", [T(2, 30)], BERLIN, "2025-03-30 01:30"),
        # Fall back on 2025-10-26: 02:30 happens twice; the first one counts.
        ("2025-10-26 00:30", [T(2, 30)], BERLIN, "2025-10-26 00:30"),
        ("2025-10-26 01:45", [T(2, 30)], BERLIN, "2025-10-26 00:30"),
        ("2025-10-26 07:30", [T(8, 30)], BERLIN, "2025-10-26 07:30"),
    ],
)
def test_latest_slot(now: str, times: list[dt.time], tz: ZoneInfo, expected: str) -> None:
    assert latest_slot(utc(now), times, tz) == utc(expected)


def test_naive_now_and_no_times_are_errors() -> None:
    with pytest.raises(ValueError, match="aware"):
        latest_slot(dt.datetime(2025, 2, 14), [T(8, 30)], SHANGHAI)
    with pytest.raises(ValueError, match="at least one"):
        latest_slot(utc("2025-02-14 00:00"), [], SHANGHAI)


@pytest.mark.parametrize(
    ("now", "own", "last", "expected"),
    [
        # Never handled: the latest slot is due.
        ("2025-02-14 01:00", None, None, "2025-02-14 00:30"),
        # Already handled: nothing until the next slot.
        ("2025-02-14 01:00", None, "2025-02-14 00:30", None),
        ("2025-02-15 00:29", None, "2025-02-14 00:30", None),
        ("2025-02-15 00:30", None, "2025-02-14 00:30", "2025-02-15 00:30"),
        # Down for three days: one catch-up, the latest missed slot, not three.
        ("2025-02-17 09:00", None, "2025-02-14 00:30", "2025-02-17 00:30"),
        # Subscribed after today's slot (last = subscription time): tomorrow.
        ("2025-02-14 05:00", None, "2025-02-14 03:00", None),
        # The chat's own time replaces the configured one.
        ("2025-02-14 05:00", T(12, 0), "2025-02-14 00:30", "2025-02-14 04:00"),
        ("2025-02-14 03:59", T(12, 0), "2025-02-14 00:30", None),
    ],
)
def test_due_slot(now: str, own: dt.time | None, last: str | None, expected: str | None) -> None:
    got = due_slot(utc(now), [T(8, 30)], SHANGHAI, own, utc(last) if last else None)
    assert got == (utc(expected) if expected else None)


@pytest.mark.parametrize(
    ("tz", "times"),
    [
        (SHANGHAI, [T(8, 30)]),
        (ZoneInfo("UTC"), [T(0, 0), T(12, 0)]),
        (BERLIN, [T(2, 30)]),  # through both switches
        (BERLIN, [T(8, 30), T(20, 15)]),
    ],
)
@pytest.mark.parametrize("start", ["2025-03-24 22:00", "2025-10-21 22:00"])
def test_each_slot_once_per_day_over_a_week(tz: ZoneInfo, times: list[dt.time], start: str) -> None:
    """A job every 7 minutes for 10 days, DST switch included: each slot exactly once."""
    now, last = utc(start), utc(start)
    handled: list[dt.datetime] = []
    while now < utc(start) + dt.timedelta(days=10):
        slot = due_slot(now, times, tz, None, last)
        if slot:
            handled.append(slot)
            last = slot
        now += dt.timedelta(minutes=7)
    local_days = [s.astimezone(tz).date() for s in handled]
    assert len(handled) == len(set(handled)) == 10 * len(times)
    assert all(local_days.count(d) == len(times) for d in set(local_days))


@pytest.mark.parametrize(
    ("available", "last", "backlog", "expected"),
    [
        ([], None, 3, []),
        ([1, 2, 3, 4], None, 3, [4]),  # a new subscriber: only the newest
        ([1, 2, 3, 4], 4, 3, []),
        ([1, 2, 3, 4], 3, 3, [4]),
        ([1, 2, 3, 4, 5, 6], 1, 3, [4, 5, 6]),  # a backlog: the newest 3, oldest first
        ([1, 2, 3, 4, 5, 6], 1, 1, [6]),
        ([1, 3, 5], 2, 3, [3, 5]),  # last_issue need not be an issue (removed since)
        ([1, 3, 5], 9, 3, []),
    ],
)
def test_issues_to_send(
    available: list[int], last: int | None, backlog: int, expected: list[int]
) -> None:
    def day(n: int) -> dt.date:
        return D(2025, 2, n)

    got = issues_to_send([day(n) for n in available], day(last) if last else None, backlog)
    assert got == [day(n) for n in expected]


def test_slot_keys_sort_like_instants() -> None:
    a, b = utc("2025-02-14 00:30"), utc("2025-02-14 12:00")
    assert slot_key(a) == "2025-02-14T00:30:00Z"
    assert slot_key(b.astimezone(SHANGHAI)) == "2025-02-14T12:00:00Z"
    assert slot_key(a) < slot_key(b)
    assert dt.datetime.fromisoformat(slot_key(a)) == a


@pytest.mark.parametrize(("text", "expected"), [("8:30", T(8, 30)), ("08:05", T(8, 5))])
def test_parse_hhmm(text: str, expected: dt.time) -> None:
    assert parse_hhmm(text) == expected


@pytest.mark.parametrize("text", ["24:00", "8", "08:60", "x"])
def test_parse_hhmm_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm(text)
