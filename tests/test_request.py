"""PTB's HTTP layer over aiohttp (bot/telegram/request.py): uploads, long polls, timeouts,
refusals and unreachable servers, no token in any message, sessions closed; and the wiring
(the bot replies through it by default, ``telegram.http: httpx`` is PTB's own).

The rest of the suite drives every reply through this class against the fake server; these
tests pin what the suite does not reach on its own."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import struct
import sys
import time
import traceback
import warnings
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Message,
)
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import AIORateLimiter, Defaults
from telegram.request import BaseRequest, HTTPXRequest

from bot.telegram.replybot import ReplyBot, send_text
from bot.telegram.request import AiohttpRequest, client_timeout, env_proxy, scrub
from bot.telegram.transport import make_bot
from fakebot import FakeBotAPI
from fakebot.state import UploadedFile
from tests.botkit import BotUnderTest, make_config

TOKEN = "123456:AAE-secret-token-of-the-bench-000000"
SECRET_HALF = TOKEN.split(":", 1)[1]
DEFAULT = BaseRequest.DEFAULT_NONE


def png(width: int = 4, height: int = 3) -> bytes:
    """A real (tiny, grey) PNG: the fake reads its IHDR as Telegram checks the picture."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def bot_on(base_url: str, request: BaseRequest, token: str = TOKEN) -> Bot:
    return Bot(token, base_url=base_url, request=request, get_updates_request=AiohttpRequest(1))


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """A server that accepts connections and never answers: the base URL of its bot API."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/bot"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- wiring --------------------------------------------------------------------------------


@pytest.mark.parametrize(("http", "kind"), [(None, AiohttpRequest), ("httpx", HTTPXRequest)])
def test_the_bot_and_make_bot_use_the_configured_client(
    tmp_path: Path, content: Path, open_api: FakeBotAPI, http: str | None, kind: type
) -> None:
    from bot.telegram.app import build_application

    telegram = {} if http is None else {"http": http}
    config = make_config(tmp_path, content, open_api, telegram=telegram)
    app = build_application(config, open_api.token)
    for bot in (app.bot, make_bot(config, open_api.token, pool=3)):
        updates, requests = bot._request  # PTB's (get_updates_request, request)
        assert type(updates) is kind and type(requests) is kind
        assert updates is not requests
    if kind is AiohttpRequest:
        assert app.bot._request[0]._pool == 1  # type: ignore[attr-defined]  # the long poll's


# -- uploads, long polls, answers ----------------------------------------------------------


async def test_send_photo_uploads_the_png_with_its_name_type_and_caption(
    open_api: FakeBotAPI,
) -> None:
    picture = png()
    async with bot_on(open_api.base_url, AiohttpRequest(2), open_api.token) as bot:
        message = await bot.send_photo(
            7,
            InputFile(picture, filename="trend.png"),
            caption="<b>小米</b> 趋势",
            parse_mode="HTML",
        )
    assert message.photo and message.caption == "小米 趋势"
    [call] = open_api.calls("sendPhoto")
    assert call.ok
    assert call.params["photo"] == UploadedFile("trend.png", "image/png", picture)
    assert call.params["caption"] == "<b>小米</b> 趋势" and call.params["parse_mode"] == "HTML"


async def test_a_long_poll_outlasts_the_read_timeout_and_returns_a_pushed_update(
    open_api: FakeBotAPI,
) -> None:
    # PTB passes read_timeout + poll timeout for getUpdates: a 0.3 s read timeout must not
    # cut a 1 s poll short.
    updates_request = AiohttpRequest(1, read_timeout=0.3)
    bot = Bot(open_api.token, base_url=open_api.base_url, get_updates_request=updates_request)
    bot._request = (updates_request, AiohttpRequest(2))  # no httpx client left behind
    async with bot:
        started = time.monotonic()
        assert await bot.get_updates(timeout=1) == ()
        assert time.monotonic() - started >= 0.9
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, open_api.push_message, 5, "/latest")
        started = time.monotonic()
        [update] = await bot.get_updates(timeout=5)
        assert time.monotonic() - started < 3
    assert update.message is not None and update.message.text == "/latest"


async def test_a_long_poll_that_never_answers_is_timed_out(silent_server: str) -> None:
    request = AiohttpRequest(1, read_timeout=0.1)
    bot = bot_on(silent_server, AiohttpRequest(1))
    bot._request = (request, bot._request[1])
    await request.initialize()
    started = time.monotonic()
    with pytest.raises(TimedOut):
        await bot.get_updates(timeout=0.2)  # read timeout 0.1 + 0.2
    assert 0.25 <= time.monotonic() - started < 2
    await request.shutdown()
    await bot._request[1].shutdown()


async def test_read_timeout_default_none_and_explicit(open_api: FakeBotAPI) -> None:
    open_api.delay = 0.4  # every sendMessage answers after 0.4 s
    async with bot_on(
        open_api.base_url, AiohttpRequest(2, read_timeout=0.1), open_api.token
    ) as bot:
        with pytest.raises(TimedOut):
            await bot.send_message(1, "x")  # DEFAULT_NONE: this request's 0.1 s
        sent = await bot.send_message(1, "y", read_timeout=None)  # None: no limit
        assert sent.text == "y"


@pytest.mark.parametrize(
    ("code", "description", "parameters"),
    [
        (429, "Too Many Requests: retry after 3", {"retry_after": 3}),
        (400, "Bad Request: chat not found", None),
        (400, "Bad Request: group chat was upgraded to a supergroup chat",
         {"migrate_to_chat_id": -1001234}),
        (403, "Forbidden: bot was blocked by the user", None),
        (401, "Unauthorized", None),
        (409, "Conflict: terminated by other getUpdates request", None),
        (500, "Internal Server Error", None),
    ],
)  # fmt: skip
async def test_refusals_become_the_errors_httpx_gives(
    open_api: FakeBotAPI, code: int, description: str, parameters: dict[str, Any] | None
) -> None:
    raised: list[TelegramError] = []
    for request in (HTTPXRequest(2), AiohttpRequest(2)):
        open_api.fail_next("sendMessage", code, description, parameters)
        async with bot_on(open_api.base_url, request, open_api.token) as bot:
            with pytest.raises(TelegramError) as info:
                await bot.send_message(1, "x")
        raised.append(info.value)
    theirs, ours = raised
    assert type(ours) is type(theirs) and str(ours) == str(theirs)
    if isinstance(ours, RetryAfter) and isinstance(theirs, RetryAfter):
        assert ours.retry_after == theirs.retry_after


async def test_parameters_go_as_json_with_their_types(open_api: FakeBotAPI) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions

    markup = InlineKeyboardMarkup([[InlineKeyboardButton("下一页", callback_data="p:2")]])
    async with bot_on(open_api.base_url, AiohttpRequest(2), open_api.token) as bot:
        await bot.send_message(
            -100123,
            "<b>第一页</b>",
            parse_mode="HTML",
            reply_markup=markup,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
            disable_notification=True,
        )
    [call] = open_api.calls("sendMessage")
    assert call.ok and call.params["chat_id"] == -100123
    assert call.params["disable_notification"] is True
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "p:2"
    assert call.params["link_preview_options"] == {"is_disabled": True}


# -- failures never show the token ---------------------------------------------------------


def shown_text(err: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    """The error's traceback (its chain included) and what was logged about it. PTB's own
    DEBUG lines name the API URL by design; bot/logs.py's formatter masks them."""
    logged = [
        r.getMessage() + (r.exc_text or "")
        for r in caplog.records
        if r.levelno > logging.DEBUG or not r.name.startswith("telegram")
    ]
    return "".join(traceback.format_exception(err)) + "\n".join(logged)


