"""A lean Bot API sink for the paid-broadcast benchmark: raw asyncio HTTP/1.1, keep-alive.

fakebot (threads, full validation) cannot take 1,000 requests a second on one core; this
can. It answers ``getMe``, ``sendMessage`` and ``editMessageText`` only, keeps Telegram's
token buckets — paid broadcasts (``allow_paid_broadcast``) 1,000/s overall, others 30/s,
each private chat 1/s with a burst of 3; an edit takes from the same buckets as a message
(it is never paid) — and answers 429 with ``retry_after`` beyond them. It records the time
and chat of every accepted message, and the time, chat and message id of every accepted
edit; ``GET /stats`` returns them as JSON.

Run as its own process (so the engine under test has a core to itself)::

    python -m bench.sink --token TOKEN [--paid-rate 1000] [--scale 1]    # prints {"port": N}

``--scale K`` multiplies the free rate (30/s) and the per-chat rate (1/s) by K, as
``bench.bench_delivery`` scales the fake's limits, so a long run is short.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import re
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

PAID_RATE, PAID_BURST = 1000.0, 100.0  # Telegram: up to 1,000/s with allow_paid_broadcast
FREE_RATE, FREE_BURST = 30.0, 30.0
CHAT_RATE, CHAT_BURST = 1.0, 3.0
_TAG = re.compile(r"<[^>]*>")
BOT = {"id": 777000111, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}


class Bucket:
    __slots__ = ("capacity", "last", "rate", "tokens")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate, self.capacity, self.tokens, self.last = rate, capacity, capacity, now

    def wait(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate


class Sink:
    def __init__(self, token: str, paid_rate: float, scale: float = 1.0) -> None:
        self.token = token
        now = time.monotonic()
        self.paid = Bucket(paid_rate, PAID_BURST * paid_rate / PAID_RATE, now)
        self.free = Bucket(FREE_RATE * scale, FREE_BURST, now)
        self.chat_rate = CHAT_RATE * scale
        self.chats: dict[int, Bucket] = {}
        self.accepted: list[tuple[float, int]] = []
        self.edited: list[tuple[float, int, int]] = []  # (time, chat, message id)
        self.edit_429 = 0
        self.first_edit = 0.0
        self.count_429 = 0
        self.other_errors = 0
        self.first_call = 0.0
        self.message_id = 0

    def send_message(self, params: dict[str, Any]) -> tuple[int, bytes]:
        wall = time.time()
        if not self.first_call:
            self.first_call = wall
        try:
            chat_id = int(params["chat_id"])
            text = str(params["text"])
        except (KeyError, ValueError):
            self.other_errors += 1
            return 400, b'{"ok":false,"error_code":400,"description":"Bad Request: chat_id"}'
        paid = str(params.get("allow_paid_broadcast", "")).lower() in ("true", "1")
        refused = self._take(chat_id, paid)
        if refused is not None:
            self.count_429 += 1
            return refused
        self.accepted.append((wall, chat_id))
        self.message_id += 1
        # Shaped like Telegram's answer (message_id first, the text echoed without markup).
        result = {
            "message_id": self.message_id,
            "from": BOT,
            "chat": {"id": chat_id, "first_name": "User", "type": "private"},
            "date": int(wall),
            "text": _TAG.sub("", text),
        }
        body = json.dumps({"ok": True, "result": result}, ensure_ascii=False, separators=(",", ":"))
        return 200, body.encode()

    def _take(self, chat_id: int, paid: bool) -> tuple[int, bytes] | None:
        """A token from the chat's bucket and the overall one, or the 429 to answer."""
        now = time.monotonic()
        bucket = self.chats.get(chat_id)
        if bucket is None:
            bucket = self.chats[chat_id] = Bucket(self.chat_rate, CHAT_BURST, now)
        overall = self.paid if paid else self.free
        wait = max(bucket.wait(now), overall.wait(now))
        if wait > 0:
            retry = max(1, math.ceil(wait))
            return 429, (
                b'{"ok":false,"error_code":429,"description":"Too Many Requests: retry after %d",'
                b'"parameters":{"retry_after":%d}}' % (retry, retry)
            )
        bucket.tokens -= 1.0
        overall.tokens -= 1.0
        return None

    def edit_message_text(self, params: dict[str, Any]) -> tuple[int, bytes]:
        wall = time.time()
        if not self.first_edit:
            self.first_edit = wall
        try:
            chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
            text = str(params["text"])
        except (KeyError, ValueError):
            self.other_errors += 1
            return 400, b'{"ok":false,"error_code":400,"description":"Bad Request: message_id"}'
        refused = self._take(chat_id, False)  # an edit is never a paid broadcast
        if refused is not None:
            self.edit_429 += 1
            return refused
        self.edited.append((wall, chat_id, message_id))
        result = {
            "message_id": message_id,
            "from": BOT,
            "chat": {"id": chat_id, "first_name": "User", "type": "private"},
            "date": int(wall),
            "edit_date": int(wall),
            "text": _TAG.sub("", text),
        }
        body = json.dumps({"ok": True, "result": result}, ensure_ascii=False, separators=(",", ":"))
        return 200, body.encode()

    def stats(self) -> bytes:
        per_chat = Counter(chat for _, chat in self.accepted)
        return json.dumps(
            {
                "accepted": self.accepted,
                "first_call": self.first_call,
                "count_429": self.count_429,
                "other_errors": self.other_errors,
                "chats": len(per_chat),
                "twice": sum(n - 1 for n in per_chat.values() if n > 1),
                "edited": self.edited,
                "first_edit": self.first_edit,
                "edit_429": self.edit_429,
                "cpu_s": time.process_time(),
            }
        ).encode()

    def answer(self, verb: str, path: str, ctype: str, body: bytes) -> tuple[int, bytes]:
        if path == "/stats":
            return 200, self.stats()
        prefix = f"/bot{self.token}/"
        if not path.startswith(prefix):
            return 401, b'{"ok":false,"error_code":401,"description":"Unauthorized"}'
        method = path[len(prefix) :].split("?")[0].lower()
        if method == "getme":
            return 200, json.dumps({"ok": True, "result": BOT}).encode()
        if method not in ("sendmessage", "editmessagetext"):
            return 404, b'{"ok":false,"error_code":404,"description":"Not Found"}'
        if ctype.startswith("application/json"):
            params = json.loads(body)
        else:  # PTB posts a form, every value JSON-encoded
            params = dict(parse_qsl(body.decode("utf-8")))
        if method == "editmessagetext":
            return self.edit_message_text(params)
        return self.send_message(params)


class Connection(asyncio.Protocol):
    """HTTP/1.1 requests with Content-Length bodies, answered in order, kept alive."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            verb, path, _ = head[0].split(" ", 2)
            status, payload = self.sink.answer(verb, path, headers.get("content-type", ""), body)
            self.transport.write(
                b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                b"Connection: keep-alive\r\n\r\n%s" % (status, len(payload), payload)
            )


async def serve(token: str, paid_rate: float, scale: float = 1.0) -> None:
    sink = Sink(token, paid_rate, scale)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(sink), "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sink", description=__doc__)
    parser.add_argument("--token", required=True)
    parser.add_argument("--paid-rate", type=float, default=PAID_RATE)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    try:  # the sink is not what is measured: let it be as fast as it can
        import uvloop

        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.token, args.paid_rate, args.scale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
