"""Replies about the archive: issues, dates, /find, month lists, buttons, inline mode."""

from __future__ import annotations

import datetime as dt

from bot.core import buttons
from bot.core.buttons import FindPage, OpenIssue, OpenMonth
from bot.core.dates import DateError, month_end
from bot.core.i18n import query_problem, t
from bot.core.markdown import visible_text
from bot.core.model import Item
from bot.core.postlinks import visible
from bot.core.render import (
    MAX_UTF16,
    escape,
    escape_attr,
    hit_heading,
    issue_messages,
    item_html,
    search_page_html,
    utf16_len,
)
from bot.core.search import QueryError, parse_query
from bot.db.archive import IssueView
from bot.delivery.posts import Link, post_links
from bot.replies.base import (
    _MONTH,
    FIND_PAGE,
    INLINE_PAGE,
    Button,
    Ctx,
    InlineAnswer,
    InlineResult,
    Reply,
    _month,
    _open,
    find_data,
)

# -- issues ------------------------------------------------------------------------------


async def issue_reply(ctx: Ctx, view: IssueView) -> Reply:
    """An issue in as many messages as it needs, with ◀ ▶ buttons to its neighbours (read
    with it: ``Archive.view``)."""
    issue, before, after = view.issue, view.before, view.after
    assert issue is not None
    row = []
    if before:
        row.append(Button(t(ctx.lang, "prev", date=before.isoformat()), _open(before)))
    if after:
        row.append(Button(t(ctx.lang, "next", date=after.isoformat()), _open(after)))
    messages = issue_messages(issue, ctx.lang)
    link = (await post_links(ctx.archive, [issue.date], [issue])).issue(issue.date)
    if link is not None:  # it went to a public channel: where to read (and share) it there
        line = t(ctx.lang, "channel_post", link=_anchor(link))
        if _units(messages[-1]) + _units(_GAP + line) <= MAX_UTF16:
            messages[-1] += _GAP + line
        else:
            messages.append(line)
    return Reply(tuple(messages), (tuple(row),) if row else ())


_GAP = "\n\n"


def _anchor(link: Link) -> str:
    return f'<a href="{escape_attr(link.url)}">{escape(link.label)}</a>'


def _units(message_html: str) -> int:
    """Visible UTF-16 units, what Telegram's 4096 limit counts."""
    return utf16_len(visible(message_html))


def _item_line(ctx: Ctx, date: dt.date, number: int, link: Link | None) -> str:
    """The "in the channel" line of one item, or "" when it has no post to link."""
    if link is None:
        return ""
    item = f"{date.isoformat()} #{number}"
    return t(ctx.lang, "channel_post_item", item=item, link=_anchor(link))


async def latest(ctx: Ctx) -> Reply:
    view = await ctx.archive.view(None)  # the newest issue, found in the same statement
    if view.issue is None:
        return Reply((t(ctx.lang, "empty_archive"),))
    return await issue_reply(ctx, view)


async def by_date(ctx: Ctx, arg: str) -> Reply:
    text = arg.strip()
    if not text:
        return Reply((escape(t(ctx.lang, "date_usage")),))
    try:
        when = await ctx.archive.resolve_date(text, ctx.today)
    except DateError:
        forms = t(ctx.lang, "date_forms")
        return Reply((escape(t(ctx.lang, "bad_date", text=text[:100], forms=forms)),))
    if when is None:
        return await latest(ctx)
    return await open_date(ctx, when)


async def open_date(ctx: Ctx, date: dt.date) -> Reply:
    view = await ctx.archive.view(date)
    if view.issue is not None:
        return await issue_reply(ctx, view)
    before, after = view.before, view.after
    row = [Button(f"◀ {d.isoformat()}", _open(d)) for d in (before,) if d]
    row += [Button(f"{d.isoformat()} ▶", _open(d)) for d in (after,) if d]
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
        return Reply(
            (escape(t(ctx.lang, "bad_query", error=query_problem(ctx.lang, err))),), edit=edit
        )
    page = await ctx.archive.search(parsed, offset=offset, limit=FIND_PAGE, collapse=True)
    if page.total == 0:
        return Reply((escape(t(ctx.lang, "find_none", query=query.strip()[:100])),), edit=edit)
    if not page.hits:  # a stale page button after the archive shrank: show the first page
        return await find(ctx, query, 0, edit)
    row = []
    if offset > 0:
        row.append(Button(t(ctx.lang, "prev_page"), find_data(query, max(0, offset - FIND_PAGE))))
    if offset + FIND_PAGE < page.total:
        row.append(Button(t(ctx.lang, "next_page"), find_data(query, offset + FIND_PAGE)))
    # Each hit that went to a public channel gets its link, in lines under the page; the
    # page is rendered that much shorter so that both fit one message.
    links = await post_links(ctx.archive, [hit.date for hit in page.hits])
    lines = [_item_line(ctx, h.date, h.number, links.item(h.date, h.number)) for h in page.hits]
    block = "\n".join(line for line in lines if line)
    room = _units(_GAP + block) if block else 0
    text = search_page_html(page, ctx.lang, limit=MAX_UTF16 - room)
    text = text + _GAP + block if block else text
    return Reply((text,), (tuple(row),) if row else (), edit=edit)


# -- month lists -------------------------------------------------------------------------


def _month_bounds(year: int, month: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, month, 1), month_end(year, month)


