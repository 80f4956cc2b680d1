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
"""

from __future__ import annotations

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
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def _print_redacted(
    exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None
) -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(redact(text))


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    sys.stderr.write(f"Exception in thread {name}:\n")
    _print_redacted(args.exc_type, args.exc_value, args.exc_traceback)


def install_excepthook() -> None:
    """Print uncaught exceptions, in any thread, through ``redact``."""
    sys.excepthook = _print_redacted
    threading.excepthook = _thread_hook


def setup_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at ``level``, redacted; ``secrets`` are registered for good."""
    secrets = list(secrets)
    for secret in secrets:
        register_secret(secret)
    install_excepthook()
    handler = logging.StreamHandler()
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)
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