def _unreachable() -> str:
    return f"http://127.0.0.1:{closed_port()}/bot"


@pytest.mark.parametrize(
    ("where", "error"),
    [
        (_unreachable, NetworkError),
        (lambda: "http://:99999/bot", NetworkError),  # aiohttp's message is the URL itself
    ],
)
async def test_a_failed_request_is_a_network_error_without_the_token(
    where: Callable[[], str], error: type[TelegramError], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TelegramError) as info:
        async with bot_on(where(), AiohttpRequest(2)):
            pass
    assert type(info.value) is error
    assert info.value.message.startswith("aiohttp.")
    assert SECRET_HALF not in shown_text(info.value, caplog)


async def test_no_connection_in_time_is_timed_out_without_the_token(
    silent_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    # aiohttp says "Connection timeout to host <the URL>": the URL holds the token.
    caplog.set_level(logging.DEBUG)
    request = AiohttpRequest(1, read_timeout=1.0, connect_timeout=0.05, pool_timeout=0.05)
    bot = bot_on(silent_server, request)
    await request.initialize()
    holder = asyncio.create_task(bot.get_me())  # holds the pool's one connection
    await asyncio.sleep(0.05)
    with pytest.raises(TimedOut) as info:
        await bot.get_me()
    with pytest.raises(TimedOut):
        await holder
    await request.shutdown()
    assert "connect and pool" in info.value.message
    assert SECRET_HALF not in shown_text(info.value, caplog)


@pytest.mark.parametrize(
    ("text", "url", "shown"),
    [
        (f"Connection timeout to host http://h/bot{TOKEN}/getMe", f"http://h/bot{TOKEN}/getMe",
         "Connection timeout to host http://h/bot<token>/getMe"),
        (f"GET http://h/file/bot{TOKEN}/photos/1.jpg", f"http://h/file/bot{TOKEN}/photos/1.jpg",
         "GET http://h/file/bot<token>/photos/1.jpg"),
        ("Cannot connect to host 127.0.0.1:9", "http://127.0.0.1:9/botx/getMe",
         "Cannot connect to host 127.0.0.1:9"),
        ("https://user:pw@proxy:3128 refused", "", "https://***@proxy:3128 refused"),
    ],
)  # fmt: skip
def test_scrub(text: str, url: str, shown: str) -> None:
    assert scrub(text, url) == shown


# -- lifecycle -----------------------------------------------------------------------------


def _unclosed(caught: list[warnings.WarningMessage], log: str) -> list[str]:
    found = [str(w.message) for w in caught if "nclosed" in str(w.message)]
    return found + [line for line in log.splitlines() if "Unclosed" in line]


async def test_shutdown_closes_the_session_and_initialize_reopens_it(
    open_api: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    request = AiohttpRequest(2)
    bot = bot_on(open_api.base_url, request, open_api.token)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with bot:
            await bot.send_message(1, "x")
            session = request._session
            assert session is not None and not session.closed
        assert session.closed and request._session is None
        async with bot:  # a shut-down request starts again
            await bot.send_message(1, "y")
        # Used without initialize (as the doctor's getMe): nothing is left open either.
        await bot_on(open_api.base_url, AiohttpRequest(1), open_api.token).get_me()
        del bot, session
        gc.collect()
        await asyncio.sleep(0)
    assert _unclosed(caught, caplog.text) == []


async def test_the_application_closes_both_sessions(
    tmp_path: Path, content: Path, open_api: FakeBotAPI
) -> None:
    config = make_config(tmp_path, content, open_api)
    async with BotUnderTest(open_api, config) as bot:
        updates, requests = bot.app.bot._request
        assert isinstance(requests, AiohttpRequest) and isinstance(updates, AiohttpRequest)
        sessions = [requests._session, updates._session]
        (reply,) = await bot.say(5, "/help")
        assert reply.text
    assert all(s is not None and s.closed for s in sessions)


# -- the pure parts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "upload", "expected"),
    [
        ((DEFAULT, DEFAULT, DEFAULT, DEFAULT), False, (5.0, 6.0, 7.0, 1.0)),
        ((DEFAULT, DEFAULT, DEFAULT, DEFAULT), True, (5.0, 20.0, 7.0, 1.0)),
        ((None, DEFAULT, 2.0, None), False, (None, 6.0, 2.0, None)),
        ((65.0, 3.0, DEFAULT, DEFAULT), True, (65.0, 3.0, 7.0, 1.0)),
    ],
)
def test_default_none_is_the_instance_default_and_none_no_limit(
    given: tuple[Any, Any, Any, Any], upload: bool, expected: tuple[float | None, ...]
) -> None:
    request = AiohttpRequest(read_timeout=5.0, write_timeout=6.0, connect_timeout=7.0)
    assert request.timeouts(*given, upload=upload) == expected
    assert request.read_timeout == 5.0


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((5.0, 5.0, 5.0, 1.0), aiohttp.ClientTimeout(16.0, 6.0, 5.0, 5.0)),
        ((15.0, 5.0, 5.0, 1.0), aiohttp.ClientTimeout(26.0, 6.0, 15.0, 5.0)),  # a long poll
        ((None, 5.0, 5.0, 1.0), aiohttp.ClientTimeout(None, 6.0, None, 5.0)),
        ((5.0, 5.0, 5.0, None), aiohttp.ClientTimeout(None, None, 5.0, 5.0)),
    ],
)
def test_client_timeout(values: tuple[float | None, ...], expected: aiohttp.ClientTimeout) -> None:
    read, write, connect, pool = values
    assert client_timeout(read, write, connect, pool) == expected


