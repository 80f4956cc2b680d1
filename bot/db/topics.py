"""Forum topics: a topic of a forum supergroup subscribed on its own (``/start`` sent
inside it), with its own delivery cursors, and deactivated on its own when Telegram says it
was closed or deleted, while the rest of the group keeps working.

The only owner of the ``topics`` table. A topic is ``(chat id, message_thread_id)``; what
its topics share (language, /time, /quiet, whether the bot may write there at all) stays
in the chat's row (:mod:`bot.db.chats`). The General topic is not a topic: a group
subscribed outside any topic is the chat's own subscription, thread 0 in the outbox.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from bot.core.schedule import slot_key
from bot.db import chats
from bot.db.chats import REACHABLE, ChatInfo
from bot.db.database import Database

NO_TOPIC = 0  # outbox and watches: not in a topic (a private chat, a group's General)


class TopicStatus(StrEnum):
    ACTIVE = "active"  # receives the daily brief in this topic
    STOPPED = "stopped"  # /stop there, or only watching
    GONE = "gone"  # closed or deleted: nothing is sent there until a /start reopens it


def _iso(now: dt.datetime | None) -> str:
    return slot_key(now or dt.datetime.now(dt.UTC))


async def status(db: Database, chat_id: int, thread_id: int) -> TopicStatus | None:
    value = await db.value(
        "SELECT status FROM topics WHERE chat_id = ? AND thread_id = ?", [chat_id, thread_id]
    )
    return TopicStatus(value) if value else None


async def list_topics(db: Database, chat_id: int) -> list[tuple[int, TopicStatus]]:
    """(thread id, status) of the chat's topics, in thread order."""
    rows = await db.rows(
        "SELECT thread_id, status FROM topics WHERE chat_id = ? ORDER BY thread_id", [chat_id]
    )
    return [(thread, TopicStatus(s)) for thread, s in rows]


async def counts(db: Database) -> dict[str, int]:
    """Topics by status, for ``/stats``."""
    return dict(await db.rows("SELECT status, count(*) FROM topics GROUP BY status"))


# -- subscriptions ------------------------------------------------------------------------


async def subscribe(
    db: Database, info: ChatInfo, thread_id: int, *, now: dt.datetime | None = None
) -> bool:
    """``/start`` inside the topic: it gets the daily brief there. False if it already
    did. A topic that was closed or deleted is subscribed again (it was reopened)."""
    when = _iso(now)
    async with db.transaction():
        await chats.note(db, info)
        # last_slot = now: the first delivery is at the next slot, as for a chat.
        changed = await db.execute(
            "INSERT INTO topics (chat_id, thread_id, status, subscribed_at, last_slot)"
            " VALUES (?, ?, 'active', ?, ?) ON CONFLICT (chat_id, thread_id) DO UPDATE SET"
            " status = 'active', reason = NULL, subscribed_at = excluded.subscribed_at,"
            " last_slot = max(coalesce(topics.last_slot, ''), excluded.last_slot),"
            " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
            " WHERE topics.status != 'active'",
            [info.id, thread_id, when, when],
        )
        return changed > 0


async def unsubscribe(
    db: Database, chat_id: int, thread_id: int, reason: str = "stopped by the user"
) -> bool:
    """``/stop`` inside the topic: only this topic stops. False if it was not subscribed.
    (Its pending messages are the outbox's: :func:`bot.delivery.audience.stop`.)"""
    async with db.transaction():
        changed = await db.execute(
            "UPDATE topics SET status = 'stopped', reason = ?,"
            " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
            " WHERE chat_id = ? AND thread_id = ? AND status = 'active'",
            [reason, chat_id, thread_id],
        )
        return changed > 0


async def reachable(db: Database, chat_id: int, thread_id: int) -> bool:
    """A command came from the topic, so it is open again: a gone topic becomes stopped
    (its watches are served again; the brief needs a /start). True if it was gone."""
    async with db.transaction():
        changed = await db.execute(
            "UPDATE topics SET status = 'stopped', reason = 'open again',"
            " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
            " WHERE chat_id = ? AND thread_id = ? AND status = 'gone'",
            [chat_id, thread_id],
        )
        return changed > 0


