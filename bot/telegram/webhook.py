"""The webhook server: Telegram POSTs updates here (behind a reverse proxy that terminates
TLS). Our own small aiohttp server instead of PTB's tornado one, because PTB's reads the
whole body before it looks at the secret: a stranger's 50 MB POST cost 90 MB of memory.
Here the ``X-Telegram-Bot-Api-Secret-Token`` header is checked first, and a body over
``MAX_BODY`` (Telegram's updates are a few KB) is refused unread."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
from typing import Any

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.config import Webhook

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

App = Application[Any, Any, Any, Any, Any, Any]


def make_web_app(app: App, webhook: Webhook) -> web.Application:
    secret = webhook.secret_token.encode()
    path = "/" + webhook.path.strip("/")

    def refuse(status: int, text: str) -> web.Response:
        # Closed after the answer: keeping the connection would mean reading (to discard)
        # whatever body the stranger still sends.
        response = web.Response(status=status, text=text)
        response.force_close()
        return response

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, secret):
            return refuse(403, "forbidden")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return refuse(413, "too large")
        try:
            data = json.loads(await request.read())
            update = Update.de_json(data, app.bot)
        except web.HTTPRequestEntityTooLarge:
            return refuse(413, "too large")
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400, text="not an update")
        await app.update_queue.put(update)
        return web.Response(text="ok")

    web_app = web.Application(client_max_size=MAX_BODY)
    web_app.router.add_post(path, receive)
    return web_app


async def serve(app: App, webhook: Webhook) -> None:
    """Run the application with updates from the webhook until SIGINT or SIGTERM, with the
    same lifecycle as PTB's run_webhook: post_init, setWebhook, start; then stop,
    post_stop, shutdown, post_shutdown. A port in use or a bad address raises OSError
    before any update is taken."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    # lingering_time=0: a refused body is not drained either. aiohttp's default (10 s of
    # reading and discarding what is left of a body the handler did not read, whatever the
    # response says) kept a stranger's upload going and held a SIGTERM for those 10 s.
    runner = web.AppRunner(make_web_app(app, webhook), access_log=None, lingering_time=0)
    await app.initialize()
    try:
        if app.post_init:
            await app.post_init(app)
        await runner.setup()
        site = web.TCPSite(runner, webhook.listen, webhook.port)
        await site.start()
        await app.bot.set_webhook(
            url=f"{webhook.url.rstrip('/')}/{webhook.path}",
            secret_token=webhook.secret_token,
            allowed_updates=Update.ALL_TYPES,
        )
        await app.start()
        log.info("webhook: listening on %s:%d", webhook.listen, webhook.port)
        await stop.wait()
    finally:
        await runner.cleanup()
        if app.running:
            await app.stop()
            if app.post_stop:
                await app.post_stop(app)
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)
