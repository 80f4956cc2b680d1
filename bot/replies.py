"""What the bot answers: one function per command or button, returning a Reply.

Shared by the Telegram handlers and the offline console, so both say the same thing.
These functions read and write the database but never talk to Telegram: what only
Telegram can tell (is this user a group administrator, does this channel exist) comes in
through :class:`Ctx` as callables the edge provides. Every user-supplied string that
reaches a reply is escaped here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.config import Delivery
from bot.core import buttons
from bot.core.buttons import FindPage, OpenIssue, OpenMonth
from bot.core.dates import DateError, month_end
from bot.core.i18n import query_problem, t
from bot.core.markdown import visible_text
from bot.core.model import Issue, Item
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
from bot.core.schedule import format_hhmm, parse_hhmm
from bot.core.search import Query, QueryError, parse_query
from bot.core.trend import MAX_SERIES, Trend, build_series, choose_bucket, clip_utf16
from bot.db import chats
from bot.db.archive import Archive
from bot.db.chats import ChatInfo
from bot.db.database import Database
from bot.delivery import audience
from bot.delivery.engine import DeliveryEngine, DeliveryError, Stats
from bot.delivery.engine import stats as delivery_stats
from bot.delivery.posts import Link, post_links

FIND_PAGE = 5
INLINE_PAGE = 20  # Telegram allows 50 results per answer
_MONTH = re.compile(r"^(\d{4})[-./年](\d{1,2})月?$")


@dataclass(frozen=True)
class Button:
    text: str
    data: str  # callback data, at most 64 bytes

    def __post_init__(self) -> None:
        if not 1 <= len(self.data.encode()) <= buttons.MAX_BYTES:
            raise ValueError(f"callback data must be 1-64 bytes: {self.data!r}")


@dataclass(frozen=True)
class Reply:
    """HTML messages to send (the keyboard goes under the last one). ``edit``: when
    answering a button, replace the pressed message instead of sending a new one."""

    messages: tuple[str, ...] = ()
    keyboard: tuple[tuple[Button, ...], ...] = ()
    edit: bool = False
    notice: str = ""  # the short popup text of a button answer
    photo: bytes | None = None  # a PNG sent before the messages (/trend), with its caption
    caption: str = ""  # HTML, at most CAPTION_LIMIT UTF-16 units of visible text


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


async def _yes() -> bool:
    return True


@dataclass
class Ctx:
    """Who is asking and what the edge knows: the archive, the reply language, today's
    date where they are, the chat the command came from, and whether the user may change
    this chat's subscription (a group administrator; asked of Telegram only when needed)."""

    archive: Archive
    lang: str = "zh"
    today: dt.date = field(default_factory=dt.date.today)
    bot_username: str = "briefbot"
    chat: ChatInfo | None = None
    user_id: int | None = None
    is_admin: bool = False  # one of telegram.admins
    can_manage: Callable[[], Awaitable[bool]] = _yes
    delivery: Delivery = field(default_factory=Delivery)

    @property
    def db(self) -> Database:
        return self.archive.db

    def say(self, key: str, **values: object) -> Reply:
        """One message from the texts table, the values escaped."""
        escaped = {k: escape(str(v)) for k, v in values.items()}
        return Reply((t(self.lang, key, **escaped),))


def _open(date: dt.date) -> str:
    return buttons.encode(OpenIssue(date))


def _month(date: dt.date) -> str:
    return buttons.encode(OpenMonth(date.year, date.month))


def find_data(query: str, offset: int) -> str:
    return buttons.encode(FindPage(query, offset))


# -- issues ------------------------------------------------------------------------------


async def issue_reply(ctx: Ctx, issue: Issue) -> Reply:
    """An issue in as many messages as it needs, with ◀ ▶ buttons to its neighbours."""
    before, after = await ctx.archive.neighbors(issue.date)
    row = []
    if before:
        row.append(Button(t(ctx.lang, "prev", date=before.isoformat()), _open(before)))
    if after:
        row.append(Button(t(ctx.lang, "next", date=after.isoformat()), _open(after)))
    messages = issue_messages(issue, ctx.lang)
    link = (await post_links(ctx.archive, [issue.date])).issue(issue.date)
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
    date = await ctx.archive.latest_date()
    issue = await ctx.archive.issue(date) if date else None
    if issue is None:
        return Reply((t(ctx.lang, "empty_archive"),))
    return await issue_reply(ctx, issue)


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
    issue = await ctx.archive.issue(date)
    if issue is not None:
        return await issue_reply(ctx, issue)
    before, after = await ctx.archive.neighbors(date)
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
        return Reply((escape(t(ctx.lang, "bad_query", error=query_problem(ctx.lang, err))),), edit=edit)
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


