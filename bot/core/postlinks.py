"""Links to the channel messages an issue was posted as: which message holds which item.

Pure. An issue goes out as the messages ``render.issue_messages`` cuts it into; each item
starts a block (``"N. "`` and its text) at the start of a message or after a blank line.
Finding that start in the visible text of the rendered parts tells which message holds the
item, without reaching into the renderer's internals (another module owns them).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from bot.core.markdown import visible_text
from bot.core.model import Issue

# Enough of an item's own text to tell its start from a piece of the previous item that a
# cut happened to leave starting with "N. ": a cut never lands this close to a block start.
_PROBE = 24
_TAG = re.compile(r"<[^>]*>")  # our HTML escapes ">" inside attributes, so this is exact
_BLOCK_SEP = "\n\n"


def post_url(username: str, message_id: int) -> str:
    """The public link of a message in a channel with a username."""
    return f"https://t.me/{username.removeprefix('@')}/{message_id}"


def post_label(username: str, message_id: int) -> str:
    """The visible text of that link: short, and still says where it goes."""
    return f"t.me/{username.removeprefix('@')}/{message_id}"


def visible(message_html: str) -> str:
    """What a reader sees of one of our HTML messages: the tags dropped, entities read."""
    return html.unescape(_TAG.sub("", message_html))


def item_parts(issue: Issue, parts_html: Sequence[str]) -> list[int | None]:
    """For each item of the issue (by position), the index of the part its start is in;
    None where it cannot be found (the parts are not a render of this issue)."""
    texts = [visible(part) for part in parts_html]
    found: list[int | None] = []
    part, pos = 0, 0  # items appear in order: search each one after the previous
    for item in issue.items:
        probe = f"{item.number}. {visible_text(item.text)[:_PROBE]}".rstrip()
        where = _find_block(texts, probe, part, pos)
        if where is None:
            found.append(None)
            continue
        part, start = where
        pos = start + len(probe)
        found.append(part)
    return found


def _find_block(texts: Sequence[str], probe: str, part: int, pos: int) -> tuple[int, int] | None:
    """The first (part, offset) at or after (part, pos) where a block starts with probe."""
    for index in range(part, len(texts)):
        text = texts[index]
        start = pos if index == part else 0
        while (at := text.find(probe, start)) >= 0:
            if at == 0 or text.endswith(_BLOCK_SEP, 0, at):
                return index, at
            start = at + 1
    return None
