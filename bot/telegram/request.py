"""python-telegram-bot's HTTP layer over aiohttp: :class:`AiohttpRequest`, a ``BaseRequest``.

PTB's default ``HTTPXRequest`` spends most of a reply's CPU in httpx and httpcore (their
request models, the pool's bookkeeping, the form encoding of every parameter). This class
does the same job over aiohttp, as the engine's ``FastTransport`` already does:

* parameters go as one JSON body (``request_data.parameters``, serialised once) instead of
  a form whose every value PTB JSON-encodes separately; uploads (``sendPhoto`` for /trend)
  as ``multipart/form-data`` with the file name and MIME type PTB gives;
* PTB's four timeouts map onto ``aiohttp.ClientTimeout``: ``read`` is the socket read
  timeout (getUpdates passes the poll timeout plus the read timeout, so a long poll is
  never cut short), ``connect`` the socket connect timeout, ``pool`` + ``connect`` the
  wait for a pooled or new connection, and the sum of all four bounds the whole request
  (aiohttp has no write timeout of its own). ``DEFAULT_NONE`` means this instance's
  default, ``None`` no limit, as in ``HTTPXRequest``; uploads default to
  ``media_write_timeout``;
* a timeout becomes ``telegram.error.TimedOut``, any other failure ``NetworkError``; the
  URL holds the bot token, so no aiohttp message is passed on unscrubbed and none is
  chained (``from None``): a logged traceback cannot show it either;
* the proxy in ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` (and ``NO_PROXY``) is used, as
  httpx does, looked up once per host rather than per request (aiohttp's ``trust_env``
  does it in a thread on every request).

HTTP status and body are returned unchanged: PTB's ``BaseRequest`` turns 4xx/5xx answers
into ``BadRequest``, ``RetryAfter``, ``Forbidden`` and the rest itself.

The engine keeps its own ``FastTransport`` session: a broadcast holds up to 200 connections
at 1,000 messages/s, and sharing one pool would queue replies behind it.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, HTTPXRequest, RequestData

from bot.logs import redact

# The token sits in every Bot API URL: /bot<token>/method and /file/bot<token>/path.
_TOKEN_IN_URL = re.compile(r"/bot([^/?#\s]+)")
_JSON_HEADERS = {"Content-Type": "application/json", "User-Agent": BaseRequest.USER_AGENT}
_HEADERS = {"User-Agent": BaseRequest.USER_AGENT}
_TIMEOUTS_KEPT = 16  # distinct per-request timeouts cached (getUpdates uses one or two)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def scrub(text: str, url: str) -> str:
    """``text`` with the token of ``url`` (and anything else secret) masked."""
    match = _TOKEN_IN_URL.search(url)
    return redact(text, [match.group(1)] if match is not None else [])


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what the proxy choice depends on."""
    start = url.find("//") + 2
    end = url.find("/", start)
    return url if end < 0 else url[:end]


def env_proxy(origin: str) -> str | None:
    """The proxy the environment sets for ``origin`` (``NO_PROXY`` honoured), or None."""
    proxies = urllib.request.getproxies()
    scheme, _, host = origin.partition("://")
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    if not proxy.lower().startswith(("http://", "https://")):
        # aiohttp speaks to HTTP proxies only; httpx needs an extra for SOCKS too.
        raise NetworkError(
            f"the proxy for {scheme} requests is not an HTTP proxy "
            f"({scrub(proxy, '')}): use one, or set telegram.http: httpx"
        )
    return proxy


def client_timeout(
    read: float | None, write: float | None, connect: float | None, pool: float | None
) -> aiohttp.ClientTimeout:
    """PTB's four timeouts as aiohttp's: ``read`` between reads of the answer, ``connect``
    for the socket, ``connect + pool`` for getting a connection at all (a pooled one or a
    new one), and their sum for the whole request: aiohttp has no write timeout, so a
    stalled upload ends there. ``None`` is no limit (and no total)."""
    values = (read, write, connect, pool)
    return aiohttp.ClientTimeout(
        total=None if None in values else sum(v for v in values if v is not None),
        connect=None if connect is None or pool is None else connect + pool,
        sock_connect=connect,
        sock_read=read,
    )