async def mark_gone(db: Database, chat_id: int, thread_id: int, reason: str) -> bool:
    """Telegram says the topic is closed or deleted: nothing more is sent there. True if
    it was subscribed until now (what a broadcast counts as newly inactive, as for chats);
    a topic that only had watches gets its row here, and counts as nothing."""
    async with db.transaction():
        before = await status(db, chat_id, thread_id)
        await db.execute(
            "INSERT INTO topics (chat_id, thread_id, status, reason)"
            " SELECT id, ?, 'gone', ? FROM chats WHERE id = ?"
            " ON CONFLICT (chat_id, thread_id) DO UPDATE SET status = 'gone',"
            " reason = excluded.reason, updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            [thread_id, reason, chat_id],
        )
        return before is TopicStatus.ACTIVE


async def stop_all(db: Database, chat_id: int, reason: str) -> int:
    """The chat is unreachable (the bot was blocked or kicked): its topics stop with it,
    as its own subscription does; being added again makes none of them active."""
    async with db.transaction():
        return await db.execute(
            "UPDATE topics SET status = 'stopped', reason = ?,"
            " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
            " WHERE chat_id = ? AND status = 'active'",
            [reason, chat_id],
        )


async def migrate(db: Database, old_id: int, new_id: int) -> None:
    """The group became the supergroup ``new_id`` (whose chat row exists by now): its
    topics go with it. A plain group has none, but a chat id is all this knows."""
    async with db.transaction():
        await db.execute(
            "UPDATE OR IGNORE topics SET chat_id = ? WHERE chat_id = ?", [new_id, old_id]
        )
        await db.execute("DELETE FROM topics WHERE chat_id = ?", [old_id])


# -- the planner's side -------------------------------------------------------------------

# Topics whose chat the bot may still write to (a kicked bot writes to no topic of it).
_REACHABLE_CHAT = f"c.status IN ('{REACHABLE[0]}', '{REACHABLE[1]}')"


async def delivery_times(db: Database) -> list[str | None]:
    """The distinct own delivery times of the chats that have active topics."""
    rows = await db.rows(
        "SELECT DISTINCT c.delivery_time FROM topics t JOIN chats c ON c.id = t.chat_id"
        f" WHERE t.status = 'active' AND {_REACHABLE_CHAT}"
    )
    return [r[0] for r in rows]


async def due_page(
    db: Database, own: str | None, slot: str, after: tuple[int, int], limit: int
) -> list[Any]:
    """(chat, thread, language, last issue) of active topics in reachable chats with this
    own time whose last handled slot is before ``slot``: the first ``limit`` after the
    (chat, thread) ``after``. Read in the transaction that enqueues for them."""
    return await db.rows(
        "SELECT t.chat_id, t.thread_id, c.language, t.last_issue FROM topics t"
        " JOIN chats c ON c.id = t.chat_id WHERE t.status = 'active' AND"
        f" {_REACHABLE_CHAT} AND c.delivery_time IS ?"
        " AND (t.last_slot IS NULL OR t.last_slot < ?) AND (t.chat_id, t.thread_id) > (?, ?)"
        " ORDER BY t.chat_id, t.thread_id LIMIT ?",
        [own, slot, *after, limit],
    )


async def advance(db: Database, cursors: Sequence[tuple[str | None, str | None, int, int]]) -> None:
    """(slot, issue, chat, thread): as :func:`bot.db.chats.advance`, for topics."""
    await db.executemany(
        "UPDATE topics SET last_slot = coalesce(?, last_slot),"
        " last_issue = nullif(max(coalesce(last_issue, ''), coalesce(?, '')), '')"
        " WHERE chat_id = ? AND thread_id = ?",
        cursors,
    )


async def repair_cursors(db: Database, limit: dt.date) -> int:
    """As :func:`bot.db.chats.repair_cursors`, for topics."""
    iso = limit.isoformat()
    async with db.transaction():
        return await db.execute(
            "UPDATE topics SET last_issue = (SELECT max(o.issue) FROM outbox o"
            " WHERE o.chat_id = topics.chat_id AND o.thread_id = topics.thread_id"
            " AND o.kind = 'issue' AND o.issue <= ? AND o.status IN ('pending', 'sent'))"
            " WHERE last_issue > ?",
            [iso, iso],
        )