# -- trends ------------------------------------------------------------------------------

CAPTION_LIMIT = 1024  # Telegram's limit for a photo caption, after entity parsing


async def load_trend(archive: Archive, query: Query) -> Trend | None:
    """Each term's matches per month (per week over a short range), counted in SQL, over
    the archive's span cut to the query's date filter; None when that span is empty."""
    span = await archive.date_span()
    if span is None:
        return None
    start, end = span
    if query.period is not None:
        start, end = max(start, query.period.start), min(end, query.period.end)
    if end < start:
        return None
    bucket = choose_bucket(start, end)
    series = []
    for term in query.terms[:MAX_SERIES]:
        rows = await archive.match_counts((term,), start, end, by_day=bucket == "week")
        series.append(build_series(term, rows, start, end, bucket))
    return Trend(bucket, tuple(series))


async def trend_of(ctx: Ctx, arg: str) -> Trend | Reply:
    """The trend /trend draws, or the text answer when there is nothing to draw."""
    if not arg.strip():
        return ctx.say("trend_usage", limit=MAX_SERIES)
    try:
        query = parse_query(arg)
    except QueryError as err:
        return ctx.say("bad_query", error=query_problem(ctx.lang, err))
    if not query.terms:
        return ctx.say("trend_usage", limit=MAX_SERIES)
    if len(query.terms) > MAX_SERIES:
        return ctx.say("trend_too_many", limit=MAX_SERIES)
    found = await load_trend(ctx.archive, query)
    if found is None or found.total == 0:
        return ctx.say("trend_none", query=arg.strip()[:100])
    return found


def trend_caption(lang: str, trend: Trend, numbered: bool) -> str:
    """Plain text (escape it for HTML): the range, then per term its total, peak period
    and first and last dates. ``numbered``: the legend says #1, #2 instead of the terms."""
    periods = trend.periods
    bucket = t(lang, f"trend_{trend.bucket}")
    lines = [t(lang, "trend_head", start=periods[0], end=periods[-1], bucket=bucket)]
    for i, s in enumerate(trend.series, 1):
        label = f"#{i} " if numbered else ""
        peak = s.peak
        if peak is None or s.first is None or s.last is None:
            lines.append(t(lang, "trend_line_none", label=label, term=s.term))
            continue
        lines.append(
            t(
                lang,
                "trend_line",
                label=label,
                term=s.term,
                total=s.total,
                peak=peak[0],
                peak_count=peak[1],
                first=s.first.isoformat(),
                last=s.last.isoformat(),
            )
        )
    return clip_utf16("\n".join(lines), CAPTION_LIMIT)


def trend_picture(trend: Trend) -> tuple[bytes, bool]:
    """The PNG, and whether its legend is numbered (no installed font has the terms).
    Blocking (font files, drawing): call it in a thread."""
    from bot.core.chart import legend_labels, render_png

    labels, family = legend_labels(tuple(s.term for s in trend.series))
    return render_png(trend, labels, family), family is None


async def trend(ctx: Ctx, arg: str) -> Reply:
    """/trend 小米 华为 2024..2025: a chart of matching items over time, one line a term."""
    found = await trend_of(ctx, arg)
    if isinstance(found, Reply):
        return found
    png, numbered = await asyncio.to_thread(trend_picture, found)
    return Reply(photo=png, caption=escape(trend_caption(ctx.lang, found, numbered)))


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
        issue = await ctx.archive.issue(action.date)
        if issue is not None:
            return await issue_reply(ctx, issue)
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
    links = await post_links(ctx.archive, [date])
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


# -- subscriptions and delivery ----------------------------------------------------------

NEEDS_TELEGRAM = "needs_telegram"


