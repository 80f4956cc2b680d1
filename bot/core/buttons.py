"""Button (callback) data: built and read in one place. Telegram gives a button at most 64
bytes of data and hands it back verbatim when pressed; anyone can send any bytes, so
:func:`decode` accepts every string and answers None for what it does not know.

Forms: ``i:2025-02-14`` open an issue; ``l:2025-02`` a month's list; ``f:OFFSET:QUERY`` a
page of /find; ``F:OFFSET:KEY`` the same for a query too long to fit, by a memo key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass

MAX_BYTES = 64
MAX_OFFSET = 10**6  # far beyond any archive; a bigger number is a forged button
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class OpenIssue:
    date: dt.date


@dataclass(frozen=True)
class OpenMonth:
    year: int
    month: int


@dataclass(frozen=True)
class FindPage:
    query: str  # empty: the memo forgot it (the button is stale)
    offset: int


Action = OpenIssue | OpenMonth | FindPage


class QueryMemo:
    """Short keys for long queries in paging buttons. Kept in memory: after a restart an
    old button answers "expired" instead of guessing."""

    def __init__(self, size: int = 2048) -> None:
        self._items: OrderedDict[str, str] = OrderedDict()
        self._size = size

    def key(self, query: str) -> str:
        k = hashlib.blake2s(query.encode(), digest_size=8).hexdigest()
        self._items[k] = query
        self._items.move_to_end(k)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return k

    def get(self, key: str) -> str | None:
        return self._items.get(key)


MEMO = QueryMemo()


def encode(action: Action, memo: QueryMemo = MEMO) -> str:
    if isinstance(action, OpenIssue):
        return f"i:{action.date.isoformat()}"
    if isinstance(action, OpenMonth):
        return f"l:{action.year:04d}-{action.month:02d}"
    data = f"f:{action.offset}:{action.query}"
    if len(data.encode()) <= MAX_BYTES:
        return data
    return f"F:{action.offset}:{memo.key(action.query)}"


def parse_offset(text: str) -> int | None:
    """A paging offset typed by Telegram or forged by anyone: None unless 0..MAX_OFFSET."""
    # isdecimal() alone accepts '²' and other digits int() refuses or reads oddly.
    if not text.isascii() or not text.isdigit() or len(text) > 7:
        return None
    value = int(text)
    return value if value <= MAX_OFFSET else None


def decode(data: str, memo: QueryMemo = MEMO) -> Action | None:
    """What a pressed button asks for; None for data this bot never made."""
    kind, _, rest = data.partition(":")
    if kind == "i":
        try:
            return OpenIssue(dt.date.fromisoformat(rest))
        except ValueError:
            return None
    if kind == "l":
        m = _MONTH.match(rest)
        if m and 1 <= int(m[2]) <= 12:
            return OpenMonth(int(m[1]), int(m[2]))
        return None
    if kind in ("f", "F"):
        offset_text, sep, query = rest.partition(":")
        offset = parse_offset(offset_text)
        if not sep or offset is None:
            return None
        if kind == "F":
            query = memo.get(query) or ""
        return FindPage(query, offset)
    return None
