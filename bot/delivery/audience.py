"""Changes to who receives the brief that touch both the chats and the outbox, each one
atomic: a chat that stops, becomes unreachable or migrates takes its pending messages
with it. The chats and outbox repositories stay the only owners of their tables; this is
where the two are composed."""

from __future__ import annotations

from bot.db import channels, chats, outbox, topics
from bot.db.chats import ChatInfo
from bot.db.database import Database

GENERAL_CLOSED = "the General topic is closed"


async def stop(
    db: Database, chat_id: int, reason: str = "stopped by the user", thread_id: int = 0
) -> bool:
    """/stop: unsubscribe and cancel the issue messages still pending (watches go on). In
    a forum topic (``thread_id``) only that topic stops; outside any topic only the
    chat's own subscription, never its topics'."""
    async with db.transaction():
        if thread_id:
            changed = await topics.unsubscribe(db, chat_id, thread_id, reason)
        else:
            changed = await chats.unsubscribe(db, chat_id, reason)
        if changed:
            await outbox.cancel_pending(db, chat_id, reason, kind="issue", thread_id=thread_id)
        return changed


async def topic_gone(db: Database, chat_id: int, thread_id: int, reason: str) -> bool:
    """Telegram says the forum topic is closed or deleted: deactivate it, like a blocked
    chat, and cancel everything pending for it; the chat and its other topics go on.
    Thread 0 (a message without a topic refused as TOPIC_CLOSED: the forum's General
    topic is closed) stops the chat's own subscription only. True if it was live."""
    async with db.transaction():
        if thread_id:
            changed = await topics.mark_gone(db, chat_id, thread_id, reason)
        else:
            changed = await chats.unsubscribe(db, chat_id, f"{GENERAL_CLOSED} ({reason})")
        await outbox.cancel_pending(db, chat_id, reason, thread_id=thread_id)
        return changed


async def stop_channel(db: Database, channel: ChatInfo, user_id: int) -> bool:
    """/channel @name off, by one of its administrators."""
    async with db.transaction():
        changed = await channels.unsubscribe_channel(db, channel, user_id)
        if changed:
            await outbox.cancel_pending(db, channel.id, channels.CHANNEL_OFF, kind="issue")
        return changed


async def unreachable(db: Database, chat_id: int, reason: str) -> bool:
    """Telegram refuses the chat for good: mark it blocked and cancel all that is pending.
    True if it was reachable until now."""
    async with db.transaction():
        changed = await chats.mark_inactive(db, chat_id, reason)
        await topics.stop_all(db, chat_id, reason)
        await outbox.cancel_pending(db, chat_id, reason)
        return changed


async def member_changed(db: Database, info: ChatInfo, new_status: str) -> bool:
    """A ``my_chat_member`` update (the bot's own status in the chat). True if the chat's
    status changed."""
    async with db.transaction():
        changed = await chats.note_member(db, info, new_status)
        reason = chats.gone_reason(info, new_status)
        if reason:
            await topics.stop_all(db, info.id, reason)
            await outbox.cancel_pending(db, info.id, reason)
        return changed


async def migrated(db: Database, old_id: int, new_id: int) -> bool:
    """The group became a supergroup: move its subscription, topics and watches, and its
    pending messages (each keeps its topic)."""
    async with db.transaction():
        changed = await chats.migrate(db, old_id, new_id)
        if changed:
            await topics.migrate(db, old_id, new_id)
        await outbox.repoint_pending(db, old_id, new_id)
        return changed
