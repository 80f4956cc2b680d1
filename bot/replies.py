"""What the bot answers: one function per command or button, returning a Reply.

Shared by the Telegram handlers and the offline console, so both say the same thing.
These functions read the store but never talk to Telegram; the handlers send what they
return. Every user-supplied string that reaches a reply is escaped here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field

from bot.core.dates import ACCEPTED_FORMS, LATEST, DateError
from bot.core.i18n import t
from bot.core.markdown import visible_text
from bot.core.model import Issue, Item
from bot.core.render import escape, issue_messages, item_html, search_page_html
from bot.core.search import QueryError, parse_query
from bot.db.store import Store

FIND_PAGE = 5
INLINE_PAGE = 20  # Telegram allows 50 results per answer
MAX_CALLBACK_BYTES = 64
_MONTH = re.compile(r"^(\d{4})[-./年](\d{1,2})月?$")


@dataclass(frozen=True)
class Button:
    text: str
    data: str  # callback data, at most 64 bytes

    def __post_init__(self) -> None:
        if not 1 <= len(self.data.encode()) <= MAX_CALLBACK_BYTES:
            raise ValueError(f"callback data must be 1-64 bytes: {self.data!r}")


@dataclass(frozen=True)
class Reply:
    """HTML messages to send (the keyboard goes under the last one). ``edit``: when
    answering a button, replace the pressed message instead of sending a new one."""

    messages: tuple[str, ...] = ()
    keyboard: tuple[tuple[Button, ...], ...] = ()
    edit: bool = False
    notice: str = ""  # the short popup text of a button answer


@dataclass(frozen=True)
class InlineResult:
    id: str
    title: str
    description: str
    html: str


@dataclass(frozen=True)
class InlineAnswer:
    results: tuple[InlineResult, ...]
    next_offset: str = ""


@dataclass
class Ctx:
    """Who is asking: the store, the reply language, today's date where they are."""

    store: Store
    lang: str = "zh"
    today: dt.date = field(default_factory=dt.date.today)
    bot_username: str = "briefbot"


# -- saved searches: a /find query may be longer than a button's 64 bytes ----------------


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


def find_data(query: str, offset: int) -> str:
    data = f"f:{offset}:{query}"
    if len(data.encode()) <= MAX_CALLBACK_BYTES:
        return data
    return f"F:{offset}:{MEMO.key(query)}"


# -- issues ------------------------------------------------------------------------------


async def issue_reply(ctx: Ctx, issue: Issue) -> Reply:
    """An issue in as many messages as it needs, with ◀ ▶ buttons to its neighbours."""
    before, after = await ctx.store.neighbors(issue.date)
    row = []
    if before:
        row.append(Button(t(ctx.lang, "prev", date=before.isoformat()), f"i:{before.isoformat()}"))
    if after:
        row.append(Button(t(ctx.lang, "next", date=after.isoformat()), f"i:{after.isoformat()}"))
    return Reply(tuple(issue_messages(issue, ctx.lang)), (tuple(row),) if row else ())


async def latest(ctx: Ctx) -> Reply:
    date = await ctx.store.latest_date()
    issue = await ctx.store.issue(date) if date else None
    if issue is None:
        return Reply((t(ctx.lang, "empty_archive"),))
    return await issue_reply(ctx, issue)


async def by_date(ctx: Ctx, arg: str) -> Reply:
    text = arg.strip()
    if not text:
        return Reply((escape(t(ctx.lang, "date_usage")),))
    try:
        when = await ctx.store.resolve_date(text, ctx.today)
    except DateError:
        return Reply((escape(t(ctx.lang, "bad_date", text=text[:100], forms=ACCEPTED_FORMS)),))
    if when == LATEST:
        return await latest(ctx)
    assert isinstance(when, dt.date)
    return await open_date(ctx, when)


async def open_date(ctx: Ctx, date: dt.date) -> Reply:
    issue = await ctx.store.issue(date)
    if issue is not None:
        return await issue_reply(ctx, issue)
    before, after = await ctx.store.neighbors(date)
    row = [Button(f"◀ {d.isoformat()}", f"i:{d.isoformat()}") for d in (before,) if d]
    row += [Button(f"{d.isoformat()} ▶", f"i:{d.isoformat()}") for d in (after,) if d]
    key = "no_issue_near" if row else "no_issue"
    return Reply((t(ctx.lang, key, date=date.isoformat()),), (tuple(row),) if row else ())


# -- search ------------------------------------------------------------------------------


async def find(ctx: Ctx, query: str, offset: int = 0, edit: bool = False) -> Reply:
    """A page of results, newest first, with ◀ ▶ paging buttons (edited in place)."""
    if not query.strip():
        return Reply((escape(t(ctx.lang, "find_usage")),))
    try:
        parsed = parse_query(query)
    except QueryError as err:
        return Reply((escape(t(ctx.lang, "bad_query", error=str(err))),), edit=edit)
    page = await ctx.store.search(parsed, offset=offset, limit=FIND_PAGE)
    if page.total == 0:
        return Reply((escape(t(ctx.lang, "find_none", query=query.strip()[:100])),), edit=edit)
    if not page.hits:  # a stale page button after the archive shrank: show the first page
        return await find(ctx, query, 0, edit)
    row = []
    if offset > 0:
        row.append(Button(t(ctx.lang, "prev_page"), find_data(query, max(0, offset - FIND_PAGE))))
    if offset + FIND_PAGE < page.total:
        row.append(Button(t(ctx.lang, "next_page"), find_data(query, offset + FIND_PAGE)))
    return Reply((search_page_html(page, ctx.lang),), (tuple(row),) if row else (), edit=edit)