@pytest.mark.parametrize(
    ("env", "origin", "proxy"),
    [
        ({}, "https://api.telegram.org", None),
        ({"HTTPS_PROXY": "http://p:3128"}, "https://api.telegram.org", "http://p:3128"),
        ({"HTTPS_PROXY": "http://p:3128"}, "http://127.0.0.1:8081", None),
        ({"ALL_PROXY": "http://p:3128"}, "http://127.0.0.1:8081", "http://p:3128"),
        ({"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "api.telegram.org"},
         "https://api.telegram.org", None),
    ],
)  # fmt: skip
def test_env_proxy(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], origin: str, proxy: str | None
) -> None:
    _clear_proxies(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert env_proxy(origin) == proxy


def test_a_socks_proxy_is_refused_with_the_way_out(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_proxies(monkeypatch)
    monkeypatch.setenv("ALL_PROXY", "socks5://user:pw@p:1080")
    with pytest.raises(NetworkError, match=r"telegram\.http: httpx") as info:
        env_proxy("https://api.telegram.org")
    assert "pw" not in info.value.message


async def test_requests_go_through_the_environment_proxy(
    monkeypatch: pytest.MonkeyPatch, open_api: FakeBotAPI
) -> None:
    # The fake answers an absolute-form request line as a proxy would pass it on: the bot
    # names a host that does not exist and reaches the fake only through the proxy.
    _clear_proxies(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", open_api.url)
    bot = bot_on("http://api.telegram.invalid/bot", AiohttpRequest(1), open_api.token)
    async with bot:
        assert (await bot.send_message(1, "代理")).text == "代理"
    assert [c.params["text"] for c in open_api.calls("sendMessage")] == ["代理"]


def _clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


# -- replies without PTB's Message (bot/telegram/replybot.py) ------------------------------


def _reply_bot(api: FakeBotAPI) -> ReplyBot:
    return ReplyBot(
        api.token,
        base_url=api.base_url.removesuffix(api.token),
        request=AiohttpRequest(2),
        get_updates_request=AiohttpRequest(1),
        defaults=Defaults(parse_mode="HTML", link_preview_options=LinkPreviewOptions(True)),
        rate_limiter=AIORateLimiter(max_retries=1),
    )


async def test_send_text_sends_what_send_message_sends(open_api: FakeBotAPI) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("下一页", callback_data="p:2")]])
    open_api.add_chat(-100777, "supergroup", is_forum=True)
    topic = open_api.create_topic(-100777)
    async with _reply_bot(open_api) as bot:
        for send in (bot.send_message, bot.send_text):
            await send(-100777, "<b>第一页</b>", reply_markup=markup, message_thread_id=topic)
            await send(8, "<i>二</i>")
        with pytest.raises(BadRequest, match="Chat not found") as lean:
            open_api.missing(9)
            await bot.send_text(9, "x")
    calls = [c.params for c in open_api.calls("sendMessage")]
    assert calls[0] == calls[2] and calls[1] == calls[3]
    assert calls[0]["parse_mode"] == "HTML" and calls[0]["link_preview_options"]["is_disabled"]
    assert calls[0]["message_thread_id"] == topic
    assert lean.value.message == "Chat not found"