def _times(ctx: Ctx, own: dt.time | None = None) -> str:
    return format_hhmm(own) if own else "、".join(format_hhmm(x) for x in ctx.delivery.times)


async def start(ctx: Ctx, arg: str = "") -> Reply:
    """/start subscribes this chat; /start 2025-02-14 (a deep link) opens that issue."""
    if arg.strip():
        return await by_date(ctx, arg)
    if ctx.chat is None:
        return ctx.say(NEEDS_TELEGRAM)
    if not await ctx.can_manage():
        return ctx.say("admins_only")
    if not await chats.subscribe(ctx.db, ctx.chat):
        return ctx.say("already")
    return Reply((t(ctx.lang, "welcome", times=_times(ctx), tz=escape(ctx.delivery.timezone)),))


async def stop(ctx: Ctx, arg: str = "") -> Reply:
    if ctx.chat is None:
        return ctx.say(NEEDS_TELEGRAM)
    if not await ctx.can_manage():
        return ctx.say("admins_only")
    changed = await audience.stop(ctx.db, ctx.chat.id)
    return ctx.say("stopped" if changed else "not_subscribed")


async def delivery_time(ctx: Ctx, arg: str) -> Reply:
    """/time shows this chat's delivery time; /time 07:45 sets it; /time default resets."""
    if ctx.chat is None:
        return ctx.say(NEEDS_TELEGRAM)
    tz = ctx.delivery.timezone
    text = arg.strip().lower()
    if not text:
        if await chats.is_on_arrival(ctx.db, ctx.chat.id):
            return ctx.say("time_show_now")
        record = await chats.get(ctx.db, ctx.chat.id)
        return ctx.say(
            "time_show", time=_times(ctx, record.delivery_time if record else None), tz=tz
        )
    if not await ctx.can_manage():
        return ctx.say("admins_only")
    if text in ("now", "立即", "马上"):  # each issue as soon as it is ready
        await chats.set_delivery_time(ctx.db, ctx.chat, None, on_arrival=True)
        return ctx.say("time_now")
    try:
        chosen = None if text in ("default", "默认") else parse_hhmm(text)
    except ValueError:
        return ctx.say("time_usage", tz=tz)
    await chats.set_delivery_time(ctx.db, ctx.chat, chosen)
    return ctx.say("time_set", time=_times(ctx, chosen), tz=tz)


async def quiet(ctx: Ctx, arg: str) -> Reply:
    """/quiet shows the choice; /quiet on: this chat's deliveries arrive without a sound;
    /quiet off: with one again. Replies to commands are never silenced."""
    if ctx.chat is None:
        return ctx.say(NEEDS_TELEGRAM)
    choice = arg.strip().lower()
    if not choice:
        on = await chats.is_quiet(ctx.db, ctx.chat.id)
        return ctx.say("quiet_is_on" if on else "quiet_is_off")
    if choice not in ("on", "off", "开", "关"):
        return ctx.say("quiet_usage")
    if not await ctx.can_manage():
        return ctx.say("admins_only")
    on = choice in ("on", "开")
    await chats.set_quiet(ctx.db, ctx.chat, on)
    return ctx.say("quiet_on" if on else "quiet_off")


async def watch(ctx: Ctx, arg: str) -> Reply:
    """/watch lists this chat's keywords; /watch 小米 adds one."""
    if ctx.chat is None:
        return ctx.say(NEEDS_TELEGRAM)
    terms = arg.strip()
    if not terms:
        watched = await chats.watches(ctx.db, ctx.chat.id)
        if not watched:
            return ctx.say("watch_none")
        return ctx.say("watch_list", watches="\n".join(f"• {w}" for w in watched))
    try:
        added = await chats.add_watch(ctx.db, ctx.chat, terms)
    except chats.WatchLimitError:
        return ctx.say("watch_limit", limit=chats.MAX_WATCHES)
    except QueryError as err:
        return ctx.say("bad_query", error=query_problem(ctx.lang, err))
    return ctx.say("watch_added" if added else "watch_exists", terms=chats.normalize_terms(terms))


async def unwatch(ctx: Ctx, arg: str) -> Reply:
    if ctx.chat is None:
        return ctx.say(NEEDS_TELEGRAM)
    terms = arg.strip()
    if not terms:
        return ctx.say("unwatch_usage")
    removed = await chats.remove_watch(ctx.db, ctx.chat.id, terms)
    key = "unwatch_done" if removed else "unwatch_missing"
    return ctx.say(key, terms=chats.normalize_terms(terms))


