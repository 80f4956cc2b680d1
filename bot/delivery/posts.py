"""Links from the bot's answers to the channel messages an issue went out as.

When an issue was posted to a public channel (one with a username), each of its items is
in one of the messages posted there: ``https://t.me/<username>/<message id>``. The
outbox knows the messages and the text each one shows now (corrections included); which
one holds an item is read from those texts (``bot.core.postlinks``), so a render that
changed since, or a correction that re-split the issue, cannot point a link at the wrong
message. An item that cannot be placed gets no link rather than a guess.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.core.model import Issue
from bot.core.postlinks import item_parts, post_label, post_url
from bot.db import channels
from bot.db.archive import Archive


@dataclass(frozen=True)
class Link:
    url: str  # https://t.me/<username>/<message id>
    label: str  # t.me/<username>/<message id>


@dataclass(frozen=True)
class PostLinks:
    """The links found for some issues: to each issue's first message, and to each item."""

    issues: dict[dt.date, Link] = field(default_factory=dict)
    items: dict[tuple[dt.date, int], Link] = field(default_factory=dict)  # (date, number)

    def issue(self, date: dt.date) -> Link | None:
        return self.issues.get(date)

    def item(self, date: dt.date, number: int) -> Link | None:
        return self.items.get((date, number))


def _link(username: str, message_id: int) -> Link:
    return Link(post_url(username, message_id), post_label(username, message_id))


async def post_links(
    archive: Archive, dates: Iterable[dt.date], known: Iterable[Issue] = ()
) -> PostLinks:
    """The links for these issues (none for an issue no public channel received).
    ``known``: issues the caller has read already, not read again (a round trip each)."""
    issues = {issue.date: issue for issue in known}
    posts = await channels.channel_posts(archive.db, list(dates))
    found = PostLinks()
    for date, post in posts.items():
        order = sorted(post.message_ids)
        # The message the issue starts in: its first part, or the first one that was sent.
        found.issues[date] = _link(post.username, post.message_ids[order[0]])
        issue = issues[date] if date in issues else await archive.issue(date)
        if issue is None:
            continue
        where = item_parts(issue, [post.texts[part] for part in order])
        for item, index in zip(issue.items, where, strict=True):
            if index is not None:  # the first item of a number wins, as in the archive
                key = (date, item.number)
                found.items.setdefault(key, _link(post.username, post.message_ids[order[index]]))
    return found
