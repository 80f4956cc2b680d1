"""python-telegram-bot handlers: thin adapters from updates to :mod:`bot.replies` and back.

Each handler builds the reply context from the update, calls one reply function, and
sends what it returns. No decision is made here; what only Telegram can answer (is this
user a group administrator, does that channel exist) is passed to replies as callables.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import BadRequest, Conflict, NetworkError, TelegramError
from telegram.ext import ApplicationHandlerStop, CallbackContext, ExtBot

from bot import replies
from bot.config import Config
from bot.core.i18n import LANGS, lang_of, t
from bot.core.render import MAX_UTF16
from bot.core.throttle import Throttle, Verdict
from bot.db import chats
from bot.db.archive import Archive
from bot.db.chats import ChatInfo
from bot.db.database import Database
from bot.delivery import audience
from bot.delivery.engine import DeliveryEngine
from bot.logs import redact
from bot.ops.service import Ops
from bot.replies import ChannelFacts, Ctx, Reply
from bot.source.follow import Follower
from bot.telegram.replybot import send_text

log = logging.getLogger(__name__)

ADMIN_STATUSES = (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


@dataclass
class Services:
    """What handlers need. The engine is there once delivery has started."""

    config: Config
    db: Database
    archive: Archive
    throttle: Throttle
    engine: DeliveryEngine | None = None
    triage: ErrorTriage = field(default_factory=lambda: ErrorTriage())
    source: Follower | None = None  # the git source (content.source), its health for ops
    ops: Ops | None = None  # health, metrics, alerts (bot/ops), set in post_init


class BotData:
    """``context.bot_data``: typed (``ContextTypes(bot_data=BotData)``), set in post_init."""

    def __init__(self) -> None:
        self.services: Services | None = None


Context = CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]
Handler = Callable[[Update, Context], Coroutine[Any, Any, None]]


def svc(context: Context) -> Services:
    services = context.bot_data.services
    if services is None:  # an update before post_init finished: PTB does not do that
        raise RuntimeError("services are not ready")
    return services


async def is_chat_admin(update: Update, context: Context) -> bool:
    """In groups only administrators change the subscription (checked with getChatMember)."""
    chat, user, message = update.effective_chat, update.effective_user, update.effective_message
    if chat is None or chat.type == ChatType.PRIVATE:
        return True
    if message and message.sender_chat and message.sender_chat.id == chat.id:
        return True  # an anonymous group administrator
    if user is None:
        return False
    member = await context.bot.get_chat_member(chat.id, user.id)
    return member.status in ADMIN_STATUSES


async def reply_ctx(update: Update, context: Context) -> Ctx:
    """The reply context: a language chosen with /lang wins over the user's Telegram one."""
    s = svc(context)
    user, chat = update.effective_user, update.effective_chat
    lang = lang_of(user.language_code if user else None)
    if chat:
        record = await chats.get(s.db, chat.id)
        if record and record.language in LANGS:
            lang = record.language

    async def can_manage() -> bool:
        return await is_chat_admin(update, context)

    return Ctx(
        s.archive,
        lang,
        dt.datetime.now(s.config.delivery.tz).date(),
        context.bot.username or "briefbot",
        chat=ChatInfo.from_telegram(chat) if chat else None,
        user_id=user.id if user else None,
        is_admin=user is not None and user.id in s.config.telegram.admins,
        can_manage=can_manage,
        delivery=s.config.delivery,
        thread_id=_thread(update.effective_message) or 0,
    )


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.keyboard:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.text, callback_data=b.data) for b in row]
            for row in reply.keyboard
        ]
    )


def _thread(message: Message | None) -> int | None:
    """The forum topic a message is in: replies go there, /start there subscribes it.
    Only a topic message counts: in a plain supergroup a reply's message_thread_id is the
    root of its reply chain, which Telegram refuses as a send target."""
    return message.message_thread_id if message and message.is_topic_message else None


async def send(update: Update, context: Context, reply: Reply) -> None:
    """Send a reply's messages in order; the keyboard goes under the last one."""
    chat = update.effective_chat
    if chat is None:
        return
    if reply.photo is not None:  # /trend: the chart (an upload), its caption under it
        await context.bot.send_photo(
            chat.id,
            reply.photo,
            caption=reply.caption or None,
            reply_markup=keyboard(reply) if not reply.messages else None,
            message_thread_id=_thread(update.effective_message),
        )
    for i, text in enumerate(reply.messages):
        last = i == len(reply.messages) - 1
        await send_text(  # no Message built from the answer (bot/telegram/replybot.py)
            context.bot,
            chat.id,
            text,
            reply_markup=keyboard(reply) if last else None,
            message_thread_id=_thread(update.effective_message),
        )


