"""Replies about delivery: /start /stop /time /quiet /watch /unwatch /channel /broadcast /stats."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.core.dates import DateError
from bot.core.i18n import query_problem, t
from bot.core.render import (
    escape,
)
from bot.core.schedule import format_hhmm, parse_hhmm
from bot.core.search import QueryError
from bot.db import channels, chats, topics
from bot.db.chats import ChatInfo
from bot.delivery import audience
from bot.delivery.engine import DeliveryEngine, DeliveryError, Stats
from bot.delivery.engine import stats as delivery_stats
from bot.replies.archive import (
    by_date,
)
from bot.replies.base import (
    NEEDS_TELEGRAM,
    Ctx,
    Reply,
)

# -- subscriptions and delivery ----------------------------------------------------------


def _times(ctx: Ctx, own: dt.time | None = None) -> str:
    return format_hhmm(own) if own else "、".join(format_hhmm(x) for x in ctx.delivery.times)


async def start(ctx: Ctx, arg: str = "") -> Reply:
    """/start subscribes this chat (inside a forum topic: that topic, on its own);
    /start 2025-02-14 (a deep link) opens that issue."""
    if arg.strip():
        return await by_date(ctx, arg)
    if ctx.chat is None:
        return ctx.say(NEEDS_TELEGRAM)
    if not await ctx.can_manage():
        return ctx.say("admins_only")
    if ctx.thread_id:
        if not await topics.subscribe(ctx.db, ctx.chat, ctx.thread_id):
            return ctx.say("already_topic")
    elif not await chats.subscribe(ctx.db, ctx.chat):
        return ctx.say("already")
    welcome = t(ctx.lang, "welcome", times=_times(ctx), tz=escape(ctx.delivery.timezone))
    if ctx.thread_id:
        welcome += "\n\n" + t(ctx.lang, "welcome_topic")
    return Reply((welcome,))


async def stop(ctx: Ctx, arg: str = "") -> Reply:
    """/stop: this chat's subscription, or inside a forum topic that topic's only."""
    if ctx.chat is None:
        return ctx.say(NEEDS_TELEGRAM)
    if not await ctx.can_manage():
        return ctx.say("admins_only")
    changed = await audience.stop(ctx.db, ctx.chat.id, thread_id=ctx.thread_id)
    if ctx.thread_id:
        return ctx.say("stopped_topic" if changed else "not_subscribed_topic")
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
    """/watch lists this chat's keywords; /watch 小米 adds one. In a forum topic the
    watches are that topic's, and their matches are sent there."""
    if ctx.chat is None:
        return ctx.say(NEEDS_TELEGRAM)
    terms = arg.strip()
    if not terms:
        watched = await chats.watches(ctx.db, ctx.chat.id, ctx.thread_id)
        if not watched:
            return ctx.say("watch_none")
        return ctx.say("watch_list", watches="\n".join(f"• {w}" for w in watched))
    try:
        added = await chats.add_watch(ctx.db, ctx.chat, terms, ctx.thread_id)
        if ctx.thread_id:  # a command from it: the topic is open (again, if it was gone)
            await topics.reachable(ctx.db, ctx.chat.id, ctx.thread_id)
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
    removed = await chats.remove_watch(ctx.db, ctx.chat.id, terms, ctx.thread_id)
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
        mine = await channels.managed_channels(ctx.db, ctx.user_id)
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
    changed = await channels.subscribe_channel(ctx.db, facts.info, ctx.user_id)
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
    if stats.topics:  # forum topics subscribed on their own (gone: closed or deleted)
        lines.append(
            "Forum topics: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.topics.items()))
        )
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
