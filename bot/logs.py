"""Logging that never shows the bot token.

httpx logs every request URL at INFO, python-telegram-bot logs the API URL at DEBUG, and
exception texts can carry it: so the token is removed from every formatted line, whatever
the logger or level, and httpx is kept at WARNING."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# Any token shape, even one that is not ours (a misconfigured second bot, say).
_TOKEN_SHAPE = re.compile(r"\d{3,15}:[A-Za-z0-9_-]{20,100}")
MASK = "<token>"


class RedactingFormatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return _TOKEN_SHAPE.sub(MASK, text)


def setup_logging(level: str, secrets: Iterable[str] = ()) -> None:
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