# -- month lists -------------------------------------------------------------------------


def _month_bounds(year: int, month: int) -> tuple[dt.date, dt.date]:
    start = dt.date(year, month, 1)
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return start, nxt - dt.timedelta(days=1)


async def month_list(ctx: Ctx, arg: str, edit: bool = False) -> Reply:
    """The issues of a month as buttons, with ◀ ▶ to the neighbouring months."""
    arg = arg.strip()
    if not arg:
        last = await ctx.store.latest_date()
        if last is None:
            return Reply((t(ctx.lang, "empty_archive"),))
        year, month = last.year, last.month
    else:
        m = _MONTH.match(arg)
        if not m or not 1 <= int(m[2]) <= 12:
            return Reply((escape(t(ctx.lang, "list_usage")),), edit=edit)
        year, month = int(m[1]), int(m[2])
    start, end = _month_bounds(year, month)
    label = f"{year}-{month:02d}"
    dates = await ctx.store.issue_dates(start, end)
    rows = [
        tuple(Button(d.strftime("%m-%d"), f"i:{d.isoformat()}") for d in dates[i : i + 4])
        for i in range(0, len(dates), 4)
    ]
    before, _ = await ctx.store.neighbors(start)
    _, after = await ctx.store.neighbors(end)
    nav = [Button(f"◀ {d:%Y-%m}", f"l:{d:%Y-%m}") for d in (before,) if d]
    nav += [Button(f"{d:%Y-%m} ▶", f"l:{d:%Y-%m}") for d in (after,) if d]
    keyboard = (*rows, tuple(nav)) if nav else tuple(rows)
    if not dates:
        return Reply((t(ctx.lang, "list_empty", month=label),), keyboard, edit=edit)
    return Reply((t(ctx.lang, "list_header", month=label, count=len(dates)),), keyboard, edit=edit)


# -- buttons -----------------------------------------------------------------------------


async def button(ctx: Ctx, data: str) -> Reply:
    """A pressed button. Unknown or stale data gets an answer, never silence."""
    kind, _, rest = data.partition(":")
    try:
        if kind == "i":
            issue = await ctx.store.issue(dt.date.fromisoformat(rest))
            if issue is None:
                return Reply(notice=t(ctx.lang, "stale"))
            return await issue_reply(ctx, issue)
        if kind == "l":
            return await month_list(ctx, rest, edit=True)
        if kind in ("f", "F"):
            offset_text, _, query = rest.partition(":")
            if kind == "F":
                query = MEMO.get(query) or ""
            if not query:
                return Reply(notice=t(ctx.lang, "stale"))
            return await find(ctx, query, max(0, int(offset_text)), edit=True)
    except ValueError:
        pass
    return Reply(notice=t(ctx.lang, "stale"))


# -- inline mode -------------------------------------------------------------------------


async def inline(ctx: Ctx, query: str, offset_text: str = "") -> InlineAnswer:
    """`@bot 小米`: matching items; `@bot 2025-02-14`: that issue; empty: the latest issue."""
    offset = int(offset_text) if offset_text.isdigit() else 0
    text = query.strip()
    issue_date: dt.date | None = None
    if not text:
        issue_date = await ctx.store.latest_date()
    else:
        try:
            when = await ctx.store.resolve_date(text, ctx.today)
            issue_date = await ctx.store.latest_date() if when == LATEST else when  # type: ignore[assignment]
        except DateError:
            issue_date = None
    if issue_date is not None:
        return await _inline_issue(ctx, issue_date, offset)
    return await _inline_search(ctx, text, offset)


async def _inline_issue(ctx: Ctx, date: dt.date, offset: int) -> InlineAnswer:
    issue = await ctx.store.issue(date)
    if issue is None:
        return InlineAnswer(())
    items = issue.items[offset : offset + INLINE_PAGE]
    results = tuple(
        InlineResult(
            f"{date.isoformat()}-{offset + i}",
            f"{date.isoformat()} #{item.number}",
            _plain_preview(item.text),
            item_html(date, item, ctx.lang),
        )
        for i, item in enumerate(items)
    )
    more = offset + INLINE_PAGE < len(issue.items)
    return InlineAnswer(results, str(offset + INLINE_PAGE) if more else "")


async def _inline_search(ctx: Ctx, text: str, offset: int) -> InlineAnswer:
    try:
        page = await ctx.store.search(text, offset=offset, limit=INLINE_PAGE)
    except QueryError:
        return InlineAnswer(())
    results = []
    for i, hit in enumerate(page.hits):
        item = Item(hit.number, hit.text, hit.urls)
        results.append(
            InlineResult(
                f"{hit.date.isoformat()}-{hit.number}-{offset + i}",
                f"{hit.date.isoformat()} #{hit.number}",
                _plain_preview(hit.text),
                item_html(hit.date, item, ctx.lang),
            )
        )
    more = offset + INLINE_PAGE < page.total
    return InlineAnswer(tuple(results), str(offset + INLINE_PAGE) if more else "")


def _plain_preview(text: str, width: int = 80) -> str:
    plain = visible_text(text)
    return plain if len(plain) <= width else plain[: width - 1] + "…"


# -- simple texts ------------------------------------------------------------------------


def help_reply(ctx: Ctx) -> Reply:
    return Reply((t(ctx.lang, "help", bot=escape(ctx.bot_username)),))


def unknown_reply(ctx: Ctx) -> Reply:
    return Reply((t(ctx.lang, "unknown"),))
