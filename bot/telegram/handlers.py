"""python-telegram-bot handlers: thin adapters from updates to bot.replies and back.

Each handler reads the update, asks bot.replies (or bot.chats) what to do, and sends it.
No business logic lives here; a bad argument gets a usage reply from replies, never an
exception."""

from __future__ import annotations

import datetime as dt
import html
import logging
import traceback
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
from telegram.error import BadRequest
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot import replies
from bot.config import Config
from bot.core.i18n import LANGS, lang_of, t
from bot.core.render import MAX_UTF16
from bot.core.throttle import Throttle, Verdict
from bot.db import chats
from bot.db.store import Store
from bot.replies import Ctx, Reply

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What handlers need, kept in ``application.bot_data["svc"]``."""

    config: Config
    store: Store
    throttle: Throttle
    extra: dict[str, Any] = field(default_factory=dict)  # the delivery engine, when running


def svc(context: ContextTypes.DEFAULT_TYPE) -> Services:
    services: Services = context.application.bot_data["svc"]
    return services


async def reply_ctx(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Ctx:
    """The reply context: a language chosen with /lang wins over the user's Telegram one."""
    s = svc(context)
    lang = lang_of(update.effective_user.language_code if update.effective_user else None)
    if update.effective_chat:
        record = await chats.get(s.store, update.effective_chat.id)
        if record and record.language in LANGS:
            lang = record.language
    today = dt.datetime.now(s.config.delivery.tz).date()
    return Ctx(s.store, lang, today, context.bot.username or "briefbot")


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.keyboard:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.text, callback_data=b.data) for b in row]
            for row in reply.keyboard
        ]
    )


async def send(update: Update, context: ContextTypes.DEFAULT_TYPE, reply: Reply) -> None:
    """Send a reply's messages in order; the keyboard goes under the last one."""
    chat = update.effective_chat
    if chat is None:
        return
    for i, text in enumerate(reply.messages):
        last = i == len(reply.messages) - 1
        await context.bot.send_message(
            chat.id,
            text,
            reply_markup=keyboard(reply) if last else None,
            message_thread_id=_thread(update.effective_message),
        )


def _thread(message: Message | None) -> int | None:
    # Answer inside the forum topic the command came from.
    return message.message_thread_id if message and message.is_topic_message else None


def args_text(context: ContextTypes.DEFAULT_TYPE) -> str:
    return " ".join(context.args or [])


# -- flood control and errors -------------------------------------------------------------


async def throttle_gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Runs before every handler: over the limit, one "slow down", then silence."""
    user = update.effective_user
    if user is None or (update.inline_query is not None and not update.inline_query.query):
        return
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


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """One error handler: log with context, apologise briefly, tell the admins."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update):
        try:
            ctx = await reply_ctx(update, context)
            if update.callback_query:
                await update.callback_query.answer(t(ctx.lang, "error"))
            elif update.effective_chat and update.effective_message:
                await context.bot.send_message(update.effective_chat.id, t(ctx.lang, "error"))
        except Exception:
            log.warning("could not send the apology", exc_info=True)
    await report_to_admins(context, context.error)


async def report_to_admins(context: ContextTypes.DEFAULT_TYPE, error: BaseException | None) -> None:
    s = svc(context)
    if error is None or not s.config.telegram.report_errors:
        return
    trace = "".join(traceback.format_exception(error))[-(MAX_UTF16 - 200) :]
    text = f"⚠️ <b>briefbot error</b>\n<pre>{html.escape(trace)}</pre>"
    for admin in s.config.telegram.admins:
        try:
            await context.bot.send_message(admin, text)
        except Exception:
            log.warning("could not report the error to admin %s", admin)


# -- commands -----------------------------------------------------------------------------


async def is_chat_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """In groups only administrators change the subscription (checked with getChatMember)."""
    chat, user, message = update.effective_chat, update.effective_user, update.effective_message
    if chat is None or chat.type == ChatType.PRIVATE:
        return True
    if message and message.sender_chat and message.sender_chat.id == chat.id:
        return True  # an anonymous group administrator
    if user is None:
        return False
    member = await context.bot.get_chat_member(chat.id, user.id)
    return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)


async def cmd_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start subscribes; /start 2025-02-14 (a deep link) opens that issue."""
    ctx = await reply_ctx(update, context)
    if context.args:
        await send(update, context, await replies.by_date(ctx, args_text(context)))
        return
    if not await is_chat_admin(update, context):
        await send(update, context, Reply((t(ctx.lang, "admins_only"),)))
        return
    s = svc(context)
    assert update.effective_chat is not None
    info = chats.ChatInfo.from_telegram(update.effective_chat)
    changed = await chats.subscribe(s.store, info, language=None)
    if not changed:
        await send(update, context, Reply((t(ctx.lang, "already"),)))
        return
    d = s.config.delivery
    times = "、".join(x.strftime("%H:%M") for x in d.times)
    await send(update, context, Reply((t(ctx.lang, "welcome", times=times, tz=d.timezone),)))


async def cmd_stop(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = await reply_ctx(update, context)
    if not await is_chat_admin(update, context):
        await send(update, context, Reply((t(ctx.lang, "admins_only"),)))
        return
    assert update.effective_chat is not None
    changed = await chats.unsubscribe(svc(context).store, update.effective_chat.id)
    await send(update, context, Reply((t(ctx.lang, "stopped" if changed else "not_subscribed"),)))


async def cmd_latest(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await send(update, context, await replies.latest(await reply_ctx(update, context)))


async def cmd_date(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = await reply_ctx(update, context)
    await send(update, context, await replies.by_date(ctx, args_text(context)))


async def cmd_find(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = await reply_ctx(update, context)
    await send(update, context, await replies.find(ctx, args_text(context)))


async def cmd_list(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = await reply_ctx(update, context)
    await send(update, context, await replies.month_list(ctx, args_text(context)))


async def cmd_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await send(update, context, replies.help_reply(await reply_ctx(update, context)))


async def cmd_unknown(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any other command: a hint to /help (in groups only when addressed to us)."""
    message = update.effective_message
    if message is None or not message.text:
        return
    command = message.text.split()[0]
    if "@" in command and command.split("@", 1)[1].lower() != (context.bot.username or "").lower():
        return  # another bot's command in a group
    await send(update, context, replies.unknown_reply(await reply_ctx(update, context)))


async def cmd_lang(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = await reply_ctx(update, context)
    choice = args_text(context).strip().lower()
    if choice not in (*LANGS, "auto"):
        await send(update, context, Reply((t(ctx.lang, "lang_usage"),)))
        return
    assert update.effective_chat is not None
    info = chats.ChatInfo.from_telegram(update.effective_chat)
    await chats.set_language(svc(context).store, info, None if choice == "auto" else choice)
    ctx = await reply_ctx(update, context)
    await send(
        update, context, Reply((t(ctx.lang, "lang_auto" if choice == "auto" else "lang_set"),))
    )


# -- buttons and inline mode --------------------------------------------------------------


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
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


async def on_inline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
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


async def on_my_chat_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The bot was blocked, kicked, added or promoted: note it (blocked chats go inactive)."""
    change = update.my_chat_member
    if change is None:
        return
    info = chats.ChatInfo.from_telegram(change.chat)
    await chats.note_member(svc(context).store, info, change.new_chat_member.status)