async def month_list(ctx: Ctx, arg: str, edit: bool = False) -> Reply:
    """The issues of a month as buttons, with ◀ ▶ to the neighbouring months."""
    arg = arg.strip()
    if not arg:
        last = await ctx.archive.latest_date()
        if last is None:
            return Reply((t(ctx.lang, "empty_archive"),))
        year, month = last.year, last.month
    else:
        m = _MONTH.match(arg)
        if not m or not 1 <= int(m[2]) <= 12 or not 1 <= int(m[1]) <= 9999:
            return Reply((escape(t(ctx.lang, "list_usage")),), edit=edit)
        year, month = int(m[1]), int(m[2])
    start, end = _month_bounds(year, month)
    label = f"{year}-{month:02d}"
    dates = await ctx.archive.issue_dates(start, end)
    rows = [
        tuple(Button(d.strftime("%m-%d"), _open(d)) for d in dates[i : i + 4])
        for i in range(0, len(dates), 4)
    ]
    before, _ = await ctx.archive.neighbors(start)
    _, after = await ctx.archive.neighbors(end)
    nav = [Button(f"◀ {d:%Y-%m}", _month(d)) for d in (before,) if d]
    nav += [Button(f"{d:%Y-%m} ▶", _month(d)) for d in (after,) if d]
    keyboard = (*rows, tuple(nav)) if nav else tuple(rows)
    if not dates:
        return Reply((t(ctx.lang, "list_empty", month=label),), keyboard, edit=edit)
    return Reply((t(ctx.lang, "list_header", month=label, count=len(dates)),), keyboard, edit=edit)


# -- buttons -----------------------------------------------------------------------------


async def button(ctx: Ctx, data: str) -> Reply:
    """A pressed button. Unknown or stale data gets an answer, never silence."""
    action = buttons.decode(data)
    if isinstance(action, OpenIssue):
        view = await ctx.archive.view(action.date)
        if view.issue is not None:
            return await issue_reply(ctx, view)
    elif isinstance(action, OpenMonth):
        return await month_list(ctx, f"{action.year}-{action.month:02d}", edit=True)
    elif isinstance(action, FindPage) and action.query:
        return await find(ctx, action.query, action.offset, edit=True)
    return Reply(notice=t(ctx.lang, "stale"))


# -- inline mode -------------------------------------------------------------------------


async def inline(ctx: Ctx, query: str, offset_text: str = "") -> InlineAnswer:
    """`@bot 小米`: matching items; `@bot 2025-02-14`: that issue; empty: the latest issue."""
    offset = buttons.parse_offset(offset_text) or 0
    text = query.strip()
    issue_date: dt.date | None = None
    if not text:
        issue_date = await ctx.archive.latest_date()
    else:
        try:
            when = await ctx.archive.resolve_date(text, ctx.today)
            issue_date = await ctx.archive.latest_date() if when is None else when
        except DateError:
            issue_date = None
    if issue_date is not None:
        return await _inline_issue(ctx, issue_date, offset)
    return await _inline_search(ctx, text, offset)


async def _inline_issue(ctx: Ctx, date: dt.date, offset: int) -> InlineAnswer:
    issue = await ctx.archive.issue(date)
    if issue is None:
        return InlineAnswer(())
    items = issue.items[offset : offset + INLINE_PAGE]
    links = await post_links(ctx.archive, [date], [issue])
    results = tuple(
        InlineResult(
            f"{date.isoformat()}-{offset + i}",
            f"{date.isoformat()} #{item.number}",
            _plain_preview(item.text),
            _item_message(ctx, date, item, links.item(date, item.number)),
        )
        for i, item in enumerate(items)
    )
    more = offset + INLINE_PAGE < len(issue.items)
    return InlineAnswer(results, str(offset + INLINE_PAGE) if more else "")


async def _inline_search(ctx: Ctx, text: str, offset: int) -> InlineAnswer:
    try:
        page = await ctx.archive.search(text, offset=offset, limit=INLINE_PAGE, collapse=True)
    except QueryError:
        return InlineAnswer(())
    results = []
    links = await post_links(ctx.archive, [hit.date for hit in page.hits])
    for i, hit in enumerate(page.hits):
        item = Item(hit.number, hit.text, hit.urls)
        results.append(
            InlineResult(
                f"{hit.date.isoformat()}-{hit.number}-{offset + i}",
                hit_heading(hit),  # one result for a text in several issues, every date
                _plain_preview(hit.text),
                _item_message(ctx, hit.date, item, links.item(hit.date, hit.number)),
            )
        )
    more = offset + INLINE_PAGE < page.total
    return InlineAnswer(tuple(results), str(offset + INLINE_PAGE) if more else "")


def _item_message(ctx: Ctx, date: dt.date, item: Item, link: Link | None) -> str:
    """One item as the message an inline result sends, with its channel link if it has one."""
    line = _item_line(ctx, date, item.number, link)
    if not line:
        return item_html(date, item, ctx.lang)
    return item_html(date, item, ctx.lang, limit=MAX_UTF16 - _units(_GAP + line)) + _GAP + line


def _plain_preview(text: str, width: int = 80) -> str:
    plain = visible_text(text)
    return plain if len(plain) <= width else plain[: width - 1] + "…"


# -- simple texts ------------------------------------------------------------------------


def help_reply(ctx: Ctx) -> Reply:
    return Reply((t(ctx.lang, "help", bot=escape(ctx.bot_username)),))


def unknown_reply(ctx: Ctx) -> Reply:
    return Reply((t(ctx.lang, "unknown"),))
