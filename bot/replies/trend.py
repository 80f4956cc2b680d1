"""/trend: counts in SQL, the caption, the picture."""

from __future__ import annotations

import asyncio

from bot.core.i18n import query_problem, t
from bot.core.render import (
    escape,
)
from bot.core.search import Query, QueryError, parse_query
from bot.core.trend import MAX_SERIES, Trend, build_series, choose_bucket, clip_utf16
from bot.db.archive import Archive
from bot.replies.base import (
    Ctx,
    Reply,
)

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
