"""Wiring :mod:`bot.ops` into the bot: counting and timing updates, the Telegram liveness
probe, the alert job, and sending alerts to the admins.

Telegram liveness ("the last successful Bot API answer"): three sources record it, so it is
right in polling and in webhook mode alike: a getMe every PROBE_SECONDS (the one that
matters when no update arrives: a webhook bot may see none for hours), every update
received (getUpdates answered, or Telegram reached the webhook), and every message the
sender got confirmed. A failed getMe records nothing, so after 60 s without any answer
/readyz fails.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from telegram import Update
from telegram.ext import Application

from bot.ops.service import CHECK_SECONDS, AlertSender, Ops
from bot.telegram import handlers as h

log = logging.getLogger(__name__)

PROBE_SECONDS = 20.0  # three chances within readiness's 60 s

App = Application[Any, Any, Any, Any, h.BotData, Any]


def update_type(update: Update) -> str:
    """A small, fixed set of label values (a metric label must not grow without bound)."""
    message = update.message or update.edited_message or update.channel_post
    if message is not None:
        text = message.text or ""
        return "command" if text.startswith("/") else "message"
    for name in ("callback_query", "inline_query", "my_chat_member", "chat_member"):
        if getattr(update, name) is not None:
            return name
    return "other"


def _ops(context: h.Context) -> Ops | None:
    services = context.bot_data.services
    return services.ops if services is not None else None


async def count_update(update: object, context: h.Context) -> None:
    """Group -2, before the throttle gate: every update counts, throttled or not."""
    ops = _ops(context)
    if ops is not None and isinstance(update, Update):
        ops.state.telegram_ok()
        ops.metrics.update(update_type(update))


def timed(handler: h.Handler) -> h.Handler:
    """The handler, timed into briefbot_reply_seconds{type} (errors included: a reply that
    failed took that long too)."""

    @functools.wraps(handler)
    async def run(update: Update, context: h.Context) -> None:
        started = time.perf_counter()
        try:
            await handler(update, context)
        finally:
            ops = _ops(context)
            if ops is not None:
                ops.metrics.update(update_type(update), time.perf_counter() - started)

    return run


async def probe_job(context: h.Context) -> None:
    ops = _ops(context)
    if ops is None:
        return
    try:
        await context.bot.get_me()
    except Exception as err:  # recorded as the absence of an answer; readiness says it
        log.debug("ops: getMe failed: %s", type(err).__name__)
        return
    ops.state.telegram_ok()


async def check_job(context: h.Context) -> None:
    ops = _ops(context)
    if ops is not None:
        await ops.check()


def alert_sender(app: App, admins: tuple[int, ...]) -> AlertSender:
    async def send(text: str) -> None:
        for admin in admins:
            try:
                await app.bot.send_message(admin, text, parse_mode=None)
            except Exception:  # one unreachable admin must not keep the others uninformed
                log.warning("ops: could not send an alert to admin %s", admin)

    return send


async def start(app: App, ops: Ops) -> None:
    """Listen, and schedule the probe and the checks (post_init: Telegram just answered)."""
    ops.state.telegram_ok()
    await ops.start()
    if app.job_queue:
        app.job_queue.run_repeating(
            probe_job, interval=PROBE_SECONDS, first=PROBE_SECONDS, name="ops-probe"
        )
        app.job_queue.run_repeating(
            check_job, interval=CHECK_SECONDS, first=CHECK_SECONDS, name="ops-check"
        )
