"""A minimal HTTP/1.1 server for /healthz, /readyz and /metrics (GET or HEAD only).

Plain asyncio rather than a web framework: three read-only routes, one request per
connection. Requests are bounded (8 KiB of headers, 5 s to send them) so a slow or hostile
client cannot hold the event loop or memory; anything else gets a short 4xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Response = tuple[int, str, bytes]  # status, content type, body
Route = Callable[[], Awaitable[Response]]
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
HEADER_LIMIT = 8192
READ_TIMEOUT = 5.0


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464`` for IPv6) as config.ops.listen gives it."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class OpsServer:
    def __init__(self, host: str, port: int, routes: dict[str, Route]) -> None:
        self.host, self.port = host, port
        self.routes = routes
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; OSError if the address is taken. ``port`` 0 picks a free one (tests)."""
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=HEADER_LIMIT
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, kind, body, head = await self._respond(reader)
            reason = REASONS.get(status, "")
            header = (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(header.encode("ascii") + (b"" if head else body))
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes, bool]:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                request = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.LimitOverrunError, ValueError):
            return (*_text(400, "request too large"), False)
        line = request.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return (*_text(400, "bad request line"), False)
        method, target = parts[0], parts[1].split("?", 1)[0]
        route = self.routes.get(target)
        if route is None:
            return (*_text(404, "not found: try /healthz, /readyz or /metrics"), False)
        if method not in ("GET", "HEAD"):
            return (*_text(405, "only GET and HEAD"), False)
        try:
            status, kind, body = await route()
        except Exception:
            log.exception("ops: %s failed", target)
            status, kind, body = _text(500, "internal error (see the log)")
        return status, kind, body, method == "HEAD"


def _text(status: int, text: str) -> Response:
    return status, "text/plain; charset=utf-8", (text + "\n").encode()
