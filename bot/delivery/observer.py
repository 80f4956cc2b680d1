"""What the sender tells an observer about each message: the seam metrics hang on.

bot/delivery knows nothing of Prometheus: :mod:`bot.ops.metrics` implements this protocol,
and the default :data:`NO_OBSERVER` ignores everything. Methods are plain (not async) and
must not raise or block: they are called on the sender's hot path.
"""

from __future__ import annotations

from typing import Literal, Protocol

Op = Literal["send", "edit"]
# Why a message will never be delivered: Telegram refused this message (a 400), every
# attempt failed, or the chat is unreachable (blocked, kicked, deactivated).
FailReason = Literal["rejected", "exhausted", "unreachable"]


class DeliveryObserver(Protocol):
    def sent(self, chat_type: str, op: Op = "send") -> None:
        """Telegram confirmed a message (``op``: sent or edited)."""

    def failed(self, chat_type: str, reason: FailReason, op: Op = "send") -> None:
        """A message is given up for good."""

    def flood(self, seconds: float) -> None:
        """Telegram answered 429 and asked to wait ``seconds``."""

    def retry(self, chat_type: str) -> None:
        """A transient failure: the message will be tried again after a backoff."""


class NoObserver:
    """The default: observes nothing."""

    def sent(self, chat_type: str, op: Op = "send") -> None:
        pass

    def failed(self, chat_type: str, reason: FailReason, op: Op = "send") -> None:
        pass

    def flood(self, seconds: float) -> None:
        pass

    def retry(self, chat_type: str) -> None:
        pass


NO_OBSERVER: DeliveryObserver = NoObserver()