class AiohttpRequest(BaseRequest):
    """A ``telegram.request.BaseRequest`` over one aiohttp session with a keep-alive pool of
    ``connection_pool_size`` connections. The session is made in ``initialize``, in the
    running loop, and closed by ``shutdown``; a shut-down instance can be initialised
    again, and one used uninitialised gives each request a session closed after it. Give
    getUpdates an instance of its own (pool 1), as PTB does."""

    __slots__ = (
        "_defaults",
        "_media_write_timeout",
        "_pool",
        "_proxies",
        "_session",
        "_timeouts",
    )

    def __init__(
        self,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool = max(1, connection_pool_size)
        # (read, write, connect, pool): what DEFAULT_NONE stands for.
        self._defaults = (read_timeout, write_timeout, connect_timeout, pool_timeout)
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}
        self._proxies: dict[str, str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._defaults[0]

    @property
    def http_version(self) -> str:
        return "1.1"

    # -- lifecycle -------------------------------------------------------------------------

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._pool, limit_per_host=self._pool, keepalive_timeout=30.0
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout(self._defaults),
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),  # the Bot API sets none: no jar to search
        )

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = self._new_session()

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
            # Let the transports' connection_lost callbacks run before the loop may end.
            await asyncio.sleep(0)

    # -- one request -----------------------------------------------------------------------

    def timeouts(
        self,
        read: ODVInput[float],
        write: ODVInput[float],
        connect: ODVInput[float],
        pool: ODVInput[float],
        *,
        upload: bool,
    ) -> tuple[float | None, float | None, float | None, float | None]:
        """(read, write, connect, pool) for one request: ``DEFAULT_NONE`` is this instance's
        default (``media_write_timeout`` for an upload's write), anything else as given."""
        d_read, d_write, d_connect, d_pool = self._defaults
        if upload:
            d_write = self._media_write_timeout
        return (
            d_read if isinstance(read, DefaultValue) else read,
            d_write if isinstance(write, DefaultValue) else write,
            d_connect if isinstance(connect, DefaultValue) else connect,
            d_pool if isinstance(pool, DefaultValue) else pool,
        )

    def _timeout(self, values: tuple[float | None, ...]) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(values)
        if timeout is None:
            timeout = client_timeout(*values)
            if len(self._timeouts) < _TIMEOUTS_KEPT:
                self._timeouts[values] = timeout
        return timeout

    def _proxy(self, url: str) -> str | None:
        origin = _origin(url)
        try:
            return self._proxies[origin]
        except KeyError:
            proxy = self._proxies[origin] = env_proxy(origin)
            return proxy

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        data: bytes | aiohttp.FormData | None = None
        headers = _HEADERS
        upload = request_data is not None and request_data.contains_files
        if request_data is not None:
            if upload:
                data = self._form(request_data)
            else:
                parameters = request_data.parameters
                if parameters:
                    data, headers = _dumps(parameters), _JSON_HEADERS
        timeout = self._timeout(
            self.timeouts(read_timeout, write_timeout, connect_timeout, pool_timeout, upload=upload)
        )
        try:
            session = self._session
            if session is None or session.closed:
                # Used without initialize() (the doctor's one getMe): a session for this
                # request alone, closed after it, so none is left open when the loop ends.
                async with self._new_session() as once:
                    return await self._send(once, method, url, data, headers, timeout)
            return await self._send(session, method, url, data, headers, timeout)
        except TimeoutError as err:  # aiohttp's ServerTimeoutError is one too
            if isinstance(err, aiohttp.ConnectionTimeoutError):
                raise TimedOut(
                    "Timed out: no connection within the connect and pool timeouts"
                ) from None
            raise TimedOut() from None
        except NetworkError:
            raise
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {scrub(str(err), url)}") from None
        except (OSError, ValueError, RuntimeError) as err:  # a closed session, a bad URL
            raise NetworkError(f"{type(err).__name__}: {scrub(str(err), url)}") from None

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        data: bytes | aiohttp.FormData | None,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout,
    ) -> tuple[int, bytes]:
        async with session.request(
            method, url, data=data, headers=headers, timeout=timeout, proxy=self._proxy(url)
        ) as response:
            return response.status, await response.read()

    @staticmethod
    def _form(request_data: RequestData) -> aiohttp.FormData:
        """An upload: every parameter as a form field (PTB's JSON encoding of each), every
        file as a part with its name and MIME type."""
        form = aiohttp.FormData(quote_fields=False)
        for name, value in request_data.json_parameters.items():
            form.add_field(name, value)
        for name, (filename, content, mimetype) in request_data.multipart_data.items():
            form.add_field(name, content, filename=filename, content_type=mimetype)
        return form


def bot_requests(http: str, pool: int) -> tuple[BaseRequest, BaseRequest]:
    """A Bot's two request objects, ``(request, get_updates_request)``: ``http`` is
    ``telegram.http`` (aiohttp, or PTB's own HTTPXRequest); getUpdates gets a pool of one."""
    if http == "httpx":
        return HTTPXRequest(connection_pool_size=pool), HTTPXRequest(connection_pool_size=1)
    return AiohttpRequest(connection_pool_size=pool), AiohttpRequest(connection_pool_size=1)