async def test_a_reply_builds_no_message_from_the_answer(
    tmp_path: Path, content: Path, open_api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[dict[str, Any]] = []
    de_json = Message.de_json

    def counting(data: Any, bot: Any = None) -> Any:
        if isinstance(data, dict) and (data.get("from") or {}).get("is_bot"):
            built.append(data)  # an answer to the bot's own send, not a user's message
        return de_json(data, bot)

    monkeypatch.setattr(Message, "de_json", counting)
    config = make_config(tmp_path, content, open_api)
    async with BotUnderTest(open_api, config) as bot:
        assert isinstance(bot.app.bot, ReplyBot)
        (reply,) = await bot.say(5, "/help")
    assert reply.text and reply.params["parse_mode"] == "HTML"
    assert built == []


async def test_send_text_on_a_plain_bot_is_send_message(open_api: FakeBotAPI) -> None:
    async with bot_on(open_api.base_url, AiohttpRequest(1), open_api.token) as bot:
        await send_text(bot, 3, "plain", message_thread_id=None)
    [call] = open_api.calls("sendMessage")
    assert call.ok and call.params["text"] == "plain"


# -- the event loop ------------------------------------------------------------------------


@pytest.mark.parametrize("installed", [True, False])
def test_the_bot_runs_on_uvloop_when_installed(
    monkeypatch: pytest.MonkeyPatch, installed: bool
) -> None:
    from bot.telegram.app import new_event_loop

    if not installed:
        monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop: ImportError
    loop = new_event_loop()
    try:
        assert (type(loop).__module__.split(".")[0] == "uvloop") == installed
        assert loop.run_until_complete(asyncio.sleep(0, "ran")) == "ran"
    finally:
        loop.close()
