"""Subscriber lists, the pure part: reading a CSV or JSON-lines file of chats to subscribe
(``briefbot subscribers import``) and writing the CSV that ``export`` prints.

A row is ``chat_id[,type][,time][,lang]``. Every row is checked before anything is written;
each bad row is one ``FILE:LINE: message``. The database side is :mod:`bot.db.importer`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

CHAT_TYPES = ("private", "group", "supergroup", "channel")
LANGS = ("zh", "en")
COLUMNS = ("chat_id", "type", "time", "lang")
NOW = "now"  # deliver as soon as the issue is ready (on-arrival)
# Telegram ids have at most 52 significant bits; anything longer is a typo.
MAX_ABS_ID = 2**53
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_INT = re.compile(r"[+-]?\d{1,20}")


@dataclass(frozen=True)
class Row:
    """One chat to subscribe. None: not given (a new chat gets the default, a known chat
    keeps what it has)."""

    line: int
    chat_id: int
    type: str
    time: str | None = None  # 'HH:MM' or NOW
    lang: str | None = None


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class _Bad(ValueError):
    pass


def _chat_id(text: str) -> int:
    if not _INT.fullmatch(text):
        raise _Bad(
            f"chat_id must be a whole number such as 123456789 or -1001234567890, got {text!r}"
        )
    value = int(text)
    if value == 0 or abs(value) >= MAX_ABS_ID:
        raise _Bad(f"chat_id {value} is not a Telegram chat id")
    return value


def _type(text: str) -> str:
    if text not in CHAT_TYPES:
        raise _Bad(f"type must be one of {', '.join(CHAT_TYPES)}, got {text!r}")
    return text


def _time(text: str) -> str:
    if text.lower() == NOW:
        return NOW
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if not m or not _HHMM.fullmatch(f"{int(m[1]):02d}:{m[2]}"):
        raise _Bad(f"time must be HH:MM (00:00 to 23:59) or now, got {text!r}")
    return f"{int(m[1]):02d}:{m[2]}"


def _lang(text: str) -> str:
    if text.lower() not in LANGS:
        raise _Bad(f"lang must be zh or en, got {text!r}")
    return text.lower()


def _row(line: int, chat_id: int, kind: str | None, time: str | None, lang: str | None) -> Row:
    """The checks that need the whole row: a chat id's sign says what kind of chat it is."""
    if kind is None:
        if chat_id < 0:
            raise _Bad(
                f"chat {chat_id} is a group or channel: give its type (group, supergroup or channel)"
            )
        kind = "private"
    elif (chat_id > 0) != (kind == "private"):
        sign = "positive" if kind == "private" else "negative"
        raise _Bad(f"a {kind} chat's id is {sign}, got {chat_id}")
    return Row(line, chat_id, kind, time, lang)


def _classify(fields: list[str]) -> tuple[str | None, str | None, str | None]:
    """Without a header the optional fields may come in any order and be left out: a type,
    a time and a language never look alike."""
    found: dict[str, str] = {}
    for raw in fields:
        value = raw.strip()
        if not value:
            continue
        if value in CHAT_TYPES:
            key, parsed = "type", value
        elif value.lower() in LANGS:
            key, parsed = "lang", value.lower()
        elif value.lower() == NOW or ":" in value:
            key, parsed = "time", _time(value)
        else:
            raise _Bad(
                f"unexpected value {value!r}: expected a type ({', '.join(CHAT_TYPES)}), HH:MM or now, zh or en"
            )
        if key in found:
            raise _Bad(f"two values for {key}: {found[key]!r} and {value!r}")
        found[key] = parsed
    return found.get("type"), found.get("time"), found.get("lang")


