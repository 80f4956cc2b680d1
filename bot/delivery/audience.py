"""Changes to who receives the brief that touch both the chats and the outbox, each one
atomic: a chat that stops, becomes unreachable or migrates takes its pending messages
with it. The chats and outbox repositories stay the only owners of their tables; this is
where the two are composed."""

from __future__ import annotations

from bot.db import chats, outbox
from bot.db.chats import ChatInfo
from bot.db.database import Database


async def stop(db: Database, chat_id: int, reason: str = "stopped by the user") -> bool:
    """/stop: unsubscribe and cancel the issue messages still pending (watches go on)."""
    async with db.transaction():
        changed = await chats.unsubscribe(db, chat_id, reason)
        if changed:
            await outbox.cancel_pending(db, chat_id, reason, kind="issue")
        return changed


async def stop_channel(db: Database, channel: ChatInfo, user_id: int) -> bool:
    """/channel @name off, by one of its administrators."""
    async with db.transaction():
        changed = await chats.unsubscribe_channel(db, channel, user_id)
        if changed:
            await outbox.cancel_pending(db, channel.id, chats.CHANNEL_OFF, kind="issue")
        return changed


async def unreachable(db: Database, chat_id: int, reason: str) -> bool:
    """Telegram refuses the chat for good: mark it blocked and cancel all that is pending.
    True if it was reachable until now."""
    async with db.transaction():
        changed = await chats.mark_inactive(db, chat_id, reason)
        await outbox.cancel_pending(db, chat_id, reason)
        return changed


async def member_changed(db: Database, info: ChatInfo, new_status: str) -> bool:
    """A ``my_chat_member`` update (the bot's own status in the chat). True if the chat's
    status changed."""
    async with db.transaction():
        changed = await chats.note_member(db, info, new_status)
        reason = chats.gone_reason(info, new_status)
        if reason:
            await outbox.cancel_pending(db, info.id, reason)
        return changed


async def migrated(db: Database, old_id: int, new_id: int) -> bool:
    """The group became a supergroup: move its subscription and its pending messages."""
    async with db.transaction():
        changed = await chats.migrate(db, old_id, new_id)
        await outbox.repoint_pending(db, old_id, new_id)
        return changed
