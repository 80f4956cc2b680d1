"""Flood limits (429 with ``retry_after``) and faults: per-chat errors, injected errors/drops.

:class:`LimitsAndFaults` is the part of :class:`~fakebot.server.FakeBotAPI` that configures
and applies them; :class:`RateLimits` sets the token buckets' rates and bursts.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from .state import SimulatedTelegram
from .updates import chat_dict
from .validation import ApiError

__all__ = ["RATE_LIMITED_METHODS", "SEND_METHODS", "LimitsAndFaults", "RateLimits"]

JSONDict = dict[str, Any]

# Lower-cased names of methods that deliver/modify messages in a chat: subject to chat faults.
SEND_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendaudio",
        "sendvideo",
        "sendanimation",
        "sendvoice",
        "sendvideonote",
        "sendmediagroup",
        "sendlocation",
        "sendvenue",
        "sendcontact",
        "sendpoll",
        "senddice",
        "sendsticker",
        "sendchataction",
        "copymessage",
        "forwardmessage",
        "editmessagetext",
        "editmessagereplymarkup",
        "editmessagecaption",
        "editmessagemedia",
        "deletemessage",
        "pinchatmessage",
    }
)
# Methods counted by the flood limits.
RATE_LIMITED_METHODS = frozenset(
    SEND_METHODS - {"sendchataction", "deletemessage", "pinchatmessage"}
)


@dataclass(frozen=True)
class RateLimits:
    """Telegram's flood limits (token buckets: a rate and a burst capacity)."""

    private_per_second: float = 1.0
    private_burst: int = 3
    group_per_minute: float = 20.0
    group_burst: int = 20
    global_per_second: float = 30.0
    global_burst: int = 30
    paid_per_second: float = 1000.0
    paid_burst: int = 1000


@dataclass
class Bucket:
    tokens: float
    last: float

    def wait(self, now: float, rate: float, capacity: float) -> float:
        self.tokens = min(capacity, self.tokens + (now - self.last) * rate)
        self.last = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / rate


@dataclass
class ChatFault:
    code: int
    description: str
    parameters: JSONDict | None = None
    send_only: bool = True


@dataclass
class Injected:
    method: str | None
    error: ApiError | None  # None = drop the connection
    times: int


