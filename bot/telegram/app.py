"""Wiring: build the python-telegram-bot Application and run it. Only wiring lives here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot, BotCommand, BotCommandScopeDefault, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.config import Config
from bot.core.i18n import COMMANDS
from bot.core.throttle import Throttle
from bot.db.store import Store, SyncReport
from bot.delivery.engine import BroadcastReport, DeliveryEngine, Limits
from bot.telegram import handlers as h
from bot.telegram.delivery_handlers import HANDLERS as DELIVERY_HANDLERS

log = logging.getLogger(__name__)

COMMAND_HANDLERS: dict[str, Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]] = {
    "start": h.cmd_start,
    "stop": h.cmd_stop,
    "latest": h.cmd_latest,
    "date": h.cmd_date,
    "find": h.cmd_find,
    "list": h.cmd_list,
    "help": h.cmd_help,
    "lang": h.cmd_lang,
    **DELIVERY_HANDLERS,
}

TICK_SECONDS = 30

# Hooks the delivery layer adds: (application) -> awaitable, run after start / before stop.
Hook = Callable[[Application[Any, Any, Any, Any, Any, Any]], Awaitable[None]]


def log_sync(report: SyncReport) -> None:
    for problem in report.problems:
        log.warning("content: %s", problem)
    log.info(
        "index: %d issues, %d items (added %d, updated %d, removed %d)",
        report.issues,
        report.items,
        len(report.added),
        len(report.updated),
        len(report.removed),
    )


async def set_commands(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """The command menu, with descriptions in the user's language."""
    for lang, items in COMMANDS.items():
        commands = [BotCommand(c, d) for c, d in items]
        await app.bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=lang)
    await app.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS["en"]])


async def reload_content(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Pick up new or changed content files without a restart."""
    s = h.svc(context)
    report = await s.store.sync(s.config.content_dir)
    if report.changed:
        log_sync(report)
        on_new = s.extra.get("on_new_issues")
        if on_new and report.added:
            await on_new(report.added)


async def start_delivery(
    app: Application[Any, Any, Any, Any, Any, Any], config: Config, token: str
) -> None:
    """The broadcast engine in the background, its schedule tick, and missed runs caught up.

    It sends through its own Bot: no AIORateLimiter (the engine keeps the limits itself, up
    to 1000/s for paid broadcasts) and a connection pool as wide as its in-flight window."""
    s: h.Services = app.bot_data["svc"]
    limits = Limits.from_config(config.delivery)
    api = config.telegram.api_base_url
    sender = Bot(
        token,
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        request=HTTPXRequest(connection_pool_size=limits.in_flight + 4),
    )
    await sender.initialize()

    async def report(result: BroadcastReport) -> None:
        for admin in config.telegram.admins:
            try:
                await app.bot.send_message(admin, f"📬 {result.summary()}", parse_mode=None)
            except Exception:  # an unreachable admin must not stop delivery
                log.warning("could not send the broadcast report to admin %s", admin)

    engine = DeliveryEngine(s.store, sender, config.delivery, limits=limits, on_report=report)
    s.extra.update(engine=engine, sender=sender, on_new_issues=engine.on_new_issues)
    await engine.sync_channels()
    await engine.start()
    await engine.tick()  # a run missed while the bot was down goes out now
    if app.job_queue:
        app.job_queue.run_repeating(
            tick_job, interval=TICK_SECONDS, first=TICK_SECONDS, name="delivery-tick"
        )


async def tick_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    engine: DeliveryEngine = h.svc(context).extra["engine"]
    await engine.tick()


async def stop_delivery(services: h.Services) -> None:
    engine: DeliveryEngine | None = services.extra.get("engine")
    if engine is not None:
        await engine.stop()
    sender: Bot | None = services.extra.get("sender")
    if sender is not None:
        await sender.shutdown()


def build_application(
    config: Config,
    token: str,
    *,
    on_start: list[Hook] | None = None,
    on_stop: list[Hook] | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    async def post_init(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        store = await Store.open(config.storage_path)
        log_sync(await store.sync(config.content_dir))
        throttle = Throttle(config.telegram.throttle_messages, config.telegram.throttle_seconds)
        app.bot_data["svc"] = h.Services(config, store, throttle)
        await set_commands(app)
        if config.reload_seconds and app.job_queue:
            app.job_queue.run_repeating(
                reload_content,
                interval=config.reload_seconds,
                first=config.reload_seconds,
                name="reload-content",
            )
        await start_delivery(app, config, token)
        for hook in on_start or []:
            await hook(app)

    async def post_shutdown(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        for hook in on_stop or []:
            await hook(app)
        services: h.Services | None = app.bot_data.get("svc")
        if services:
            await stop_delivery(services)
            await services.store.close()

    api = config.telegram.api_base_url
    defaults = Defaults(
        parse_mode=ParseMode.HTML,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
        tzinfo=config.delivery.tz,
    )
    app = (
        ApplicationBuilder()
        .token(token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .defaults(defaults)
        .concurrent_updates(True)
        # Replies: stay under 30/s overall and 20/min per group, and when Telegram still
        # answers 429, wait retry_after and try again instead of failing the command.
        .rate_limiter(AIORateLimiter(max_retries=3))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    register(app)
    return app


def register(
    app: Application[Any, Any, Any, Any, Any, Any], extra: dict[str, Any] | None = None
) -> None:
    app.add_handler(TypeHandler(Update, h.throttle_gate), group=-1)
    for name, callback in {**COMMAND_HANDLERS, **(extra or {})}.items():
        app.add_handler(CommandHandler(name, callback))
    app.add_handler(MessageHandler(filters.COMMAND, h.cmd_unknown))
    app.add_handler(CallbackQueryHandler(h.on_button))
    app.add_handler(InlineQueryHandler(h.on_inline))
    app.add_handler(ChatMemberHandler(h.on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_error_handler(h.on_error)


def run(config: Config, token: str) -> None:
    """Run until SIGINT/SIGTERM: polling by default, or PTB's webhook server."""
    app = build_application(config, token)
    if config.telegram.mode == "webhook":
        wh = config.telegram.webhook
        app.run_webhook(
            listen=wh.listen,
            port=wh.port,
            url_path=wh.path,
            webhook_url=f"{wh.url.rstrip('/')}/{wh.path}",
            secret_token=wh.secret_token,
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        app.run_polling(allowed_updates=Update.ALL_TYPES)
