"""Checking config values: one function per kind of value, each raising ConfigError with
the dotted key and, for everything outside the ``telegram`` section, the value it got
(secrets removed). Values from ``telegram`` are never echoed: only their kind is named."""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.logs import redact

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}\.?$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$"
)
# A URL path for the webhook: PTB turns it into a route pattern, so no regex syntax.
_URL_PATH = re.compile(r"^[A-Za-z0-9_.~:-]+(/[A-Za-z0-9_.~:-]+)*$")
_MAX_ID = 2**53  # Telegram ids have at most 52 significant bits


class ConfigError(ValueError):
    """A config value that is wrong; the message starts with the key."""


# -- describing wrong values -------------------------------------------------------------


def _secret(key: str) -> bool:
    """Keys whose values are never echoed: the telegram section, and the whole document."""
    return key in ("(top level)", "telegram") or key.startswith("telegram.")


def _kind(value: Any) -> str:
    """What a value is, without its contents."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # nan, inf, -inf
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (str, "a string (not shown)"),
        (int, "a number (not shown)"),
        (float, "a number (not shown)"),
        (dict, "a mapping"),
        (list, "a list"),
        ((set, frozenset), "a set"),
        (tuple, "a list"),
        ((bytes, bytearray), "binary data"),
        (dt.datetime, "a date and time"),
        (dt.date, "a date"),
    ]
    for types, text in kinds:
        if isinstance(value, types):
            return text
    return "a " + type(value).__name__


def _show(value: Any) -> str:
    """A short, safe rendering of a wrong scalar (containers are described, not shown)."""
    if isinstance(value, str):
        text = redact(value)  # before cutting: a cut token no longer looks like one
        return repr(text if len(text) <= 60 else text[:57] + "...")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if abs(value) < 10**18 else "a number too large"
    if isinstance(value, float):
        return repr(value)
    return _kind(value)


def _got(key: str, value: Any) -> str:
    return _kind(value) if _secret(key) else _show(value)


def _name(name: Any) -> str:
    """A key's name for a message (a key is named even in the telegram section)."""
    if not isinstance(name, str | int | float | bool) and name is not None:
        return _kind(name)
    text = redact(str(name))  # before cutting: a cut token no longer looks like one
    text = text if len(text) <= 40 else text[:37] + "..."
    return text if re.fullmatch(r"[\w.:<>\- ]+", text) else repr(text)


# -- validation helpers: each takes the dotted key and the raw value --------------------


def _int(key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(
            f"{key}: expected a whole number from {lo} to {hi}, got {_got(key, value)}"
        )
    return value


def _num(key: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ConfigError(f"{key}: expected a number from {lo:g} to {hi:g}, got {_got(key, value)}")
    return float(value)


def _str(key: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected text, got {_got(key, value)}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {_got(key, value)}")
    return value


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {_got(key, value)}")
    return value


def _url(key: str, value: Any, example: str = "https://api.telegram.org") -> str:
    text = _str(key, value).rstrip("/")
    if not re.fullmatch(r"https?://[^\s/?#]+(/\S*)?", text):
        raise ConfigError(
            f"{key}: expected an http(s) URL such as {example}, got {_got(key, value)}"
        )
    return text


def _host(key: str, value: Any) -> str:
    text = _str(key, value)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not _HOSTNAME.match(text) or re.fullmatch(r"[\d.]+", text):
            raise ConfigError(
                f"{key}: expected an IP address such as 127.0.0.1 (or 0.0.0.0 for every "
                f"interface) or a host name, got {_got(key, value)}"
            ) from None
    return text


def _webhook_path(key: str, value: Any) -> str:
    text = _str(key, value).strip("/")
    parts = text.split("/")
    if text and (not _URL_PATH.match(text) or "." in parts or ".." in parts):
        raise ConfigError(
            f"{key}: expected a URL path such as 'telegram' (letters, digits, _ . ~ : - "
            f"and /), got {_got(key, value)}"
        )
    return text


def _path(key: str, value: Any, base: Path) -> Path:
    text = _str(key, value)
    if not text.strip():
        raise ConfigError(f"{key}: expected a path, got {_show(value) if value else 'nothing'}")
    try:
        os.fsencode(text)
        if "\x00" in text:
            raise ValueError
    except (UnicodeError, ValueError):
        raise ConfigError(f"{key}: not a usable path: {_show(value)}") from None
    return base / text


def _short(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 80 else text[:38] + "..." + text[-38:]


def _check(key: str, path: Path, want_dir: bool) -> None:
    """Refuse a path that exists but is the wrong kind of thing (a folder for a file,
    /dev/null for a database). A missing path is fine: it is created when needed."""
    try:
        if not path.exists():
            return
        if want_dir and not path.is_dir():
            raise ConfigError(f"{key}: {_short(path)} is not a folder")
        if not want_dir and path.is_dir():
            raise ConfigError(
                f"{key}: {_short(path)} is a folder; give a database file name such as "
                "data/briefbot.sqlite3"
            )
        if not want_dir and not path.is_file():
            raise ConfigError(
                f"{key}: {_short(path)} is not a regular file (a device or pipe?); give a database "
                "file name such as data/briefbot.sqlite3"
            )
    except OSError as err:
        raise ConfigError(f"{key}: cannot use {_short(path)}: {err.strerror or err}") from None


def _time(key: str, value: Any) -> dt.time:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # YAML reads 830 as a number; YAML 1.1 (PyYAML's yaml.safe_load) even reads 8:30 as
        # the base-60 number 510. Guessing would be wrong one way or the other.
        raise ConfigError(f'{key}: write times as quoted "HH:MM" strings, e.g. "08:30"')
    m = _TIME.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise ConfigError(
            f"{key}: expected a time HH:MM such as '08:30' (quoted), got {_got(key, value)}"
        )
    return dt.time(int(m[1]), int(m[2]))


def _zone(key: str, value: Any) -> str:
    text = _str(key, value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            f"{key}: unknown time zone {_got(key, value)}; use a name such as 'Asia/Shanghai'"
        ) from None
    return text


def _chat(key: str, value: Any) -> str | int:
    if isinstance(value, str) and re.match(r"^@[A-Za-z][A-Za-z0-9_]{3,31}$", value):
        return value
    chat: Any = value
    if isinstance(value, str) and re.match(r"^-?\d{1,20}$", value):
        chat = int(value)
    if isinstance(chat, int) and not isinstance(chat, bool) and 0 < abs(chat) <= _MAX_ID:
        return chat
    raise ConfigError(
        f"{key}: expected '@channelname' or a numeric chat id, got {_got(key, value)}"
    )


def _list(key: str, value: Any, each: Callable[[str, Any], Any]) -> tuple[Any, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        value = [value]
    return tuple(each(f"{key}[{i}]", v) for i, v in enumerate(value))


def _section(key: str, value: Any, known: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping of keys, got {_got(key, value)}")
    for name in value:
        if name not in known:
            raise ConfigError(
                f"{key}.{_name(name)}: unknown key (known: {', '.join(sorted(known))})"
            )
    return value
