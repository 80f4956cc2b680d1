"""The chats the bot knows: subscriptions to the daily brief, channel managers, keyword
watches, and what Telegram told us about each chat (blocked, migrated, added).

The only owner of the ``chats``, ``channel_managers`` and ``watches`` tables: a repository
over :class:`~bot.db.database.Database` (channels subscribed by their administrators, and
``channel_managers``, in :mod:`bot.db.channels`; forum topics in :mod:`bot.db.topics`).
Writes of more than one statement run in one transaction; a caller that must change the
outbox in the same step (``/stop`` cancels pending messages) wraps both in its own
``db.transaction()``, which these join.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from bot.core.schedule import format_hhmm, parse_hhmm, slot_key
from bot.core.search import clean, fold, parse_query
from bot.db.database import Database

log = logging.getLogger(__name__)

MAX_WATCHES = 10
CHAT_TYPES = ("private", "group", "supergroup", "channel")


class Status(StrEnum):
    ACTIVE = "active"  # receives the daily brief
    STOPPED = "stopped"  # reachable, not subscribed (stopped, or only noted or watching)
    BLOCKED = "blocked"  # Telegram refuses: blocked, kicked, deactivated, not found
    MIGRATED = "migrated"  # the group became a supergroup: see migrated_to


# Chats Telegram still lets us write to (watches go to these even when not subscribed).
REACHABLE = (Status.ACTIVE.value, Status.STOPPED.value)


class ChatError(ValueError):
    """A request about a chat that cannot be done; the message says why."""


class WatchLimitError(ChatError):
    pass


@dataclass(frozen=True)
class ChatInfo:
    """What Telegram tells us about a chat."""

    id: int
    type: str
    title: str = ""
    username: str | None = None

    @classmethod
    def from_telegram(cls, chat: _TelegramChat) -> ChatInfo:
        title = chat.title or " ".join(p for p in (chat.first_name, chat.last_name) if p)
        kind = str(chat.type) if chat.type in CHAT_TYPES else "private"
        return cls(chat.id, kind, title, chat.username)


class _TelegramChat(Protocol):
    """The fields of ``telegram.Chat`` (or ``ChatFullInfo``) this module reads."""

    @property
    def id(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def first_name(self) -> str | None: ...
    @property
    def last_name(self) -> str | None: ...


@dataclass(frozen=True)
class ChatRecord:
    id: int
    type: str
    title: str
    username: str | None
    language: str | None
    subscribed_at: str | None
    status: Status
    reason: str | None
    source: str
    delivery_time: dt.time | None
    last_issue: dt.date | None
    last_slot: str | None
    migrated_to: int | None

    @property
    def subscribed(self) -> bool:
        return self.status is Status.ACTIVE

    def as_dict(self) -> dict[str, Any]:
        """For ``briefbot subscribers --json``."""
        return {
            "id": self.id,
            "type": self.type,
            "title": self.title,
            "username": self.username,
            "language": self.language,
            "status": self.status.value,
            "reason": self.reason,
            "source": self.source,
            "subscribed_at": self.subscribed_at,
            "delivery_time": format_hhmm(self.delivery_time) if self.delivery_time else None,
            "last_issue": self.last_issue.isoformat() if self.last_issue else None,
            "migrated_to": self.migrated_to,
        }


_COLUMNS = (
    "id, type, title, username, language, subscribed_at, status, reason, source,"
    " delivery_time, last_issue, last_slot, migrated_to"
)


# ``/time now``: the chat gets each issue as soon as it is ready (settled), not at a time.
ON_ARRIVAL = "now"


def _record(row: Sequence[Any]) -> ChatRecord:
    (cid, kind, title, username, lang, since, status, reason, source, dtime, last, slot, to) = row
    return ChatRecord(
        cid,
        kind,
        title,
        username,
        lang,
        since,
        Status(status),
        reason,
        source,
        parse_hhmm(dtime) if dtime and dtime != ON_ARRIVAL else None,
        dt.date.fromisoformat(last) if last else None,
        slot,
        to,
    )


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def _iso(now: dt.datetime) -> str:
    return slot_key(now)


async def _get(db: Database, chat_id: int) -> ChatRecord | None:
    rows = await db.rows(f"SELECT {_COLUMNS} FROM chats WHERE id = ?", [chat_id])
    return _record(rows[0]) if rows else None


async def _note(db: Database, info: ChatInfo) -> None:
    """Create the chat (not subscribed) or refresh what Telegram says about it."""
    await db.execute(
        "INSERT INTO chats (id, type, title, username) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET type = excluded.type, title = excluded.title,"
        " username = excluded.username, updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
        [info.id, info.type, info.title, info.username],
    )


async def note(db: Database, info: ChatInfo) -> None:
    """Note the chat (not subscribed), or refresh what Telegram says about it."""
    async with db.transaction():
        await _note(db, info)


# -- reading ------------------------------------------------------------------------------


async def get(db: Database, chat_id: int) -> ChatRecord | None:
    return await _get(db, chat_id)


async def iter_chats(
    db: Database, *, status: str | None = None, type: str | None = None, page: int = 1000
) -> AsyncIterator[ChatRecord]:
    """Every chat in id order, a page at a time (there may be 100,000)."""
    where, params = [], []
    for column, value in (("status", status), ("type", type)):
        if value:
            where.append(f"{column} = ? AND ")
            params.append(value)
    sql = f"SELECT {_COLUMNS} FROM chats WHERE {''.join(where)}id > ? ORDER BY id LIMIT ?"
    async for rows in db.pages(sql, params, page=page):
        for row in rows:
            yield _record(row)


async def list_chats(
    db: Database, *, status: str | None = None, type: str | None = None
) -> list[ChatRecord]:
    return [chat async for chat in iter_chats(db, status=status, type=type)]


async def counts(db: Database) -> dict[tuple[str, str], int]:
    """Chats by (type, status), for ``/stats``."""
    rows = await db.rows("SELECT type, status, count(*) FROM chats GROUP BY 1, 2")
    return {(kind, status): n for kind, status, n in rows}


async def delivery_times(db: Database) -> list[str | None]:
    """The distinct own delivery times of active chats (None: the configured times)."""
    return [
        r[0]
        for r in await db.rows("SELECT DISTINCT delivery_time FROM chats WHERE status = 'active'")
    ]


async def due_page(db: Database, own: str | None, slot: str, after: int, limit: int) -> list[Any]:
    """(id, language, last issue) of active chats with this own time whose last handled
    slot is before ``slot``: the first ``limit`` with ids above ``after``. Read it in the
    transaction that enqueues for them, so a /stop meanwhile is seen."""
    return await db.rows(
        "SELECT id, language, last_issue FROM chats WHERE status = 'active'"
        " AND delivery_time IS ? AND (last_slot IS NULL OR last_slot < ?) AND id > ?"
        " ORDER BY id LIMIT ?",
        [own, slot, after, limit],
    )


async def repair_cursors(db: Database, limit: dt.date) -> int:
    """A cursor past ``limit`` came from an issue dated in the future (a typo since fixed):
    put it back to the newest issue of that chat's outbox up to ``limit``. Returns how many
    chats were repaired."""
    iso = limit.isoformat()
    async with db.transaction():
        return await db.execute(
            "UPDATE chats SET last_issue = (SELECT max(o.issue) FROM outbox o"
            " WHERE o.chat_id = chats.id AND o.thread_id = 0 AND o.kind = 'issue' AND o.issue <= ?"
            " AND o.status IN ('pending', 'sent')) WHERE last_issue > ?",
            [iso, iso],
        )


async def advance(db: Database, cursors: Sequence[tuple[str | None, str | None, int]]) -> None:
    """(slot, issue, chat): the chat's schedule slot was handled and the issue enqueued for
    it. The last issue only moves forward (inside the caller's transaction)."""
    await db.executemany(
        "UPDATE chats SET last_slot = coalesce(?, last_slot),"
        " last_issue = nullif(max(coalesce(last_issue, ''), coalesce(?, '')), '') WHERE id = ?",
        cursors,
    )


# -- subscriptions ------------------------------------------------------------------------


async def _subscribe(
    db: Database, info: ChatInfo, language: str | None, source: str, now: dt.datetime
) -> bool:
    await _note(db, info)
    if language:
        await db.execute("UPDATE chats SET language = ? WHERE id = ?", [language, info.id])
    # last_slot = now: the first delivery is at the next slot, not a catch-up of today's.
    changed = await db.execute(
        "UPDATE chats SET status = 'active', reason = NULL, subscribed_at = ?, source = ?,"
        " last_slot = max(coalesce(last_slot, ''), ?) WHERE id = ? AND status != 'active'",
        [_iso(now), source, _iso(now), info.id],
    )
    return changed > 0


async def subscribe(
    db: Database,
    info: ChatInfo,
    *,
    language: str | None = None,
    source: str = "user",
    now: dt.datetime | None = None,
) -> bool:
    """Subscribe the chat to the daily brief; False if it already was."""
    async with db.transaction():
        return await _subscribe(db, info, language, source, _now(now))


async def unsubscribe(db: Database, chat_id: int, reason: str = "stopped by the user") -> bool:
    """Stop the daily brief (watches go on); False if it was not subscribed. Its pending
    messages are the outbox's: see :func:`bot.delivery.audience.stop`."""
    async with db.transaction():
        changed = await db.execute(
            "UPDATE chats SET status = 'stopped', reason = ? WHERE id = ? AND status = 'active'",
            [reason, chat_id],
        )
        return changed > 0


async def set_language(db: Database, info: ChatInfo, language: str | None) -> None:
    async with db.transaction():
        await _note(db, info)
        await db.execute("UPDATE chats SET language = ? WHERE id = ?", [language, info.id])


async def set_delivery_time(
    db: Database, info: ChatInfo, time: dt.time | None, *, on_arrival: bool = False
) -> None:
    """The chat's own delivery time (in ``delivery.timezone``); None: the configured times;
    ``on_arrival``: each issue as soon as it is ready (``/time now``)."""
    value = ON_ARRIVAL if on_arrival else format_hhmm(time) if time else None
    async with db.transaction():
        await _note(db, info)
        await db.execute("UPDATE chats SET delivery_time = ? WHERE id = ?", [value, info.id])


async def is_on_arrival(db: Database, chat_id: int) -> bool:
    value = await db.value("SELECT delivery_time FROM chats WHERE id = ?", [chat_id])
    return bool(value == ON_ARRIVAL)


async def set_quiet(db: Database, info: ChatInfo, quiet: bool) -> None:
    """/quiet: deliveries to this chat go out silently (no sound, no vibration)."""
    async with db.transaction():
        await _note(db, info)
        await db.execute("UPDATE chats SET quiet = ? WHERE id = ?", [int(quiet), info.id])


async def is_quiet(db: Database, chat_id: int) -> bool:
    rows = await db.rows("SELECT quiet FROM chats WHERE id = ?", [chat_id])
    return bool(rows and rows[0][0])


# -- what Telegram tells us ---------------------------------------------------------------


async def _mark_inactive(db: Database, chat_id: int, reason: str) -> bool:
    changed = await db.execute(
        "UPDATE chats SET status = 'blocked', reason = ? WHERE id = ? AND status IN (?, ?)",
        [reason, chat_id, *REACHABLE],
    )
    return changed > 0


async def mark_inactive(db: Database, chat_id: int, reason: str) -> bool:
    """Blocked, kicked, deactivated or not found. True if the chat was reachable until now.
    (What was pending for it is cancelled by :func:`bot.delivery.audience.unreachable`.)"""
    async with db.transaction():
        return await _mark_inactive(db, chat_id, reason)


def gone_reason(info: ChatInfo, new_status: str) -> str | None:
    """Why the chat is unreachable after the bot's status became ``new_status``, if it is."""
    if new_status not in ("left", "kicked"):
        return None
    return "blocked the bot" if info.type == "private" else f"bot {new_status}"


async def note_member(db: Database, info: ChatInfo, new_status: str) -> bool:
    """A ``my_chat_member`` update: the bot's own status in the chat is now ``new_status``
    (creator, administrator, member, restricted, left, kicked). True if the chat's status
    changed. Being added again makes a blocked chat reachable, not subscribed."""
    async with db.transaction():
        await _note(db, info)
        what = gone_reason(info, new_status)
        if what:
            return await _mark_inactive(db, info.id, what)
        changed = await db.execute(
            "UPDATE chats SET status = 'stopped', reason = ? WHERE id = ? AND status = 'blocked'",
            [f"bot is {new_status} again", info.id],
        )
        return changed > 0


async def migrate(db: Database, old_id: int, new_id: int) -> bool:
    """The group ``old_id`` became the supergroup ``new_id``: move its subscription, delivery
    time (``/time now`` included), /quiet, last issue and watches (each with its topic)
    there. (Topics: :func:`bot.db.topics.migrate`.) False if already done. (Its pending messages are
    the outbox's: :func:`bot.delivery.audience.migrated` moves both in one transaction.)"""
    async with db.transaction():
        old = await _get(db, old_id)
        if old is None or old.status is Status.MIGRATED:
            return False
        await _merge_into(db, old, new_id)
        await db.execute(
            "UPDATE OR IGNORE watches SET chat_id = ? WHERE chat_id = ?", [new_id, old_id]
        )
        await db.execute("DELETE FROM watches WHERE chat_id = ?", [old_id])
        await db.execute(
            "UPDATE chats SET status = 'migrated', migrated_to = ?, reason = ? WHERE id = ?",
            [new_id, f"upgraded to supergroup {new_id}", old_id],
        )
        return True


async def _merge_into(db: Database, old: ChatRecord, new_id: int) -> None:
    new = await _get(db, new_id)
    await _note(db, ChatInfo(new_id, "supergroup", old.title, old.username))
    status = old.status.value
    if new is not None and (new.status is Status.ACTIVE or old.status is Status.BLOCKED):
        status = new.status.value
    last_issues = [d for d in (old.last_issue, new and new.last_issue) if d]
    slots = [s for s in (old.last_slot, new and new.last_slot) if s]
    # The stored values, not the record's: its delivery_time cannot hold "now" (/time now),
    # which was lost here before, and the record has no /quiet.
    own_time, quiet = (
        await db.rows("SELECT delivery_time, quiet FROM chats WHERE id = ?", [old.id])
    )[0]
    await db.execute(
        "UPDATE chats SET status = ?, language = coalesce(language, ?), subscribed_at ="
        " coalesce(subscribed_at, ?), source = ?, delivery_time = coalesce(delivery_time, ?),"
        " quiet = max(quiet, ?), last_issue = ?, last_slot = ?, reason = NULL WHERE id = ?",
        [
            status,
            old.language,
            old.subscribed_at,
            old.source,
            own_time,
            quiet,
            max(last_issues).isoformat() if last_issues else None,
            max(slots) if slots else None,
            new_id,
        ],
    )


# -- watches ------------------------------------------------------------------------------


def normalize_terms(terms: str) -> str:
    """One spelling per watch: matching ignores case and extra spaces, so do duplicates."""
    return " ".join(fold(clean(terms)).split())


async def add_watch(db: Database, info: ChatInfo, terms: str, thread_id: int = 0) -> bool:
    """Watch ``terms`` (same syntax and matching as /find) in this chat, or in its forum
    topic ``thread_id`` (0: none), where the matches are sent. False if it already does;
    WatchLimitError past MAX_WATCHES (per chat or topic); QueryError for terms /find would
    refuse."""
    key = normalize_terms(terms)
    parse_query(key)
    async with db.transaction():
        await _note(db, info)
        rows = await db.rows(
            "SELECT count(*), coalesce(sum(terms = ?), 0) FROM watches"
            " WHERE chat_id = ? AND thread_id = ?",
            [key, info.id, thread_id],
        )
        total, exists = rows[0]
        if exists:
            return False
        if total >= MAX_WATCHES:
            raise WatchLimitError(f"at most {MAX_WATCHES} watches per chat; remove one first")
        await db.execute(
            "INSERT INTO watches (chat_id, thread_id, terms) VALUES (?, ?, ?)",
            [info.id, thread_id, key],
        )
        return True


async def watches(db: Database, chat_id: int, thread_id: int = 0) -> list[str]:
    """The chat's watches, or those of its topic ``thread_id``: each topic has its own."""
    rows = await db.rows(
        "SELECT terms FROM watches WHERE chat_id = ? AND thread_id = ? ORDER BY created_at, terms",
        [chat_id, thread_id],
    )
    return [r[0] for r in rows]


async def remove_watch(db: Database, chat_id: int, terms: str, thread_id: int = 0) -> bool:
    async with db.transaction():
        changed = await db.execute(
            "DELETE FROM watches WHERE chat_id = ? AND thread_id = ? AND terms = ?",
            [chat_id, thread_id, normalize_terms(terms)],
        )
        return changed > 0
