"""The bot process ``bench.bench_bot`` measures: ``python -m bench.bot_child API_URL CONTENT DB
PATH [PROFILE]`` runs the bot as ``briefbot run`` wires it, on the path's HTTP layer and
event loop, until a line (or EOF) arrives on stdin, and reports on stdout (JSON lines).

It never imports the fake server, whose memory and CPU would count as the bot's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, ClassVar

from telegram import Update
from telegram.ext import AIORateLimiter

from bench.common import peak_rss_kb
from bot.config import parse_config
from bot.logs import setup_logging
from bot.telegram.app import build_application
from bot.telegram.replybot import ReplyBot

# path name -> (telegram.http, event loop, replies without PTB's Message)
PATHS = {
    "httpx": ("httpx", "asyncio", False),  # the bot as it was: PTB's HTTPXRequest, send_message
    "aiohttp": ("aiohttp", "asyncio", False),  # bot/telegram/request.py alone
    "aiohttp+lean": ("aiohttp", "asyncio", True),  # plus ReplyBot.send_text: the bot now
    "aiohttp+lean+uvloop": ("aiohttp", "uvloop", True),
}
TOKEN_ENV = "BENCH_BOT_TOKEN"  # how the bot process gets the fake server's token

JSONDict = dict[str, Any]
Callback = Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]]


class TimedLimiter(AIORateLimiter):
    """The bot's own AIORateLimiter, also noting how long each chat's requests waited in it.

    The wait is deliberate (30 messages a second overall), so the report shows latency with
    and without it."""

    __slots__ = ()
    waits: ClassVar[dict[int, float]] = defaultdict(float)  # chat id -> seconds

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        entered = time.perf_counter()
        released = [entered]

        async def timed(*a: Any, **kw: Any) -> bool | JSONDict | list[JSONDict]:
            released[0] = time.perf_counter()
            return await callback(*a, **kw)

        try:
            return await super().process_request(
                timed, args, kwargs, endpoint, data, rate_limit_args
            )
        finally:
            chat_id = data.get("chat_id")
            if isinstance(chat_id, int):
                TimedLimiter.waits[chat_id] += released[0] - entered


class _Mark(logging.Handler):
    """When bot.app logged the end of the index sync (it logs it once the sync is done)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.synced: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("index:"):
            self.synced = time.perf_counter()


def say(event: JSONDict) -> None:
    print(json.dumps(event), flush=True)


def run_bot(args: Sequence[str]) -> None:
    """The child: ``API_URL CONTENT DB PATH [PROFILE]``, on the path's event loop."""
    api_url, content, db, path = args[:4]
    profile = Path(args[4]) if len(args) > 4 and args[4] else None
    http, loop, lean = PATHS[path]
    if not lean:
        full_messages()
    factory = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve_bot(api_url, Path(content), Path(db), http, profile))


def full_messages() -> None:
    """Replies through PTB's send_message again (a whole Message built from each answer),
    as before ReplyBot: the baseline of the same run."""

    async def send_text(self: ReplyBot, chat_id: int | str, text: str, **kw: Any) -> int:
        return (await self.send_message(chat_id, text, **kw)).message_id

    ReplyBot.send_text = send_text  # type: ignore[method-assign,assignment]


async def serve_bot(api_url: str, content: Path, db: Path, http: str, profile: Path | None) -> None:
    """Run only the bot, polling ``api_url``, until a line (or EOF) arrives on stdin.
    ``profile``: write a cProfile of everything after start-up to this file."""
    token = os.environ[TOKEN_ENV]
    setup_logging("WARNING", [token])
    mark = _Mark()
    logging.getLogger("bot.telegram.app").addHandler(mark)
    logging.getLogger("bot.telegram.app").setLevel(logging.INFO)
    raw = {
        "content": {"dir": str(content), "reload_seconds": 0},
        "storage": {"path": str(db)},
        "telegram": {"api_base_url": api_url, "http": http},
    }
    config = parse_config(raw, db.parent)
    t0 = time.perf_counter()
    app = build_application(config, token)
    limiter = app.bot.rate_limiter
    assert isinstance(limiter, AIORateLimiter) and app.post_init and app.updater
    limiter.__class__ = TimedLimiter  # same instance and limits, plus the wait log
    t1 = time.perf_counter()
    await app.initialize()
    t2 = time.perf_counter()
    await app.post_init(app)
    t3 = time.perf_counter()
    await app.updater.start_polling(poll_interval=0, allowed_updates=Update.ALL_TYPES)
    await app.start()
    t4 = time.perf_counter()
    say(
        {
            "event": "ready",
            "build_s": t1 - t0,
            "initialize_s": t2 - t1,
            "post_init_s": t3 - t2,
            "sync_s": (mark.synced or t3) - t2,
            "start_s": t4 - t3,
            "rss_kb": peak_rss_kb(),
        }
    )
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    await asyncio.to_thread(sys.stdin.readline)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    rss_kb = peak_rss_kb()
    await app.updater.stop()
    await app.stop()
    if app.post_shutdown:
        await app.post_shutdown(app)
    await app.shutdown()
    waits = {str(chat): round(s * 1000, 3) for chat, s in TimedLimiter.waits.items()}
    say({"event": "stopped", "rss_kb": rss_kb, "waits_ms": waits})


if __name__ == "__main__":
    run_bot(sys.argv[1:])
