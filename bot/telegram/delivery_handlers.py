"""Handlers for the delivery side: /time, /watch, /unwatch, /channel, and the admin
commands /broadcast and /stats. Thin: bot.chats and bot.delivery do the work."""

from __future__ import annotations

import datetime as dt
import html

from telegram import Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.core.dates import LATEST, DateError
from bot.core.i18n import t
from bot.core.schedule import format_hhmm, parse_hhmm
from bot.core.search import QueryError
from bot.db import chats
from bot.delivery.engine import DeliveryEngine, DeliveryError, Stats
from bot.replies import Reply
from bot.telegram.handlers import args_text, is_chat_admin, reply_ctx, send, svc

ADMIN_STATUSES = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


async def _say(
    update: Update, context: ContextTypes.DEFAULT_TYPE, key: str, **values: object
) -> None:
    ctx = await reply_ctx(update, context)
    escaped = {k: html.escape(str(v)) for k, v in values.items()}
    await send(update, context, Reply((t(ctx.lang, key, **escaped),)))


def _info(update: Update) -> chats.ChatInfo:
    assert update.effective_chat is not None
    return chats.ChatInfo.from_telegram(update.effective_chat)


async def cmd_time(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/time shows this chat's delivery time; /time 07:45 sets it; /time default resets."""
    s = svc(context)
    tz = s.config.delivery.timezone
    arg = args_text(context).strip().lower()
    if not arg:
        record = await chats.get(s.store, _info(update).id)
        own = record.delivery_time if record else None
        shown = (
            format_hhmm(own) if own else "、".join(format_hhmm(x) for x in s.config.delivery.times)
        )
        await _say(update, context, "time_show", time=shown, tz=tz)
        return
    if not await is_chat_admin(update, context):
        await _say(update, context, "admins_only")
        return
    try:
        chosen = None if arg in ("default", "默认") else parse_hhmm(arg)
    except ValueError:
        await _say(update, context, "time_usage", tz=tz)
        return
    await chats.set_delivery_time(s.store, _info(update), chosen)
    shown = (
        format_hhmm(chosen)
        if chosen
        else "、".join(format_hhmm(x) for x in s.config.delivery.times)
    )
    await _say(update, context, "time_set", time=shown, tz=tz)


async def cmd_watch(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    s = svc(context)
    terms = args_text(context).strip()
    if not terms:
        watched = await chats.watches(s.store, _info(update).id)
        if not watched:
            await _say(update, context, "watch_none")
        else:
            await _say(update, context, "watch_list", watches="\n".join(f"• {w}" for w in watched))
        return
    try:
        added = await chats.add_watch(s.store, _info(update), terms)
    except chats.WatchLimitError:
        await _say(update, context, "watch_limit", limit=chats.MAX_WATCHES)
        return
    except QueryError as err:
        await _say(update, context, "bad_query", error=str(err))
        return
    await _say(
        update,
        context,
        "watch_added" if added else "watch_exists",
        terms=chats.normalize_terms(terms),
    )


async def cmd_unwatch(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    terms = args_text(context).strip()
    if not terms:
        await _say(update, context, "unwatch_usage")
        return
    removed = await chats.remove_watch(svc(context).store, _info(update).id, terms)
    await _say(
        update,
        context,
        "unwatch_done" if removed else "unwatch_missing",
        terms=chats.normalize_terms(terms),
    )


async def cmd_channel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/channel @name [off] from a private chat, by an admin of a channel the bot administers."""
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None or chat.type != ChatType.PRIVATE:
        await _say(update, context, "channel_private")
        return
    args = context.args or []
    s = svc(context)
    if not args:
        mine = await chats.managed_channels(s.store, user.id)
        if not mine:
            await _say(update, context, "channel_none")
            return
        lines = [
            f"• {c.title or c.username or c.id} ({'✅' if c.subscribed else '⏸'})" for c in mine
        ]
        await _say(update, context, "channel_list", channels="\n".join(lines))
        return
    name, off = args[0], len(args) > 1 and args[1].lower() in ("off", "stop", "关", "退订")
    if not name.startswith("@") and not name.lstrip("-").isdigit():
        await _say(update, context, "channel_usage")
        return
    try:
        channel = await context.bot.get_chat(name if name.startswith("@") else int(name))
        bot_member = await context.bot.get_chat_member(channel.id, context.bot.id)
        user_member = await context.bot.get_chat_member(channel.id, user.id)
    except TelegramError:
        await _say(update, context, "channel_not_found", name=name)
        return
    if bot_member.status not in ADMIN_STATUSES:
        await _say(update, context, "channel_bot_not_admin", name=name)
        return
    if user_member.status not in ADMIN_STATUSES:
        await _say(update, context, "channel_user_not_admin", name=name)
        return
    info = chats.ChatInfo.from_telegram(channel)
    if off:
        changed = await chats.unsubscribe_channel(s.store, info, user.id)
        await _say(update, context, "channel_off" if changed else "channel_was_off", name=name)
    else:
        changed = await chats.subscribe_channel(s.store, info, user.id)
        await _say(update, context, "channel_on" if changed else "channel_already", name=name)


def _is_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    user = update.effective_user
    return user is not None and user.id in svc(context).config.telegram.admins


def engine_of(context: ContextTypes.DEFAULT_TYPE) -> DeliveryEngine:
    engine: DeliveryEngine = svc(context).extra["engine"]
    return engine


async def cmd_broadcast(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Admins only: post an issue (default the newest) now to everyone who lacks it."""
    if not _is_admin(update, context):
        await _say(update, context, "admin_only")
        return
    s = svc(context)
    arg = args_text(context).strip()
    date: dt.date | None = None
    if arg:
        try:
            when = await s.store.resolve_date(arg, dt.datetime.now(s.config.delivery.tz).date())
        except DateError:
            await _say(update, context, "broadcast_usage")
            return
        date = None if when == LATEST else when  # type: ignore[assignment]
    try:
        plan = await engine_of(context).broadcast_now(date, "admin")
    except DeliveryError as err:
        await _say(update, context, "broadcast_error", error=str(err))
        return
    key = "broadcast_started" if plan.chats else "broadcast_nothing"
    await _say(
        update, context, key, date=plan.issue.isoformat(), chats=plan.chats, messages=plan.messages
    )


def format_stats(stats: Stats) -> str:
    """Plain-text statistics (escaped by the caller)."""
    lines = ["Subscribers (type / status: chats)"]
    lines += [f"  {kind} / {status}: {n}" for (kind, status), n in sorted(stats.chats.items())] or [
        "  none"
    ]
    lines.append(
        "Deliveries: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.deliveries.items()))
        if stats.deliveries
        else "Deliveries: none"
    )
    lines.append("Last runs:")
    lines += [f"  {run.summary()}" for run in stats.runs] or ["  none"]
    return "\n".join(lines)


async def cmd_stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not _is_admin(update, context):
        await _say(update, context, "admin_only")
        return
    stats = await engine_of(context).stats()
    await send(update, context, Reply((f"<pre>{html.escape(format_stats(stats))}</pre>",)))


HANDLERS = {
    "time": cmd_time,
    "watch": cmd_watch,
    "unwatch": cmd_unwatch,
    "channel": cmd_channel,
    "broadcast": cmd_broadcast,
    "stats": cmd_stats,
}
