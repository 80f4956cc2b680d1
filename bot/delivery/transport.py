"""The narrow interface the sender needs from Telegram, and the outcomes it tells apart.

The engine never sees python-telegram-bot: :mod:`bot.telegram.transport` adapts a PTB
``Bot`` to this, and tests may pass any object with the same method.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol


class Failure(Enum):
    FLOOD = "flood"  # 429: wait retry_after, then the same message again
    MIGRATED = "migrated"  # the group is now a supergroup: migrate_to
    GONE = "gone"  # blocked, kicked, deactivated, not found: never again
    TOPIC_GONE = "topic_gone"  # the forum topic was closed or deleted: never again there
    REJECTED = "rejected"  # this message is refused (a 400): do not retry it
    TRANSIENT = "transient"  # timeouts, 5xx, dropped connections: retry with backoff


class SendError(Exception):
    """A send that Telegram refused or that did not complete; ``failure`` says which."""

    def __init__(
        self,
        failure: Failure,
        description: str,
        *,
        retry_after: float = 0.0,
        migrate_to: int | None = None,
    ) -> None:
        super().__init__(description)
        self.failure = failure
        self.description = description
        self.retry_after = retry_after
        self.migrate_to = migrate_to


class Transport(Protocol):
    """Sends or edits one HTML message; raises SendError for what Telegram refused."""

    async def send_html(
        self,
        chat_id: int,
        html: str,
        *,
        paid: bool = False,
        silent: bool = False,
        thread_id: int | None = None,
    ) -> int:
        """Send; returns Telegram's message id. ``silent``: disable_notification;
        ``thread_id``: the forum topic (message_thread_id)."""
        ...

    async def edit_html(self, chat_id: int, message_id: int, html: str) -> None:
        """Replace the text of a message sent before (editMessageText)."""
        ...

    def redact(self, text: str) -> str:
        """Text with every secret the transport knows (the token) removed."""
        ...
