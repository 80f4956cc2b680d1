"""One redaction for everything the bot prints: log lines, error messages, tracebacks.

httpx logs every request URL at INFO, python-telegram-bot logs the API URL and every
request's parameters (``setWebhook`` with its ``secret_token``) at DEBUG, and exception
texts can carry either: so secrets are removed from every formatted line, whatever the
logger or level, and httpx is kept at WARNING.

The API, for anything that prints text that might hold a secret:

``register_secret(value)``
    From now on ``redact()`` (and so every log line) replaces ``value`` with ``MASK``.
    ``bot.config.load_config`` registers the config's secrets itself (the bot token from
    the file or the environment, the webhook ``secret_token``, passwords in URLs).
``redact(text, secrets=())``
    ``text`` with every registered secret (and the extra ``secrets``) replaced by
    ``MASK``, anything shaped like a bot token replaced by ``MASK`` (even another bot's),
    and credentials in URLs (``https://user:pass@host/``) replaced by ``***``
    (``https://***@host/``). Use it on every error message printed outside logging, e.g.
    ``print(f"briefbot: {redact(str(err))}", file=sys.stderr)``.
``install_excepthook()``
    Uncaught exceptions (main thread and other threads) print redacted tracebacks.
    ``setup_logging`` calls it.
``setup_logging(level, secrets, fmt="json")`` / ``JsonFormatter``
    ``logging.format: json`` (or ``briefbot --log-format json``): every line on stderr is
    one JSON object: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``, ``exc`` (the
    traceback) and any ``extra=`` fields, every string in it redacted.
``error_line(message, fmt)``
    The CLI's one-line error (``briefbot: ...``) in that format.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from types import TracebackType
from urllib.parse import quote

# Any token shape, even one that is not ours (a misconfigured second bot, say).
_TOKEN_SHAPE = re.compile(r"\d{3,15}:[A-Za-z0-9_-]{20,100}")
# scheme://userinfo@ : the userinfo (user, or user:password) is never shown.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#@]+@")
MASK = "<token>"
# Shorter values are not registered: masking every "abc" would garble every line, and a
# value that short protects nothing anyway.
MIN_SECRET_LENGTH = 6

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()  # replaced whole, never mutated: readers need no lock


def _variants(value: str) -> set[str]:
    """The forms a secret takes in printed text: as is, URL-encoded, and for a bot token
    its secret half (which is what an error message may quote on its own)."""
    forms = {value, value.strip(), quote(value, safe=""), quote(value)}
    if _TOKEN_SHAPE.fullmatch(value.strip()):
        forms.add(value.strip().split(":", 1)[1])
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def register_secret(value: str | None) -> None:
    """Hide ``value`` from now on in everything ``redact()`` cleans (every log line).

    Idempotent; empty values and values shorter than ``MIN_SECRET_LENGTH`` are ignored."""
    global _secrets
    if not value:
        return
    with _lock:
        known = set(_secrets) | _variants(value)
        # Longest first, so a secret that contains another is masked whole.
        _secrets = tuple(sorted(known, key=lambda s: (-len(s), s)))


def forget_secrets() -> None:
    """Drop every registered secret (for tests)."""
    global _secrets
    with _lock:
        _secrets = ()


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without registered secrets, the extra ``secrets``, bot-token-shaped strings
    and URL credentials (see the module docstring)."""
    extra = sorted((s for s in secrets if s), key=len, reverse=True)
    for secret in (*_secrets, *extra):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    return _TOKEN_SHAPE.sub(MASK, text)


class RedactingFormatter(logging.Formatter):
    """A Formatter whose every line (message, traceback, stack) goes through ``redact``."""

    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        # In every printed form (URL-encoded, a token's secret half), as registered ones are.
        forms = {form for s in secrets if s for form in _variants(s)}
        self.secrets = sorted(forms, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


# What every LogRecord has; anything else on a record came from ``extra=`` and is printed.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _clean(value: object, secrets: Iterable[str]) -> object:
    """A JSON-ready value with every string redacted (extra fields can be anything)."""
    if isinstance(value, str):
        return redact(value, secrets)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {redact(str(k), secrets): _clean(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v, secrets) for v in value]
    return redact(str(value), secrets)


def json_line(
    level: str, logger: str, msg: str, *, ts: float | None = None, **fields: object
) -> str:
    """One JSON log line (no newline), every string redacted."""
    when = dt.datetime.fromtimestamp(ts, dt.UTC) if ts is not None else dt.datetime.now(dt.UTC)
    data: dict[str, object] = {
        "ts": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "logger": logger,
        "msg": msg,
        **fields,
    }
    return json.dumps(_clean(data, ()), ensure_ascii=False, default=str)


class JsonFormatter(RedactingFormatter):
    """One JSON object per record: ts, level, logger, msg, exc (traceback), extra fields."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__("%(message)s", secrets)

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] = {
            k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
        }
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            fields["exc"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        data = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **fields,
        }
        # Redacted field by field (a secret is never split by JSON escaping), then the
        # whole line once more, as every other formatter does.
        text = json.dumps(_clean(data, self.secrets), ensure_ascii=False, default=str)
        return redact(text, self.secrets)


def error_line(message: str, fmt: str = "text") -> str:
    """The CLI's one-line error: ``briefbot: message``, or a JSON ERROR line."""
    if fmt == "json":
        return json_line("ERROR", "briefbot", redact(message))
    return f"briefbot: {redact(message)}"


_format = "text"  # of uncaught tracebacks: setup_logging sets it with the log lines'


def _print_redacted(
    exc_type: type[BaseException],
    exc: BaseException | None,
    tb: TracebackType | None,
    where: str = "",
) -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    if _format == "json":
        msg = f"uncaught {exc_type.__name__}{where}: {exc}"
        sys.stderr.write(json_line("CRITICAL", "briefbot", redact(msg), exc=redact(text)) + "\n")
        return
    if where:
        sys.stderr.write(f"Exception{where}:\n")
    sys.stderr.write(redact(text))


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    _print_redacted(args.exc_type, args.exc_value, args.exc_traceback, f" in thread {name}")


def install_excepthook() -> None:
    """Print uncaught exceptions, in any thread, through ``redact``."""
    sys.excepthook = _print_redacted
    threading.excepthook = _thread_hook


def setup_logging(level: str, secrets: Iterable[str] = (), fmt: str = "text") -> None:
    """Log to stderr at ``level``, redacted, as text or JSON lines (``fmt``); ``secrets``
    are registered for good."""
    global _format
    secrets = list(secrets)
    for secret in secrets:
        register_secret(secret)
    _format = fmt
    install_excepthook()
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter(secrets)
        if fmt == "json"
        else RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Belt and braces: httpx's INFO lines are request URLs, which contain the token.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpcore").setLevel(max(logging.WARNING, root.level))
    # aiosqlite's DEBUG lines repr every statement with all its parameters: whole archive
    # texts, megabytes per sync, slow enough to stall the database thread.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root.level))
