"""Channels: subscribed by one of their administrators from a private chat
(``/channel @name``), or listed in ``delivery.channels``; who manages which.

Part of the chats repository (a channel is a chat): the ``channel_managers`` table, and
the rows of ``chats`` that are channels, written with the chats repository's own helpers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

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
