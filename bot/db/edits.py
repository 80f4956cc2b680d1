"""The only owner of the ``edits`` table: corrections of messages already sent, edited in
place. One row per (chat, message, revision of its issue): planning twice, or again after
``kill -9``, never edits a message twice for the same revision. The sender works through
pending rows in the same lanes and under the same limits as new messages; in its window an
edit's row id is the negative of its id here, so the two kinds never collide.

Statuses: pending; done (Telegram confirmed, or said the text is already that); failed (a
retried error or a refused text); refused (Telegram cannot edit that message any more:
"message to edit not found", "message can't be edited"): counted in /stats, never sent
again as a whole new issue.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.db.database import Database
from bot.db.outbox import Outcome

# Telegram's answers (after "Bad Request: ") that mean the message cannot be edited.
REFUSED_TEXTS = ("message to edit not found", "message can't be edited")
# ...and the one that means it already shows this text: as good as done.
NOT_MODIFIED = "message is not modified"


@dataclass(frozen=True)
class SentPart:
    """A message sent for an issue, with the text it shows now."""

    chat_id: int
    language: str
    issue: dt.date  # the date it was sent under
    part: int
    message_id: int
    base_id: int  # the render it shows (without a correction mark)
    thread_id: int = 0  # the forum topic it was sent to (0: none)


async def sent_parts(db: Database, dates: Sequence[dt.date]) -> list[SentPart]:
    """Every message sent for those issue dates, in (chat, topic, part) order, with the
    text it shows after the latest edit planned for it (or as first sent). A topic that
    Telegram said is closed or deleted is left alone: its messages went with it."""
    isos = [d.isoformat() for d in dates]
    rows = await db.rows(
        "SELECT o.chat_id, coalesce(c.language, 'zh'), o.issue, o.part, o.message_id,"
        " coalesce((SELECT e.base_id FROM edits e WHERE e.chat_id = o.chat_id"
        " AND e.message_id = o.message_id AND e.status IN ('pending', 'done')"
        " ORDER BY e.id DESC LIMIT 1), o.text_id), o.thread_id"
        " FROM outbox o LEFT JOIN chats c ON c.id = o.chat_id"
        " WHERE o.kind = 'issue' AND o.status = 'sent' AND o.message_id IS NOT NULL"
        f" AND o.issue IN ({','.join('?' * len(isos))})"
        " AND coalesce(c.status, 'active') NOT IN ('blocked', 'migrated')"
        # Telegram said it cannot edit that message: asking again cannot help.
        " AND NOT EXISTS (SELECT 1 FROM edits r WHERE r.chat_id = o.chat_id"
        " AND r.message_id = o.message_id AND r.status = 'refused')"
        " AND NOT EXISTS (SELECT 1 FROM topics t WHERE t.chat_id = o.chat_id"
        " AND t.thread_id = o.thread_id AND t.status = 'gone')"
        " ORDER BY o.chat_id, o.thread_id, o.part",
        isos,
    )
    return [
        SentPart(c, lang, dt.date.fromisoformat(i), p, m, b, th) for c, lang, i, p, m, b, th in rows
    ]


async def pending_sends(db: Database, dates: Sequence[dt.date]) -> int:
    """Messages of those issues still waiting to be sent: corrections wait for them."""
    isos = [d.isoformat() for d in dates]
    return int(
        await db.value(
            "SELECT count(*) FROM outbox WHERE kind = 'issue' AND status = 'pending'"
            f" AND issue IN ({','.join('?' * len(isos))})",
            isos,
        )
    )


async def insert(db: Database, rows: Sequence[tuple[int, int, str, int, int, int, int]]) -> int:
    """(chat, message, issue, part, revision, base text id, text id) rows, inside the
    caller's transaction; a row already planned for that revision is left as it is."""
    now = time.time()
    return await db.executemany(
        "INSERT OR IGNORE INTO edits (chat_id, message_id, issue, part, revision, base_id,"
        " text_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(*r, now) for r in rows],
    )


async def pending_window(db: Database, limit: int) -> list[Any]:
    """The first ``limit`` pending edits in the sender's row shape: (-id, chat, text id,
    attempts, next_at, broadcast id (None), chat type). An edit for a chat that is now
    blocked or migrated stays pending and is not loaded."""
    return await db.rows(
        "SELECT -e.id, e.chat_id, e.text_id, e.attempts, e.next_at, NULL,"
        " coalesce(c.type, 'private') FROM edits e LEFT JOIN chats c ON c.id = e.chat_id"
        " WHERE e.status = 'pending' AND coalesce(c.status, 'active') NOT IN"
        " ('blocked', 'migrated') ORDER BY e.id LIMIT ?",
        [limit],
    )


async def message_id(db: Database, edit_id: int) -> int:
    return int(await db.value("SELECT message_id FROM edits WHERE id = ?", [edit_id]))


def _status(o: Outcome) -> str:
    error = (o.error or "").lower()
    if o.kind == "sent" or NOT_MODIFIED in error:
        return "done"
    return "refused" if any(t in error for t in REFUSED_TEXTS) else "failed"


async def record(db: Database, outcomes: Sequence[Outcome]) -> None:
    """The sender's outcomes for edit rows (negative row ids), inside its transaction."""
    now = time.time()
    final = [
        (_status(o), o.attempts, o.error, now, -o.row_id) for o in outcomes if o.kind != "retry"
    ]
    retry = [(o.attempts, o.next_at, o.error, -o.row_id) for o in outcomes if o.kind == "retry"]
    if final:
        await db.executemany(
            "UPDATE edits SET status = ?, attempts = ?, last_error = ?, done_at = ?"
            " WHERE id = ? AND status = 'pending'",
            final,
        )
    if retry:
        await db.executemany(
            "UPDATE edits SET attempts = ?, next_at = ?, last_error = ?"
            " WHERE id = ? AND status = 'pending'",
            retry,
        )


async def status_counts(db: Database) -> dict[str, int]:
    return dict(await db.rows("SELECT status, count(*) FROM edits GROUP BY status"))
