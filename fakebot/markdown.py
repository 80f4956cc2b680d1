"""Telegram ``MarkdownV2`` and legacy ``Markdown`` parsers (after TDLib's rules).

Both return ``(plain_text, entities)`` with UTF-16 offsets, raising
:class:`~fakebot.html.EntityParseError` with Telegram's detail message.
"""

from __future__ import annotations

from dataclasses import dataclass

from .html import Entity, EntityParseError, normalize_entities, normalize_url, utf16_len

__all__ = ["parse_markdown", "parse_markdown_v2"]

_RESERVED_V2 = "_*[]()~`>#+-=|{}.!"
_TYPE_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def _bo(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


@dataclass
class _Open:
    type: str
    begin: int
    offset: int
    text_start: int
    argument: str = ""


def parse_markdown_v2(text: str) -> tuple[str, list[Entity]]:
    """Parse Telegram MarkdownV2."""
    pieces: list[str] = []
    u16 = 0
    stack: list[_Open] = []
    entities: list[Entity] = []
    quote_start: int | None = None
    quote_end = 0
    n = len(text)
    i = 0

    def add(s: str) -> None:
        nonlocal u16
        pieces.append(s)
        u16 += utf16_len(s)

    while i < n:
        c = text[i]
        in_code = bool(stack) and stack[-1].type in {"code", "pre"}
        line_start = i == 0 or text[i - 1] == "\n"
        if line_start and not in_code:
            if c == ">":
                if quote_start is None:
                    quote_start = u16
                i += 1
                continue
            if quote_start is not None:
                if quote_end > quote_start:
                    entities.append(
                        {
                            "type": "blockquote",
                            "offset": quote_start,
                            "length": quote_end - quote_start,
                        }
                    )
                quote_start = None
        if c == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            add(text[i + 1])
            i += 2
            continue
        reserved = "`" if in_code else _RESERVED_V2
        if c not in reserved:
            if c == "\n" and quote_start is not None:
                quote_end = u16
            add(c)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        nxt2 = text[i + 2] if i + 2 < n else ""
        end = False
        if stack:
            top = stack[-1].type
            end = {
                "bold": c == "*",
                "italic": c == "_" and nxt != "_",
                "code": c == "`",
                "pre": c == "`" and nxt == "`" and nxt2 == "`",
                "text_link": c == "]",
                "custom_emoji": c == "]",
                "underline": c == "_" and nxt == "_",
                "strikethrough": c == "~",
                "spoiler": c == "|" and nxt == "|",
            }[top]
        if not end:
            begin = i
            argument = ""
            if c == "_" and nxt == "_":
                etype = "underline"
                i += 2
            elif c == "_":
                etype = "italic"
                i += 1
            elif c == "*":
                etype = "bold"
                i += 1
            elif c == "~":
                etype = "strikethrough"
                i += 1
            elif c == "|" and nxt == "|":
                etype = "spoiler"
                i += 2
            elif c == "[":
                etype = "text_link"
                i += 1
            elif c == "!" and nxt == "[":
                etype = "custom_emoji"
                i += 2
            elif c == "`" and nxt == "`" and nxt2 == "`":
                etype = "pre"
                i += 3
                lang_start = i
                while i < n and text[i] not in " \n`":
                    i += 1
                if i < n and text[i] == "\n":
                    argument = text[lang_start:i]
                    i += 1
                else:
                    i = lang_start
            elif c == "`":
                etype = "code"
                i += 1
            else:
                raise EntityParseError(
                    f"Character '{c}' is reserved and must be escaped with the preceding '\\'"
                )
            stack.append(_Open(etype, begin, u16, len(pieces), argument))
            continue
        top_open = stack.pop()
        i += {"pre": 3, "underline": 2, "spoiler": 2}.get(top_open.type, 1)
        entity: Entity = {
            "type": top_open.type,
            "offset": top_open.offset,
            "length": u16 - top_open.offset,
        }
        if top_open.type in {"text_link", "custom_emoji"}:
            url = ""
            if i < n and text[i] == "(":
                i += 1
                chars: list[str] = []
                while i < n and text[i] != ")":
                    if text[i] == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
                        chars.append(text[i + 1])
                        i += 2
                        continue
                    chars.append(text[i])
                    i += 1
                if i >= n:
                    raise EntityParseError(
                        f"Can't find end of a url at byte offset {_bo(text, top_open.begin)}"
                    )
                i += 1
                url = "".join(chars)
            elif top_open.type == "custom_emoji":
                raise EntityParseError(
                    f"Custom emoji entity must contain a tg://emoji URL at byte offset "
                    f"{_bo(text, top_open.begin)}"
                )
            if top_open.type == "custom_emoji":
                prefix = "tg://emoji?id="
                if not url.startswith(prefix) or not url[len(prefix) :].isdigit():
                    raise EntityParseError(
                        f"Custom emoji URL must have an emoji identifier at byte offset "
                        f"{_bo(text, top_open.begin)}"
                    )
                entity["custom_emoji_id"] = url[len(prefix) :]
            else:
                normalized = normalize_url(url or "".join(pieces[top_open.text_start :]))
                if normalized is None:
                    continue
                entity["url"] = normalized
        if top_open.type == "pre" and top_open.argument:
            entity["language"] = top_open.argument
        if entity["length"] > 0:
            entities.append(entity)

    if stack:
        top_open = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_TYPE_NAMES[top_open.type]} entity at byte offset "
            f"{_bo(text, top_open.begin)}"
        )
    if quote_start is not None and u16 > quote_start:
        entities.append({"type": "blockquote", "offset": quote_start, "length": u16 - quote_start})
    return "".join(pieces), normalize_entities(entities)


def parse_markdown(text: str) -> tuple[str, list[Entity]]:
    """Parse legacy Telegram Markdown (``*bold*``, ``_italic_``, `` `code` ``, pre, links)."""
    pieces: list[str] = []
    u16 = 0
    entities: list[Entity] = []
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            pieces.append(text[i + 1])
            u16 += 1
            i += 2
            continue
        if c not in "_*`[":
            pieces.append(c)
            u16 += utf16_len(c)
            i += 1
            continue
        begin = i
        end_char = "]" if c == "[" else c
        is_pre = False
        language = ""
        i += 1
        if c == "`" and text[i : i + 2] == "``":
            is_pre = True
            i += 2
            lang_start = i
            while i < n and text[i] not in " \n`":
                i += 1
            if i < n and text[i] == "\n":
                language = text[lang_start:i]
                i += 1
            else:
                i = lang_start
        offset = u16
        start_piece = len(pieces)
        while i < n and (text[i] != end_char or (is_pre and text[i + 1 : i + 3] != "``")):
            pieces.append(text[i])
            u16 += utf16_len(text[i])
            i += 1
        if i >= n:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {_bo(text, begin)}"
            )
        i += 3 if is_pre else 1
        length = u16 - offset
        if c == "[":
            url = ""
            if i < n and text[i] == "(":
                close = text.find(")", i)
                if close != -1:
                    url = text[i + 1 : close]
                    i = close + 1
            normalized = normalize_url(url or "".join(pieces[start_piece:]))
            if normalized and length:
                entities.append(
                    {"type": "text_link", "offset": offset, "length": length, "url": normalized}
                )
            continue
        if length == 0:
            continue
        etype = {"_": "italic", "*": "bold", "`": "pre" if is_pre else "code"}[c]
        entity: Entity = {"type": etype, "offset": offset, "length": length}
        if language:
            entity["language"] = language
        entities.append(entity)
    return "".join(pieces), normalize_entities(entities)