def _csv_rows(name: str, text: str, errors: list[RowError]) -> Iterable[Row]:
    header: list[str] | None = None
    # csv.reader's line_num counts physical lines, so a quoted field spanning lines still
    # reports the line it starts on close enough; rows here never span lines.
    reader = csv.reader(io.StringIO(text))
    for fields in reader:
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields) or fields[0].lstrip().startswith("#"):
            continue
        try:
            if header is None and fields[0].strip().lower() == "chat_id":
                header = [f.strip().lower() for f in fields]
                unknown = [c for c in header if c not in COLUMNS]
                if unknown or len(set(header)) != len(header):
                    header = None
                    raise _Bad(
                        f"bad header {','.join(fields)!r}: columns are chat_id,type,time,lang"
                    )
                continue
            yield _csv_row(line, fields, header)
        except _Bad as err:
            errors.append(RowError(name, line, str(err)))


def _csv_row(line: int, fields: list[str], header: list[str] | None) -> Row:
    if header is None:
        return _row(line, _chat_id(fields[0].strip()), *_classify(fields[1:]))
    if len(fields) > len(header):
        raise _Bad(f"{len(fields)} fields, the header has {len(header)}")
    values = dict(zip(header, (f.strip() for f in fields), strict=False))
    if not values.get("chat_id"):
        raise _Bad("chat_id is missing")
    return _row(
        line,
        _chat_id(values["chat_id"]),
        _type(values["type"]) if values.get("type") else None,
        _time(values["time"]) if values.get("time") else None,
        _lang(values["lang"]) if values.get("lang") else None,
    )


def _json_rows(name: str, text: str, errors: list[RowError]) -> Iterable[Row]:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield _json_row(line, raw)
        except _Bad as err:
            errors.append(RowError(name, line, str(err)))


def _json_row(line: int, raw: str) -> Row:
    try:
        obj = json.loads(raw)
    except ValueError as err:
        raise _Bad(f"not a JSON object: {err}") from None
    if not isinstance(obj, dict):
        raise _Bad('not a JSON object such as {"chat_id": 123456789}')
    unknown = sorted(set(obj) - set(COLUMNS))
    if unknown:
        raise _Bad(f"unknown key {unknown[0]!r}: keys are chat_id, type, time, lang")
    cid = obj.get("chat_id")
    if isinstance(cid, bool) or not isinstance(cid, int | str):
        raise _Bad("chat_id must be a number such as 123456789")
    fields: dict[str, str | None] = {}
    for key in ("type", "time", "lang"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise _Bad(f"{key} must be a string, got {json.dumps(value)}")
        fields[key] = value.strip() if value else None
    return _row(
        line,
        _chat_id(str(cid)),
        _type(fields["type"]) if fields["type"] else None,
        _time(fields["time"]) if fields["time"] else None,
        _lang(fields["lang"]) if fields["lang"] else None,
    )


def parse_subscribers(name: str, data: bytes) -> tuple[list[Row], list[RowError]]:
    """Every row of a subscriber file and every problem with it (in line order). JSON
    lines if the first non-blank character is ``{``, else CSV. A chat listed twice is an
    error on its second line: which of the two is meant cannot be guessed."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        return [], [RowError(name, line, "not UTF-8 text; save the file as UTF-8")]
    errors: list[RowError] = []
    parse = _json_rows if text.lstrip().startswith("{") else _csv_rows
    rows: list[Row] = []
    first: dict[int, int] = {}
    for row in parse(name, text, errors):
        seen = first.setdefault(row.chat_id, row.line)
        if seen != row.line:
            errors.append(RowError(name, row.line, f"chat {row.chat_id} is already on line {seen}"))
            continue
        rows.append(row)
    if not rows and not errors:
        errors.append(RowError(name, 1, "no chats in the file"))
    errors.sort(key=lambda e: e.line)
    return rows, errors


def csv_header(*, status: bool) -> str:
    """The export's first line; the status column only for ``--all``."""
    return ",".join([*COLUMNS, "status"] if status else COLUMNS) + "\n"


def csv_line(
    chat_id: int, kind: str, time: str | None, lang: str | None, state: str | None = None
) -> str:
    """One exported chat, read back as it was by :func:`parse_subscribers`. Empty time or
    lang: the default."""
    fields = [str(chat_id), kind, time or "", lang or ""]
    if state is not None:
        fields.append(state)
    return ",".join(fields) + "\n"