@dataclass(frozen=True)
class ChannelFacts:
    """What Telegram says about a channel named in /channel (the edge asks getChat and
    getChatMember); None from the lookup means it could not be found."""

    info: ChatInfo
    bot_is_admin: bool
    user_is_admin: bool


ChannelLookup = Callable[[str | int], Awaitable[ChannelFacts | None]]


async def channel(ctx: Ctx, arg: str, lookup: ChannelLookup | None = None) -> Reply:
    """/channel @name [off] from a private chat, by an admin of a channel the bot administers."""
    if lookup is None:
        return ctx.say(NEEDS_TELEGRAM)
    if ctx.chat is None or ctx.chat.type != "private" or ctx.user_id is None:
        return ctx.say("channel_private")
    args = arg.split()
    if not args:
        mine = await chats.managed_channels(ctx.db, ctx.user_id)
        if not mine:
            return ctx.say("channel_none")
        lines = [
            f"• {c.title or c.username or c.id} ({'✅' if c.subscribed else '⏸'})" for c in mine
        ]
        return ctx.say("channel_list", channels="\n".join(lines))
    name, off = args[0], len(args) > 1 and args[1].lower() in ("off", "stop", "关", "退订")
    numeric = name.removeprefix("-")
    if not name.startswith("@") and not (
        numeric.isascii() and numeric.isdigit() and len(name) < 20
    ):
        return ctx.say("channel_usage")
    facts = await lookup(name if name.startswith("@") else int(name))
    if facts is None:
        return ctx.say("channel_not_found", name=name)
    if not facts.bot_is_admin:
        return ctx.say("channel_bot_not_admin", name=name)
    if not facts.user_is_admin:
        return ctx.say("channel_user_not_admin", name=name)
    if off:
        changed = await audience.stop_channel(ctx.db, facts.info, ctx.user_id)
        return ctx.say("channel_off" if changed else "channel_was_off", name=name)
    changed = await chats.subscribe_channel(ctx.db, facts.info, ctx.user_id)
    return ctx.say("channel_on" if changed else "channel_already", name=name)


async def broadcast(ctx: Ctx, arg: str, engine: DeliveryEngine | None) -> Reply:
    """Admins only: post an issue (default the newest) now to everyone who lacks it."""
    if not ctx.is_admin:
        return ctx.say("admin_only")
    if engine is None:
        return ctx.say(NEEDS_TELEGRAM)
    date: dt.date | None = None
    if arg.strip():
        try:
            date = await ctx.archive.resolve_date(arg.strip(), ctx.today)
        except DateError:
            return ctx.say("broadcast_usage")
    try:
        plan = await engine.broadcast_now(date, "admin")
    except DeliveryError as err:
        return ctx.say("broadcast_error", error=str(err))
    key = "broadcast_started" if plan.chats else "broadcast_nothing"
    return ctx.say(key, date=plan.issue.isoformat(), chats=plan.chats, messages=plan.messages)


def format_stats(stats: Stats) -> str:
    """Plain-text statistics (escaped by the caller)."""
    lines = ["Subscribers (type / status: chats)"]
    by_type = [f"  {kind} / {status}: {n}" for (kind, status), n in sorted(stats.chats.items())]
    lines += by_type or ["  none"]
    deliveries = ", ".join(f"{k} {v}" for k, v in sorted(stats.deliveries.items()))
    lines.append(f"Deliveries: {deliveries or 'none'}")
    if stats.edits:  # corrections edited in place; refused: Telegram cannot edit them
        edited = ", ".join(f"{k} {v}" for k, v in sorted(stats.edits.items()))
        lines.append(f"Corrections: {edited}")
    lines.append("Last runs:")
    lines += [f"  {run.summary()}" for run in stats.runs] or ["  none"]
    return "\n".join(lines)


async def stats(ctx: Ctx, arg: str = "") -> Reply:
    if not ctx.is_admin:
        return ctx.say("admin_only")
    return ctx.say("stats", stats=format_stats(await delivery_stats(ctx.db)))
