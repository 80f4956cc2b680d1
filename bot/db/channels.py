"""Channels: subscribed by one of their administrators from a private chat
(``/channel @name``), or listed in ``delivery.channels``; who manages which.

Part of the chats repository (a channel is a chat): the ``channel_managers`` table, and
the rows of ``chats`` that are channels, written with the chats repository's own helpers;
and, read from the outbox, where each issue went to a public channel (:func:`channel_posts`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from bot.db.chats import (
    _COLUMNS,
    ChatInfo,
    ChatRecord,
    _note,
    _now,
    _record,
    _subscribe,
    unsubscribe,
)
from bot.db.database import Database


async def subscribe_channel(
    db: Database, channel: ChatInfo, user_id: int, *, now: dt.datetime | None = None
) -> bool:
    """``/channel @name`` by one of its administrators (the caller checked both rights)."""
    async with db.transaction():
        changed = await _subscribe(db, channel, None, "user", _now(now))
        await db.execute(
            "INSERT OR IGNORE INTO channel_managers (channel_id, user_id) VALUES (?, ?)",
            [channel.id, user_id],
        )
        return changed


CHANNEL_OFF = "stopped by a channel administrator"


async def unsubscribe_channel(db: Database, channel: ChatInfo, user_id: int) -> bool:
    """``/channel @name off``; the channel stays in the user's list, marked stopped."""
    async with db.transaction():
        await _note(db, channel)
        await db.execute(
            "INSERT OR IGNORE INTO channel_managers (channel_id, user_id) VALUES (?, ?)",
            [channel.id, user_id],
        )
        return await unsubscribe(db, channel.id, CHANNEL_OFF)


async def managed_channels(db: Database, user_id: int) -> list[ChatRecord]:
    cols = ", ".join(f"c.{c.strip()}" for c in _COLUMNS.split(","))
    rows = await db.rows(
        f"SELECT {cols} FROM channel_managers m JOIN chats c ON c.id = m.channel_id"
        " WHERE m.user_id = ? ORDER BY c.title, c.id",
        [user_id],
    )
    return [_record(r) for r in rows]


async def sync_config_channels(
    db: Database,
    found: Sequence[ChatInfo],
    configured: Sequence[str | int],
    *,
    now: dt.datetime | None = None,
) -> list[int]:
    """Subscribe the resolved config channels; stop config chats no longer configured (a
    configured one that failed to resolve this time is left as it was). Returns the ids of
    chats stopped."""
    keep_ids = {ref for ref in configured if isinstance(ref, int)} | {c.id for c in found}
    keep_names = {ref[1:].lower() for ref in configured if isinstance(ref, str)}
    async with db.transaction():
        for info in found:
            await _subscribe(db, info, None, "config", _now(now))
            await db.execute("UPDATE chats SET source = 'config' WHERE id = ?", [info.id])
        rows = await db.rows(
            "SELECT id, username FROM chats WHERE source = 'config' AND status = 'active'"
        )
        gone = [
            cid
            for cid, name in rows
            if cid not in keep_ids and (name or "").lower() not in keep_names
        ]
        for cid in gone:
            await db.execute(
                "UPDATE chats SET status = 'stopped', reason = ? WHERE id = ?",
                ["removed from delivery.channels", cid],
            )
    return gone


# -- channel posts ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelPost:
    """Where an issue first went to a public channel (a channel with a username)."""

    username: str
    message_ids: dict[int, int]  # part -> Telegram's message id, of the parts sent
    texts: dict[int, str]  # part -> the HTML that message shows now


# The channels first (few, through the partial index chats_public_channels), then their
# rows of the issues: starting from the outbox would read every subscriber's row. A message
# a correction edited shows the base text of its latest edit done (bot/db/edits).
_CHANNEL_ROWS = (
    "SELECT o.issue, o.chat_id, o.part, o.message_id, c.username, t.html FROM chats c"
    " CROSS JOIN outbox o ON o.chat_id = c.id JOIN texts t ON t.id = coalesce((SELECT"
    " e.base_id FROM edits e WHERE e.chat_id = o.chat_id AND e.message_id = o.message_id"
    " AND e.status = 'done' ORDER BY e.id DESC LIMIT 1), o.text_id)"
    " WHERE c.type = 'channel' AND c.username IS NOT NULL AND c.username != ''"
    " AND o.kind = 'issue' AND o.status = 'sent' AND o.message_id IS NOT NULL"
    " AND o.issue IN ({}) ORDER BY o.id"
)


async def channel_posts(db: Database, dates: Sequence[dt.date]) -> dict[dt.date, ChannelPost]:
    """Per issue that reached a public channel: the first such post, in the channel of the
    lowest outbox id among the sent rows (a later channel, or a part sent later, never
    moves a link). The username is read now, so a renamed channel keeps working links."""
    wanted = sorted({d.isoformat() for d in dates})
    if not wanted:
        return {}
    rows = await db.rows(_CHANNEL_ROWS.format(", ".join("?" * len(wanted))), wanted)
    first: dict[str, int] = {}  # issue -> the chat of its first sent row (rows in id order)
    for issue, chat_id, *_ in rows:
        first.setdefault(issue, chat_id)
    found: dict[dt.date, ChannelPost] = {}
    for issue, chat_id in first.items():
        mine = [r for r in rows if r[0] == issue and r[1] == chat_id]
        found[dt.date.fromisoformat(issue)] = ChannelPost(
            mine[0][4], {r[2]: r[3] for r in mine}, {r[2]: r[5] for r in mine}
        )
    return found
