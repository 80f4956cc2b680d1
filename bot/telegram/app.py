"""Wiring: build the python-telegram-bot Application and run it. Only wiring lives here."""

from __future__ import annotations

import asyncio
import importlib
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

from bot.config import Config
from bot.core.i18n import COMMANDS
from bot.core.throttle import Throttle
from bot.db.archive import Archive
from bot.db.database import Database
from bot.db.sync import SyncReport
from bot.delivery.engine import BroadcastReport, DeliveryEngine, limits_for
from bot.delivery.observer import NO_OBSERVER
from bot.ops.service import Ops
from bot.source.follow import Follower, Notify
from bot.telegram import handlers as h
from bot.telegram import ops as telegram_ops
from bot.telegram.channels import sync_channels
from bot.telegram.fastsend import FastTransport
from bot.telegram.replybot import ReplyBot
from bot.telegram.request import bot_requests
from bot.telegram.shutdown import GracefulStop
from bot.telegram.transport import make_bot

log = logging.getLogger(__name__)

TICK_SECONDS = 30
STOP_SECONDS = 3.0  # in-flight sends finish (and are recorded) or stay pending: a bounded stop

App = Application[Any, Any, Any, Any, h.BotData, Any]
# Hooks a caller adds: (application) -> awaitable, run after start / before stop.
Hook = Callable[[App], Awaitable[None]]


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


def admin_notifier(app: App, admins: tuple[int, ...]) -> Notify:
    async def notify(text: str) -> None:
        for admin in admins:
            try:
                await app.bot.send_message(admin, text, parse_mode=None)
            except Exception:  # an unreachable admin must not stop anything
                log.warning("could not tell admin %s: %s", admin, text)

    return notify


async def first_index(app: App, config: Config, archive: Archive) -> SyncReport:
    """At start: the content folder, or the git working copy as the last fetch left it
    (the first fetch runs in the background at once: a slow remote never delays start)."""
    if config.content_source is None:
        return await archive.sync(config.content_dir)
    notify = admin_notifier(app, config.telegram.admins)
    services = services_of(app)

    def fetched(error: str | None) -> None:  # the ops hooks: /readyz, /metrics, alerts
        if services.ops is None:
            return
        if error is None:
            services.ops.state.source_ok()
        else:
            services.ops.state.source_failed(error)

    services.source = Follower(config, archive, notify=notify, on_fetch=fetched)
    return await services.source.index()


def services_of(app: App) -> h.Services:
    services = app.bot_data.services
    if services is None:
        raise RuntimeError("services are not ready")
    return services


async def set_commands(app: App) -> None:
    """The command menu, with descriptions in the user's language."""
    for lang, items in COMMANDS.items():
        commands = [BotCommand(c, d) for c, d in items]
        await app.bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=lang)
    await app.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS["en"]])


async def reload_content(context: h.Context) -> None:
    """Pick up new or changed content files without a restart."""
    s = h.svc(context)
    if s.source is not None:  # a git source: fetch (in a thread), index, record revisions
        report = (await s.source.poll()).report
        if s.engine is not None:  # what settled since the last poll goes out now
            await s.engine.tick()
            # Keyword watches hear of an issue once it is final, not while it is a stub.
            ready = await s.source.newly_ready()
            if ready:
                await s.engine.on_new_issues(ready)
        if report is None:
            return  # the fetch failed: the last good content is served
    else:
        report = await s.archive.sync(s.config.content_dir)
    if report.changed:
        log_sync(report)
        if s.engine and report.added and s.source is None:
            await s.engine.on_new_issues(report.added)


class Delivery:
    """The engine and the Bot it sends through (no AIORateLimiter: the engine keeps the
    limits itself, up to 1000/s for paid broadcasts, and its pool is as wide as its
    in-flight window)."""

    def __init__(self, app: App, config: Config, token: str) -> None:
        self.app = app
        self.config = config
        limits = limits_for(config.delivery)
        self.bot: Bot = make_bot(config, token, pool=4)  # getChat for the config channels
        # Messages go through the lean transport (about 0.3 ms of CPU each, not PTB's 3).
        self.transport = FastTransport(
            token, base_url=f"{config.telegram.api_base_url}/bot", pool=limits.in_flight + 4
        )
        services = services_of(app)
        self.engine = DeliveryEngine(
            services.archive,
            self.transport,
            config.delivery,
            limits=limits,
            on_report=self.report,
            # Following a git source: only settled issues and corrections go out.
            settle_seconds=config.settle_seconds if config.content_source else None,
            observer=services.ops.metrics if services.ops else NO_OBSERVER,
        )

    async def report(self, result: BroadcastReport) -> None:
        ops = services_of(self.app).ops
        if ops is not None:
            ops.broadcast_finished(result)
        for admin in self.config.telegram.admins:
            try:
                await self.app.bot.send_message(admin, f"📬 {result.summary()}", parse_mode=None)
            except Exception:  # an unreachable admin must not stop delivery
                log.warning("could not send the broadcast report to admin %s", admin)

    async def start(self) -> None:
        """Resolve the config channels, resume the outbox, catch up a missed run."""
        await self.bot.initialize()
        await sync_channels(self.bot, services_of(self.app).db, self.config.delivery.channels)
        await self.engine.start()
        await self.engine.tick()  # a run missed while the bot was down goes out now
        if self.app.job_queue:
            self.app.job_queue.run_repeating(
                tick_job, interval=TICK_SECONDS, first=TICK_SECONDS, name="delivery-tick"
            )

    async def stop(self) -> None:
        await self.engine.stop(timeout=STOP_SECONDS)
        await self.transport.close()
        await self.bot.shutdown()


