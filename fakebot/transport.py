"""HTTP: the threaded server and handler, request decoding and the dispatch of one request.

The server is a :class:`http.server.ThreadingHTTPServer` (HTTP/1.1 keep-alive) in a daemon
thread.  Bodies may be JSON, urlencoded forms or multipart (files become
:class:`~fakebot.state.UploadedFile`); the parameters PTB JSON-encodes inside form fields are
decoded (:data:`JSON_FIELDS`), and fields that are not valid JSON become
:class:`~fakebot.validation.Unparsable`.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qsl, urlsplit

from .limits import LimitsAndFaults
from .state import Call, UploadedFile
from .validation import ApiError, Unparsable, bad

if TYPE_CHECKING:
    from telegram import Bot

__all__ = ["JSON_FIELDS", "HTTPTransport", "decode_params"]

JSONDict = dict[str, Any]

# Parameters PTB sends JSON-encoded inside form fields.
JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "link_preview_options",
        "commands",
        "scope",
        "results",
        "button",
        "allowed_updates",
        "reply_parameters",
        "media",
        "options",
        "permissions",
        "explanation_entities",
        "message_ids",
        "reaction",
        "menu_button",
        "rights",
    }
)
_PATH_RE = re.compile(r"^/bot([^/]*)/([A-Za-z0-9_]+)/?$")


def decode_params(query: str, content_type: str, body: bytes) -> JSONDict:
    """The request's parameters: query string plus a JSON, form or multipart body."""
    params: JSONDict = dict(parse_qsl(query, keep_blank_values=True))
    ctype = content_type.split(";")[0].strip().lower()
    if body:
        if ctype == "application/json":
            data = json.loads(body.decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError("JSON body must be an object")
            params.update(data)
        elif ctype == "multipart/form-data":
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
            )
            for part in message.iter_parts():
                name = str(part.get_param("name", header="content-disposition") or "")
                payload = part.get_payload(decode=True)
                data = payload if isinstance(payload, bytes) else b""
                filename = part.get_filename()
                if filename is not None:
                    params[name] = UploadedFile(filename, part.get_content_type(), data)
                else:
                    params[name] = data.decode("utf-8")
        else:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for name in JSON_FIELDS & params.keys():
        value = params[name]
        if isinstance(value, str):
            try:
                params[name] = json.loads(value)
            except ValueError:
                params[name] = Unparsable(value)
    return params


def _json_default(value: Any) -> Any:
    if isinstance(value, UploadedFile):
        return {"filename": value.filename, "size": len(value.data)}
    raise TypeError(type(value).__name__)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.api._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.api._track(self.connection, add=False)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        answer = self.server.api._handle(
            self.command, self.path, self.headers.get("Content-Type", ""), body
        )
        if answer is None:  # dropped: no response, close the connection
            self.close_connection = True
            return
        status, payload = answer
        data = json.dumps(payload, ensure_ascii=False, default=_json_default).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = _dispatch
    do_GET = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128  # a burst of new connections must not overflow the backlog

    def __init__(self, address: tuple[str, int], api: HTTPTransport) -> None:
        self.api = api
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients going away mid-request (closed pools, cancelled long polls) are normal.
        pass


class HTTPTransport(LimitsAndFaults):
    """Serving: lifecycle, URLs, and :meth:`_handle` (route, authorize, fault, answer)."""

    host: str
    port: int
    _httpd: _HTTPServer | None
    _thread: threading.Thread | None
    _connections: set[socket.socket]

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind (an ephemeral port unless ``port`` was given) and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopping = False
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeBotAPI:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake long polls and close open keep-alive connections."""
        httpd = self._httpd
        if httpd is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as PTB's ``base_url`` (PTB appends the token)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    def bot(self, **kwargs: Any) -> Bot:
        """A ``telegram.Bot`` pointed at this server."""
        from telegram import Bot

        return Bot(self.token, base_url=self.base_url, base_file_url=self.base_file_url, **kwargs)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # ------------------------------------------------------------------ one request

    def _handle(
        self, verb: str, raw_path: str, content_type: str, body: bytes
    ) -> tuple[int, JSONDict] | None:
        parts = urlsplit(raw_path)
        match = _PATH_RE.match(parts.path)
        if match is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        token, method = match.groups()
        if token != self.token:
            payload = {"ok": False, "error_code": 401, "description": "Unauthorized"}
            self._record(Call(method, {}, 401, payload, time.time()))
            return 401, payload
        try:
            params = decode_params(parts.query, content_type, body)
        except ValueError as exc:
            error = bad(f"can't parse request: {exc}")
            self._record(Call(method, {}, error.code, error.payload(), time.time()))
            return error.code, error.payload()
        key = method.lower()
        handler = self._methods.get(key)

        injected, drop = self._pick_fault(key)
        if drop:
            self._record(Call(method, params, None, None, time.time()))
            return None
        delay = self.delay
        if delay > 0 and injected is None and handler is not None and self._faults_apply(key):
            time.sleep(delay)
        if injected is not None:
            status, payload = injected.code, injected.payload()
        elif handler is None:
            status, payload = 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        else:
            try:
                result = handler(params)
                status, payload = 200, {"ok": True, "result": result}
            except ApiError as exc:
                status, payload = exc.code, exc.payload()
                if exc.code == 429:
                    with self._lock:
                        self._count_429 += 1
        self._record(Call(method, params, status, payload, time.time()))
        return status, payload