def args_text(context: Context) -> str:
    return " ".join(context.args or [])


# -- flood control and errors -------------------------------------------------------------


async def throttle_gate(update: Update, context: Context) -> None:
    """Runs before every handler: over the limit, one "slow down", then silence."""
    user = update.effective_user
    if user is None or (update.inline_query is not None and not update.inline_query.query):
        return
    svc(context).triage.recovered()  # an update arrived: polling works again
    verdict = svc(context).throttle.check(user.id)
    if verdict is Verdict.ALLOW:
        return
    if verdict is Verdict.WARN:
        ctx = await reply_ctx(update, context)
        if update.callback_query:
            await update.callback_query.answer(t(ctx.lang, "slow_down"))
        elif update.effective_message and update.effective_chat:
            await update.effective_message.reply_text(t(ctx.lang, "slow_down"))
    raise ApplicationHandlerStop


class ErrorTriage:
    """Which errors are bugs. Network and polling trouble (timeouts, 5xx, 409 Conflict with
    a second bot) is a WARNING line, repeated only when it changes; a button answered too
    late is INFO. Only real handler bugs reach the admins, at most one report a minute
    (the rest are counted and the count goes with the next report)."""

    REPORT_EVERY = 60.0

    def __init__(self) -> None:
        self.last_network = ""
        self.last_report = float("-inf")
        self.suppressed = 0
        self.failures = 0  # network errors since the trouble began
        self.since = 0.0  # monotonic: when it began

    def network(self, error: BaseException) -> bool:
        if not isinstance(error, NetworkError | Conflict):
            return False
        text = f"{type(error).__name__}: {error}"
        if not self.failures:
            self.since = time.monotonic()
        self.failures += 1
        if text != self.last_network:
            log.warning("telegram: %s (repeats are not logged until it changes)", text)
            self.last_network = text
        return True

    def recovered(self) -> None:
        """Telegram answered again (an update arrived): after trouble, one INFO line."""
        if not self.failures:
            return
        log.info(
            "telegram: connection recovered (%d failed requests in %.0f s; last: %s)",
            self.failures,
            time.monotonic() - self.since,
            self.last_network,
        )
        self.failures, self.last_network = 0, ""

    def report_now(self) -> bool:
        now = time.monotonic()
        if now - self.last_report < self.REPORT_EVERY:
            self.suppressed += 1
            return False
        self.last_report = now
        return True


_TOO_LATE = ("query is too old", "query id is invalid", "message is not modified")


async def on_error(update: object, context: Context) -> None:
    """One error handler: triage, then for real bugs log with context, apologise briefly,
    and tell the admins (rate-limited)."""
    error = context.error
    if error is None:
        return
    if isinstance(error, BadRequest) and any(t in error.message.lower() for t in _TOO_LATE):
        log.info("telegram: %s", error.message)
        return
    triage = context.bot_data.services.triage if context.bot_data.services else ErrorTriage()
    if triage.network(error):
        return
    log.error("error while handling an update", exc_info=error)
    if isinstance(update, Update):
        try:
            ctx = await reply_ctx(update, context)
            if update.callback_query:
                await update.callback_query.answer(t(ctx.lang, "error"))
            elif update.effective_chat and update.effective_message:
                await context.bot.send_message(
                    update.effective_chat.id,
                    t(ctx.lang, "error"),
                    message_thread_id=_thread(update.effective_message),
                )
        except Exception:
            log.warning("could not send the apology", exc_info=True)
    if triage.report_now():
        await report_to_admins(context, error)


async def report_to_admins(context: Context, error: BaseException | None) -> None:
    s = svc(context)
    if error is None or not s.config.telegram.report_errors:
        return
    trace = redact("".join(traceback.format_exception(error)))[-(MAX_UTF16 - 300) :]
    more, s.triage.suppressed = s.triage.suppressed, 0
    also = f"\n(+{more} more errors in the last minute, see the log)" if more else ""
    text = f"⚠️ <b>briefbot error</b>\n<pre>{html.escape(trace)}</pre>{also}"
    for admin in s.config.telegram.admins:
        try:
            await context.bot.send_message(admin, text)
        except Exception:
            log.warning("could not report the error to admin %s", admin)


# -- commands: each one reply function ----------------------------------------------------

ReplyFn = Callable[[Ctx, str], Awaitable[Reply]]