async def tick_job(context: h.Context) -> None:
    engine = h.svc(context).engine
    if engine is not None:
        await engine.tick()


def build_application(
    config: Config,
    token: str,
    *,
    on_start: list[Hook] | None = None,
    on_stop: list[Hook] | None = None,
) -> App:
    delivery: list[Delivery] = []  # set once started, for post_shutdown

    async def post_init(app: App) -> None:
        db = await Database.open(config.storage_path)
        archive = Archive(db)
        throttle = Throttle(config.telegram.throttle_messages, config.telegram.throttle_seconds)
        # Stored first: whatever fails below, post_shutdown (or the caller) closes it.
        app.bot_data.services = h.Services(config, db, archive, throttle)
        services = app.bot_data.services
        services.ops = ops = Ops(
            config,
            db,
            send_alert=telegram_ops.alert_sender(app, config.telegram.admins),
            sending=lambda: services.engine is not None and services.engine.sending,
        )
        archive.on_search = ops.metrics.searched
        log_sync(await first_index(app, config, archive))
        await set_commands(app)
        source = config.content_source
        every = source.poll_seconds if source else config.reload_seconds
        if every and app.job_queue:
            app.job_queue.run_repeating(
                reload_content,
                interval=every,
                first=0.1 if source else every,  # fetch now, in the background
                name="reload-content",
            )
        started = Delivery(app, config, token)
        delivery.append(started)
        app.bot_data.services.engine = started.engine
        await started.start()
        await telegram_ops.start(app, ops)
        for hook in on_start or []:
            await hook(app)

    async def post_shutdown(app: App) -> None:
        for hook in on_stop or []:
            await hook(app)
        await close_services(app, delivery)

    api = config.telegram.api_base_url
    # Replies over aiohttp by default (telegram.http): httpx/httpcore were most of a reply's
    # CPU. PTB's own pool sizes: 256 for requests, 1 for the long poll.
    request, get_updates_request = bot_requests(config.telegram.http, 256)
    defaults = Defaults(
        parse_mode=ParseMode.HTML,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
        tzinfo=config.delivery.tz,
    )
    # The bot is built here, not by the builder: a ReplyBot (replies without PTB's Message).
    bot = ReplyBot(
        token,
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        request=request,
        get_updates_request=get_updates_request,
        defaults=defaults,
        # Replies: stay under 30/s overall and 20/min per group, and when Telegram still
        # answers 429, wait retry_after and try again instead of failing the command.
        rate_limiter=AIORateLimiter(max_retries=3),
    )
    app: App = (
        ApplicationBuilder()
        .bot(bot)
        .context_types(ContextTypes(bot_data=h.BotData))
        .concurrent_updates(True)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    register(app)
    return app


async def close_services(app: App, delivery: list[Delivery]) -> None:
    """Stop delivery and close the database; safe to call after a half-done start."""
    while delivery:
        await delivery.pop().stop()
    services, app.bot_data.services = app.bot_data.services, None
    if services is not None:
        if services.ops is not None:
            await services.ops.stop()
        await services.db.close()


def register(app: App, extra: dict[str, h.Handler] | None = None) -> None:
    app.add_handler(TypeHandler(Update, telegram_ops.count_update), group=-2)
    app.add_handler(TypeHandler(Update, h.throttle_gate), group=-1)
    timed = telegram_ops.timed  # briefbot_reply_seconds
    for name, callback in {**h.COMMANDS, **(extra or {})}.items():
        app.add_handler(CommandHandler(name, timed(callback)))
    app.add_handler(MessageHandler(filters.COMMAND, timed(h.cmd_unknown)))
    app.add_handler(CallbackQueryHandler(timed(h.on_button)))
    app.add_handler(InlineQueryHandler(timed(h.on_inline)))
    app.add_handler(ChatMemberHandler(h.on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_error_handler(h.on_error)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed (``pip install 'briefbot[fast]'``: a few
    per cent less CPU per reply, docs/benchmarks.md), else asyncio's own."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(config: Config, token: str) -> None:
    """Run until SIGINT/SIGTERM: polling by default, or PTB's webhook server."""
    app = build_application(config, token)
    if config.telegram.mode == "webhook":
        from bot.telegram.webhook import serve

        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(serve(app, config.telegram.webhook))
    else:
        # Our own SIGTERM/SIGINT handling: a stop bounded in time (bot/telegram/shutdown.py).
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        GracefulStop(app).install(loop)
        app.run_polling(allowed_updates=Update.ALL_TYPES, stop_signals=None)
