"""Corrections edited in place: when an issue that was already delivered changes upstream
(and the change has settled), every message sent for it is edited to the new text with a
short "corrected" mark in the chat's language.

- The edits are rows of the ``edits`` table, one per (chat, message, revision), planned in
  one transaction with the revision marked as planned: planning again (the next tick, or
  after ``kill -9``) adds nothing. The sender sends them in the chats' lanes, under the
  same limits as new messages.
- More parts than before: the existing messages are edited, the missing parts are sent as
  new messages of the issue (outbox rows, exactly once like any part). Fewer: the extra
  messages are edited to a short "(merged into the message above)" note, so that none is
  left showing stale text.
- A message that already shows the new text is not edited: an unchanged re-render edits
  nothing.
- An issue whose heading date moved edits the messages sent under the old date.
- While parts of the issue are still waiting to be sent, planning waits: they go out
  first, and are then compared like the others.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

from bot.core.i18n import t
from bot.core.render import MAX_UTF16, issue_messages
from bot.db import edits, outbox, revisions
from bot.db.archive import Archive
from bot.db.edits import SentPart
from bot.db.outbox import Broadcast
from bot.db.revisions import Revision

log = logging.getLogger(__name__)

# Visible units kept free in every corrected part for the mark ("\n\n✏️ corrected").
MARK_ROOM = 24


def marked(html: str, lang: str) -> str:
    return f"{html}\n\n<i>{t(lang, 'corrected_mark')}</i>"


def merged(lang: str) -> str:
    return f"<i>{t(lang, 'merged_note')}</i>"


async def plan(archive: Archive, now: float, settle: float) -> int:
    """Plan the corrections of every settled issue changed since it was last planned;
    returns the number of edits and new parts queued."""
    queued = 0
    for rev in await revisions.to_correct(archive.db):
        if rev.ready(now, settle):
            queued += await _plan_issue(archive, rev)
    return queued


def _dates(rev: Revision) -> list[dt.date]:
    return [rev.date, *([rev.moved_from] if rev.moved_from else [])]


async def _plan_issue(archive: Archive, rev: Revision) -> int:
    db = archive.db
    dates = _dates(rev)
    if await edits.pending_sends(db, dates):
        return 0  # sent first, compared next time
    issue = await archive.issue(rev.date)
    if issue is None:
        return 0
    # Per chat and forum topic: a group subscribed in two topics got each part twice.
    by_chat: dict[tuple[int, int], list[SentPart]] = defaultdict(list)
    for part in await edits.sent_parts(db, dates):
        by_chat[(part.chat_id, part.thread_id)].append(part)
    renders: dict[str, list[str]] = {}
    ids: dict[str, int] = {}  # every chat of a language shares its texts: one lookup each

    async def text_id(html: str) -> int:
        if html not in ids:
            ids[html] = await outbox.text_id(db, html)
        return ids[html]

    edit_rows: list[tuple[int, int, str, int, int, int, int]] = []
    new_parts: list[tuple[str, int, int, int, int]] = []
    async with db.transaction():
        for (chat_id, thread_id), sent in by_chat.items():
            lang = sent[0].language
            if lang not in renders:
                renders[lang] = issue_messages(issue, lang, limit=MAX_UTF16 - MARK_ROOM)
            parts = renders[lang]
            # One message per part number (a part re-sent after a failure has one row).
            shown = {p.part: p for p in sent}
            for number, message in sorted(shown.items()):
                if number < len(parts):
                    base = await text_id(parts[number])
                    text = await text_id(marked(parts[number], lang))
                else:
                    base = text = await text_id(merged(lang))
                if base != message.base_id:
                    edit_rows.append(
                        (
                            chat_id,
                            message.message_id,
                            message.issue.isoformat(),
                            number,
                            rev.revision,
                            base,
                            text,
                        )
                    )
            under = sent[0].issue.isoformat()  # the missing parts join the same messages
            for number in range(max(shown) + 1, len(parts)):
                new_parts.append((under, chat_id, thread_id, number, await text_id(parts[number])))
        queued = await edits.insert(db, edit_rows)
        if new_parts:
            batch = Broadcast(db, "schedule", rev.date)
            await batch.insert("issue", new_parts)
        else:
            batch = None
        await revisions.mark_corrected(db, rev.date, rev.revision)
    if batch is not None:
        await batch.close()
    if queued or new_parts:
        log.info(
            "corrections: issue %s revision %d: %d edits, %d new parts",
            rev.date.isoformat(),
            rev.revision,
            queued,
            len(new_parts),
        )
    return queued + len(new_parts)