def command(reply_fn: ReplyFn) -> Handler:
    """A handler that answers with ``reply_fn(ctx, arguments)``."""

    async def handle(update: Update, context: Context) -> None:
        ctx = await reply_ctx(update, context)
        await send(update, context, await reply_fn(ctx, args_text(context)))

    handle.__name__ = handle.__qualname__ = f"cmd_{reply_fn.__name__}"
    return handle


async def _latest(ctx: Ctx, arg: str) -> Reply:
    return await replies.latest(ctx)


async def _help(ctx: Ctx, arg: str) -> Reply:
    return replies.help_reply(ctx)


async def cmd_lang(update: Update, context: Context) -> None:
    ctx = await reply_ctx(update, context)
    choice = args_text(context).strip().lower()
    if choice not in (*LANGS, "auto") or ctx.chat is None:
        await send(update, context, ctx.say("lang_usage"))
        return
    await chats.set_language(svc(context).db, ctx.chat, None if choice == "auto" else choice)
    ctx = await reply_ctx(update, context)
    await send(update, context, ctx.say("lang_auto" if choice == "auto" else "lang_set"))


async def cmd_channel(update: Update, context: Context) -> None:
    async def lookup(ref: str | int) -> ChannelFacts | None:
        user = update.effective_user
        try:
            channel = await context.bot.get_chat(ref)
            bot_member = await context.bot.get_chat_member(channel.id, context.bot.id)
            user_member = await context.bot.get_chat_member(channel.id, user.id if user else 0)
        except TelegramError:
            return None
        return ChannelFacts(
            ChatInfo.from_telegram(channel),
            bot_member.status in ADMIN_STATUSES,
            user_member.status in ADMIN_STATUSES,
        )

    ctx = await reply_ctx(update, context)
    await send(update, context, await replies.channel(ctx, args_text(context), lookup))


async def cmd_broadcast(update: Update, context: Context) -> None:
    ctx = await reply_ctx(update, context)
    reply = await replies.broadcast(ctx, args_text(context), svc(context).engine)
    await send(update, context, reply)


async def cmd_unknown(update: Update, context: Context) -> None:
    """Any other command: a hint to /help (in groups only when addressed to us)."""
    message = update.effective_message
    if message is None or not message.text:
        return
    name = message.text.split()[0]
    if "@" in name and name.split("@", 1)[1].lower() != (context.bot.username or "").lower():
        return  # another bot's command in a group
    await send(update, context, replies.unknown_reply(await reply_ctx(update, context)))


COMMANDS: dict[str, Handler] = {
    "start": command(replies.start),
    "stop": command(replies.stop),
    "latest": command(_latest),
    "date": command(replies.by_date),
    "find": command(replies.find),
    "list": command(replies.month_list),
    "trend": command(replies.trend),
    "help": command(_help),
    "lang": cmd_lang,
    "time": command(replies.delivery_time),
    "quiet": command(replies.quiet),
    "watch": command(replies.watch),
    "unwatch": command(replies.unwatch),
    "channel": cmd_channel,
    "broadcast": cmd_broadcast,
    "stats": command(replies.stats),
}


# -- buttons, inline mode, membership -----------------------------------------------------


async def on_button(update: Update, context: Context) -> None:
    query = update.callback_query
    if query is None:
        return
    ctx = await reply_ctx(update, context)
    reply = await replies.button(ctx, query.data or "")
    await query.answer(reply.notice or None)
    if not reply.messages:
        return
    if reply.edit and isinstance(query.message, Message) and len(reply.messages) == 1:
        try:
            await query.message.edit_text(reply.messages[0], reply_markup=keyboard(reply))
        except BadRequest as err:
            if "not modified" not in str(err).lower():
                raise
        return
    await send(update, context, reply)


async def on_inline(update: Update, context: Context) -> None:
    query = update.inline_query
    if query is None:
        return
    ctx = await reply_ctx(update, context)
    answer = await replies.inline(ctx, query.query, query.offset)
    results = [
        InlineQueryResultArticle(
            id=r.id,
            title=r.title,
            description=r.description,
            input_message_content=InputTextMessageContent(r.html, parse_mode=ParseMode.HTML),
        )
        for r in answer.results
    ]
    await query.answer(results, next_offset=answer.next_offset, cache_time=60)


async def on_my_chat_member(update: Update, context: Context) -> None:
    """The bot was blocked, kicked, added or promoted: note it (blocked chats go inactive)."""
    change = update.my_chat_member
    if change is None:
        return
    info = ChatInfo.from_telegram(change.chat)
    await audience.member_changed(svc(context).db, info, change.new_chat_member.status)
