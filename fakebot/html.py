"""Telegram-style HTML entity parser (a port of the rules of TDLib's ``parse_html``).

``parse_html(text)`` returns ``(plain_text, entities)`` where entities are Bot API
``MessageEntity`` dicts with UTF-16 ``offset``/``length``, sorted like Telegram sorts them.
Errors raise :class:`EntityParseError` whose message is the part after
``"Bad Request: can't parse entities: "``.

By default (``strict=True``) the parser is a little stricter than Telegram, following the
Bot API documentation rather than TDLib's leniency: a bare ``&`` that does not start one of
``&lt; &gt; &amp; &quot; &#NN; &#xHH;`` (with the ``;``) and a bare ``>`` are rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "EntityParseError",
    "normalize_entities",
    "parse_html",
    "trim_text",
    "utf16_len",
]

Entity = dict[str, Any]

_SPACES = " \t\r\n\v\f\0"
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_TG_USER = re.compile(r"^tg://user\?id=(\d{1,20})$", re.IGNORECASE)
_URL_SCHEMES = {"http", "https", "tg", "ton", "ftp"}


class EntityParseError(ValueError):
    """The text can't be parsed; ``str(exc)`` is Telegram's detail message."""


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (what Telegram counts)."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _decode_entity(text: str, pos: int, strict: bool) -> tuple[str, int] | None:
    """Decode an HTML entity starting at ``text[pos] == "&"``; return (char, next_pos)."""
    n = len(text)
    j = pos + 1
    value: str | None = None
    if j < n and text[j] == "#":
        j += 1
        base = 10
        if j < n and text[j] in "xX":
            base = 16
            j += 1
        start = j
        digits = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
        while j < n and text[j] in digits:
            j += 1
        if j == start or j - start > 8:
            return None
        code = int(text[start:j], base)
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        value = chr(code)
    else:
        start = j
        while j < n and text[j].isascii() and text[j].isalpha():
            j += 1
        value = _NAMED.get(text[start:j])
        if value is None:
            return None
    if j < n and text[j] == ";":
        return value, j + 1
    if strict:
        return None
    return value, j


def _is_valid_url(url: str) -> bool:
    if not url or any(c in _SPACES for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme.lower() not in _URL_SCHEMES:
        return False
    if parts.scheme.lower() in {"http", "https", "ftp"}:
        host = parts.hostname or ""
        return bool(host) and ("." in host or host == "localhost")
    return True


def normalize_url(url: str) -> str | None:
    """Normalise a link URL like Telegram does; ``None`` if Telegram would drop it."""
    url = url.strip()
    if "://" not in url and not url.lower().startswith(("tg:", "ton:")):
        url = "http://" + url
    if not _is_valid_url(url):
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() in {"http", "https", "ftp"} and not parts.path:
        url = urlunsplit((parts.scheme, parts.netloc, "/", parts.query, parts.fragment))
    return url


@dataclass
class _Open:
    tag: str
    begin: int  # index in source
    offset: int  # UTF-16 offset in the result
    text_start: int  # index into the result piece list
    argument: str = ""
    expandable: bool = False
    order: int = 0


@dataclass
class _Builder:
    pieces: list[str] = field(default_factory=list)
    u16: int = 0

    def add(self, s: str) -> None:
        self.pieces.append(s)
        self.u16 += utf16_len(s)

    def text(self) -> str:
        return "".join(self.pieces)


def parse_html(text: str, *, strict: bool = True) -> tuple[str, list[Entity]]:
    """Parse Telegram HTML into ``(plain_text, entities)``.

    The plain text is *not* trimmed; see :func:`trim_text`.
    """
    out = _Builder()
    stack: list[_Open] = []
    found: list[tuple[int, Entity]] = []  # (open order, entity)
    n = len(text)
    i = 0
    order = 0

    def err(msg: str) -> EntityParseError:
        return EntityParseError(msg)

    while i < n:
        c = text[i]
        if c == "&":
            decoded = _decode_entity(text, i, strict)
            if decoded is not None:
                out.add(decoded[0])
                i = decoded[1]
                continue
            if strict:
                raise err(
                    f'Unsupported HTML entity or unescaped "&" at byte offset {_byte_offset(text, i)}'
                )
            out.add(c)
            i += 1
            continue
        if c == ">" and strict:
            raise err(f'Unescaped ">" at byte offset {_byte_offset(text, i)}')
        if c != "<":
            # Copy a run of plain characters at once.
            j = i + 1
            while j < n and text[j] not in "&<>":
                j += 1
            out.add(text[i:j])
            i = j
            continue

        begin = i
        i += 1
        if i < n and text[i] == "/":
            # End tag.
            if not stack:
                raise err(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
            i += 1
            name_start = i
            while i < n and text[i] not in _SPACES and text[i] != ">":
                i += 1
            end_name = text[name_start:i].lower()
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n or text[i] != ">":
                raise err(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
            i += 1
            top = stack.pop()
            if end_name and end_name != top.tag:
                raise err(
                    f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                    f'expected "</{top.tag}>", found "</{end_name}>"'
                )
            _close(top, out, found)
            continue

        # Start tag.
        tag_end = i
        while tag_end < n and text[tag_end] not in _SPACES and text[tag_end] != ">":
            tag_end += 1
        if tag_end >= n:
            raise err(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        tag = text[i:tag_end].lower()
        if tag not in _TAG_TYPES:
            raise err(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
        i = tag_end
        opened = _Open(tag=tag, begin=begin, offset=out.u16, text_start=len(out.pieces))
        has_emoji_id = False
        while True:
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n:
                raise err(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
            if text[i] == ">":
                i += 1
                break
            attr_start = i
            while i < n and text[i] not in _SPACES and text[i] not in "=>":
                i += 1
            attr = text[attr_start:i].lower()
            if not attr:
                raise err(
                    f'Empty attribute name in the tag "{tag}" at byte offset '
                    f"{_byte_offset(text, begin)}"
                )
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n or text[i] != "=":
                if tag == "blockquote" and attr == "expandable":
                    opened.expandable = True
                    continue
                raise err(
                    f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                    f"at byte offset {_byte_offset(text, begin)}"
                )
            i += 1
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n:
                raise err(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
            if text[i] not in "'\"":
                token_start = i
                while i < n and ((text[i].isascii() and text[i].isalnum()) or text[i] in ".-"):
                    i += 1
                value = text[token_start:i].lower()
                if i >= n or (text[i] not in _SPACES and text[i] != ">"):
                    raise err(
                        f"Unexpected end of name token at byte offset "
                        f"{_byte_offset(text, token_start)}"
                    )
            else:
                quote = text[i]
                i += 1
                chars: list[str] = []
                while i < n and text[i] != quote:
                    if text[i] == "&":
                        decoded = _decode_entity(text, i, strict)
                        if decoded is not None:
                            chars.append(decoded[0])
                            i = decoded[1]
                            continue
                        if strict:
                            raise err(
                                'Unsupported HTML entity or unescaped "&" at byte offset '
                                f"{_byte_offset(text, i)}"
                            )
                    if text[i] == "<" and strict:
                        raise err(f'Unescaped "<" at byte offset {_byte_offset(text, i)}')
                    chars.append(text[i])
                    i += 1
                if i >= n:
                    raise err(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
                i += 1
                value = "".join(chars)
            if tag == "a" and attr == "href":
                opened.argument = value
            elif tag == "code" and attr == "class" and value.startswith("language-"):
                opened.argument = value[len("language-") :]
            elif tag == "span" and attr == "class" and value.startswith("tg-"):
                opened.argument = value[len("tg-") :]
            elif tag == "tg-emoji" and attr == "emoji-id":
                opened.argument = value
                has_emoji_id = True
        if tag == "span" and opened.argument != "spoiler":
            raise err(
                f'Tag "span" must have class "tg-spoiler" at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        if tag == "tg-emoji" and (not has_emoji_id or not opened.argument.isdigit()):
            raise err(
                f'Tag "tg-emoji" must have a valid "emoji-id" attribute at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        opened.order = order
        order += 1
        stack.append(opened)

    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    plain = out.text()
    found.sort(key=lambda item: (item[1]["offset"], -item[1]["length"], item[0]))
    return plain, [{k: v for k, v in e.items() if not k.startswith("_")} for _, e in found]


def _close(top: _Open, out: _Builder, found: list[tuple[int, Entity]]) -> None:
    length = out.u16 - top.offset
    if length <= 0:
        return
    etype = _TAG_TYPES[top.tag]
    entity: Entity = {"type": etype, "offset": top.offset, "length": length}
    if top.tag == "a":
        url = top.argument or "".join(out.pieces[top.text_start :])
        mention = _TG_USER.match(url.strip())
        if mention:
            user_id = int(mention.group(1))
            entity = {
                "type": "text_mention",
                "offset": top.offset,
                "length": length,
                "user": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
            }
        else:
            normalized = normalize_url(url)
            if normalized is None:
                return  # Telegram silently drops links with invalid URLs.
            entity["url"] = normalized
    elif top.tag == "tg-emoji":
        entity["custom_emoji_id"] = top.argument
    elif top.tag == "code" and top.argument:
        # Remember the language; a surrounding <pre> turns this into pre(language).
        entity["_language"] = top.argument
    elif top.tag == "pre":
        if found:
            last = found[-1][1]
            if last["type"] == "code" and last["offset"] == top.offset and last["length"] == length:
                found.pop()
                if "_language" in last:
                    entity["language"] = last["_language"]
    elif top.tag == "blockquote" and top.expandable:
        entity["type"] = "expandable_blockquote"
    found.append((top.order, entity))


def trim_text(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Strip leading/trailing whitespace like Telegram and clip the entities to match."""
    stripped_left = text.lstrip(_SPACES)
    left = utf16_len(text) - utf16_len(stripped_left)
    result = stripped_left.rstrip(_SPACES)
    total = utf16_len(result)
    out: list[Entity] = []
    for entity in entities:
        start = max(entity["offset"] - left, 0)
        end = min(entity["offset"] + entity["length"] - left, total)
        if end <= start:
            continue
        clipped = dict(entity)
        clipped["offset"] = start
        clipped["length"] = end - start
        out.append(clipped)
    return result, normalize_entities(out)


def normalize_entities(entities: list[Entity]) -> list[Entity]:
    """Drop private markers and sort entities the way Telegram returns them."""
    cleaned = []
    for index, entity in enumerate(entities):
        e = {k: v for k, v in entity.items() if not k.startswith("_")}
        cleaned.append((e["offset"], -e["length"], index, e))
    cleaned.sort(key=lambda item: item[:3])
    return [item[3] for item in cleaned]