class LimitsAndFaults(SimulatedTelegram):
    """Configure and apply flood limits and faults (attributes set by ``FakeBotAPI.__init__``)."""

    FAULT_EXEMPT: ClassVar[frozenset[str]] = frozenset({"getupdates", "getme"})

    rate_limits: bool
    rate_scale: float
    limits: RateLimits
    error_rate_5xx: float
    drop_rate: float
    delay: float
    fault_methods: set[str] | None
    fractional_retry_after: bool

    _rng: random.Random
    _chat_faults: dict[int, ChatFault]
    _injected: list[Injected]
    _buckets: dict[int, Bucket]
    _global_bucket: Bucket | None
    _paid_bucket: Bucket | None

    # ------------------------------------------------------------------ configuration

    def block(self, chat_id: int) -> None:
        """The user blocked the bot / the bot was kicked from the group: sends answer 403."""
        chat_type = self._chat_type(chat_id)
        if chat_type == "private":
            description = "Forbidden: bot was blocked by the user"
        else:
            description = f"Forbidden: bot was kicked from the {chat_type} chat"
        self.set_chat_fault(chat_id, 403, description)

    def deactivate(self, chat_id: int) -> None:
        self.set_chat_fault(chat_id, 403, "Forbidden: user is deactivated")

    def missing(self, chat_id: int) -> None:
        """Every method naming this chat answers 400 ``chat not found``."""
        self.set_chat_fault(chat_id, 400, "Bad Request: chat not found", send_only=False)

    def migrate(self, old_chat_id: int, new_chat_id: int) -> None:
        """The group was upgraded: 400 with ``parameters.migrate_to_chat_id``."""
        self.set_chat_fault(
            old_chat_id,
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            {"migrate_to_chat_id": new_chat_id},
            send_only=False,
        )
        with self._lock:
            if new_chat_id not in self._state.chats:
                self._state.chats[new_chat_id] = chat_dict(new_chat_id, "supergroup")

    def set_chat_fault(
        self,
        chat_id: int,
        code: int,
        description: str,
        parameters: JSONDict | None = None,
        *,
        send_only: bool = True,
    ) -> None:
        """Any custom per-chat error; ``send_only`` limits it to sending/editing methods."""
        with self._lock:
            self._chat_faults[chat_id] = ChatFault(code, description, parameters, send_only)

    def unblock(self, chat_id: int) -> None:
        """Remove any fault configured for ``chat_id``."""
        with self._lock:
            self._chat_faults.pop(chat_id, None)

    clear_fault = unblock

    def fail_next(
        self,
        method: str | None = None,
        code: int = 500,
        description: str = "Internal Server Error",
        parameters: JSONDict | None = None,
        *,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (any method if None) with an error."""
        with self._lock:
            self._injected.append(
                Injected(
                    method.lower() if method else None,
                    ApiError(code, description, parameters),
                    times,
                )
            )

    def drop_next(self, method: str | None = None, *, times: int = 1) -> None:
        """Drop the connection for the next ``times`` calls of ``method`` (any if None)."""
        with self._lock:
            self._injected.append(Injected(method.lower() if method else None, None, times))

    def reset_faults(self) -> None:
        with self._lock:
            self._chat_faults.clear()
            self._injected.clear()
            self.error_rate_5xx = 0.0
            self.drop_rate = 0.0
            self.delay = 0.0

    def reset_rate_limits(self) -> None:
        """Refill every flood-limit bucket."""
        with self._lock:
            self._buckets.clear()
            self._global_bucket = None
            self._paid_bucket = None

    # ------------------------------------------------------------------ applying them

    def _target_chat(self, params: JSONDict, method: str, name: str = "chat_id") -> JSONDict:
        """The chat a method names, or the chat's configured fault."""
        chat = self._lookup_chat(params.get(name))
        with self._lock:
            fault = self._chat_faults.get(chat["id"])
        if fault is not None and (not fault.send_only or method.lower() in SEND_METHODS):
            raise ApiError(fault.code, fault.description, fault.parameters)
        return chat

    def _faults_apply(self, key: str) -> bool:
        if self.fault_methods is not None:
            return key in self.fault_methods
        return key not in self.FAULT_EXEMPT

    def _pick_fault(self, key: str) -> tuple[ApiError | None, bool]:
        with self._lock:
            for injected in self._injected:
                if injected.method is None or injected.method == key:
                    injected.times -= 1
                    if injected.times <= 0:
                        self._injected.remove(injected)
                    return injected.error, injected.error is None
            if not self._faults_apply(key):
                return None, False
            if self.drop_rate > 0 and self._rng.random() < self.drop_rate:
                return None, True
            if self.error_rate_5xx > 0 and self._rng.random() < self.error_rate_5xx:
                if self._rng.random() < 0.5:
                    return ApiError(500, "Internal Server Error"), False
                return ApiError(502, "Bad Gateway"), False
        return None, False

    def _check_rate(self, chat: JSONDict, method: str, *, paid: bool) -> None:
        if not self.rate_limits or method.lower() not in RATE_LIMITED_METHODS:
            return
        limits, scale = self.limits, self.rate_scale
        now = time.monotonic()
        with self._lock:
            if chat["type"] == "private":
                rate, capacity = limits.private_per_second * scale, float(limits.private_burst)
            else:
                rate, capacity = limits.group_per_minute / 60.0 * scale, float(limits.group_burst)
            bucket = self._buckets.setdefault(chat["id"], Bucket(capacity, now))
            if paid:
                g_rate, g_capacity = limits.paid_per_second * scale, float(limits.paid_burst)
                if self._paid_bucket is None:
                    self._paid_bucket = Bucket(g_capacity, now)
                global_bucket = self._paid_bucket
            else:
                g_rate, g_capacity = limits.global_per_second * scale, float(limits.global_burst)
                if self._global_bucket is None:
                    self._global_bucket = Bucket(g_capacity, now)
                global_bucket = self._global_bucket
            wait = max(
                bucket.wait(now, rate, capacity), global_bucket.wait(now, g_rate, g_capacity)
            )
            if wait > 0:
                retry: float | int
                if self.fractional_retry_after:
                    retry = max(round(wait, 3), 0.001)
                else:
                    retry = max(1, math.ceil(wait))
                raise ApiError(
                    429, f"Too Many Requests: retry after {retry}", {"retry_after": retry}
                )
            bucket.tokens -= 1.0
            global_bucket.tokens -= 1.0
